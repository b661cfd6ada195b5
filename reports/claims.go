package reports

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// Verdict on one of the seed's claims, for one system and strategy.
type Verdict string

const (
	Held        Verdict = "held"
	Refuted     Verdict = "refuted"
	NotMeasured Verdict = "not measured"
)

// Claim is one statement of the seed document, judged on a run's measurements.
type Claim struct {
	ID       string  // stable key, e.g. "admin-new-id"
	Seed     string  // what the seed says, and where
	Verdict  Verdict // held, refuted or not measured
	Evidence string  // the measurements the verdict rests on
}

// seedClaims are the seed document's claims in the order the report lists
// them; each judge reads only the Result.
var seedClaims = []struct {
	id, seed string
	judge    func(m measures, f fmtr) (Verdict, string)
}{
	{"call-completes", `The API call completes and its caller stays authenticated during it (summary 1, conclusion 1)`, judgeCallCompletes},
	{"users-deleted-in-window", `Between reinit and restore every user except admin is gone (summary 2, issue 4: "count() = 1")`, judgeUsersDeleted},
	{"admin-new-id", `Reinit recreates admin with a new id ("id = 1 (NEW ID!)"), so the caller's session points to a deleted user (issue 1, root cause)`, judgeAdminNewID},
	{"auth-window", `There is a window in which auth is broken (summary 4)`, judgeAuthWindow},
	{"window-5-30s", `The window lasts about 5-30 seconds, depending on backup size (summary 4, timeline "T+2s-30s")`, judgeWindowLength},
	{"only-admin-default-password", `In the window only the new admin can log in, with the reinit's default password (timeline T+1s, conclusion 4)`, judgeOnlyAdmin},
	{"tokens-refused-after-reinit", `From the reinit on, old tokens are refused ("All JWT tokens invalid", timeline T+1s)`, judgeRefusedAfterReinit},
	{"old-token-401-after", `The old token gets 401 after the restore: all JWT tokens and sessions are invalidated, the caller's included (issue 3, test plan "Expected: 401")`, judgeOldToken401},
	{"no-impersonation", `An old token can only fail: the user it names is deleted, not replaced (issue 3)`, judgeNoImpersonation},
	{"users-restored", `After the restore all users are back (conclusion 5)`, judgeUsersRestored},
	{"passwords-restored", `Original passwords are restored and the reinit's default password stops working (issue 2, conclusion 6)`, judgePasswordsRestored},
	{"must-log-in-again", `Users must log in again, with their original credentials (conclusion 7)`, judgeMustLogIn},
	{"foreign-keys-intact", `After the restore foreign keys point to existing rows again (foreign key references)`, judgeForeignKeys},
}

// Claims judges the seed's claims on one scenario's measurements.
func Claims(r *results.Result) []Claim { return claims(r, fmtr{}) }

func claims(r *results.Result, f fmtr) []Claim {
	m := measure(r)
	out := make([]Claim, 0, len(seedClaims))
	for _, c := range seedClaims {
		v, ev := c.judge(m, f)
		if m.errored {
			v, ev = NotMeasured, notJudged(r, f)
		}
		out = append(out, Claim{ID: c.id, Seed: c.seed, Verdict: v, Evidence: ev})
	}
	return out
}

// notJudged says why no claim is judged on a scenario that errored.
func notJudged(r *results.Result, f fmtr) string {
	switch {
	case notPerformed(r.Facts.Outcome):
		return "not measured: " + notPerformedText(r, f)
	case r.Facts.Outcome == results.OperationFailedAfterReinit:
		return "not judged: the restore failed after the reinit committed, leaving the system with " + usersLeft(r)
	}
	return "the harness could not run the scenario"
}

func judgeCallCompletes(m measures, f fmtr) (Verdict, string) {
	r := m.r
	if r.Operation == results.Manual {
		return NotMeasured, "the manual path makes no API call"
	}
	if r.Facts.OperationStatus == 0 {
		return NotMeasured, "the call got no response"
	}
	if r.Facts.OperationStatus != 200 {
		return Refuted, fmt.Sprintf("restore_from_file answered %d: %s", r.Facts.OperationStatus, r.Facts.OperationBody)
	}
	ev := "restore_from_file answered 200"
	if at, ok := r.Phase(results.PhaseResponseSent); ok {
		ev += " at " + f.at(at)
	}
	return Held, ev + ", authorised by the caller's token"
}

