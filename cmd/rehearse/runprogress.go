package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// heartbeatEvery is how long rehearse may stay silent while it waits: then
// it says what it is waiting for (tests shorten it).
var heartbeatEvery = 5 * time.Second

// progress is what `rehearse run` prints while it works, from several
// goroutines: its lines never interleave, it knows what is running, and a
// heartbeat says so when nothing was printed for heartbeatEvery. Quiet
// drops everything but what Result prints.
type progress struct {
	mu      sync.Mutex
	w       io.Writer
	quiet   bool
	last    time.Time            // when the last line was written
	running map[string]time.Time // scenarios under way, by name, since when
	waiting string               // what else is being waited for ("PostgreSQL to start")
	since   time.Time
}

func newProgress(w io.Writer, quiet bool) *progress {
	return &progress{w: w, quiet: quiet, last: time.Now(), running: map[string]time.Time{}}
}

// Write prints progress text (the provider's lines): nothing when quiet.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quiet {
		return len(b), nil
	}
	p.last = time.Now()
	return p.w.Write(b)
}

func (p *progress) printf(format string, args ...any) {
	fmt.Fprintf(p, format, args...)
}

// wait says what rehearse waits for outside scenarios ("" when done).
func (p *progress) wait(what string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiting, p.since = what, time.Now()
}

// start records that a scenario began, and says so unless quiet.
func (p *progress) start(name string) {
	p.mu.Lock()
	p.running[name] = time.Now()
	p.mu.Unlock()
	p.printf("  … %s\n", name)
}

// done records that a scenario ended and prints its result, always: print
// writes to w.
func (p *progress) done(name string, print func(w io.Writer)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, name)
	print(p.w)
	p.last = time.Now()
}

// heartbeat prints a line whenever heartbeatEvery passed without one, until
// stop is called.
func (p *progress) heartbeat() (stop func()) {
	if p.quiet {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(heartbeatEvery / 5)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				return
			case now := <-tick.C:
				p.beat(now)
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

func (p *progress) beat(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Sub(p.last) < heartbeatEvery {
		return
	}
	var line string
	switch {
	case len(p.running) > 0:
		names := slices.Sorted(maps.Keys(p.running))
		var parts []string
		for _, n := range names {
			parts = append(parts, fmt.Sprintf("%s (%s)", n, now.Sub(p.running[n]).Round(time.Second)))
		}
		line = "still running: " + strings.Join(parts, ", ")
	case p.waiting != "":
		line = fmt.Sprintf("still waiting for %s (%s)", p.waiting, now.Sub(p.since).Round(time.Second))
	default:
		return
	}
	fmt.Fprintf(p.w, "  … %s\n", line)
	p.last = now
}
