package harness

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/results"
)

// planOf parses a scenario from the body of its probes and expectations
// and plans it, with nothing but the file.
func planOf(t *testing.T, body string) *Plan {
	t.Helper()
	src := `fixture: edms-small
tokens:
  old: author01
operation:
  restore_from_file: {}
probes:
  - name: login
    login: author01
  - name: token
    profile: old
` + body
	s, err := Parse("judge.yaml", []byte(src))
	if err != nil {
		t.Fatalf("parse:\n%v", err)
	}
	p, err := NewPlan(s, Overrides{})
	if err != nil {
		t.Fatalf("plan: %v", err)
	}
	return p
}

// measurement builds a recorded result: the API call answered 200, the
// reinit committed at 10 ms and the restore at 40 ms, and the samples given
// as "probe@ms=status".
func measurement(samples ...string) *results.Result {
	users := 1
	r := &results.Result{
		Strategy: results.TwoPhase,
		Timeline: results.Timeline{EndMS: 60, Phases: []results.PhaseMark{
			{Phase: results.PhaseOperationStarted, AtMS: 0},
			{Phase: results.PhaseReinitCommitted, AtMS: 10},
			{Phase: results.PhaseRestoreCommitted, AtMS: 40},
			{Phase: results.PhaseOperationFinished, AtMS: 60},
		}},
		Tokens: []results.TokenFate{{Name: "old", User: "author01", Before: 200, After: 401}},
		Invariants: []results.InvariantCheck{
			{Name: results.ForeignKeys, OK: true, Evidence: "0 orphans"},
			{Name: results.Sequences, OK: false, Evidence: "1 behind"},
		},
		Facts: results.Facts{Admin: "admin", OperationStatus: 200, AdminIDBefore: 1, AdminIDAfterReinit: 1, AdminIDAfter: 1, UsersBefore: 7, UsersInWindow: &users,
			LoginsAfter: []results.LoginCheck{{User: "author01", Password: results.PasswordOriginal, Status: 200}, {User: "admin", Password: results.PasswordDefault, Status: 401}}},
	}
	for _, s := range samples {
		probe, rest, _ := strings.Cut(s, "@")
		at, status, _ := strings.Cut(rest, "=")
		at, took, _ := strings.Cut(at, "+") // "ms+took"
		var ms, tookMS float64
		var code int
		if _, err := fmtSscan(at, &ms); err != nil {
			panic(err)
		}
		if took != "" {
			if _, err := fmtSscan(took, &tookMS); err != nil {
				panic(err)
			}
		}
		if _, err := fmtSscan(status, &code); err != nil {
			panic(err)
		}
		r.Timeline.Samples = append(r.Timeline.Samples, results.Sample{Probe: probe, AtMS: ms, TookMS: tookMS, Status: code, OK: code == 200})
	}
	return r
}

