package reports

import (
	"html"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/results"
)

// operationsRun is a results file built by hand with the shapes of issue
// 9: operations that did not happen (refused, unanswered, commits unseen),
// a restore that failed after its reinit committed, refresh tokens of a
// plain simplejwt app and of one that blacklists them, a window shorter
// than a login, and a server error before the operation.
func operationsRun() *results.RunFile {
	return &results.RunFile{
		Version: results.Version, Started: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Duration: 2 * time.Second,
		Results: []*results.Result{refusedResult(), noResponseResult(), commitsUnseenResult(), failedAfterReinitResult(),
			refreshPlainResult(), refreshBlacklistResult(), slowLoginResult()},
	}
}

// refusedResult: the app checked the upload before its reinit and answered
// 400; the probes ran, the tokens still work, nothing happened.
func refusedResult() *results.Result {
	r := twoPhaseResult()
	r.Name, r.File, r.Description = "refused", "scenarios/refused.yaml", "The app checks the upload before its reinit."
	r.Status, r.Error = results.Errored, "not measured: the restore call was refused: 400 Invalid confirmation"
	r.Timeline.Phases = []results.PhaseMark{mark(results.PhaseOperationStarted, 0, ""), mark(results.PhaseResponseSent, 4, ""), mark(results.PhaseOperationFinished, 5, "")}
	r.Timeline.EndMS = 5
	r.Timeline.Samples = samples("author01-login", -5, 30, 1, 0, "")
	r.Probes = []results.ProbeSummary{probe("author01-login", results.ProbeLogin, "author01", results.PasswordOriginal, 1, 0, 0, 0)}
	r.Tokens = []results.TokenFate{fate("author_old", "author01", 200, "author01")}
	r.Tokens[0].UserInWindow = ""
	r.Expectations = nil
	r.Facts = results.Facts{Outcome: results.OperationRefused, Admin: "admin", AdminIDBefore: 5, UsersBefore: 7, UsersAfter: ptr(7),
		Window: results.WindowNotObserved, OperationStatus: 400, OperationBody: "Invalid confirmation\nsee the docs"}
	return r
}

func noResponseResult() *results.Result {
	r := refusedResult()
	r.Name, r.File, r.Error = "no-response", "scenarios/no-response.yaml", "not measured: the restore call got no response"
	r.Facts.Outcome, r.Facts.OperationStatus, r.Facts.OperationBody = results.OperationNoResponse, 0, `Post "http://app/api/restore/": EOF`
	r.Facts.ServerErrors = []results.ServerError{{Source: results.SourceOperation, Name: "restore_from_file", AtMS: 4, Body: r.Facts.OperationBody}}
	return r
}

// commitsUnseenResult: the call answered 200, the watcher saw the reinit
// commit and never the restore's.
func commitsUnseenResult() *results.Result {
	r := refusedResult()
	r.Name, r.File, r.Error = "commits-unseen", "scenarios/commits-unseen.yaml", "not measured: the restore's commit was not observed"
	r.Facts.Outcome, r.Facts.OperationStatus, r.Facts.OperationBody = results.OperationCommitsNotObserved, 200, ""
	r.Timeline.Phases = append(r.Timeline.Phases[:1], mark(results.PhaseReinitCommitted, 2, ""), mark(results.PhaseRestoreNotObserved, 4, ""), r.Timeline.Phases[1])
	r.Facts.UsersAfter = nil
	return r
}