func judgeUsersDeleted(m measures, f fmtr) (Verdict, string) {
	r := m.r
	switch {
	case m.windowUnknown:
		return NotMeasured, "the harness did not look into the window"
	case !m.window:
		return Refuted, "no in-between state is visible: reinit and restore commit in one transaction" + accessEvidence(m, f)
	}
	n, counted := m.usersInWindow()
	if !counted {
		return NotMeasured, "nobody counted the users in the window"
	}
	ev := fmt.Sprintf("%d of %d users existed between the reinit and restore commits (window %s)", n, r.Facts.UsersBefore, f.ms(r.Facts.WindowMS))
	if n == 1 {
		return Held, ev
	}
	return Refuted, ev
}

func accessEvidence(m measures, f fmtr) string {
	if len(m.access) == 0 {
		return ""
	}
	return "; " + m.outageText(f)
}

func judgeAdminNewID(m measures, f fmtr) (Verdict, string) {
	fc := m.r.Facts
	if fc.AdminIDBefore == 0 {
		return NotMeasured, admin(m.r) + "'s id before the operation is unknown"
	}
	after, when := fc.AdminIDAfterReinit, "after the reinit"
	if after == 0 {
		after, when = fc.AdminIDAfter, "after the operation (the state between reinit and restore is never visible)"
	}
	ev := fmt.Sprintf("%s's id: %d before, %d %s, %d at the end", admin(m.r), fc.AdminIDBefore, after, when, fc.AdminIDAfter)
	if after != fc.AdminIDBefore {
		return Held, ev
	}
	return Refuted, ev
}

func judgeAuthWindow(m measures, f fmtr) (Verdict, string) {
	if len(m.access) == 0 {
		return NotMeasured, "no probe with an original password or an old token"
	}
	switch {
	case m.longest != nil:
		return Held, m.outageText(f)
	case len(m.unsampled) > 0:
		return NotMeasured, "no probe failed, but the " + m.notSampledText(f)
	case m.windowUnknown:
		return NotMeasured, m.outageText(f) + ", but the window between the commits was not observed (" + m.resolution(f) + ")"
	}
	return Refuted, m.outageText(f)
}

func judgeWindowLength(m measures, f fmtr) (Verdict, string) {
	if len(m.access) == 0 {
		return NotMeasured, "no probe with an original password or an old token"
	}
	if m.longest == nil {
		return judgeUnfailedWindow(m, f)
	}
	open := m.longest.Longest().Open
	ev := fmt.Sprintf("the longest window was %s%s with %s (%s)", pick(open, "at least ", ""), f.ms(m.longest.LongestMS), dataSize(m.r), m.longest.Name)
	if open {
		ev += ", still failing when sampling stopped"
	}
	if m.window {
		ev += fmt.Sprintf("; reinit commit to restore commit: %s", f.ms(m.r.Facts.WindowMS))
	}
	switch {
	case m.longest.LongestMS > 30000:
		return Refuted, ev
	case open:
		return NotMeasured, ev + ": how long it lasted is unknown"
	case m.longest.LongestMS >= 5000:
		return Held, ev
	}
	return Refuted, ev
}

// judgeUnfailedWindow judges the window's length when no access probe
// failed: from the commits when they were seen, never from an unseen window.
func judgeUnfailedWindow(m measures, f fmtr) (Verdict, string) {
	switch {
	case m.windowUnknown:
		return NotMeasured, m.outageText(f) + ", and the window between the commits was not observed"
	case !m.window:
		return Refuted, "there is no window: " + m.outageText(f)
	}
	ev := fmt.Sprintf("%s; reinit commit to restore commit: %s", m.outageText(f), f.ms(m.r.Facts.WindowMS))
	if len(m.unsampled) > 0 {
		ev += " (" + m.notSampledText(f) + ")"
	}
	if m.r.Facts.WindowMS >= 5000 && m.r.Facts.WindowMS <= 30000 {
		return Held, ev
	}
	return Refuted, ev
}

