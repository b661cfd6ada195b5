package reinit

// WithoutServerGuards switches off the cancel request and the client check
// until the returned function runs: a test uses it to show what happens
// without them.
func WithoutServerGuards() (restore func()) {
	interval, send := clientCheckInterval, sendCancelRequest
	clientCheckInterval, sendCancelRequest = 0, false
	return func() { clientCheckInterval, sendCancelRequest = interval, send }
}