// Judging is a pure function of a plan and recorded measurements: no
// database, no HTTP. Each check kind is shown passing and failing.
func TestJudgeRecordedMeasurements(t *testing.T) {
	outage := []string{"login@0=200", "login@12=401", "login@30=401", "login@45=200", "token@5=200", "token@20=401", "token@50=401"}
	cases := []struct {
		name    string
		expect  string
		samples []string
		edit    func(*results.Result)
		pass    bool
		measure string // part of Measured
	}{
		{"profile 401 as expected", "- profile: {token: old, status: 401}", nil, nil, true, "401"},
		{"profile: the old token works again", "- profile: {token: old, status: 401}", nil, func(r *results.Result) { r.Tokens[0].After, r.Tokens[0].AfterAs = 200, "author01" }, false, "authenticated as author01"},
		{"login with the original password", "- login: {user: author01, status: 200}", nil, nil, true, "200 for 1 user"},
		{"login refused after", "- login: {user: author01, status: 200}", nil, func(r *results.Result) { r.Facts.LoginsAfter[0].Status = 401 }, false, "author01: 401"},
		{"login never measured", "- login: {user: author01, status: 200}", nil, func(r *results.Result) { r.Facts.LoginsAfter = nil }, false, "not measured"},
		{"default password refused", "- login: {user: admin, password: default, status: 401}", nil, nil, true, "401"},
		{"window within bound", "- window: {probe: login, max: 50ms}", outage, nil, true, "33ms"},
		{"window too long", "- window: {probe: login, max: 20ms}", outage, nil, false, "33ms"},
		{"window never closed", "- window: {probe: token, max: 1s}", outage, nil, false, "still failing"},
		{"probe ever failed", "- probe: {name: login, ever_failed: true}", outage, nil, true, "2 of 4"},
		{"probe should not have failed", "- probe: {name: login, ever_failed: false}", outage, nil, false, "ever_failed: true"},
		{"during window: refused inside", "- during_window: {probe: login, succeeded: false}", outage, nil, true, "0 ok, 2 failed"},
		{"during window: no window seen", "- during_window: {probe: login, succeeded: false}", outage, func(r *results.Result) { r.Timeline.Phases = r.Timeline.Phases[:1] }, false, "no window"},
		{"invariant holds", "- invariant: foreign_keys", nil, nil, true, "0 orphans"},
		{"invariant broken", "- invariant: sequences", nil, nil, false, "1 behind"},
		{"invariant not measured", "- invariant: ids_unchanged", nil, nil, false, "not measured"},
		{"admin id kept", "- admin_id: {unchanged: true}", nil, nil, true, "id 1 before"},
		{"admin id changed", "- admin_id: {unchanged: true}", nil, func(r *results.Result) { r.Facts.AdminIDAfterReinit = 9 }, false, "9 after the reinit"},
		{"pk reuse detected", "- pk_reuse: {detected: true}", nil, func(r *results.Result) {
			r.Facts.PKReuse = []results.PKReuse{{Kind: results.IDRecycled, User: "mallory", Other: "author01", ID: 2}}
		}, true, "mallory got id 2"},
		{"pk reuse not detected", "- pk_reuse: {detected: true}", nil, nil, false, "detected: false"},
		{"no server error", "- server_errors: {max: 0}", outage, nil, true, "0"},
		{"latency within bound", "- latency: {probe: login, max: 50ms, median: 20ms}", []string{"login@0+10=200", "login@20+30=200", "login@-5+900=200"}, nil, true, "max 30ms"},
		{"a slow login is an outage though it answers 200", "- latency: {probe: login, max: 20ms}", []string{"login@0+10=200", "login@20+30=200"}, nil, false, "max 30ms"},
		{"latency with no sample during the operation", "- latency: {probe: login, p99: 1s}", []string{"login@-5+1=200"}, nil, false, "not measured"},
		{"a 500 before the operation counts", "- server_errors: {max: 0}", append([]string{"login@-20=500"}, outage...), nil, false, "1: first at T-20.0ms"},
		{"the call's own 502 counts", "- server_errors: {}", nil, func(r *results.Result) {
			r.Facts.ServerErrors = []results.ServerError{{Source: results.SourceOperation, Status: 502}}
		}, false, "1"},
		{"window not sampled is not 'no outage'", "- window: {probe: login, max: 1s}", []string{"login@0=200", "login@5=200", "login@50=200"}, nil, false, "not sampled by login"},
		{"probe that never looked into the window", "- probe: {name: login, ever_failed: false}", []string{"login@0=200", "login@50=200"}, nil, false, "not sampled"},
		{"during window: only straddling samples", "- during_window: {probe: login, succeeded: false}", []string{"login@5+10=401", "login@35+10=401"}, nil, false, "not sampled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := planOf(t, "expect:\n  "+c.expect+"\n")
			r := measurement(c.samples...)
			if c.edit != nil {
				c.edit(r)
			}
			derive(p, r)
			out := Judge(p, r)
			if len(out) != 2 || out[0].Kind != "operation" || !out[0].Pass {
				t.Fatalf("want the call's outcome (pass) and one more, got %+v", out)
			}
			o := out[1]
			if o.Pass != c.pass || !strings.Contains(o.Measured, c.measure) {
				t.Errorf("%s: pass=%t measured %q; want pass=%t, measured containing %q", o.Kind, o.Pass, o.Measured, c.pass, c.measure)
			}
			if o.Pos.Line == 0 || o.Pos.File != "judge.yaml" {
				t.Errorf("outcome has no position: %+v", o.Pos)
			}
		})
	}
}

// A refused API call fails its implicit check.
func TestJudgeRefusedCall(t *testing.T) {
	p := planOf(t, "expect:\n  - invariant: foreign_keys\n")
	r := measurement()
	r.Facts.OperationStatus, r.Facts.OperationBody = 400, "bad file"
	out := Judge(p, r)
	if out[0].Pass || !strings.Contains(out[0].Measured, "400: bad file") {
		t.Fatalf("the refused call passed: %+v", out[0])
	}
}

