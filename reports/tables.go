package reports

import (
	"cmp"
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

// cell is a table cell; class marks verdicts for HTML's colours, href
// makes it a link in HTML.
type cell struct{ text, class, href string }

// The accessors are what the HTML template reads.
func (t table) Head() []string { return t.head }
func (t table) Rows() [][]cell { return t.rows }
func (c cell) Text() string    { return c.text }
func (c cell) Class() string   { return c.class }
func (c cell) Href() string    { return c.href }

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

// probeTable lists each probe's resolution, its samples before, during and
// after the operation, and its failing stretches.
func probeTable(r *results.Result, f fmtr) table {
	m := measure(r)
	t := table{head: []string{"probe", "what it does", "one request takes (median / max)", "samples before / during / after the operation",
		"failed before / during / after", "failing stretches: start → end (length)", "statuses", "between reinit and restore"}}
	for _, p := range r.Probes {
		c := countSamples(r, p)
		t.rows = append(t.rows, cells(p.Name, probeTarget(p), resolutionText(p, f), f.n(c.before)+" / "+f.n(p.Samples)+" / "+f.n(c.after),
			f.n(c.failedBefore)+" / "+f.n(p.Failures)+" / "+f.n(c.failedAfter), stretchesText(p, f), statuses(c.codes), m.inWindowText(p, f)))
	}
	return t
}

// sampleCounts are a probe's samples outside the operation (the harness's
// summary counts those sent while it ran) and the statuses of its failures.
type sampleCounts struct {
	before, after, failedBefore, failedAfter int
	codes                                    []int
}

func countSamples(r *results.Result, p results.ProbeSummary) sampleCounts {
	var c sampleCounts
	for _, w := range p.Windows {
		for _, s := range w.Statuses {
			if !slices.Contains(c.codes, s) {
				c.codes = append(c.codes, s)
			}
		}
	}
	for _, s := range r.Timeline.Samples {
		if s.Probe != p.Name {
			continue
		}
		if !s.OK && !slices.Contains(c.codes, s.Status) {
			c.codes = append(c.codes, s.Status)
		}
		switch {
		case s.AtMS < 0:
			c.before++
			c.failedBefore += boolInt(!s.OK)
		case s.AtMS > r.Timeline.EndMS:
			c.after++
			c.failedAfter += boolInt(!s.OK)
		}
	}
	return c
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// resolutionText is how long one request of the probe took.
func resolutionText(p results.ProbeSummary, f fmtr) string {
	if p.MedianMS == 0 && p.MaxMS == 0 {
		return "not recorded"
	}
	return f.ms(p.MedianMS) + " / " + f.ms(p.MaxMS)
}

// stretchesText lists a probe's failing stretches; one still going on when
// sampling stopped lasted at least its length.
func stretchesText(p results.ProbeSummary, f fmtr) string {
	var ws []string
	for _, w := range p.Windows {
		stretch := fmt.Sprintf("%s → %s (%s, %s failed)", f.at(w.StartMS), f.at(w.EndMS), f.ms(w.LengthMS), f.n(w.Failures))
		if w.Open {
			stretch = fmt.Sprintf("%s → still failing when sampling stopped at %s (at least %s, %s failed)", f.at(w.StartMS), f.at(w.EndMS), f.ms(w.LengthMS), f.n(w.Failures))
		}
		ws = append(ws, stretch)
	}
	switch {
	case len(ws) == 0:
		return "none"
	case f.normalize: // how many stretches a probe caught depends on timing
		return ws[0]
	}
	return strings.Join(ws, "; ")
}

// inWindowText is what a probe saw between the reinit and restore commits.
func (m measures) inWindowText(p results.ProbeSummary, f fmtr) string {
	if none, ok := m.noWindow("no window"); ok {
		return none
	}
	var s string
	switch {
	case !p.Sampled():
		s = fmt.Sprintf("not sampled: window of %s (one request takes %s)", f.ms(m.r.Facts.WindowMS), f.ms(p.MedianMS))
	default:
		s = fmt.Sprintf("%s ok, %s failed", f.n(p.InWindowOK), f.n(p.InWindowBad))
	}
	if p.Straddling > 0 && !f.normalize { // whether a request straddled a commit is timing
		s += fmt.Sprintf("; %d straddled a commit (not counted)", p.Straddling)
	}
	return s
}

// tokenTable follows every seeded token, access and refresh, through the
// operation.
func tokenTable(r *results.Result, f fmtr) table {
	m := measure(r)
	t := table{head: []string{"token", "user", "user in the window", "kind", "fingerprint", "before", "during the window", "after", "after, authenticated as", "what it means"}}
	for _, tk := range r.Tokens {
		present := "not observed"
		switch {
		case tk.UserInWindow != "":
			present = string(tk.UserInWindow)
		case !m.window && !m.windowUnknown:
			present = "no window"
		}
		as := "—"
		if tk.AfterAs != "" {
			as = tk.AfterAs
		}
		kind := "access"
		if k := kindOf(tk); k != results.TokenJWT {
			kind = kindLabel(k)
		}
		t.rows = append(t.rows, cells(tk.Name, tk.User, present, kind, f.fingerprint(tk.Fingerprint), status(tk.Before),
			m.duringText(probedBy(r, results.ProbeProfile, tk.Name), tk.During, f), status(tk.After), as, tokenFateWords(tk)))
		if kindOf(tk) != results.TokenJWT {
			continue // a session or a DRF token has no refresh token
		}
		rf := tk.Refresh
		if rf == nil {
			t.rows = append(t.rows, cells(tk.Name, tk.User, present, "refresh", "—", "not measured", "not measured", "not measured", "—", refreshFateWords(tk)))
			continue
		}
		t.rows = append(t.rows, cells(tk.Name, tk.User, present, "refresh", f.fingerprint(rf.Fingerprint), status(rf.Before),
			m.duringText(probedBy(r, results.ProbeRefresh, tk.Name), rf.During, f), status(rf.After), "—", refreshFateWords(tk)))
	}
	return t
}

// duringText is what a token's probes saw in the window.
func (m measures) duringText(probed bool, during []int, f fmtr) string {
	none, ok := m.noWindow("no window")
	switch {
	case !probed:
		return "not probed"
	case ok:
		return none
	case f.normalize: // whether a sample fell inside a window of milliseconds is timing
		return phStatuses
	case len(during) == 0:
		return "no sample in the window"
	}
	return statuses(during)
}

// probedBy reports whether a probe of kind followed the token.
func probedBy(r *results.Result, kind results.ProbeKind, token string) bool {
	for _, p := range r.Probes {
		if p.Kind == kind && p.Target == token {
			return true
		}
	}
	return false
}

// serverErrorTable lists every request that met a 5xx or no response.
func serverErrorTable(r *results.Result, f fmtr) table {
	t := table{head: []string{"at", "request", "status", "first line of the body"}}
	for _, e := range r.Facts.ServerErrors {
		t.rows = append(t.rows, []cell{{text: f.at(e.AtMS)}, {text: sourceWords(e)}, {text: status(e.Status), class: "fail"}, {text: f.quoted("", e.Body)}})
	}
	return t
}

// leftOutWords says why the backup engine left a table out, by its code,
// when the engine gave no sentence of its own.
var leftOutWords = map[string]string{
	"excluded_table": "excluded by rehearse",
	"no_primary_key": "no primary key: dumpdata names rows by theirs",
	"not_a_model":    "not a model: no content type names it",
	"django_default": "left out of portable dumps, as Django's docs advise",
	"excluded":       "excluded by the target file",
	"not_included":   "not among the models the target file includes",
	"owner_left_out": "many-to-many table of a model left out",
	"no_table":       "a content type without a table of its name",
}

// leftOutTable lists what the backup did not write, and why.
func leftOutTable(b *results.BackupFacts, f fmtr) table {
	t := table{head: []string{"table", "model", "why it was left out"}}
	for _, l := range b.LeftOut {
		why := cmp.Or(f.quoted("", l.Detail), leftOutWords[l.Reason], l.Reason)
		t.rows = append(t.rows, cells(l.Table, l.Model, why))
	}
	return t
}

// perModelTable is the size of each model of the backup.
func perModelTable(b *results.BackupFacts, f fmtr) table {
	t := table{head: []string{"model", "objects"}}
	for _, m := range b.PerModel {
		t.rows = append(t.rows, cells(m.Model, f.n(m.Rows)))
	}
	return t
}

// accountsText says whose accounts the scenario logged in as, from the
// typed record (the text of older results otherwise).
func accountsText(r *results.Result, f fmtr) string {
	a := r.Accounts
	switch {
	case a == nil && r.AccountsFrom == "":
		return "not recorded"
	case a == nil:
		return f.text(r.AccountsFrom)
	case a.Source == results.AccountsFixture:
		return fmt.Sprintf("%s users of fixture %s", f.n(a.Count), f.text(a.Fixture))
	case a.Source == results.AccountsScenario:
		return fmt.Sprintf("%s users listed under users: of %s", f.n(a.Count), f.text(a.File))
	}
	s := fmt.Sprintf("%s accounts rehearse created in the system's database before the backup (%s)", f.n(a.Count), f.text(strings.Join(a.Created, ", ")))
	if a.Staff != "" {
		s += "; " + f.text(a.Staff) + " (staff) made the restore call"
	}
	return s
}

// removalText says whether the accounts rehearse created were removed.
func removalText(a *results.AccountsFacts, f fmtr) string {
	rm := a.Removal
	switch {
	case rm == nil:
		return "Whether the accounts rehearse created were removed: not observed."
	case rm.Error != "":
		return "The accounts rehearse created could NOT be removed: " + f.text(rm.Error) + ". Delete them by hand."
	}
	s := fmt.Sprintf("Removed at the end: %s of the %s accounts rehearse created", f.n(rm.Removed), f.n(a.Count))
	var with []string
	for _, d := range rm.Deleted {
		with = append(with, fmt.Sprintf("%s rows of %s deleted", f.n(int(d.Rows)), f.text(d.Table)))
	}
	for _, d := range rm.Nulled {
		with = append(with, fmt.Sprintf("%s rows of %s set to NULL", f.n(int(d.Rows)), f.text(d.Table)))
	}
	if len(with) > 0 {
		s += ", with what referred to them (" + strings.Join(with, ", ") + ")"
	}
	return s + "."
}

// writtenText lists the rows the rehearsal's own requests wrote after the
// backup, which the row counts leave out; "" without any.
func writtenText(r *results.Result, f fmtr) string {
	var parts []string
	for _, w := range r.Facts.WrittenByRehearsal {
		parts = append(parts, fmt.Sprintf("%s: %s rows", w.Table, f.n(int(w.Rows))))
	}
	if len(parts) == 0 {
		return ""
	}
	return "Added after the backup, which does not hold them (by the rehearsal's own requests, such as the outstanding tokens of its logins, or by the operation itself, such as a reinit's blacklist entries), and so not counted as a mismatch: " +
		strings.Join(parts, ", ") + "."
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

// expectationTable lists a scenario's expectations, the failed ones first.
func expectationTable(r *results.Result, f fmtr) table {
	return outcomeTable(slices.SortedStableFunc(slices.Values(r.Expectations), func(a, b results.Outcome) int {
		return boolInt(a.Pass) - boolInt(b.Pass)
	}), f)
}

func outcomeTable(os []results.Outcome, f fmtr) table {
	t := table{head: []string{"where", "expectation", "expected", "measured", "verdict"}}
	for _, o := range os {
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
			case m.notPerformed || m.errored && !m.failedAfterReinit:
				return "not measured"
			case len(m.access) == 0:
				return "not probed"
			case m.longest != nil:
				return outage{probed: true, p: m.longest, who: r}.length(f) + " (" + m.longest.Name + ")"
			case len(m.unsampled) > 0:
				return "not measured: " + m.notSampledText(f)
			case m.windowUnknown:
				return "none seen (window not observed)"
			}
			return "none"
		}},
		{"failed samples", func(r *results.Result, m measures) string {
			if len(m.access) == 0 {
				return "—"
			}
			return f.n(m.failures) + " of " + f.n(m.samples)
		}},
		{"server errors", func(r *results.Result, m measures) string {
			switch n := len(r.Facts.ServerErrors); {
			case n > 0:
				return f.n(n)
			case m.errored && !m.notPerformed && !m.failedAfterReinit:
				return "not measured"
			}
			return "none"
		}},
	}
}

