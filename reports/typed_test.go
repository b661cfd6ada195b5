package reports

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/results"
)

// The verdicts on the handmade results, each resting on a typed fact.
func TestClaimsOfHandmadeResults(t *testing.T) {
	rf := handmadeRun()
	want := map[string]map[string]Verdict{
		"two-phase": {
			"call-completes": Held, "users-deleted-in-window": Held, "admin-new-id": Refuted, "auth-window": Held,
			"window-5-30s": Refuted, "only-admin-default-password": Held, "tokens-refused-after-reinit": Held,
			"old-token-401-after": Held, "no-impersonation": Held, "users-restored": Held, "passwords-restored": Held,
			"must-log-in-again": Held, "foreign-keys-intact": Held,
		},
		"atomic": {"users-deleted-in-window": Refuted, "auth-window": Refuted, "only-admin-default-password": Refuted, "tokens-refused-after-reinit": NotMeasured},
		"manual": {"call-completes": NotMeasured, "auth-window": Held, "users-deleted-in-window": Held},
		"running-system": {
			"users-deleted-in-window": NotMeasured, "only-admin-default-password": NotMeasured, "admin-new-id": NotMeasured,
			"tokens-refused-after-reinit": NotMeasured, "auth-window": Held, "users-restored": NotMeasured,
		},
		"pk-reuse": {"no-impersonation": Refuted, "old-token-401-after": Refuted, "must-log-in-again": Refuted},
		"broken": {
			"foreign-keys-intact": Refuted, "must-log-in-again": Refuted, "passwords-restored": Refuted,
			"users-deleted-in-window": Refuted, "only-admin-default-password": Refuted,
		},
		// The default password still works: passwords are not restored, yet
		// users must (and can) log in again with their own.
		"default-password-works": {"passwords-restored": Refuted, "must-log-in-again": Held},
		// The admin is root: its default-password probe is the one that
		// counts, and it was refused throughout the window.
		"renamed-admin": {"only-admin-default-password": Refuted},
	}
	for name, verdicts := range want {
		r := result(t, rf, name)
		for id, v := range verdicts {
			if c := claim(t, r, id); c.Verdict != v {
				t.Errorf("%s: claim %s: %s, want %s (evidence: %s)", name, id, c.Verdict, v, c.Evidence)
			}
		}
	}
	for _, c := range Claims(result(t, rf, "could-not-run")) {
		if c.Verdict != NotMeasured {
			t.Errorf("could-not-run: claim %s is %s, want not measured", c.ID, c.Verdict)
		}
	}
	if c := manualSafer(rf, fmtr{}); c.Verdict != Refuted {
		t.Errorf("manual path safer: %s (%s), want refuted", c.Verdict, c.Evidence)
	}
}

