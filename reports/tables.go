package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// table is what Markdown and HTML both render, so the two never disagree.
type table struct {
	head []string
	rows [][]cell
}

// cell is a table cell; class marks verdicts for HTML's colours.
type cell struct{ text, class string }

func cells(texts ...string) []cell {
	out := make([]cell, len(texts))
	for i, t := range texts {
		out[i] = cell{text: t}
	}
	return out
}

func verdictCell(v Verdict) cell {
	return cell{text: string(v), class: strings.ReplaceAll(string(v), " ", "-")}
}

func passCell(ok bool) cell {
	if ok {
		return cell{text: "pass", class: "pass"}
	}
	return cell{text: "FAIL", class: "fail"}
}

func statusCell(s results.Status) cell {
	return cell{text: string(s), class: map[results.Status]string{results.Passed: "pass", results.Failed: "fail", results.Errored: "error"}[s]}
}

// summaryTable has one row per scenario with its one-line answer.
func summaryTable(rf *results.RunFile, f fmtr) table {
	t := table{head: []string{"scenario", "engine", "system", "status", "answer"}}
	for _, r := range rf.Results {
		t.rows = append(t.rows, []cell{{text: r.Name}, {text: engine(r)}, {text: system(r)}, statusCell(r.Status), {text: answer(r, f)}})
	}
	return t
}

// phaseTable is the measured timeline of the operation.
func phaseTable(r *results.Result, f fmtr) table {
	t := table{head: []string{"at", "phase"}}
	for _, p := range r.Timeline.Phases {
		t.rows = append(t.rows, cells(f.at(p.AtMS), f.text(p.Text())))
	}
	return t
}

// probeTable lists each probe's outage windows.
func probeTable(r *results.Result, f fmtr) table {
	m := measure(r)
	t := table{head: []string{"probe", "what it does", "samples", "failed", "failing stretches: start → end (length)", "statuses", "between reinit and restore"}}
	for _, p := range r.Probes {
		var ws []string
		var codes []int
		for _, w := range p.Windows {
			stretch := fmt.Sprintf("%s → %s (%s, %s failed)", f.at(w.StartMS), f.at(w.EndMS), f.ms(w.LengthMS), f.n(w.Failures))
			if w.Open {
				stretch = fmt.Sprintf("%s → still failing when sampling stopped at %s (at least %s, %s failed)", f.at(w.StartMS), f.at(w.EndMS), f.ms(w.LengthMS), f.n(w.Failures))
			}
			ws = append(ws, stretch)
			for _, c := range w.Statuses {
				if !slices.Contains(codes, c) {
					codes = append(codes, c)
				}
			}
		}
		windows := "none"
		if len(ws) > 0 {
			windows = strings.Join(ws, "; ")
			if f.normalize { // how many stretches a probe caught depends on timing
				windows = ws[0]
			}
		}
		inWindow := "no window"
		if m.window {
			inWindow = fmt.Sprintf("%s ok, %s failed", f.n(p.InWindowOK), f.n(p.InWindowBad))
		}
		t.rows = append(t.rows, cells(p.Name, probeTarget(p), f.n(p.Samples), f.n(p.Failures), windows, statuses(codes), inWindow))
	}
	return t
}

// tokenTable follows every seeded token through the operation.
func tokenTable(r *results.Result, f fmtr) table {
	m := measure(r)
	t := table{head: []string{"token", "user", "fingerprint", "before", "during the window", "after", "after, authenticated as"}}
	for _, tk := range r.Tokens {
		during := "not probed"
		switch {
		case !probed(r, tk.Name):
		case !m.window:
			during = "no window"
		case f.normalize: // whether a sample fell inside a window of milliseconds is timing
			during = phStatuses
		case len(tk.During) == 0:
			during = "no sample in the window"
		default:
			during = statuses(tk.During)
		}
		as := "—"
		if tk.AfterAs != "" {
			as = tk.AfterAs
		}
		t.rows = append(t.rows, cells(tk.Name, tk.User, f.fingerprint(tk.Fingerprint), status(tk.Before), during, status(tk.After), as))
	}
	return t
}

func probed(r *results.Result, token string) bool {
	for _, p := range r.Probes {
		if p.Kind == results.ProbeProfile && p.Target == token {
			return true
		}
	}
	return false
}

func invariantTable(r *results.Result, f fmtr) table {
	t := table{head: []string{"invariant", "verdict", "evidence"}}
	for _, c := range r.Invariants {
		t.rows = append(t.rows, []cell{{text: string(c.Name)}, passCell(c.OK), {text: f.text(c.Evidence)}})
	}
	return t
}

func claimTable(cs []Claim) table {
	t := table{head: []string{"the seed says", "verdict", "evidence"}}
	for _, c := range cs {
		t.rows = append(t.rows, []cell{{text: c.Seed}, verdictCell(c.Verdict), {text: c.Evidence}})
	}
	return t
}

func expectationTable(r *results.Result, f fmtr) table {
	t := table{head: []string{"where", "expectation", "expected", "measured", "verdict"}}
	for _, o := range r.Expectations {
		t.rows = append(t.rows, []cell{{text: o.Pos.String()}, {text: o.Subject}, {text: o.Expected}, {text: f.text(o.Measured)}, passCell(o.Pass)})
	}
	return t
}