// windowMetrics: what was seen between the reinit and restore commits.
func windowMetrics(f fmtr) []metric {
	return []metric{
		{"reinit commit → restore commit", func(r *results.Result, m measures) string {
			if none, ok := m.noWindow("one transaction"); ok {
				return none
			}
			return f.ms(r.Facts.WindowMS)
		}},
		{"users visible in the window", func(r *results.Result, m measures) string {
			if none, ok := m.noWindow("never visible"); ok {
				return none
			}
			n, counted := m.usersInWindow()
			if !counted {
				return "not counted"
			}
			return fmt.Sprintf("%d of %d", n, r.Facts.UsersBefore)
		}},
		{"admin, default password, in the window", func(r *results.Result, m measures) string {
			none, ok := m.noWindow("no window")
			switch {
			case ok:
				return none
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
		{"admin id before → after reinit", func(r *results.Result, m measures) string {
			if m.notPerformed {
				return "not measured"
			}
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
		{"old refresh tokens after", func(r *results.Result, _ measures) string {
			var parts []string
			for _, t := range r.Tokens {
				if t.Refresh != nil {
					parts = append(parts, t.Name+": "+status(t.Refresh.After))
				}
			}
			if len(parts) == 0 {
				return "not measured"
			}
			return strings.Join(parts, ", ")
		}},
		{"invariants", func(r *results.Result, m measures) string {
			if m.errored {
				return "not judged"
			}
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
