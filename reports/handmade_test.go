package reports

import (
	"fmt"
	"time"

	"github.com/rehearse-dev/rehearse/results"
)

// handmadeRun is a results file built by hand, no database needed: one
// scenario for each shape a report must tell apart (a two-phase window, one
// transaction, the manual path, a running system nobody could look into,
// primary-key reuse without revocation, a broken invariant with a refused
// login, a renamed admin, a scenario that could not run).
func handmadeRun() *results.RunFile {
	return &results.RunFile{
		Version:  results.Version,
		Started:  time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC),
		Duration: 3 * time.Second,
		Results: []*results.Result{
			twoPhaseResult(), atomicResult(), manualResult(), unobservedResult(),
			pkReuseResult(), brokenResult(), defaultPasswordResult(), renamedAdminResult(), erroredResult(),
		},
	}
}

func mark(p results.Phase, at float64, note string) results.PhaseMark {
	return results.PhaseMark{Phase: p, AtMS: at, Note: note}
}

// samples are a probe's requests every 5 ms from `from` to `to`, failing
// with 401 between failFrom and failTo; profile calls that succeed
// authenticate as `as`.
func samples(probe string, from, to, failFrom, failTo float64, as string) []results.Sample {
	var out []results.Sample
	for at := from; at <= to; at += 5 {
		s := results.Sample{Probe: probe, AtMS: at, TookMS: 1.5, Status: 200, OK: true, AuthAs: as, Detail: "ok for " + probe}
		if at >= failFrom && at <= failTo {
			s.Status, s.OK, s.AuthAs, s.Detail = 401, false, "", "No active account found with the given credentials"
		}
		out = append(out, s)
	}
	return out
}

// probe summarizes a probe that failed from failFrom to failTo (no failure
// when failTo < failFrom).
func probe(name string, kind results.ProbeKind, target string, pw results.PasswordKind, failFrom, failTo float64, inOK, inBad int) results.ProbeSummary {
	p := results.ProbeSummary{Name: name, Kind: kind, Target: target, Password: pw, IntervalMS: 5, Samples: 20, InWindowOK: inOK, InWindowBad: inBad,
		MedianMS: 1.5, MaxMS: 1.5}
	if failTo >= failFrom {
		w := results.Window{StartMS: failFrom, EndMS: failTo + 5, LengthMS: failTo + 5 - failFrom, Failures: int((failTo-failFrom)/5) + 1, Statuses: []int{401}}
		p.Windows, p.Failures, p.LongestMS = []results.Window{w}, w.Failures, w.LengthMS
	}
	return p
}

func allInvariants(broken ...results.Invariant) []results.InvariantCheck {
	var out []results.InvariantCheck
	for _, n := range results.Invariants() {
		c := results.InvariantCheck{Name: n, OK: true, Evidence: fmt.Sprintf("%s: all 7 rows as in the backup", n)}
		for _, b := range broken {
			if b == n {
				c.OK, c.Evidence = false, fmt.Sprintf("%s: 2 orphan rows in document_version", n)
			}
		}
		out = append(out, c)
	}
	return out
}

// loginChecks: every user logs in with the original password (author01
// gets `author01` back), the admin with the reinit's default one.
func loginChecks(admin string, author01, adminDefault int) []results.LoginCheck {
	out := []results.LoginCheck{{User: admin, Password: results.PasswordOriginal, Status: 200}}
	for _, u := range []string{"author01", "author02", "reviewer01", "reviewer02", "approver01", "viewer01"} {
		status := 200
		if u == "author01" {
			status = author01
		}
		out = append(out, results.LoginCheck{User: u, Password: results.PasswordOriginal, Status: status})
	}
	return append(out, results.LoginCheck{User: admin, Password: results.PasswordDefault, Status: adminDefault})
}

func outcomes(file string, pass ...bool) []results.Outcome {
	texts := []struct{ kind, subject, expected, measured string }{
		{"operation", "restore_from_file response", "200", "200"},
		{"login", "login as all with the original password after the operation", "200", "200 for 7 user(s)"},
		{"login", "login as admin with the default password after the operation", "401", "401 for 1 user(s)"},
		{"window", "longest failing stretch of probe author01-login", "≤ 30s", "48.0 ms (10 of 20 samples failed)"},
	}
	var out []results.Outcome
	for i, p := range pass {
		t := texts[i%len(texts)]
		out = append(out, results.Outcome{
			Pos: results.Pos{File: file, Line: 20 + i, Col: 5}, Kind: t.kind, Subject: t.subject, Pass: p,
			Expected: t.expected, Measured: t.measured, Excerpt: "T+10.0 ms reinit committed\nT+60.0 ms restore committed",
		})
	}
	return out
}

