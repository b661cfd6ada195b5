package reports

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/restore"
)

// measures holds what the prose of a report (answers, claims,
// recommendation) is derived from, read once from a Result.
type measures struct {
	r       *harness.Result
	errored bool
	// window: an in-between state was observable, i.e. the reinit committed
	// on its own and the harness looked into the system before the restore.
	window bool
	// windowUnknown: nobody could look, so whether a window existed is unknown.
	windowUnknown bool
	// access are the probes of ordinary access, the ones whose failures are an
	// outage: logins with the original password, else calls with old tokens.
	access []harness.ProbeSummary
	// longest is the access probe with the longest failing stretch; nil when
	// none failed.
	longest *harness.ProbeSummary
	// samples and failures over the access probes.
	samples, failures int
	// defaultLogin is a probe logging in as admin with the reinit's default
	// password, when the scenario has one.
	defaultLogin *harness.ProbeSummary
	// workAfter are the seeded tokens accepted after the operation.
	workAfter []harness.TokenFate
	// impostors describe old tokens that authenticated as another user.
	impostors []string
	broken    []harness.InvariantCheck
}

func measure(r *harness.Result) measures {
	m := measures{r: r, errored: r.Status == harness.Errored}
	m.window = r.Facts.UsersInWindow >= 0
	// Without a look into the system (an HTTP target without its database)
	// a missing window means "not observed", not "atomic".
	m.windowUnknown = !m.window && r.Strategy != string(restore.Atomic)
	var logins, profiles []harness.ProbeSummary
	for _, p := range r.Probes {
		switch {
		case p.Kind == "login" && p.Password == "default":
			if p.Target == "admin" && m.defaultLogin == nil {
				p := p
				m.defaultLogin = &p
			}
		case p.Kind == "login":
			logins = append(logins, p)
		case p.Kind == "profile":
			profiles = append(profiles, p)
		}
	}
	m.access = logins
	if len(m.access) == 0 {
		m.access = profiles
	}
	for i, p := range m.access {
		m.samples += p.Samples
		m.failures += p.Failures
		if p.Failures > 0 && (m.longest == nil || p.LongestMS > m.longest.LongestMS) {
			m.longest = &m.access[i]
		}
	}
	for _, t := range r.Tokens {
		if t.After == 200 {
			m.workAfter = append(m.workAfter, t)
			if t.AfterAs != "" && t.AfterAs != t.User {
				m.impostors = append(m.impostors, fmt.Sprintf("after the operation, %s's old token %s authenticated as %s", t.User, t.Name, t.AfterAs))
			}
		}
	}
	for _, f := range r.Facts.PKReuse {
		if strings.Contains(f, "authenticated as") {
			m.impostors = append(m.impostors, f)
		}
	}
	for _, c := range r.Invariants {
		if !c.OK {
			m.broken = append(m.broken, c)
		}
	}
	return m
}

// engine names how the operation ran: "API call, two-phase".
func engine(r *harness.Result) string {
	s := r.Strategy
	if s == "" {
		s = string(restore.TwoPhase)
	}
	if r.Operation == "manual" {
		return "manual 3-step, " + s + " restore"
	}
	return "API call, " + s
}

// system names the system under test, with its deliberate defects.
func system(r *harness.Result) string {
	t := r.Target
	if t == "" {
		t = "embedded"
	}
	if len(r.Defects) > 0 {
		return t + " with defects " + strings.Join(r.Defects, ", ")
	}
	return t
}

// providerNote says where the scenario's database lived, when the results say.
func providerNote(r *harness.Result) string {
	if r.Provider == "" {
		return ""
	}
	return ", PostgreSQL from provider " + r.Provider
}

func phaseAt(r *harness.Result, name string) (float64, bool) {
	for _, p := range r.Timeline.Phases {
		if p.Name == name {
			return p.AtMS, true
		}
	}
	return 0, false
}

func invariant(r *harness.Result, name string) (harness.InvariantCheck, bool) {
	for _, c := range r.Invariants {
		if c.Name == name {
			return c, true
		}
	}
	return harness.InvariantCheck{}, false
}

// probeTarget says what a probe does, in words.
func probeTarget(p harness.ProbeSummary) string {
	switch {
	case p.Kind == "login" && p.Password == "default":
		return "log in as " + p.Target + " with the reinit's default password"
	case p.Kind == "login":
		return "log in as " + p.Target + " with the original password"
	case p.Kind == "profile":
		return "profile with old token " + p.Target
	}
	return p.Kind + " " + p.Target
}

// outageText describes the longest failing stretch of the access probes.
func (m measures) outageText(f fmtr) string {
	p := m.longest
	if p == nil {
		return fmt.Sprintf("none of %s failed (%s samples)", plural(len(m.access), "probe", "probes"), f.n(m.samples))
	}
	w := longestWindow(*p)
	return fmt.Sprintf("%s failed for %s, from %s to %s (%s of %s samples failed, statuses %s)",
		p.Name, f.ms(p.LongestMS), f.at(w.StartMS), f.at(w.EndMS), f.n(p.Failures), f.n(p.Samples), statuses(w.Statuses))
}

func longestWindow(p harness.ProbeSummary) harness.Window {
	var best harness.Window
	for _, w := range p.Windows {
		if w.LengthMS >= best.LengthMS {
			best = w
		}
	}
	return best
}

// noWindowText explains a missing window: atomic, or not observed.
func (m measures) noWindowText() string {
	if m.windowUnknown {
		return "The window between the reinit and restore commits was not observed: rehearse had no view of the system's database (give --dsn)."
	}
	return "No window: the reinit and the restore commit together; nothing in between is visible."
}