// The window is derived once, from typed phases: two-phase with both
// commits observed; atomic has none; a running system whose commits were
// not seen has an unobserved window and an unobserved strategy.
func TestDeriveWindow(t *testing.T) {
	p := planOf(t, "expect:\n  - probe: {name: login, ever_failed: false}\n")
	r := measurement("login@20=401", "login@45=200")
	derive(p, r)
	if r.Facts.Window != results.WindowObserved || r.Facts.WindowMS != 30 || r.Probes[0].InWindowBad != 1 {
		t.Errorf("two-phase: window %s %v ms, in-window failures %d", r.Facts.Window, r.Facts.WindowMS, r.Probes[0].InWindowBad)
	}
	atomic := measurement()
	atomic.Strategy = results.Atomic
	atomic.Timeline.Phases = []results.PhaseMark{{Phase: results.PhaseRestoreCommitted, AtMS: 30}}
	derive(p, atomic)
	if atomic.Facts.Window != results.WindowNone {
		t.Errorf("atomic: window %s, want none", atomic.Facts.Window)
	}
	p.Target = TargetHTTP
	unseen := measurement()
	unseen.Timeline.Phases = nil
	derive(p, unseen)
	if unseen.Facts.Window != results.WindowNotObserved || unseen.Strategy != results.StrategyNotObserved {
		t.Errorf("running system without commits: window %s, strategy %s", unseen.Facts.Window, unseen.Strategy)
	}
}

// A plan has every default resolved.
func TestPlanResolvesDefaults(t *testing.T) {
	p := planOf(t, "expect:\n  - login: {user: all, status: 200}\n")
	if p.Strategy != results.TwoPhase || p.Timeout.D() != DefaultTimeout || p.Probes[0].Every.D() != DefaultProbeInterval ||
		p.Call == nil || !p.Call.WithReinit || p.Call.Confirm != "RESTORE CLEAN" || p.System.Admin != "admin" || p.Lead.D() != 3*DefaultProbeInterval {
		t.Errorf("defaults not resolved: %+v", p)
	}
	if l := p.Checks[0].Check.(*ExpectLogin); l.Password != "original" {
		t.Errorf("login check password %q, want original", l.Password)
	}
	if got := len(loginsAfter(p)); got != len(p.Accounts) || got < 5 {
		t.Errorf("login all: %d logins after for %d accounts", got, len(p.Accounts))
	}
	b, err := p.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{p.Accounts[0].password, p.System.adminDefault} {
		if strings.Contains(string(b), `"`+secret+`"`) {
			t.Errorf("the plan's JSON shows a password")
		}
	}
}

func fmtSscan(s string, v any) (int, error) { return fmt.Sscan(s, v) }

// Only an operation that happened is judged: a refused call, one without a
// response, one that failed after its reinit committed, and one whose
// commits were not seen are told apart from the typed timeline.
func TestOperationOutcome(t *testing.T) {
	p := planOf(t, "expect:\n  - invariant: foreign_keys\n")
	phases := func(ps ...results.Phase) []results.PhaseMark {
		var out []results.PhaseMark
		for i, ph := range ps {
			out = append(out, results.PhaseMark{Phase: ph, AtMS: float64(i)})
		}
		return out
	}
	both := phases(results.PhaseReinitCommitted, results.PhaseRestoreCommitted)
	cases := []struct {
		name   string
		status int
		phases []results.PhaseMark
		watch  watchMode
		want   results.OperationOutcome
	}{
		{"embedded two-phase, both commits", 200, both, watchHooks, results.OperationCompleted},
		{"embedded two-phase, restore commit missing", 200, phases(results.PhaseReinitCommitted), watchHooks, results.OperationCommitsNotObserved},
		{"refused before anything", 400, nil, watchHooks, results.OperationRefused},
		{"500 after the reinit committed", 500, phases(results.PhaseReinitCommitted), watchTrigger, results.OperationFailedAfterReinit},
		{"no response", 0, nil, watchTrigger, results.OperationNoResponse},
		{"running system, trigger, nothing seen", 200, nil, watchTrigger, results.OperationCommitsNotObserved},
		{"running system, trigger, one transaction", 200, phases(results.PhaseCommittedTogether), watchTrigger, results.OperationCompleted},
		{"running system without database", 200, nil, watchNone, results.OperationCompleted},
		{"polling cannot see one transaction", 200, nil, watchPolling, results.OperationCompleted},
		{"polling saw the reinit but never the restore", 200, phases(results.PhaseReinitCommitted), watchPolling, results.OperationCommitsNotObserved},
	}
	for _, c := range cases {
		r := &results.Result{Facts: results.Facts{OperationStatus: c.status}, Timeline: results.Timeline{Phases: c.phases}}
		if got := operationOutcome(p, r, c.watch); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	r := &results.Result{Facts: results.Facts{OperationStatus: 400, OperationBody: "Invalid confirmation", Outcome: results.OperationRefused}}
	if err := operationError(r); err == nil || !strings.Contains(err.Error(), "not measured: the restore call was refused: 400 Invalid confirmation") {
		t.Errorf("refused: %v", err)
	}
	one := 1
	r = &results.Result{Facts: results.Facts{OperationStatus: 500, Outcome: results.OperationFailedAfterReinit, UsersBefore: 7, UsersAfter: &one}}
	if err := operationError(r); err == nil || !strings.Contains(err.Error(), "left with 1 of 7 users") {
		t.Errorf("failed after reinit: %v", err)
	}
}