// fate is a token whose user the reinit deleted, as the harness saw in
// the window.
func fate(name, user string, after int, as string) results.TokenFate {
	return results.TokenFate{Name: name, User: user, Fingerprint: results.Fingerprint(name + "-jwt"), Before: 200, During: []int{401}, After: after, AfterAs: as,
		UserInWindow: results.UserDeleted}
}

func baseResult(name string, strategy results.Strategy, op results.Operation) *results.Result {
	return &results.Result{
		Name: name, File: "scenarios/" + name + ".yaml", Description: "A scenario built by hand for " + name + ".",
		Fixture: "edms-small", Target: "embedded", Provider: "local", Strategy: strategy, Operation: op, AccountsFrom: "fixture edms-small",
		Status: results.Passed, Setup: 200 * time.Millisecond, Duration: 400 * time.Millisecond,
		Secrets: []string{"author01_pw", "admin_pw"},
	}
}

func twoPhaseResult() *results.Result {
	r := baseResult("two-phase", results.TwoPhase, results.RestoreFromFile)
	r.Timeline = results.Timeline{Start: time.Date(2026, 12, 1, 10, 0, 1, 0, time.UTC), EndMS: 63, Phases: []results.PhaseMark{
		mark(results.PhaseOperationStarted, 0, ""), mark(results.PhaseValidated, 5, ""), mark(results.PhaseReinitCommitted, 10, ""),
		mark(results.PhaseWindowAction, 12, "user mallory created with id 6"), mark(results.PhaseRestoreCommitted, 60, ""),
		mark(results.PhaseResponseSent, 62, ""), mark(results.PhaseOperationFinished, 63, ""),
	}}
	r.Timeline.Samples = append(samples("author01-login", -5, 90, 11, 58, ""), samples("author-old-token", -5, 90, 10, 90, "author01")...)
	r.Timeline.Samples = append(r.Timeline.Samples, samples("admin-test123", -5, 90, -10, 9, "")...)
	r.Probes = []results.ProbeSummary{
		probe("author01-login", results.ProbeLogin, "author01", results.PasswordOriginal, 11, 58, 0, 10),
		probe("admin-test123", results.ProbeLogin, "admin", results.PasswordDefault, -5, 9, 10, 0),
		probe("author-old-token", results.ProbeProfile, "author_old", "", 10, 90, 0, 11),
	}
	r.Tokens = []results.TokenFate{fate("author_old", "author01", 401, "")}
	r.Invariants = allInvariants()
	r.Expectations = outcomes(r.File, true, true, true, true)
	r.Facts = results.Facts{
		Admin: "admin", AdminIDBefore: 5, AdminIDAfterReinit: 5, AdminIDAfter: 5, UsersBefore: 7, UsersInWindow: ptr(1),
		Window: results.WindowObserved, WindowMS: 50, OperationStatus: 200, OperationBody: `{"status": "restored"}`,
		LoginsAfter: loginChecks("admin", 200, 401),
	}
	return r
}

func atomicResult() *results.Result {
	r := baseResult("atomic", results.Atomic, results.RestoreFromFile)
	r.Timeline = results.Timeline{EndMS: 40, Phases: []results.PhaseMark{
		mark(results.PhaseOperationStarted, 0, ""), mark(results.PhaseValidated, 5, ""),
		mark(results.PhaseCommittedTogether, 38, ""), mark(results.PhaseResponseSent, 39, ""), mark(results.PhaseOperationFinished, 40, ""),
	}}
	r.Timeline.Samples = samples("author01-login", -5, 60, 1, 0, "")
	r.Probes = []results.ProbeSummary{probe("author01-login", results.ProbeLogin, "author01", results.PasswordOriginal, 1, 0, 0, 0)}
	r.Tokens = []results.TokenFate{fate("admin_old", "admin", 401, ""), fate("author_old", "author01", 401, "")}
	for i := range r.Tokens {
		r.Tokens[i].UserInWindow = "" // no window to look into
	}
	r.Invariants = allInvariants()
	r.Expectations = outcomes(r.File, true, true, true)
	r.Facts = results.Facts{
		Admin: "admin", AdminIDBefore: 5, AdminIDAfter: 5, UsersBefore: 7, Window: results.WindowNone,
		OperationStatus: 200, LoginsAfter: loginChecks("admin", 200, 401),
	}
	return r
}