// Each typed fact the reports read changes what they say when it changes.
func TestTypedFactsDecide(t *testing.T) {
	f := fmtr{}
	pk := pkReuseResult()
	if a := answer(pk, f); !strings.Contains(a, "an account created in the window was lost") {
		t.Errorf("row overwritten: answer %q does not say an account was lost", a)
	}
	pk.Facts.PKReuse[2].Kind = results.RowDeleted
	if a := answer(pk, f); !strings.Contains(a, "was lost") {
		t.Errorf("row deleted: answer %q does not say an account was lost", a)
	}
	pk.Facts.PKReuse = pk.Facts.PKReuse[:2]
	if a := answer(pk, f); strings.Contains(a, "lost") {
		t.Errorf("no row lost: answer %q says one was", a)
	}
	if len(measure(pk).impostors) != 1 {
		t.Errorf("impostors %q, want the token_as_other observation", measure(pk).impostors)
	}
	pk.Facts.PKReuse[1].Kind = results.IDRecycled
	if len(measure(pk).impostors) != 0 {
		t.Errorf("without token_as_other: impostors %q, want none", measure(pk).impostors)
	}
	pk.Tokens[0].AfterAs = "mallory"
	if len(measure(pk).impostors) != 1 {
		t.Errorf("old token authenticated as mallory after: impostors %q, want that one", measure(pk).impostors)
	}

	renamed := renamedAdminResult()
	if d := measure(renamed).defaultLogin; d == nil || d.Name != "root-default" {
		t.Errorf("admin root: default login probe %v, want root-default", d)
	}
	renamed.Facts.Admin = "admin"
	if d := measure(renamed).defaultLogin; d == nil || d.Name != "admin-default" {
		t.Errorf("admin admin: default login probe %v, want admin-default", d)
	}

	two := twoPhaseResult()
	if c := claim(t, two, "call-completes"); !strings.Contains(c.Evidence, "at T+62.0 ms") {
		t.Errorf("call-completes does not say when the response was sent: %s", c.Evidence)
	}
	two.Timeline.Phases = slices.DeleteFunc(two.Timeline.Phases, func(p results.PhaseMark) bool { return p.Phase == results.PhaseResponseSent })
	if c := claim(t, two, "call-completes"); strings.Contains(c.Evidence, " at T+") {
		t.Errorf("no response phase, yet call-completes gives a time: %s", c.Evidence)
	}
}

// One definition of the window: Facts.Window. A state the results do not
// state as observed or absent is unknown, never "atomic".
func TestWindowStates(t *testing.T) {
	for _, c := range []struct {
		state     results.WindowState
		strategy  results.Strategy
		text      string
		usersDone Verdict
	}{
		{results.WindowObserved, results.TwoPhase, "Window between the reinit and restore commits: 50.0 ms; 1 of 7 users existed in it.", Held},
		{results.WindowNone, results.Atomic, "No window: the reinit and the restore commit together; nothing in between is visible.", Refuted},
		{results.WindowNotObserved, results.StrategyNotObserved, "The window between the reinit and restore commits was not observed", NotMeasured},
		{results.WindowNotObserved, results.TwoPhase, "was not observed", NotMeasured},
		{"", results.TwoPhase, "was not observed", NotMeasured},
	} {
		r := twoPhaseResult()
		r.Facts.Window, r.Strategy = c.state, c.strategy
		if got := measure(r).windowText(fmtr{}); !strings.Contains(got, c.text) {
			t.Errorf("window %q: %q, want %q", c.state, got, c.text)
		}
		if got := claim(t, r, "users-deleted-in-window"); got.Verdict != c.usersDone {
			t.Errorf("window %q: users-deleted-in-window %s (%s), want %s", c.state, got.Verdict, got.Evidence, c.usersDone)
		}
	}
	r := twoPhaseResult()
	r.Facts.UsersInWindow = nil
	if got := claim(t, r, "users-deleted-in-window"); got.Verdict != NotMeasured {
		t.Errorf("users in the window not counted: %s (%s), want not measured", got.Verdict, got.Evidence)
	}
	if got := measure(r).windowText(fmtr{}); !strings.Contains(got, "the users in it were not counted") {
		t.Errorf("users in the window not counted: %q", got)
	}
}

// A strategy nobody observed is said so, never replaced by a default.
func TestEngineNotObserved(t *testing.T) {
	for s, want := range map[results.Strategy]string{
		results.TwoPhase: "API call, two-phase", results.Atomic: "API call, atomic",
		results.StrategyNotObserved: "API call, engine not observed", "": "API call, engine not observed",
	} {
		r := twoPhaseResult()
		r.Strategy = s
		if got := engine(r); got != want {
			t.Errorf("strategy %q: engine %q, want %q", s, got, want)
		}
		r.Operation = results.Manual
		if got := engine(r); strings.Contains(want, "not observed") != strings.Contains(got, "not observed") {
			t.Errorf("manual, strategy %q: engine %q", s, got)
		}
	}
	md := string(render(t, "md", &results.RunFile{Results: []*results.Result{unobservedResult()}}, Options{}))
	if strings.Contains(md, "two-phase") || strings.Contains(md, "atomic") || strings.Contains(md, "one transaction") {
		t.Errorf("the report of a system nobody could look into names an engine:\n%s", md)
	}
}