// failedAfterReinitResult is the running Django app of issue 9: its
// loaddata failed after the reinit committed, the app answered 500 and was
// left with admin alone; author01's logins never came back while sampled,
// admin's old token kept working.
func failedAfterReinitResult() *results.Result {
	r := baseResult("failed-after-reinit", results.StrategyNotObserved, results.RestoreFromFile)
	r.Target, r.Provider, r.Fixture = "http", "", ""
	r.AccountsFrom = "accounts rehearse created (rehearse_probe_1 ... rehearse_probe_3)"
	r.Backup = &results.BackupFacts{Objects: 1234, Models: 17, LeftOut: []results.LeftOut{
		{Table: "django_migrations", Reason: "not_a_model", Detail: "no model: Django's record of applied migrations"},
		{Table: "django_content_type", Model: "contenttypes.contenttype", Reason: "django_default"},
	}}
	r.Status, r.Error = results.Errored, "the restore failed after the reinit committed: restore_from_file answered 500; left with 1 of 7 users"
	r.Timeline = results.Timeline{EndMS: 301, Phases: []results.PhaseMark{
		mark(results.PhaseWatcher, -1, "trigger on the users table"), mark(results.PhaseOperationStarted, 0, ""),
		mark(results.PhaseReinitCommitted, 40, ""), mark(results.PhaseResponseSent, 300, ""), mark(results.PhaseOperationFinished, 301, ""),
	}}
	r.Timeline.Samples = append(samples("author01-login", -5, 330, 45, 330, ""), samples("admin-token", -5, 330, 1, 0, "admin")...)
	login := probe("author01-login", results.ProbeLogin, "author01", results.PasswordOriginal, 45, 330, 0, 0)
	login.Windows[0].EndMS, login.Windows[0].LengthMS, login.Windows[0].Open = 330, 285, true
	login.LongestMS = 285
	r.Probes = []results.ProbeSummary{login, probe("admin-token", results.ProbeProfile, "admin_old", "", 1, 0, 0, 0)}
	admin := fate("admin_old", "admin", 200, "admin")
	admin.UserInWindow, admin.During = results.UserPresent, []int{200}
	r.Tokens = []results.TokenFate{admin, fate("author_old", "author01", 401, "")}
	body := "LookupError: No installed app with label 'django'.\nTraceback (most recent call last):"
	r.Facts = results.Facts{Outcome: results.OperationFailedAfterReinit, Admin: "admin", UsersBefore: 7, UsersAfter: ptr(1),
		Window: results.WindowNotObserved, OperationStatus: 500, OperationBody: body,
		ServerErrors: []results.ServerError{{Source: results.SourceOperation, Name: "restore_from_file", AtMS: 300, Status: 500, Body: body}}}
	return r
}

// refreshPlainResult is plain simplejwt: the old access token works again
// after the restore, its refresh token worked throughout, even while its
// user did not exist; admin's token kept working. A login in the lead met
// a 500 (an IntegrityError on the outstanding-token table).
func refreshPlainResult() *results.Result {
	r := twoPhaseResult()
	r.Name, r.File = "refresh-plain", "scenarios/refresh-plain.yaml"
	author := fate("author_old", "author01", 200, "author01")
	author.Refresh = &results.RefreshFate{Fingerprint: results.Fingerprint("author_old-refresh"), Before: 200, During: []int{200}, After: 200}
	admin := fate("admin_old", "admin", 200, "admin")
	admin.UserInWindow, admin.During = results.UserPresent, []int{200}
	admin.Refresh = &results.RefreshFate{Fingerprint: results.Fingerprint("admin_old-refresh"), Before: 200, During: []int{200}, After: 200}
	r.Tokens = []results.TokenFate{author, admin}
	r.Probes = append(r.Probes, probe("author-refresh", results.ProbeRefresh, "author_old", "", 1, 0, 3, 0))
	r.Timeline.Samples = append(r.Timeline.Samples, samples("author-refresh", -5, 90, 1, 0, "")...)
	body := `IntegrityError: insert or update on table "token_blacklist_outstandingtoken" violates foreign key constraint`
	r.Timeline.Samples = append(r.Timeline.Samples, results.Sample{Probe: "author01-login", AtMS: -3, TookMS: 2, Status: 500, Detail: body})
	r.Facts.ServerErrors = []results.ServerError{{Source: results.SourceProbe, Name: "author01-login", AtMS: -3, Status: 500, Body: body}}
	return r
}

// refreshBlacklistResult: the reinit blacklisted every outstanding refresh
// token; access and refresh tokens stay dead.
func refreshBlacklistResult() *results.Result {
	r := twoPhaseResult()
	r.Name, r.File = "refresh-blacklist", "scenarios/refresh-blacklist.yaml"
	r.Tokens[0].Refresh = &results.RefreshFate{Fingerprint: results.Fingerprint("author_old-refresh"), Before: 200, During: []int{401}, After: 401}
	r.Probes = append(r.Probes, probe("author-refresh", results.ProbeRefresh, "author_old", "", 10, 90, 0, 8))
	r.Timeline.Samples = append(r.Timeline.Samples, samples("author-refresh", -5, 90, 10, 90, "")...)
	r.Facts.WrittenByRehearsal = []results.TableRows{{Table: "token_blacklist_outstandingtoken", Rows: 12}}
	return r
}