// judgeOnlyAdmin rests on who existed in the window: the harness looked
// right after the reinit committed. Probe samples only support it: a login
// near either commit may see the other side of it, since a commit becomes
// visible before the engine records it.
func judgeOnlyAdmin(m measures, f fmtr) (Verdict, string) {
	r := m.r
	if !m.window {
		if m.noOutage() {
			return Refuted, "there is no window: " + m.outageText(f)
		}
		return NotMeasured, "no window was observed"
	}
	n, counted := m.usersInWindow()
	if !counted {
		return NotMeasured, "nobody counted the users in the window"
	}
	if n != 1 || r.Facts.AdminIDAfterReinit == 0 {
		return Refuted, fmt.Sprintf("%d of %d users existed in the window (%s's id there: %d)", n, r.Facts.UsersBefore, admin(r), r.Facts.AdminIDAfterReinit)
	}
	ev := fmt.Sprintf("%s was the only one of %d users in the window (id %d)", admin(r), r.Facts.UsersBefore, r.Facts.AdminIDAfterReinit)
	d := m.defaultLogin
	if d == nil {
		return Held, ev + "; no probe tried the default password"
	}
	if !d.Sampled() {
		return Held, ev + fmt.Sprintf("; the window of %s was not sampled by %s (one request takes %s)", f.ms(r.Facts.WindowMS), d.Name, f.ms(d.MedianMS))
	}
	ev += fmt.Sprintf("; %s with the default password, logins sent in the window: %s accepted, %s refused (%s)", admin(r), f.n(d.InWindowOK), f.n(d.InWindowBad), d.Name)
	if d.InWindowOK == 0 && d.InWindowBad > 0 {
		return Refuted, ev
	}
	return Held, ev
}

// judgeRefusedAfterReinit reads the samples of old-token probes (profile
// calls and refreshes: both are JWTs) sent after the reinit committed.
func judgeRefusedAfterReinit(m measures, f fmtr) (Verdict, string) {
	r := m.r
	reinit, ok := r.Phase(results.PhaseReinitCommitted)
	if !ok {
		return NotMeasured, "no reinit phase was recorded"
	}
	var held, refuted []string
	for _, p := range r.Probes {
		if p.Kind != results.ProbeProfile && p.Kind != results.ProbeRefresh {
			continue
		}
		what := "token " + p.Target
		if p.Kind == results.ProbeRefresh {
			what = "the refresh token of " + p.Target
		}
		accepted, refusedN, firstOK := 0, 0, 0.0
		for _, s := range r.Timeline.Samples {
			if s.Probe != p.Name || s.AtMS < reinit {
				continue
			}
			if s.OK {
				if accepted == 0 {
					firstOK = s.AtMS
				}
				accepted++
			} else {
				refusedN++
			}
		}
		switch {
		case accepted > 0:
			refuted = append(refuted, fmt.Sprintf("%s (probe %s) was accepted after the reinit, first at %s", what, p.Name, f.at(firstOK)))
		case refusedN > 0:
			held = append(held, fmt.Sprintf("%s (probe %s) was refused in all %s samples after the reinit", what, p.Name, f.n(refusedN)))
		}
	}
	if len(refuted) > 0 {
		return Refuted, strings.Join(refuted, "; ")
	}
	if len(held) > 0 {
		return Held, strings.Join(held, "; ")
	}
	return NotMeasured, "no probe calls profile or refreshes with an old token"
}

func judgeOldToken401(m measures, f fmtr) (Verdict, string) {
	if len(m.r.Tokens) == 0 {
		return NotMeasured, "no token was seeded"
	}
	if m.workAfter() || len(m.refreshAlive) > 0 {
		return Refuted, m.acceptedEvidence(f)
	}
	var parts []string
	for _, t := range m.r.Tokens {
		parts = append(parts, fmt.Sprintf("%s (%s, %s): %s before, %s after", t.Name, t.User, f.fingerprint(t.Fingerprint), status(t.Before), status(t.After)))
		if t.After != 401 {
			return Refuted, fmt.Sprintf("token %s got %s after the restore", t.Name, status(t.After))
		}
	}
	return Held, strings.Join(parts, "; ")
}