// The recommendation of the handmade run, by kind.
func TestRecommendationKinds(t *testing.T) {
	var kinds []adviceKind
	for _, a := range recommendation(handmadeRun(), fmtr{}) {
		kinds = append(kinds, a.kind)
	}
	// pk-reuse, the one scenario whose tokens work again, has a deliberate
	// defect: it is advice about what must stay, not about the system.
	want := []adviceKind{adviceRerun, adviceBrokenInvariant, adviceCleanEngine, adviceWindowSize, adviceNotManual,
		adviceLogInAgain, adviceKeepRevoking, adviceImpersonation, adviceBlockWrites}
	if !slices.Equal(kinds, want) {
		t.Errorf("advice %v, want %v", kinds, want)
	}
	rf := &results.RunFile{Results: []*results.Result{twoPhaseResult(), atomicResult()}}
	kinds = nil
	for _, a := range recommendation(rf, fmtr{}) {
		kinds = append(kinds, a.kind)
		if a.kind == adviceLogInAgain && !strings.Contains(a.text, "old tokens are refused afterwards in every scenario that seeded them (two-phase, atomic).") {
			t.Errorf("log-in-again advice: %s", a.text)
		}
	}
	if !slices.Contains(kinds, adviceLogInAgain) || slices.Contains(kinds, adviceCheckRevocation) {
		t.Errorf("every token refused: advice %v, want log-in-again and no check-revocation", kinds)
	}
}

// Phases are shown in words: the label, or the note of an action.
func TestPhasesShownAsText(t *testing.T) {
	rf := handmadeRun()
	md := string(render(t, "md", rf, Options{}))
	page := string(render(t, "html", rf, Options{}))
	for _, want := range []string{"| reinit committed |", "| user mallory created with id 6 |", "| reinit and restore committed in one transaction |", "| watcher: no database to watch: give --dsn |"} {
		if !strings.Contains(md, want) {
			t.Errorf("the Markdown timeline lacks %q", want)
		}
	}
	for _, want := range []string{"reinit committed</text>", "user mallory created with id 6</text>", "response sent</text>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the SVG timeline lacks the phase label %q", want)
		}
	}
	if strings.Contains(md, "reinit_committed") || strings.Contains(page, "window_action") {
		t.Error("a phase is shown by its JSON value instead of in words")
	}
}

// WriteResults is the one way a results file is written: redacted,
// versioned, readable back, and without the plain secrets it was given.
func TestWriteResultsRedacts(t *testing.T) {
	rf := handmadeRun()
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjo1fQ.c2lnbmF0dXJlLWJ5dGVz"
	r := rf.Results[0]
	r.Error = "login as author01 with author01_pw failed"
	r.Timeline.Samples[0].Detail = "Authorization: Bearer " + jwt
	rf.Version = 1 // a caller's stale version is not written
	path := filepath.Join(t.TempDir(), "results.json")
	if err := WriteResults(path, rf); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range append(slices.Clone(r.Secrets), jwt, "c2lnbmF0dXJlLWJ5dGVz") {
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the results file holds the secret %q", secret)
		}
	}
	if !bytes.Contains(data, []byte(results.Fingerprint("author01_pw"))) || !bytes.Contains(data, []byte(results.Fingerprint(jwt))) {
		t.Error("the results file lacks the secrets' fingerprints")
	}
	back, err := ReadJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("ReadJSON of WriteResults' file: %v", err)
	}
	if back.Version != results.Version || len(back.Results) != len(rf.Results) || back.Results[0].Secrets != nil {
		t.Errorf("read back version %d, %d results, secrets %q", back.Version, len(back.Results), back.Results[0].Secrets)
	}
	if !strings.Contains(r.Error, "author01_pw") {
		t.Error("WriteResults changed the caller's results")
	}
	if err := WriteResults(filepath.Join(t.TempDir(), "missing", "results.json"), rf); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}

