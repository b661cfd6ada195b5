package harness

import (
	"fmt"

	"github.com/rehearse-dev/rehearse/results"
)

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
