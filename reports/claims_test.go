package reports

import (
	"regexp"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/results"
)

func claim(t *testing.T, r *results.Result, id string) Claim {
	t.Helper()
	for _, c := range Claims(r) {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no claim %q", id)
	return Claim{}
}

// What the measurements say about the seed's claims, for the seed's engine
// and for the atomic one.
func TestClaimsOfTheShippedScenarios(t *testing.T) {
	rf := passingRun(t)
	want := map[string]map[string]Verdict{
		"seed-flow-two-phase": {
			"call-completes": Held, "users-deleted-in-window": Held, "admin-new-id": Refuted,
			"auth-window": Held, "window-5-30s": Refuted, "only-admin-default-password": Held,
			"tokens-refused-after-reinit": Held, "old-token-401-after": Held, "no-impersonation": Held,
			"users-restored": Held, "passwords-restored": Held, "must-log-in-again": Held, "foreign-keys-intact": Held,
		},
		"seed-flow-atomic": {
			"users-deleted-in-window": Refuted, "admin-new-id": Refuted, "auth-window": Refuted,
			"window-5-30s": Refuted, "only-admin-default-password": Refuted, "old-token-401-after": Held,
			"must-log-in-again": Held,
		},
		"seed-doubtful-claims": {"admin-new-id": Refuted, "old-token-401-after": Refuted, "must-log-in-again": Refuted, "tokens-refused-after-reinit": Refuted},
		"pk-reuse":             {"no-impersonation": Refuted, "old-token-401-after": Refuted},
		"pk-reuse-revoked":     {"no-impersonation": Held, "old-token-401-after": Held},
		"seed-manual-3-step":   {"call-completes": NotMeasured, "auth-window": Held, "only-admin-default-password": Held},
	}
	for name, verdicts := range want {
		r := result(t, rf, name)
		for id, v := range verdicts {
			if c := claim(t, r, id); c.Verdict != v {
				t.Errorf("%s: claim %s: %s, want %s (evidence: %s)", name, id, c.Verdict, v, c.Evidence)
			}
		}
	}
	if c := manualSafer(rf, fmtr{}); c.Verdict != Refuted {
		t.Errorf("manual path safer: %s (%s), want refuted", c.Verdict, c.Evidence)
	}
}

// Every claim check can fail: changing the facts of a real result flips
// its verdict.
func TestClaimsFlipWhenFactsChange(t *testing.T) {
	rf := passingRun(t)
	cases := []struct {
		claim    string
		from, to Verdict
		change   func(r *results.Result)
	}{
		{"admin-new-id", Refuted, Held, func(r *results.Result) { r.Facts.AdminIDAfterReinit = 1 }},
		{"old-token-401-after", Held, Refuted, func(r *results.Result) { r.Tokens[1].After, r.Tokens[1].AfterAs = 200, r.Tokens[1].User }},
		{"must-log-in-again", Held, Refuted, func(r *results.Result) { r.Tokens[0].After = 200 }},
		{"no-impersonation", Held, Refuted, func(r *results.Result) { r.Tokens[0].After, r.Tokens[0].AfterAs = 200, "mallory" }},
		{"users-deleted-in-window", Held, Refuted, func(r *results.Result) { r.Facts.UsersInWindow = ptr(7) }},
		{"window-5-30s", Refuted, Held, func(r *results.Result) {
			for i := range r.Probes {
				if r.Probes[i].Name == "author01-login" {
					r.Probes[i].LongestMS = 12000
				}
			}
		}},
		{"auth-window", Held, Refuted, func(r *results.Result) {
			for i := range r.Probes {
				if r.Probes[i].Password != results.PasswordDefault {
					r.Probes[i].Failures, r.Probes[i].Windows, r.Probes[i].LongestMS = 0, nil, 0
				}
			}
		}},
		{"only-admin-default-password", Held, Refuted, func(r *results.Result) { r.Facts.UsersInWindow = ptr(3) }},
		{"only-admin-default-password", Held, Refuted, func(r *results.Result) {
			for i := range r.Probes {
				if r.Probes[i].Name == "admin-test123" {
					r.Probes[i].InWindowBad, r.Probes[i].InWindowOK = r.Probes[i].InWindowOK, 0
				}
			}
		}},
		{"tokens-refused-after-reinit", Held, Refuted, func(r *results.Result) {
			for i := range r.Timeline.Samples {
				if r.Timeline.Samples[i].Probe == "author-old-token" {
					r.Timeline.Samples[i].OK, r.Timeline.Samples[i].Status = true, 200
				}
			}
		}},
		{"call-completes", Held, Refuted, func(r *results.Result) { r.Facts.OperationStatus = 500 }},
		{"must-log-in-again", Held, Refuted, func(r *results.Result) { refuseLogin(r, results.PasswordOriginal, 401) }},
		{"passwords-restored", Held, Refuted, func(r *results.Result) { refuseLogin(r, results.PasswordOriginal, 401) }},
		{"passwords-restored", Held, Refuted, func(r *results.Result) { refuseLogin(r, results.PasswordDefault, 200) }},
		{"users-restored", Held, Refuted, func(r *results.Result) { breakInvariant(r, results.IDsUnchanged) }},
		{"passwords-restored", Held, Refuted, func(r *results.Result) { breakInvariant(r, results.HashesMatchBackup) }},
		{"foreign-keys-intact", Held, Refuted, func(r *results.Result) { breakInvariant(r, results.ForeignKeys) }},
	}
	for _, c := range cases {
		t.Run(c.claim, func(t *testing.T) {
			r := result(t, clone(t, rf), "seed-flow-two-phase")
			if got := claim(t, r, c.claim); got.Verdict != c.from {
				t.Fatalf("before the change: %s (%s), want %s", got.Verdict, got.Evidence, c.from)
			}
			c.change(r)
			if got := claim(t, r, c.claim); got.Verdict != c.to {
				t.Errorf("after the change: %s (%s), want %s", got.Verdict, got.Evidence, c.to)
			}
		})
	}
	// A scenario the harness could not run proves nothing.
	r := result(t, clone(t, rf), "seed-flow-two-phase")
	r.Status = results.Errored
	for _, c := range Claims(r) {
		if c.Verdict != NotMeasured {
			t.Errorf("errored scenario: claim %s is %s, want not measured", c.ID, c.Verdict)
		}
	}
}

func breakInvariant(r *results.Result, name results.Invariant) {
	for i := range r.Invariants {
		if r.Invariants[i].Name == name {
			r.Invariants[i].OK = false
		}
	}
}

// refuseLogin gives the first login after the operation with that kind of
// password another status.
func refuseLogin(r *results.Result, kind results.PasswordKind, status int) {
	for i := range r.Facts.LoginsAfter {
		if r.Facts.LoginsAfter[i].Password == kind {
			r.Facts.LoginsAfter[i].Status = status
			return
		}
	}
	panic("no login after the operation with the " + string(kind) + " password")
}

func ptr[T any](v T) *T { return &v }

// The acceptance check of issue 4: the Markdown reports of the two-phase and
// the atomic scenario, side by side, answer the seed's question correctly
// for each, with numbers.
func TestMarkdownAnswersTheSeedsQuestionPerEngine(t *testing.T) {
	rf := passingRun(t)
	md := string(render(t, "md", rf, Options{}))
	number := `\d+(\.\d+)? (ms|s)`
	for _, c := range []struct{ scenario, answer string }{
		{"seed-flow-two-phase", `^Yes, for ` + number + `: author01 could not log in between the reinit and restore commits; every old token is refused afterwards, so users must log in again; no old refresh token is accepted afterwards\.$`},
		{"seed-flow-atomic", `^No outage: none of 3 probes failed \(\d+ samples, one request takes at most ` + number + `\); every old token is refused afterwards, so users must log in again; no old refresh token is accepted afterwards\.$`},
	} {
		section := scenarioSection(t, md, c.scenario)
		m := regexp.MustCompile(`(?m)^\*\*Answer:\*\* (.*)$`).FindStringSubmatch(section)
		if m == nil || !regexp.MustCompile(c.answer).MatchString(m[1]) {
			t.Errorf("%s: answer %q does not match %s", c.scenario, m, c.answer)
		}
	}
	if !strings.Contains(md, "## Strategies side by side") {
		t.Fatal("no side-by-side comparison although the run holds several strategies")
	}
	row := regexp.MustCompile(`(?m)^\| longest outage \|.*$`).FindString(md)
	if !regexp.MustCompile(`\| none \|`).MatchString(row) || !regexp.MustCompile(number+` \(author01-login\)`).MatchString(row) {
		t.Errorf("the comparison does not show the two-phase outage next to the atomic none: %s", row)
	}
	overall := regexp.MustCompile(`(?m)^\*\*Answer:\*\* (.*)$`).FindStringSubmatch(md)[1]
	for _, want := range []string{"API call, two-phase: yes, up to ", "API call, atomic: no outage", "users must log in again"} {
		if !strings.Contains(overall, want) {
			t.Errorf("overall answer lacks %q: %s", want, overall)
		}
	}
}

func scenarioSection(t *testing.T, md, name string) string {
	t.Helper()
	start := strings.Index(md, "## Scenario "+name+"\n")
	if start < 0 {
		t.Fatalf("no section for %s", name)
	}
	rest := md[start+1:]
	if end := strings.Index(rest, "\n## "); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

// A rehearsal that could not look into the database (an HTTP target without
// a DSN) measured no window, no ids, no phases: those claims are "not
// measured", never refuted, and the answer does not speak of commits.
func TestClaimsWithoutDatabaseAreNotMeasured(t *testing.T) {
	r := result(t, passingRun(t), "seed-flow-two-phase")
	r.Target, r.Strategy, r.Invariants = "http", results.StrategyNotObserved, nil
	r.Facts = results.Facts{Admin: "admin", Window: results.WindowNotObserved, OperationStatus: 200}
	var phases []results.PhaseMark
	for _, p := range r.Timeline.Phases {
		if p.Phase == results.PhaseOperationStarted || p.Phase == results.PhaseOperationFinished {
			phases = append(phases, p)
		}
	}
	r.Timeline.Phases = phases
	for _, id := range []string{"users-deleted-in-window", "admin-new-id", "tokens-refused-after-reinit"} {
		if c := claim(t, r, id); c.Verdict != NotMeasured {
			t.Errorf("claim %s: %s (%s), want not measured", id, c.Verdict, c.Evidence)
		}
	}
	if a := answer(r, fmtr{}); strings.Contains(a, "commits") {
		t.Errorf("answer speaks of commits nobody saw: %s", a)
	}
	md := string(render(t, "md", &results.RunFile{Version: results.Version, Results: []*results.Result{r}}, Options{}))
	if !strings.Contains(md, "was not observed: rehearse had no view of the system's database") || strings.Contains(md, "commit together") || strings.Contains(md, "one transaction") {
		t.Errorf("the report calls an unobserved window atomic:\n%s", md)
	}
	if !strings.Contains(md, "API call, engine not observed") || strings.Contains(md, "API call, two-phase") || strings.Contains(md, "API call, atomic") {
		t.Errorf("the report names an engine nobody saw:\n%s", md)
	}
}