func manualResult() *results.Result {
	r := twoPhaseResult()
	r.Name, r.File, r.Operation = "manual", "scenarios/manual.yaml", results.Manual
	r.Probes = r.Probes[:2]
	r.Probes[0] = probe("author01-login", results.ProbeLogin, "author01", results.PasswordOriginal, 11, 178, 0, 30)
	r.Facts.OperationStatus, r.Facts.OperationBody, r.Facts.WindowMS = 0, "", 170
	r.Timeline.Phases = append(r.Timeline.Phases[:3], mark(results.PhaseRestoreCommitted, 180, ""), mark(results.PhaseOperationFinished, 181, ""))
	return r
}

func unobservedResult() *results.Result {
	r := baseResult("running-system", results.StrategyNotObserved, results.RestoreFromFile)
	r.Target, r.Provider = "http", ""
	r.Timeline = results.Timeline{EndMS: 70, Phases: []results.PhaseMark{
		mark(results.PhaseWatcher, -1, "no database to watch: give --dsn"), mark(results.PhaseOperationStarted, 0, ""),
		mark(results.PhaseResponseSent, 69, ""), mark(results.PhaseOperationFinished, 70, ""),
	}}
	r.Timeline.Samples = samples("author01-login", -5, 90, 20, 50, "")
	r.Probes = []results.ProbeSummary{probe("author01-login", results.ProbeLogin, "author01", results.PasswordOriginal, 20, 50, 0, 0)}
	r.Tokens = []results.TokenFate{fate("author_old", "author01", 401, "")}
	r.Tokens[0].UserInWindow = "" // nobody could look
	r.Expectations = outcomes(r.File, true, true)
	r.Facts = results.Facts{Admin: "admin", Window: results.WindowNotObserved, OperationStatus: 200, LoginsAfter: loginChecks("admin", 200, 401)}
	return r
}

func pkReuseResult() *results.Result {
	r := twoPhaseResult()
	r.Name, r.File, r.Defects = "pk-reuse", "scenarios/pk-reuse.yaml", []string{"no-revocation"}
	r.Probes, r.Timeline.Samples = nil, nil
	r.Tokens = []results.TokenFate{fate("author02_old", "author02", 200, "author02")}
	r.Facts.PKReuse = []results.PKReuse{
		{Kind: results.IDRecycled, User: "mallory", Other: "author02", ID: 6},
		{Kind: results.TokenAsOther, User: "author02", Other: "mallory", ID: 6, Token: "author02_old"},
		{Kind: results.RowOverwritten, User: "mallory", Other: "author02", ID: 6},
	}
	return r
}

func brokenResult() *results.Result {
	r := twoPhaseResult()
	r.Name, r.File, r.Status = "broken", "scenarios/broken.yaml", results.Failed
	r.Invariants = allInvariants(results.ForeignKeys)
	r.Expectations = outcomes(r.File, true, false, true, true)
	r.Facts.LoginsAfter = loginChecks("admin", 401, 200)
	r.Facts.UsersInWindow = ptr(3)
	return r
}

// defaultPasswordResult: after the restore the reinit's default password
// still lets the admin in, while every original password works.
func defaultPasswordResult() *results.Result {
	r := twoPhaseResult()
	r.Name, r.File, r.Status = "default-password-works", "scenarios/default-password-works.yaml", results.Failed
	r.Expectations = outcomes(r.File, true, true, false, true)
	r.Facts.LoginsAfter = loginChecks("admin", 200, 200)
	return r
}

// renamedAdminResult: the target file names its admin "root"; the default
// password lets root in nowhere in the window.
func renamedAdminResult() *results.Result {
	r := twoPhaseResult()
	r.Name, r.File = "renamed-admin", "scenarios/renamed-admin.yaml"
	r.Facts.Admin = "root"
	r.Facts.LoginsAfter = loginChecks("root", 200, 401)
	r.Probes[1] = probe("root-default", results.ProbeLogin, "root", results.PasswordDefault, 11, 58, 0, 10)
	r.Probes = append(r.Probes, probe("admin-default", results.ProbeLogin, "admin", results.PasswordDefault, -5, 9, 10, 0))
	return r
}

func erroredResult() *results.Result {
	r := baseResult("could-not-run", "", "")
	r.Status, r.Error = results.Errored, "start PostgreSQL: initdb: exit status 1"
	return r
}