// slowLoginResult: a login takes 120 ms (PBKDF2), the window 50 ms: no
// login sample fell inside it, while the old token's probe, fast, was
// refused there.
func slowLoginResult() *results.Result {
	r := twoPhaseResult()
	r.Name, r.File = "slow-login", "scenarios/slow-login.yaml"
	login := probe("author01-login", results.ProbeLogin, "author01", results.PasswordOriginal, 1, 0, 0, 0)
	login.MedianMS, login.MaxMS, login.Straddling, login.Samples = 120, 150, 1, 3
	r.Probes = []results.ProbeSummary{login, probe("author-old-token", results.ProbeProfile, "author_old", "", 10, 90, 0, 11)}
	r.Timeline.Samples = []results.Sample{
		{Probe: "author01-login", AtMS: -100, TookMS: 120, Status: 200, OK: true}, {Probe: "author01-login", AtMS: 20, TookMS: 130, Status: 200, OK: true},
		{Probe: "author01-login", AtMS: 150, TookMS: 120, Status: 200, OK: true},
	}
	r.Timeline.Samples = append(r.Timeline.Samples, samples("author-old-token", -5, 90, 10, 90, "author01")...)
	return r
}

// mustContain fails the test for each of wants that text lacks.
func mustContain(t *testing.T, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("missing %q in:\n%s", w, text)
		}
	}
}

// answers is every report's answer for r, alone in its run: the Markdown
// and HTML answers of its section, the JUnit system-out.
func answers(t *testing.T, r *results.Result) map[string]string {
	t.Helper()
	rf := &results.RunFile{Version: results.Version, Results: []*results.Result{r}}
	out := map[string]string{}
	md := string(render(t, "md", rf, Options{}))
	if m := regexp.MustCompile(`(?m)^\*\*Answer:\*\* (.*)$`).FindAllStringSubmatch(md, -1); len(m) == 2 {
		out["md"] = m[1][1]
	}
	page := string(render(t, "html", rf, Options{}))
	if m := regexp.MustCompile(`<p class="answer"><strong>Answer:</strong> (.*)</p>`).FindAllStringSubmatch(page, -1); len(m) == 1 {
		out["html"] = html.UnescapeString(m[0][1])
	}
	junit := string(render(t, "junit", rf, Options{}))
	if m := regexp.MustCompile(`(?m)^answer: (.*)$`).FindStringSubmatch(junit); m != nil {
		out["junit"] = html.UnescapeString(m[1])
	}
	if len(out) != 3 {
		t.Fatalf("answers not found in every format: %q", out)
	}
	return out
}

// An operation that did not happen is not measured, in every report: the
// answer says why from the typed status and body, no claim is judged, no
// engine named, no invariant passes. Once the same results say the
// operation completed, all of it is judged again.
func TestOperationNotPerformedIsNotMeasured(t *testing.T) {
	for _, c := range []struct {
		r    *results.Result
		want string
	}{
		{refusedResult(), "Not measured: the restore call was refused: 400 Invalid confirmation; users 7 → 7."},
		{noResponseResult(), `Not measured: the restore call got no response: Post "http://app/api/restore/": EOF; users 7 → 7; the server failed: 1 request got no response, first at T+4.0 ms: Post "http://app/api/restore/": EOF.`},
		{commitsUnseenResult(), "Not measured: the restore call answered 200, but the restore's commit was not observed after the reinit committed."},
	} {
		c.r.Error = "reworded by the harness"
		for format, a := range answers(t, c.r) {
			if a != c.want {
				t.Errorf("%s, %s: answer %q, want %q", c.r.Name, format, a, c.want)
			}
		}
		for _, cl := range Claims(c.r) {
			if cl.Verdict != NotMeasured || !strings.HasPrefix(cl.Evidence, "not measured: the restore call") {
				t.Errorf("%s: claim %s %s (%s), want not measured, saying why", c.r.Name, cl.ID, cl.Verdict, cl.Evidence)
			}
		}
		md := string(render(t, "md", &results.RunFile{Results: []*results.Result{c.r}}, Options{}))
		section := scenarioSection(t, md, c.r.Name)
		for _, bad := range []string{"two-phase", "atomic", "| pass |", "held", "refuted"} {
			if strings.Contains(section, bad) {
				t.Errorf("%s: the report of an operation that did not happen says %q:\n%s", c.r.Name, bad, section)
			}
		}
		c.r.Status, c.r.Facts.Outcome = results.Passed, results.OperationCompleted
		if a := answer(c.r, fmtr{}); strings.Contains(a, "Not measured") {
			t.Errorf("%s, completed: answer %q still says not measured", c.r.Name, a)
		}
		if e := engine(c.r); e != "API call, two-phase" {
			t.Errorf("%s, completed: engine %q", c.r.Name, e)
		}
	}
}

