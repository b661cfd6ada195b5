package harness

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

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
