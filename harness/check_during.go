package harness

import (
	"fmt"
	"strings"
	"time"

	"github.com/rehearse-dev/rehearse/results"
)

// The check kinds on what the run's requests met: a probe's failures
// (probe), its longest failing stretch (window) and request times (latency)
// during the operation, what it saw between the two commits
// (during_window), and the server errors of every request (server_errors).
// Check kinds live in the check_*.go of what they look at (check.go).

var _ = registerCheck[ExpectWindow]("window", "The longest failing stretch of a probe during the operation (the outage window).")

// ExpectWindow bounds the longest failing stretch of a probe.
type ExpectWindow struct {
	probeRef
	Max Duration `yaml:"max" json:"max,omitempty"`
	// The window must be at least this long (to assert that one exists).
	Min Duration `yaml:"min" json:"min,omitempty"`
}

func (e *ExpectWindow) validate(sc *scope) {
	sc.probe(e.Pos, e.Probe) // max: 0s (or no bounds) means no failure at all
	if e.Min > e.Max && e.Max != 0 {
		sc.bad(e.Pos, "min %s is larger than max %s", e.Min.D(), e.Max.D())
	}
}

func (e *ExpectWindow) judge(m *measured) results.Outcome {
	ps := m.probe(e.Probe)
	o := results.Outcome{Subject: "longest failing stretch of probe " + e.Probe, Expected: fmt.Sprintf("≤ %s", e.Max.D())}
	if e.Min > 0 {
		o.Expected = fmt.Sprintf("between %s and %s", e.Min.D(), e.Max.D())
	}
	longest := time.Duration(ps.LongestMS * float64(time.Millisecond))
	o.Pass = longest <= e.Max.D() && longest >= e.Min.D()
	if e.Max == 0 && e.Min == 0 {
		o.Pass = ps.Failures == 0
	}
	o.Measured = fmt.Sprintf("%s (%d of %d samples failed)", msStr(ps.LongestMS), ps.Failures, ps.Samples)
	if ps.Open() {
		// An outage still going on when sampling stopped has no length to
		// bound: it may never end.
		o.Pass = false
		o.Measured = fmt.Sprintf("at least %s and still failing when sampling stopped (%d of %d samples failed)", msStr(ps.LongestMS), ps.Failures, ps.Samples)
	}
	if ps.Failures == 0 && m.window() && !ps.Sampled() {
		// No failure seen, but no request of this probe fell inside the
		// window either: an outage there would have gone unseen.
		o.Pass, o.Measured = false, notSampled(m, ps)
	}
	o.Excerpt = excerpt(m.res.Timeline, ps)
	return o
}

// notSampled says that a probe saw nothing of the window, and why.
func notSampled(m *measured, ps results.ProbeSummary) string {
	return fmt.Sprintf("not measured: the window of %s was not sampled by %s (one request takes %s)", msStr(m.res.Facts.WindowMS), ps.Name, msStr(ps.MedianMS))
}

var _ = registerCheck[ExpectProbe]("probe", "Whether a probe ever failed during the operation.")

// ExpectProbe says whether a probe ever failed.
type ExpectProbe struct {
	located
	Name       string `yaml:"name" json:"name" required:"true"`
	EverFailed bool   `yaml:"ever_failed" json:"ever_failed" required:"true"`
}

func (e *ExpectProbe) validate(sc *scope) { sc.probe(e.Pos, e.Name) }

func (e *ExpectProbe) judge(m *measured) results.Outcome {
	ps := m.probe(e.Name)
	o := results.Outcome{
		Subject:  "whether probe " + e.Name + " ever failed during the operation",
		Expected: fmt.Sprintf("ever_failed: %t", e.EverFailed),
		Measured: fmt.Sprintf("ever_failed: %t (%d of %d samples failed)", ps.Failures > 0, ps.Failures, ps.Samples),
		Pass:     (ps.Failures > 0) == e.EverFailed,
		Excerpt:  excerpt(m.res.Timeline, ps),
	}
	if ps.Failures == 0 && m.window() && !ps.Sampled() {
		o.Pass, o.Measured = false, notSampled(m, ps)
	}
	return o
}

var _ = registerCheck[ExpectLatency]("latency", "How long a probe's requests took while the operation ran: a login that waits seconds for a lock answers 200 but is an outage to a user.")

// ExpectLatency bounds the request times of a probe's samples sent during
// the operation: the slowest (max), the 99th percentile (p99), the median.
type ExpectLatency struct {
	probeRef
	// The slowest request may take at most this long.
	Max Duration `yaml:"max" json:"max,omitempty"`
	// The 99th percentile (nearest rank) may be at most this long.
	P99 Duration `yaml:"p99" json:"p99,omitempty"`
	// The median may be at most this long.
	Median Duration `yaml:"median" json:"median,omitempty"`
}