// A restore that failed after its reinit committed leads every answer with
// that and with what the system was left with, then says what the probes
// saw: an outage that never ended lasted "at least", still failing.
func TestFailedAfterReinitLeads(t *testing.T) {
	r := failedAfterReinitResult()
	want := "Yes, and worse: the restore failed after the reinit committed (the restore call answered 500 LookupError: No installed app with label 'django'.), " +
		"leaving the system with users 7 → 1; then author01 could not log in for at least 285.0 ms, still failing when sampling stopped; "
	for format, a := range answers(t, r) {
		if !strings.HasPrefix(a, want) {
			t.Errorf("%s: answer %q\nwant it to start with %q", format, a, want)
		}
		if strings.Contains(a, "for 285.0 ms") || strings.Contains(a, "works again") {
			t.Errorf("%s: answer %q gives the outage an end, or says a token works again", format, a)
		}
	}
	rf := &results.RunFile{Results: []*results.Result{r, twoPhaseResult()}}
	if a := overallAnswer(rf, fmtr{}); !strings.HasPrefix(a, "The restore failed after the reinit committed, leaving the system without its data, in failed-after-reinit (users 7 → 1).") {
		t.Errorf("overall answer %q does not lead with the failed restore", a)
	}
	if recs := recommendation(rf, fmtr{}); recs[0].kind != adviceFailedAfterReinit {
		t.Errorf("first advice %s: %s", recs[0].kind, recs[0].text)
	}
	md := scenarioSection(t, string(render(t, "md", rf, Options{})), r.Name)
	mustContain(t, md, "### Outage windows per probe", "still failing when sampling stopped at T+330.0 ms (at least 285.0 ms", "Not judged: the operation did not complete.")
	for _, c := range Claims(r) {
		if c.Verdict != NotMeasured {
			t.Errorf("claim %s judged %s on a failed restore", c.ID, c.Verdict)
		}
	}
	r.Facts.UsersAfter = nil
	if a := answer(r, fmtr{}); !strings.Contains(a, "leaving the system with users 7 → not observed;") {
		t.Errorf("users after not counted: %q", a)
	}
	r.Facts.Outcome = results.OperationRefused
	if a := answer(r, fmtr{}); !strings.HasPrefix(a, "Not measured: the restore call was refused: 500") {
		t.Errorf("refused instead: %q", a)
	}
}

// An outage still going on when sampling stopped lasted at least its
// length: never "for X ms", never a length the seed's claim can hold.
func TestOpenOutageIsAtLeast(t *testing.T) {
	r := twoPhaseResult()
	if a := answer(r, fmtr{}); !strings.HasPrefix(a, "Yes, for 52.0 ms: author01 could not log in between the reinit and restore commits;") {
		t.Fatalf("closed: %q", a)
	}
	r.Probes[0].Windows[0].Open = true
	r.Probes[0].LongestMS, r.Probes[0].Windows[0].LengthMS = 6000, 6000
	if a := answer(r, fmtr{}); !strings.HasPrefix(a, "Yes, for at least 6.00 s, still failing when sampling stopped: author01 could not log in;") {
		t.Errorf("open: %q", a)
	}
	if c := claim(t, r, "window-5-30s"); c.Verdict != NotMeasured || !strings.Contains(c.Evidence, "at least 6.00 s") {
		t.Errorf("open window of at least 6 s: window-5-30s %s (%s), want not measured", c.Verdict, c.Evidence)
	}
	if c := claim(t, r, "auth-window"); c.Verdict != Held || !strings.Contains(c.Evidence, "still failing when sampling stopped") {
		t.Errorf("auth-window %s (%s)", c.Verdict, c.Evidence)
	}
	rf := &results.RunFile{Results: []*results.Result{r, atomicResult()}}
	if a := overallAnswer(rf, fmtr{}); !strings.Contains(a, "API call, two-phase: yes, at least 6.00 s, still failing when sampling stopped (two-phase)") {
		t.Errorf("overall: %q", a)
	}
	page := string(render(t, "html", rf, Options{}))
	if !strings.Contains(page, `text-anchor="middle">≥ 6.00 s</text>`) {
		t.Error("the timeline does not label the open stretch ≥")
	}
	r.Probes[0].LongestMS, r.Probes[0].Windows[0].LengthMS = 31000, 31000
	if c := claim(t, r, "window-5-30s"); c.Verdict != Refuted {
		t.Errorf("open window of at least 31 s: window-5-30s %s, want refuted", c.Verdict)
	}
}

