package reports

import "github.com/rehearse-dev/rehearse/results"

// latencyTable is how long each probe's requests took before, during and
// after the operation (median / p99 / max, nearest rank), as the harness
// measured them; a phase without a request says so.
func latencyTable(r *results.Result, f fmtr) table {
	t := table{head: []string{"probe", "before the operation", "during the operation", "after the operation"}}
	for _, p := range r.Probes {
		t.rows = append(t.rows, cells(p.Name, latencyText(p.LatencyBefore, f), latencyText(p.LatencyDuring, f), latencyText(p.LatencyAfter, f)))
	}
	return t
}

// latencyText is "median / p99 / max (n requests)", or "not measured".
func latencyText(l results.Latency, f fmtr) string {
	if l.Samples == 0 {
		return "not measured: no request"
	}
	return f.ms(l.MedianMS) + " / " + f.ms(l.P99MS) + " / " + f.ms(l.MaxMS) + " (" + f.n(l.Samples) + " requests)"
}
