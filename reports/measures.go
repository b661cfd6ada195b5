package reports

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// measures holds what the prose of a report (answers, claims,
// recommendation) is derived from, read once from a Result.
type measures struct {
	r       *results.Result
	errored bool
	// window: an in-between state was observable, i.e. the reinit committed
	// on its own and the harness looked into the system before the restore.
	window bool
	// windowUnknown: nobody could look, so whether a window existed is
	// unknown. Anything the results do not state as observed or absent is
	// unknown: a report never calls an unseen window atomic.
	windowUnknown bool
	// access are the probes of ordinary access, the ones whose failures are an
	// outage: logins with the original password, else calls with old tokens.
	access []results.ProbeSummary
	// longest is the access probe with the longest failing stretch; nil when
	// none failed.
	longest *results.ProbeSummary
	// samples and failures over the access probes.
	samples, failures int
	// defaultLogin is a probe logging in as the admin with the reinit's
	// default password, when the scenario has one.
	defaultLogin *results.ProbeSummary
	// workAfter are the seeded tokens accepted after the operation.
	workAfter []results.TokenFate
	// impostors describe old tokens that authenticated as another user.
	impostors []string
	broken    []results.InvariantCheck
}

func measure(r *results.Result) measures {
	m := measures{r: r, errored: r.Status == results.Errored}
	m.window = r.Facts.Window == results.WindowObserved
	m.windowUnknown = !m.window && r.Facts.Window != results.WindowNone
	var logins, profiles []results.ProbeSummary
	for _, p := range r.Probes {
		switch {
		case p.Kind == results.ProbeLogin && p.Password == results.PasswordDefault:
			if p.Target == r.Facts.Admin && m.defaultLogin == nil {
				m.defaultLogin = &p
			}
		case p.Kind == results.ProbeLogin:
			logins = append(logins, p)
		case p.Kind == results.ProbeProfile:
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
	for _, p := range r.Facts.PKReuse {
		if p.Kind == results.TokenAsOther {
			m.impostors = append(m.impostors, p.String())
		}
	}
	for _, c := range r.Invariants {
		if !c.OK {
			m.broken = append(m.broken, c)
		}
	}
	return m
}

// usersInWindow is how many users existed in the observed window; false
// when there was no window or nobody counted.
func (m measures) usersInWindow() (int, bool) {
	if !m.window || m.r.Facts.UsersInWindow == nil {
		return 0, false
	}
	return *m.r.Facts.UsersInWindow, true
}

// strategyText names the restore engine as the results state it; one the
// harness could not see is "not observed", never a default engine.
func strategyText(s results.Strategy) string {
	switch s {
	case results.TwoPhase, results.Atomic:
		return string(s)
	}
	return "engine not observed"
}

// engine names how the operation ran: "API call, two-phase".
func engine(r *results.Result) string {
	if r.Operation == results.Manual {
		if r.Strategy == results.TwoPhase || r.Strategy == results.Atomic {
			return "manual 3-step, " + string(r.Strategy) + " restore"
		}
		return "manual 3-step, restore engine not observed"
	}
	return "API call, " + strategyText(r.Strategy)
}

// system names the system under test, with its deliberate defects.
func system(r *results.Result) string {
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
func providerNote(r *results.Result) string {
	if r.Provider == "" {
		return ""
	}
	return ", PostgreSQL from provider " + r.Provider
}

// probeTarget says what a probe does, in words.
func probeTarget(p results.ProbeSummary) string {
	switch {
	case p.Kind == results.ProbeLogin && p.Password == results.PasswordDefault:
		return "log in as " + p.Target + " with the reinit's default password"
	case p.Kind == results.ProbeLogin:
		return "log in as " + p.Target + " with the original password"
	case p.Kind == results.ProbeProfile:
		return "profile with old token " + p.Target
	}
	return string(p.Kind) + " " + p.Target
}

// outageText describes the longest failing stretch of the access probes.
func (m measures) outageText(f fmtr) string {
	p := m.longest
	if p == nil {
		return fmt.Sprintf("none of %s failed (%s samples)", plural(len(m.access), "probe", "probes"), f.n(m.samples))
	}
	w := p.Longest()
	return fmt.Sprintf("%s failed for %s, from %s to %s (%s of %s samples failed, statuses %s)",
		p.Name, f.ms(p.LongestMS), f.at(w.StartMS), f.at(w.EndMS), f.n(p.Failures), f.n(p.Samples), statuses(w.Statuses))
}

// windowText says what was seen between the reinit and restore commits.
func (m measures) windowText(f fmtr) string {
	switch {
	case m.windowUnknown:
		return "The window between the reinit and restore commits was not observed: rehearse had no view of the system's database (give --dsn)."
	case !m.window:
		return "No window: the reinit and the restore commit together; nothing in between is visible."
	}
	n, counted := m.usersInWindow()
	if !counted {
		return fmt.Sprintf("Window between the reinit and restore commits: %s; the users in it were not counted.", f.ms(m.r.Facts.WindowMS))
	}
	return fmt.Sprintf("Window between the reinit and restore commits: %s; %d of %d users existed in it.", f.ms(m.r.Facts.WindowMS), n, m.r.Facts.UsersBefore)
}