// "The old token works again" only of a token whose user was deleted in
// the window and came back; one whose user was there throughout kept
// working; of one whose user nobody looked for, the report says so.
func TestTokenFateFollowsItsUser(t *testing.T) {
	r := refreshPlainResult()
	a := answer(r, fmtr{})
	mustContain(t, a, "old token author_old works again afterwards (its user was deleted in the window and came back: no need to log in again)",
		"old token admin_old kept working (its user was never deleted)")
	if strings.Contains(a, "admin_old works again") {
		t.Errorf("admin's token, whose user was never deleted, is said to work again: %q", a)
	}
	if c := claim(t, r, "old-token-401-after"); c.Verdict != Refuted || !strings.Contains(c.Evidence, "admin_old (admin, sha256:") || !strings.Contains(c.Evidence, "kept working: its user was never deleted") {
		t.Errorf("old-token-401-after %s (%s)", c.Verdict, c.Evidence)
	}
	r.Tokens[1].UserInWindow = ""
	if a := answer(r, fmtr{}); !strings.Contains(a, "old token admin_old worked after the operation; whether its user was deleted in between was not observed") {
		t.Errorf("presence not observed: %q", a)
	}
	// Deleted and refused in the window: it works again. (Accepted in the
	// window while deleted, it kept working throughout: TestKindAnswer.)
	r.Tokens[1].UserInWindow, r.Tokens[1].During = results.UserDeleted, []int{401}
	if a := answer(r, fmtr{}); !strings.Contains(a, "old tokens author_old, admin_old work again afterwards") || strings.Contains(a, "kept working") {
		t.Errorf("both users deleted: %q", a)
	}
	only := &results.RunFile{Results: []*results.Result{refreshPlainResult(), refreshPlainResult()}}
	only.Results[1].Name = "kept"
	only.Results[1].Tokens = only.Results[1].Tokens[1:]
	if v := oldTokens(only.Results).verdict(); v != "Old tokens work again afterwards (refresh-plain), an old token whose user was never deleted kept working in kept." {
		t.Errorf("run verdict %q", v)
	}
	// Accepted in the window while its user was deleted (no user lookup):
	// the run's verdict says it never stopped, not that it works again.
	stateless := refreshPlainResult()
	stateless.Name, stateless.Tokens = "stateless", stateless.Tokens[:1]
	stateless.Tokens[0].UserInWindow, stateless.Tokens[0].During = results.UserDeleted, []int{200}
	if v := oldTokens([]*results.Result{stateless}).verdict(); v != "Old tokens kept working throughout, even while their users did not exist, in stateless." {
		t.Errorf("stateless verdict %q", v)
	}
}