// metric is one row of the comparison: a measurement of each scenario.
type metric struct {
	name string
	of   func(r *results.Result, m measures) string
}

// comparisonTable puts the scenarios side by side, one column each.
func comparisonTable(rf *results.RunFile, f fmtr) table {
	t := table{head: []string{"measured"}}
	for _, r := range rf.Results {
		t.head = append(t.head, r.Name)
	}
	ms := make([]measures, len(rf.Results))
	for i, r := range rf.Results {
		ms[i] = measure(r)
	}
	metrics := append(append(outageMetrics(f), windowMetrics(f)...), stateMetrics(f)...)
	for _, mt := range metrics {
		row := []cell{{text: mt.name}}
		for i, r := range rf.Results {
			row = append(row, cell{text: mt.of(r, ms[i])})
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// outageMetrics: how the scenario ran and how long access failed.
func outageMetrics(f fmtr) []metric {
	return []metric{
		{"engine", func(r *results.Result, _ measures) string { return engine(r) }},
		{"system", func(r *results.Result, _ measures) string { return system(r) }},
		{"status", func(r *results.Result, _ measures) string { return string(r.Status) }},
		{"longest outage", func(r *results.Result, m measures) string {
			switch {
			case len(m.access) == 0:
				return "not probed"
			case m.longest == nil:
				return "none"
			}
			return f.ms(m.longest.LongestMS) + " (" + m.longest.Name + ")"
		}},
		{"failed samples", func(r *results.Result, m measures) string {
			if len(m.access) == 0 {
				return "—"
			}
			return f.n(m.failures) + " of " + f.n(m.samples)
		}},
	}
}

// windowMetrics: what was seen between the reinit and restore commits.
func windowMetrics(f fmtr) []metric {
	return []metric{
		{"reinit commit → restore commit", func(r *results.Result, m measures) string {
			if m.windowUnknown {
				return "not observed"
			}
			if !m.window {
				return "one transaction"
			}
			return f.ms(r.Facts.WindowMS)
		}},
		{"users visible in the window", func(r *results.Result, m measures) string {
			n, counted := m.usersInWindow()
			switch {
			case m.windowUnknown:
				return "not observed"
			case !m.window:
				return "never visible"
			case !counted:
				return "not counted"
			}
			return fmt.Sprintf("%d of %d", n, r.Facts.UsersBefore)
		}},
		{"admin, default password, in the window", func(r *results.Result, m measures) string {
			switch {
			case m.windowUnknown:
				return "not observed"
			case !m.window:
				return "no window"
			case m.defaultLogin == nil:
				return "not probed"
			case m.defaultLogin.InWindowOK > 0:
				return "accepted"
			}
			return "refused"
		}},
	}
}

// stateMetrics: the state after the operation and the seed's claims.
func stateMetrics(f fmtr) []metric {
	return []metric{
		{"admin id before → after reinit", func(r *results.Result, _ measures) string {
			after := r.Facts.AdminIDAfterReinit
			if after == 0 {
				after = r.Facts.AdminIDAfter
			}
			return fmt.Sprintf("%d → %d", r.Facts.AdminIDBefore, after)
		}},
		{"old tokens after", func(r *results.Result, _ measures) string {
			var parts []string
			for _, t := range r.Tokens {
				parts = append(parts, t.Name+": "+status(t.After))
			}
			if len(parts) == 0 {
				return "none seeded"
			}
			return strings.Join(parts, ", ")
		}},
		{"invariants", func(r *results.Result, m measures) string {
			s := fmt.Sprintf("%d of %d hold", len(r.Invariants)-len(m.broken), len(r.Invariants))
			for _, c := range m.broken {
				s += "; broken: " + string(c.Name)
			}
			return s
		}},
		{"primary-key reuse", func(r *results.Result, _ measures) string {
			if len(r.Facts.PKReuse) == 0 {
				return "none seen"
			}
			return "detected"
		}},
		{"seed's claims held / refuted", func(r *results.Result, _ measures) string {
			held, refuted := 0, 0
			for _, c := range claims(r, f) {
				switch c.Verdict {
				case Held:
					held++
				case Refuted:
					refuted++
				}
			}
			return fmt.Sprintf("%d / %d", held, refuted)
		}},
	}
}

// claimMatrix shows every claim's verdict per scenario.
func claimMatrix(rf *results.RunFile, f fmtr) table {
	t := table{head: []string{"claim"}}
	var all [][]Claim
	for _, r := range rf.Results {
		t.head = append(t.head, r.Name)
		all = append(all, claims(r, f))
	}
	for i, c := range seedClaims {
		row := []cell{{text: c.id}}
		for _, cs := range all {
			row = append(row, verdictCell(cs[i].Verdict))
		}
		t.rows = append(t.rows, row)
	}
	return t
}

// distinctEngines counts how the run's scenarios ran the operation.
func distinctEngines(rf *results.RunFile) int {
	names, _ := engines(rf.Results)
	return len(names)
}
