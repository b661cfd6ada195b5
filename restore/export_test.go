package restore

// WithoutClientCheck switches the server's client check off until the
// returned function runs: a test uses it to show what happens without it.
func WithoutClientCheck() (restore func()) {
	was := clientCheckInterval
	clientCheckInterval = 0
	return func() { clientCheckInterval = was }
}

// ClashAllHashes gives every unique value the same hash until the returned
// function runs: only the exact comparison tells values apart then.
func ClashAllHashes() (restore func()) {
	was := hashString
	hashString = func(string) uint64 { return 42 }
	return func() { hashString = was }
}
