package harness

import (
	"fmt"
	"time"

	"github.com/rehearse-dev/rehearse/results"
)

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