// Redaction rewrites free text and names, never the typed values verdicts
// rest on: a password that reads like an enum leaves the enum alone.
func TestRedactionLeavesEnumsAlone(t *testing.T) {
	r := twoPhaseResult()
	r.Secrets = []string{string(results.TwoPhase), string(results.WindowObserved), string(results.PasswordOriginal)}
	r.Error = "password two-phase was refused"
	red := redactRun(&results.RunFile{Results: []*results.Result{r}}).Results[0]
	if red.Strategy != results.TwoPhase || red.Facts.Window != results.WindowObserved || red.Probes[0].Password != results.PasswordOriginal {
		t.Errorf("redaction rewrote enums: strategy %q, window %q, password %q", red.Strategy, red.Facts.Window, red.Probes[0].Password)
	}
	if strings.Contains(red.Error, "two-phase") {
		t.Errorf("the password in a message was not redacted: %s", red.Error)
	}
	if got, want := decisionsOf(red), decisionsOf(r); got != want {
		t.Errorf("redaction changed a verdict:\n%s\nwant\n%s", got, want)
	}
}

func decisionsOf(r *results.Result) string {
	var b strings.Builder
	for _, c := range Claims(r) {
		b.WriteString(c.ID + "=" + string(c.Verdict) + " ")
	}
	return b.String()
}

// A results file built by hand is valid against the schema, reads back
// unchanged, and each way of breaking it is refused.
func TestHandmadeResultsFile(t *testing.T) {
	s := compileSchema(t)
	data := render(t, "json", handmadeRun(), Options{})
	if err := validateJSON(s, data); err != nil {
		t.Fatalf("not valid against results.schema.json: %v", err)
	}
	back, err := ReadJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(render(t, "json", back, Options{}), data) {
		t.Error("json → ReadJSON → json is not the identity")
	}
	normalized := render(t, "json", handmadeRun(), Options{Normalize: true})
	if err := validateJSON(s, normalized); err != nil {
		t.Errorf("normalized: not valid against results.schema.json: %v", err)
	}
	checkBrokenResultsRejected(t, s, data)
}

// The enums of the schema are the enums ReadJSON knows.
func TestSchemaListsTheEnums(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(Schema(), &schema); err != nil {
		t.Fatal(err)
	}
	phase := schema["definitions"].(map[string]any)["PhaseMark"].(map[string]any)["properties"].(map[string]any)["phase"].(map[string]any)
	var got []string
	for _, v := range phase["enum"].([]any) {
		got = append(got, v.(string))
	}
	if want := enums[reflect.TypeFor[results.Phase]()].values; !slices.Equal(got, want) {
		t.Errorf("schema phases %v, want %v", got, want)
	}
}

// Every typed string of the results file is an enum ReadJSON checks and the
// schema lists: a new one must be added to enums.
func TestEveryTypedStringIsAnEnum(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		if seen[ty] {
			return
		}
		seen[ty] = true
		switch ty.Kind() {
		case reflect.Pointer, reflect.Slice:
			walk(ty.Elem())
		case reflect.Struct:
			for i := 0; i < ty.NumField(); i++ {
				if f := ty.Field(i); f.IsExported() && f.Tag.Get("json") != "-" {
					walk(f.Type)
				}
			}
		case reflect.String:
			if _, ok := enums[ty]; !ok && ty != reflect.TypeFor[string]() {
				t.Errorf("results.%s is a typed string missing from enums (jsonio.go)", ty.Name())
			}
		}
	}
	walk(reflect.TypeFor[results.RunFile]())
	for ty := range enums {
		if !seen[ty] {
			t.Errorf("enums lists results.%s, which no field of the results file has", ty.Name())
		}
	}
}
