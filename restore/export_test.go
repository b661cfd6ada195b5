package restore

// WithoutClientCheck switches the server's client check off until the
// returned function runs: a test uses it to show what happens without it.
func WithoutClientCheck() (restore func()) {
	was := clientCheckInterval
	clientCheckInterval = 0
	return func() { clientCheckInterval = was }
}
