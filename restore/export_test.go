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

// HeapPeak polls the heap's objects (live and not yet collected) every so
// often until stopped and returns their peak.
func HeapPeak(every time.Duration) (stop func() uint64) {
	peaks := HeapPeaks(every)
	return func() uint64 { objects, _ := peaks(); return objects }
}

// HeapPeaks is HeapPeak, with the peak of the live heap as the last
// garbage collection found it: what the engine holds, without the garbage
// the collector's pacing lets pile up (about as much again as the live
// heap of the whole process, a benchmark's own data included).
func HeapPeaks(every time.Duration) (stop func() (objects, live uint64)) {
	var mu sync.Mutex
	var peakObjects, peakLive uint64
	done := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	go func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			metrics.Read(sample)
			mu.Lock()
			peakObjects = max(peakObjects, sample[0].Value.Uint64())
			peakLive = max(peakLive, sample[1].Value.Uint64())
			mu.Unlock()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		mu.Lock()
		defer mu.Unlock()
		return peakObjects, peakLive
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

// Spills is how many unique indexes' values spilled to a file so far.
func Spills() int64 { return spills.Load() }

// SpillAt makes unique values spill to a temporary file beyond n per index
// until the returned function runs.
func SpillAt(n int) (restore func()) {
	was := spillAt
	spillAt = n
	return func() { spillAt = was }
}

// ShortCommitTimeout makes a commit without an answer give up after d
// until the returned function runs.
func ShortCommitTimeout(d time.Duration) (restore func()) {
	was := commitTimeout
	commitTimeout = d
	return func() { commitTimeout = was }
}
