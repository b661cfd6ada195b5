package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// measures holds what the prose of a report (answers, claims,
// recommendation) is derived from, read once from a Result.
type measures struct {
	r       *results.Result
	errored bool
	// notPerformed: the operation did not happen as it had to (refused,
	// unanswered, its commits unseen): nothing of it is measured.
	notPerformed bool
	// failedAfterReinit: the reinit committed, then the operation failed;
	// what the probes saw until then is measured, nothing is judged.
	failedAfterReinit bool
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
	// unsampled are the access probes without a sample wholly inside the
	// observed window: they cannot tell whether it broke access.
	unsampled []results.ProbeSummary
	// samples and failures over the access probes.
	samples, failures int
	// defaultLogin is a probe logging in as the admin with the reinit's
	// default password, when the scenario has one.
	defaultLogin *results.ProbeSummary
	// The seeded tokens accepted after the operation as their own user:
	// worksAgain, whose user was deleted in the window and came back;
	// keptWorking, whose user was there throughout; workedUnseen, whose
	// user nobody looked for in the window.
	worksAgain, keptWorking, workedUnseen []results.TokenFate
	// evenDeleted were accepted in the window too, while their user did
	// not exist (a stateless JWT): they never stopped working.
	evenDeleted []results.TokenFate
	// refreshAlive and refreshDead are the tokens whose refresh token was
	// accepted, or not, after the operation.
	refreshAlive, refreshDead []results.TokenFate
	// impostors describe old tokens that authenticated as another user.
	impostors []string
	broken    []results.InvariantCheck
}

