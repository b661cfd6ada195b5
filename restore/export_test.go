package restore

import (
	"runtime/metrics"
	"sync"
	"time"
)

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

// HeapPeak polls the live heap every so often until stopped and returns
// its peak.
func HeapPeak(every time.Duration) (stop func() uint64) {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			mu.Lock()
			peak = max(peak, sample[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// CommitUnknown and CommitStatus expose how a commit without an answer is
// judged and asked about again.
var (
	CommitUnknown = commitUnknown
	CommitStatus  = commitStatus
)

// ShortCommitStatusWait makes commitStatus give up after d until the
// returned function runs.
func ShortCommitStatusWait(d time.Duration) (restore func()) {
	was := commitStatusWait
	commitStatusWait = d
	return func() { commitStatusWait = was }
}