func judgeNoImpersonation(m measures, f fmtr) (Verdict, string) {
	if len(m.impostors) > 0 {
		return Refuted, strings.Join(m.impostors, "; ")
	}
	if len(m.r.Tokens) == 0 {
		return NotMeasured, "no token was seeded"
	}
	return Held, fmt.Sprintf("no old token authenticated as another user (%s checked after the operation)", plural(len(m.r.Tokens), "token", "tokens"))
}

func judgeUsersRestored(m measures, f fmtr) (Verdict, string) {
	v, ev := judgeInvariants(m.r, results.IDsUnchanged, results.CountsMatchBackup)
	return v, f.text(ev)
}

func judgeForeignKeys(m measures, f fmtr) (Verdict, string) {
	v, ev := judgeInvariants(m.r, results.ForeignKeys)
	return v, f.text(ev)
}

func judgeInvariants(r *results.Result, names ...results.Invariant) (Verdict, string) {
	v := Held
	var ev []string
	for _, n := range names {
		c, ok := r.Invariant(n)
		if !ok {
			return NotMeasured, string(n) + " was not measured"
		}
		if !c.OK {
			v = Refuted
		}
		ev = append(ev, c.Evidence)
	}
	return v, strings.Join(ev, "; ")
}

// judgePasswordsRestored rests on the hashes in the database and on the
// logins made after the operation: the original passwords must work, the
// reinit's default one must not.
func judgePasswordsRestored(m measures, f fmtr) (Verdict, string) {
	v, ev := judgeInvariants(m.r, results.HashesMatchBackup)
	ev = f.text(ev)
	if v == NotMeasured {
		return v, ev
	}
	for _, kind := range results.PasswordKinds() {
		logins := loginsAfter(m.r, kind)
		if len(logins.all) == 0 {
			continue
		}
		ev += "; " + logins.text()
		wrong := logins.refused // the original password must work
		if kind == results.PasswordDefault {
			wrong = logins.accepted // the reinit's default must not
		}
		if len(wrong) > 0 {
			v = Refuted
		}
	}
	return v, ev
}

func judgeMustLogIn(m measures, f fmtr) (Verdict, string) {
	if len(m.r.Tokens) == 0 {
		return NotMeasured, "no token was seeded"
	}
	if m.workAfter() || len(m.refreshAlive) > 0 {
		return Refuted, "no need to: " + m.acceptedEvidence(f)
	}
	refused := 0
	for _, t := range m.r.Tokens {
		if refused4xx(t.After) {
			refused++
		}
	}
	ev := fmt.Sprintf("old tokens refused after the operation: %d of %d", refused, len(m.r.Tokens))
	logins := loginsAfter(m.r, results.PasswordOriginal)
	if len(logins.refused) > 0 {
		return Refuted, ev + ", and logging in again fails: " + logins.text()
	}
	if len(logins.all) > 0 {
		ev += "; " + logins.text()
	}
	return Held, ev
}

// logins are the logins after the operation with one kind of password.
type logins struct {
	kind              results.PasswordKind
	all               []results.LoginCheck
	accepted, refused []string // "user: status"
}

func loginsAfter(r *results.Result, kind results.PasswordKind) logins {
	l := logins{kind: kind}
	for _, c := range r.Facts.LoginsAfter {
		if c.Password != kind {
			continue
		}
		l.all = append(l.all, c)
		if c.Status == 200 {
			l.accepted = append(l.accepted, c.User)
		} else {
			l.refused = append(l.refused, c.User+": "+status(c.Status))
		}
	}
	return l
}

// text says how the logins went against what the seed expects: the
// original password accepted, the reinit's default refused.
func (l logins) text() string {
	if l.kind == results.PasswordDefault {
		s := fmt.Sprintf("logins with the reinit's default password after the operation: %d of %d refused", len(l.refused), len(l.all))
		if len(l.accepted) > 0 {
			s += ", accepted (200): " + strings.Join(l.accepted, ", ")
		}
		return s
	}
	s := fmt.Sprintf("logins with the original password after the operation: %d of %d accepted (200)", len(l.accepted), len(l.all))
	if len(l.refused) > 0 {
		s += ", refused: " + strings.Join(l.refused, ", ")
	}
	return s
}

// admin names the account the reinit keeps.
func admin(r *results.Result) string {
	if r.Facts.Admin == "" {
		return "the admin"
	}
	return r.Facts.Admin
}