func measure(r *results.Result) measures {
	m := measures{r: r, errored: r.Status == results.Errored}
	m.notPerformed = notPerformed(r.Facts.Outcome)
	m.failedAfterReinit = r.Facts.Outcome == results.OperationFailedAfterReinit
	m.window = r.Facts.Window == results.WindowObserved
	m.windowUnknown = !m.window && r.Facts.Window != results.WindowNone
	m.accessProbes()
	m.tokenFates()
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

// notPerformed reports whether an outcome says the operation did not
// happen: only "" (files of runs that stopped before it), completed and
// failed-after-reinit leave something of it to measure.
func notPerformed(o results.OperationOutcome) bool {
	switch o {
	case results.OperationRefused, results.OperationNoResponse, results.OperationCommitsNotObserved:
		return true
	}
	return false
}

// accessProbes picks the probes of ordinary access and their longest
// failing stretch.
func (m *measures) accessProbes() {
	var logins, profiles []results.ProbeSummary
	for _, p := range m.r.Probes {
		switch {
		case p.Kind == results.ProbeLogin && p.Password == results.PasswordDefault:
			if p.Target == m.r.Facts.Admin && m.defaultLogin == nil {
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
		if m.window && !p.Sampled() {
			m.unsampled = append(m.unsampled, p)
		}
	}
}

// tokenFates sorts the seeded tokens by what became of them.
func (m *measures) tokenFates() {
	for _, t := range m.r.Tokens {
		if t.Refresh != nil && t.Refresh.After == 200 {
			m.refreshAlive = append(m.refreshAlive, t)
		} else if t.Refresh != nil {
			m.refreshDead = append(m.refreshDead, t)
		}
		switch {
		case t.After != 200:
		case t.AfterAs != "" && t.AfterAs != t.User:
			m.impostors = append(m.impostors, fmt.Sprintf("after the operation, %s's old token %s authenticated as %s", t.User, t.Name, t.AfterAs))
		case t.UserInWindow == results.UserDeleted && acceptedThroughout(t):
			m.evenDeleted = append(m.evenDeleted, t)
		case t.UserInWindow == results.UserDeleted:
			m.worksAgain = append(m.worksAgain, t)
		case t.UserInWindow == results.UserPresent:
			m.keptWorking = append(m.keptWorking, t)
		default:
			m.workedUnseen = append(m.workedUnseen, t)
		}
	}
}

// workAfter reports whether any seeded token was accepted after the
// operation, as whoever.
func (m measures) workAfter() bool {
	return slices.ContainsFunc(m.r.Tokens, func(t results.TokenFate) bool { return t.After == 200 })
}

// noOutage reports whether the access probes saw the whole operation
// without a failure, each finer than the window it watched (or there was
// no window): only then may a report say "no outage".
func (m measures) noOutage() bool {
	return len(m.access) > 0 && m.longest == nil && len(m.unsampled) == 0 && !m.windowUnknown
}

// unseen reports whether no access probe failed, yet the probes could not
// see the window: not sampled, or not observed at all.
func (m measures) unseen() bool {
	return len(m.access) > 0 && m.longest == nil && !m.noOutage()
}

// noWindow says why there is no observed window to look into: the
// operation did not happen, nobody could look, or there was none (said as
// none, "no window" in most cells); false when the window was observed.
func (m measures) noWindow(none string) (string, bool) {
	switch {
	case m.notPerformed:
		return "not measured", true
	case m.windowUnknown:
		return "not observed", true
	case !m.window:
		return none, true
	}
	return "", false
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

// engine names how the operation ran: "API call, two-phase". An operation
// that did not happen ran no engine.
func engine(r *results.Result) string {
	strategy := r.Strategy
	if notPerformed(r.Facts.Outcome) {
		strategy = results.StrategyNotObserved
	}
	if r.Operation == results.Manual {
		if strategy == results.TwoPhase || strategy == results.Atomic {
			return "manual 3-step, " + string(strategy) + " restore"
		}
		return "manual 3-step, restore engine not observed"
	}
	return "API call, " + strategyText(strategy)
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

// embedded reports whether the scenario ran rehearse's own system, whose
// data is a fixture; a running system's data is its own.
func embedded(r *results.Result) bool { return r.Target == "" || r.Target == "embedded" }

// dataSize says how much data the operation restored: the embedded
// system's fixture, and the backup's real size when rehearse took it.
func dataSize(r *results.Result) string {
	var s string
	if embedded(r) && r.Fixture != "" {
		s = "fixture " + r.Fixture
	}
	switch b := r.Backup; {
	case b != nil && s != "":
		return fmt.Sprintf("%s (a backup of %d objects in %d models)", s, b.Objects, b.Models)
	case b != nil:
		return fmt.Sprintf("a backup of %d objects in %d models", b.Objects, b.Models)
	case s != "":
		return s
	}
	return "a backup of unmeasured size"
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
	case p.Kind == results.ProbeRefresh:
		return "refresh with old token " + p.Target
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
	if w.Open {
		return fmt.Sprintf("%s failed for at least %s, from %s, still failing when sampling stopped at %s (%s of %s samples failed, statuses %s)",
			p.Name, f.ms(p.LongestMS), f.at(w.StartMS), f.at(w.EndMS), f.n(p.Failures), f.n(p.Samples), statuses(w.Statuses))
	}
	return fmt.Sprintf("%s failed for %s, from %s to %s (%s of %s samples failed, statuses %s)",
		p.Name, f.ms(p.LongestMS), f.at(w.StartMS), f.at(w.EndMS), f.n(p.Failures), f.n(p.Samples), statuses(w.Statuses))
}

// notSampledText says which access probes could not see the window, with
// their resolution: "window of 50.0 ms not sampled by author01-login (one
// request takes 120.0 ms)".
func (m measures) notSampledText(f fmtr) string {
	var parts []string
	for _, p := range m.unsampled {
		parts = append(parts, fmt.Sprintf("%s (one request takes %s)", p.Name, f.ms(p.MedianMS)))
	}
	return fmt.Sprintf("window of %s not sampled by %s", f.ms(m.r.Facts.WindowMS), strings.Join(parts, ", "))
}

// resolution is the slowest request of the access probes: no stretch
// shorter than it can be seen.
func (m measures) resolution(f fmtr) string {
	var slowest float64
	for _, p := range m.access {
		slowest = max(slowest, p.MaxMS)
	}
	if slowest == 0 {
		return "request times not recorded"
	}
	return "one request takes at most " + f.ms(slowest)
}

// windowText says what was seen between the reinit and restore commits.
func (m measures) windowText(f fmtr) string {
	switch {
	case m.notPerformed:
		return "No window was measured: the operation did not happen."
	case m.failedAfterReinit:
		return "The reinit committed and the restore failed: no restore commit closed the window; the system was left as the reinit made it."
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