func (e *ExpectLatency) validate(sc *scope) {
	sc.probe(e.Pos, e.Probe)
	if e.Max == 0 && e.P99 == 0 && e.Median == 0 {
		sc.bad(e.Pos, "latency: give at least one bound: max, p99 or median (e.g. max: 500ms)")
	}
}

func (e *ExpectLatency) judge(m *measured) results.Outcome {
	ps := m.probe(e.Probe)
	l := ps.LatencyDuring
	o := results.Outcome{Subject: "request time of probe " + e.Probe + " during the operation", Pass: true}
	var want, got []string
	bound := func(name string, limit Duration, ms float64) {
		if limit == 0 {
			return
		}
		want = append(want, fmt.Sprintf("%s ≤ %s", name, limit.D()))
		got = append(got, fmt.Sprintf("%s %s", name, msStr(ms)))
		if ms > float64(limit.D().Microseconds())/1000 {
			o.Pass = false
		}
	}
	bound("median", e.Median, l.MedianMS)
	bound("p99", e.P99, l.P99MS)
	bound("max", e.Max, l.MaxMS)
	o.Expected = strings.Join(want, ", ")
	o.Measured = strings.Join(got, ", ") + fmt.Sprintf(" (%d samples)", l.Samples)
	if l.Samples == 0 {
		o.Pass, o.Measured = false, "not measured: no sample of "+e.Probe+" was sent during the operation"
	}
	return o
}

var _ = registerCheck[ExpectDuring]("during_window", "What a probe saw while the window was open (after reinit committed, before restore committed).")

// ExpectDuring says whether a probe succeeded at least once inside the window.
type ExpectDuring struct {
	probeRef
	Succeeded bool `yaml:"succeeded" json:"succeeded" required:"true"`
}

func (e *ExpectDuring) validate(sc *scope) {
	sc.probe(e.Pos, e.Probe)
	if sc.atomicCall() {
		sc.bad(e.Pos, "during_window: the atomic strategy has no window to look into")
	}
}

func (e *ExpectDuring) needsDatabase() string {
	return "during_window (the window is seen in the database)"
}

func (e *ExpectDuring) judge(m *measured) results.Outcome {
	ps := m.probe(e.Probe)
	o := results.Outcome{Subject: "probe " + e.Probe + " between reinit and restore commits", Expected: fmt.Sprintf("succeeded: %t", e.Succeeded)}
	if !m.window() {
		o.Measured = "no window was observed (no reinit/restore phases)"
		return o
	}
	if !ps.Sampled() {
		o.Measured = notSampled(m, ps)
		o.Excerpt = excerpt(m.res.Timeline, ps)
		return o
	}
	o.Measured = fmt.Sprintf("succeeded: %t (%d ok, %d failed in the %s window)", ps.InWindowOK > 0, ps.InWindowOK, ps.InWindowBad, msStr(m.res.Facts.WindowMS))
	o.Pass = (ps.InWindowOK > 0) == e.Succeeded
	o.Excerpt = excerpt(m.res.Timeline, ps)
	if ps.Straddling > 0 {
		o.Excerpt += fmt.Sprintf("\n%d samples straddled a commit and were not counted", ps.Straddling)
	}
	return o
}

var _ = registerCheck[ExpectServerErrors]("server_errors", "How many requests may meet a server error (a 5xx status, or no response at all): probe samples before, during and after the operation, window actions, the operation call and the measurements after it.")

// ExpectServerErrors bounds the server errors of the whole run.
type ExpectServerErrors struct {
	located
	// At most this many (default 0).
	Max int `yaml:"max" json:"max,omitempty"`
}

func (e *ExpectServerErrors) validate(sc *scope) {
	if e.Max < 0 {
		sc.bad(e.Pos, "max must be 0 or more, got %d", e.Max)
	}
}

func (e *ExpectServerErrors) judge(m *measured) results.Outcome {
	errs := m.res.Facts.ServerErrors
	o := results.Outcome{Subject: "server errors (5xx or no response) in any request", Expected: fmt.Sprintf("at most %d", e.Max),
		Measured: fmt.Sprintf("%d", len(errs)), Pass: len(errs) <= e.Max}
	var lines []string
	for i, s := range errs {
		if i == 10 {
			lines = append(lines, fmt.Sprintf("... and %d more", len(errs)-10))
			break
		}
		lines = append(lines, fmt.Sprintf("T%+.1fms %s %s: %d %s", s.AtMS, s.Source, s.Name, s.Status, s.Body))
	}
	if len(errs) > 0 {
		o.Measured += ": first at T" + fmt.Sprintf("%+.1fms", errs[0].AtMS)
		o.Excerpt = strings.Join(lines, "\n")
	}
	return o
}