// Every report's fate of every seeded token shows the access and the
// refresh token before, during and after; a token without a refresh token
// shows none, never a status.
func TestRefreshTokensShown(t *testing.T) {
	plain, blacklist := refreshPlainResult(), refreshBlacklistResult()
	md := string(render(t, "md", &results.RunFile{Results: []*results.Result{plain, blacklist, twoPhaseResult()}}, Options{}))
	mustContain(t, md, "| author_old | author01 | deleted | refresh | "+results.Fingerprint("author_old-refresh")+" | 200 | 200 | 200 | — | still refreshes, and did even while its user did not exist |",
		"| author_old | author01 | deleted | refresh | "+results.Fingerprint("author_old-refresh")+" | 200 | 401 | 401 | — | refused after the operation |",
		"| author_old | author01 | deleted | refresh | — | not measured | not measured | not measured | — | no refresh token: not measured |",
		"| author-refresh | refresh with old token author_old |")
	if a := answer(plain, fmtr{}); !strings.Contains(a, "the refresh tokens of author_old, admin_old still mint access tokens afterwards (author_old: accepted in the window, while its user did not exist)") {
		t.Errorf("plain simplejwt: %q", a)
	}
	if a := answer(blacklist, fmtr{}); !strings.HasSuffix(a, "; no old refresh token is accepted afterwards.") {
		t.Errorf("blacklist: %q", a)
	}
	if c := claim(t, blacklist, "must-log-in-again"); c.Verdict != Held {
		t.Errorf("blacklist: must-log-in-again %s (%s)", c.Verdict, c.Evidence)
	}
	if c := claim(t, blacklist, "tokens-refused-after-reinit"); c.Verdict != Held || !strings.Contains(c.Evidence, "the refresh token of author_old (probe author-refresh) was refused") {
		t.Errorf("blacklist: tokens-refused-after-reinit %s (%s)", c.Verdict, c.Evidence)
	}
	blacklist.Tokens[0].Refresh.After = 200
	if c := claim(t, blacklist, "must-log-in-again"); c.Verdict != Refuted || !strings.Contains(c.Evidence, "the refresh token of author_old") {
		t.Errorf("a refresh token that still works: must-log-in-again %s (%s)", c.Verdict, c.Evidence)
	}
	if a := answer(blacklist, fmtr{}); !strings.Contains(a, "the refresh token of author_old still mints access tokens afterwards") {
		t.Errorf("a refresh token that still works: %q", a)
	}
}

// Server errors are findings of their own in every format: a line of the
// answer, a section of the Markdown report, a colour of the timeline, a
// JUnit test case that fails; the sample in the lead stays in the probe
// table. Without them, none of it is there.
func TestServerErrorsReportedApart(t *testing.T) {
	r := refreshPlainResult()
	rf := &results.RunFile{Results: []*results.Result{r}}
	body := `IntegrityError: insert or update on table "token_blacklist_outstandingtoken" violates foreign key constraint`
	line := "the server failed: 1 request got 500, first at T-3.0 ms: " + body
	for format, a := range answers(t, r) {
		if !strings.Contains(a, line) {
			t.Errorf("%s: answer %q lacks %q", format, a, line)
		}
	}
	md := string(render(t, "md", rf, Options{}))
	mustContain(t, md, "### Server errors", "| T-3.0 ms | probe author01-login | **500** | "+body+" |",
		"| author01-login | log in as author01 with the original password | 1.5 ms / 1.5 ms | 2 / 20 / 6 | 1 / 10 / 0 | T+11.0 ms → T+63.0 ms (52.0 ms, 10 failed) | 401, 500 |")
	page := string(render(t, "html", rf, Options{}))
	if !regexp.MustCompile(`<rect class="server" [^>]*><title>author01-login: 500 `).MatchString(page) {
		t.Error("the timeline does not colour the 500 as a server error")
	}
	doc := render(t, "junit", rf, Options{})
	if out, err := validateJUnit(t, doc); err != nil {
		t.Fatalf("junit.xml with server errors is not valid: %v\n%s", err, out)
	}
	wantCase := `<testcase name="refresh-plain: server errors" classname="scenarios.refresh-plain"`
	wantFailure := `<failure message="scenarios/refresh-plain.yaml: the server failed: probe author01-login got 500 at T-3.0 ms: IntegrityError`
	if !strings.Contains(string(doc), wantCase) || !strings.Contains(string(doc), wantFailure) || !strings.Contains(string(doc), `tests="2" failures="1"`) {
		t.Errorf("no failing test case for the server error:\n%s", doc)
	}

	r.Facts.ServerErrors = nil
	r.Timeline.Samples = r.Timeline.Samples[:len(r.Timeline.Samples)-1]
	md = string(render(t, "md", rf, Options{}))
	if a := answer(r, fmtr{}); strings.Contains(a, "server failed") {
		t.Errorf("no server error, yet: %q", a)
	}
	if !strings.Contains(md, "None: no request got a 5xx status") || strings.Contains(string(render(t, "junit", rf, Options{})), "server errors") ||
		strings.Contains(string(render(t, "html", rf, Options{})), `class="server"`) {
		t.Error("a report still shows a server error that is gone")
	}
}

