package harness

import (
	"fmt"

	"github.com/rehearse-dev/rehearse/results"
)

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