// A window shorter than a probe's request is not sampled by it: the
// report says so, with the probe's resolution, never "no outage". Once
// the probe has samples inside the window, "no outage" holds.
func TestUnsampledWindowIsNotNoOutage(t *testing.T) {
	r := slowLoginResult()
	want := "Outage not measured: window of 50.0 ms not sampled by author01-login (one request takes 120.0 ms); in the window, refused: profile with old token author_old; "
	for format, a := range answers(t, r) {
		if !strings.HasPrefix(a, want) {
			t.Errorf("%s: answer %q, want it to start with %q", format, a, want)
		}
	}
	if c := claim(t, r, "auth-window"); c.Verdict != NotMeasured {
		t.Errorf("auth-window %s (%s), want not measured", c.Verdict, c.Evidence)
	}
	md := string(render(t, "md", &results.RunFile{Results: []*results.Result{r}}, Options{}))
	if !strings.Contains(md, "| 120.0 ms / 150.0 ms | 1 / 3 / 1 | 0 / 0 / 0 | none | — | not sampled: window of 50.0 ms (one request takes 120.0 ms); 1 straddled a commit (not counted) |") {
		t.Errorf("the probe table does not show the resolution and the unsampled window:\n%s", md)
	}
	if o := worstOutage([]*results.Result{r}); o.clean() || !strings.HasPrefix(o.text(fmtr{}), "not measured") {
		t.Errorf("unsampled window counts as clean: %q", o.text(fmtr{}))
	}
	r.Probes[0].InWindowOK = 2
	if a := answer(r, fmtr{}); !strings.HasPrefix(a, "No outage: none of 1 probe failed (3 samples, one request takes at most 150.0 ms, within the 50.0 ms window);") {
		t.Errorf("sampled: %q", a)
	}
	if a := answer(atomicResult(), fmtr{}); !strings.HasPrefix(a, "No outage: none of 1 probe failed (20 samples, one request takes at most 1.5 ms);") {
		t.Errorf("atomic: %q", a)
	}
	unseen := unobservedResult()
	unseen.Probes[0] = probe("author01-login", results.ProbeLogin, "author01", results.PasswordOriginal, 1, 0, 0, 0)
	if a := answer(unseen, fmtr{}); !strings.HasPrefix(a, "No failure seen: none of 1 probe failed (20 samples, one request takes at most 1.5 ms), but the window between the commits was not observed;") {
		t.Errorf("window not observed: %q", a)
	}
}

// Reports name where the accounts came from and the real size of the
// data: a running system's never as the fixture; what the backup left
// out is listed with why.
func TestAccountsAndDataNamed(t *testing.T) {
	r := failedAfterReinitResult()
	r.Fixture = "edms-small" // meaningless for a running system
	md := scenarioSection(t, string(render(t, "md", &results.RunFile{Results: []*results.Result{r, twoPhaseResult()}}, Options{})), r.Name)
	mustContain(t, md, "Accounts: accounts rehearse created (rehearse_probe_1 ... rehearse_probe_3). Data restored: a backup of 1234 objects in 17 models.",
		"| django_migrations | — | no model: Django's record of applied migrations |",
		"| django_content_type | contenttypes.contenttype | left out of portable dumps, as Django's docs advise |")
	if strings.Contains(md, "edms-small") {
		t.Errorf("a running system's report names the fixture:\n%s", md)
	}
	written := "Added after the backup, which does not hold them (by the rehearsal's own requests, such as the outstanding tokens of its logins, or by the operation itself, such as a reinit's blacklist entries), and so not counted as a mismatch: token_blacklist_outstandingtoken: 12 rows."
	blacklist := refreshBlacklistResult()
	if md := string(render(t, "md", &results.RunFile{Results: []*results.Result{blacklist}}, Options{})); !strings.Contains(md, written) {
		t.Errorf("the rows the rehearsal wrote are not reported:\n%s", md)
	}
	blacklist.Facts.WrittenByRehearsal = nil
	if md := string(render(t, "md", &results.RunFile{Results: []*results.Result{blacklist}}, Options{})); strings.Contains(md, "Written by the rehearsal") {
		t.Error("rows written by the rehearsal reported without any")
	}
	r.Backup = nil
	if s := dataSize(r); s != "a backup of unmeasured size" {
		t.Errorf("no backup facts: %q", s)
	}
	two := twoPhaseResult()
	if s := dataSize(two); s != "fixture edms-small" {
		t.Errorf("embedded: %q", s)
	}
	two.Backup = &results.BackupFacts{Objects: 57, Models: 9}
	if s := dataSize(two); s != "fixture edms-small (a backup of 57 objects in 9 models)" {
		t.Errorf("embedded, backup taken: %q", s)
	}
}

// Rewording any message changes no verdict, for these shapes too.
func TestTextDecidesNothingWhenTheOperationFailed(t *testing.T) {
	checkTextDecidesNothing(t, operationsRun())
}

// The run-level parts follow the same facts: the advice comes first for a
// failed restore, server errors, refresh tokens that survive and
// operations that did not happen; the comparison and JUnit's <error> say
// "not measured" for those.
func TestRunLevelOfOperations(t *testing.T) {
	rf := operationsRun()
	var kinds []adviceKind
	for _, a := range recommendation(rf, fmtr{}) {
		kinds = append(kinds, a.kind)
	}
	want := []adviceKind{adviceFailedAfterReinit, adviceServerErrors, adviceNotPerformed, adviceNotPerformed, adviceNotPerformed,
		adviceMaintenanceWindow, adviceWindowSize, adviceCheckRevocation, adviceRefreshAlive}
	if !slices.Equal(kinds, want) {
		t.Errorf("advice %v, want %v", kinds, want)
	}
	md := string(render(t, "md", rf, Options{}))
	mustContain(t, md, "| longest outage | not measured | not measured | not measured | at least 285.0 ms, still failing when sampling stopped (author01-login) | 52.0 ms (author01-login) |",
		"| server errors | none | 1 | none | 1 | 1 | none | none |",
		"| old refresh tokens after | not measured | not measured | not measured | not measured | author_old: 200, admin_old: 200 | author_old: 401 | not measured |",
		"| invariants | not judged | not judged | not judged | not judged | 5 of 5 hold |")
	junit := string(render(t, "junit", rf, Options{}))
	mustContain(t, junit, `<error message="scenarios/refused.yaml: not measured: the restore call was refused: 400 Invalid confirmation" type="operation">`,
		`<error message="scenarios/failed-after-reinit.yaml: Yes, and worse: the restore failed after the reinit committed (the restore call answered 500 LookupError`)
	if out, err := validateJUnit(t, []byte(junit)); err != nil {
		t.Errorf("junit.xml is not valid: %v\n%s", err, out)
	}

	rf.Results[4].Tokens[0].Refresh.After, rf.Results[4].Tokens[1].Refresh.After = 401, 401
	rf.Results[3].Facts.Outcome = results.OperationRefused
	for _, a := range recommendation(rf, fmtr{}) {
		if a.kind == adviceRefreshAlive || a.kind == adviceFailedAfterReinit {
			t.Errorf("advice %s without its fact: %s", a.kind, a.text)
		}
	}
}

// An outage that began before the reinit committed (a 500 of the app, say)
// is not said to lie between the commits.
func TestOutageBeforeTheReinitIsNotPlacedInTheWindow(t *testing.T) {
	r := twoPhaseResult()
	for i, a := range answers(t, r) {
		mustContain(t, a+" ("+i+")", "between the reinit and restore commits")
	}
	for i, p := range r.Timeline.Phases {
		if p.Phase == results.PhaseReinitCommitted {
			r.Timeline.Phases[i].AtMS = 200 // a failure 198 ms before the reinit
		}
	}
	for i := range r.Probes {
		for j := range r.Probes[i].Windows {
			r.Probes[i].Windows[j].StartMS = 2
		}
	}
	for format, a := range answers(t, r) {
		if strings.Contains(a, "between the reinit and restore commits") || !strings.Contains(a, "before the reinit committed at") {
			t.Errorf("%s: %s", format, a)
		}
	}
	// An answer just before the reinit's stamp (which is taken late) is no
	// evidence of a failure before the reinit.
	for i, p := range r.Timeline.Phases {
		if p.Phase == results.PhaseReinitCommitted {
			r.Timeline.Phases[i].AtMS = 30
		}
	}
	for format, a := range answers(t, r) {
		if !strings.Contains(a, "between the reinit and restore commits") {
			t.Errorf("28 ms before the stamp, %s: %s", format, a)
		}
	}
}
