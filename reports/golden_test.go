package reports

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/joshdk/go-junit"
	"github.com/rehearse-dev/rehearse/results"
)

// The Markdown and JUnit reports of a real run of the shipped scenarios,
// normalized (times, counts and fingerprints replaced by placeholders),
// equal the golden files.
func TestMarkdownGolden(t *testing.T) {
	golden(t, "report.md.golden", render(t, "md", passingRun(t), Options{Normalize: true}))
}

func TestJUnitGolden(t *testing.T) {
	golden(t, "junit.xml.golden", render(t, "junit", passingRun(t), Options{Normalize: true}))
}

// Normalizing must leave no measured number behind, or the golden files
// would flake.
func TestNormalizedReportsHaveNoTimings(t *testing.T) {
	rf := realRun(t)
	leftover := regexp.MustCompile(`\d+\.\d+ ?(ms|s)\b|T\+\d+(\.\d+)? ?ms|\b20\d\d-\d\d-\d\dT`)
	for _, format := range []string{"md", "junit", "html"} {
		out := render(t, format, rf, Options{Normalize: true})
		if format == "html" { // its picture's coordinates are measurements; its text is not
			out = regexp.MustCompile(`(?s)<svg.*?</svg>`).ReplaceAll(out, nil)
		}
		if m := leftover.Find(out); m != nil {
			t.Errorf("%s: normalized output still holds a measurement: %q", format, m)
		}
	}
}

func xmllint(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("REHEARSE_SKIP_XMLLINT") == "1" {
			t.Skip("xmllint not found; skipped because REHEARSE_SKIP_XMLLINT=1")
		}
		t.Fatal("xmllint not found: install it (apt-get install -y libxml2-utils), or set REHEARSE_SKIP_XMLLINT=1 to skip the JUnit schema check")
	}
	return path
}

// junitSchemas are the Jenkins xUnit plugin's schema and Apache Ant's.
var junitSchemas = []string{"junit-10.xsd", "ant-junit.xsd"}

// reFileLine finds the file and line attributes of a <testcase>: GitHub's
// and GitLab's readers use them, and neither schema declares them.
var reFileLine = regexp.MustCompile(`(<testcase [^>]*?) file="[^"]*" line="\d+"`)

// validateJUnit validates doc against both schemas (default) or the named
// ones, without testcase's file and line, and nothing else removed.
func validateJUnit(t *testing.T, doc []byte, schemas ...string) (string, error) {
	t.Helper()
	if len(schemas) == 0 {
		schemas = junitSchemas
	}
	file := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(file, reFileLine.ReplaceAll(doc, []byte("$1")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, schema := range schemas {
		out, err := exec.Command(xmllint(t), "--noout", "--schema", filepath.Join("testdata", schema), file).CombinedOutput()
		if err != nil {
			return schema + ": " + string(out), err
		}
	}
	return "", nil
}

// A run with a failed expectation and a scenario the harness could not run,
// built from a real run, validates against the JUnit schema; each failure
// names the scenario's file:line in its message.
func TestJUnitValidatesAgainstSchema(t *testing.T) {
	rf := realRun(t)
	broken := result(t, rf, "seed-flow-two-phase")
	var failed results.Outcome
	for i := range broken.Expectations {
		if broken.Expectations[i].Kind == "window" {
			broken.Expectations[i].Pass = false
			broken.Expectations[i].Measured = "35.2s (3000 of 3500 samples failed) <&> \"quoted\""
			failed = broken.Expectations[i]
		}
	}
	broken.Status = results.Failed
	errored := result(t, rf, "seed-flow-atomic")
	errored.Status, errored.Error = results.Errored, "database: connection refused ]]> <not xml>"

	for _, normalize := range []bool{false, true} {
		doc := render(t, "junit", rf, Options{Normalize: normalize})
		schemas := junitSchemas
		if normalize { // its timestamp is a placeholder, which Ant's xs:dateTime refuses
			schemas = []string{"junit-10.xsd"}
		}
		if out, err := validateJUnit(t, doc, schemas...); err != nil {
			t.Fatalf("normalize=%t: junit.xml is not valid: %v\n%s", normalize, err, out)
		}
	}
	doc := string(render(t, "junit", rf, Options{}))
	wantMsg := `message="` + failed.Pos.String() + `: longest failing stretch of probe author01-login`
	if !strings.Contains(doc, wantMsg) {
		t.Errorf("the failure's message does not start with the scenario's file:line:\nwant %s\nin %s", wantMsg, doc)
	}
	if !strings.Contains(doc, `<error message="`+errored.File+`: the harness could not run the scenario`) {
		t.Errorf("no <error> for the scenario that could not run:\n%s", doc)
	}
	if n := strings.Count(doc, "<failure "); n != 1 {
		t.Errorf("%d <failure> elements, want 1", n)
	}
	if !strings.Contains(doc, `tests="6" failures="1" errors="1"`) {
		t.Errorf("suite counts wrong:\n%s", doc)
	}
}

// The schema check can fail: xmllint rejects JUnit XML that breaks it.
func TestXmllintRejectsInvalidJUnit(t *testing.T) {
	good := string(render(t, "junit", realRun(t), Options{}))
	for name, bad := range map[string]string{
		"testcase without a name": strings.Replace(good, `<testcase name="pk-reuse"`, `<testcase`, 1),
		"unknown element":         strings.Replace(good, "<properties>", "<properties><colour/>", 1),
		"suite without counts":    strings.Replace(good, `tests="6" failures="0" errors="0" skipped="0"`, ``, 1),
	} {
		if bad == good {
			t.Fatalf("%s: the change did not apply", name)
		}
		if out, err := validateJUnit(t, []byte(bad)); err == nil {
			t.Errorf("%s: xmllint accepted it:\n%s", name, out)
		}
	}
}

// A scenario with two failed expectations is one test case with one
// <failure> that holds both, at the first one's file and line; a JUnit
// reader (github.com/joshdk/go-junit) sees the case failed with both in
// its body, the errored one as an error, and the passing ones passed.
func TestJUnitOneFailurePerCaseAsAReaderSeesIt(t *testing.T) {
	rf := realRun(t)
	broken := result(t, rf, "seed-flow-two-phase")
	var failed []results.Outcome
	for i := range broken.Expectations {
		if k := broken.Expectations[i].Kind; k == "window" || k == "login" {
			broken.Expectations[i].Pass = false
			failed = append(failed, broken.Expectations[i])
		}
	}
	if len(failed) < 2 {
		t.Fatalf("seed-flow-two-phase has %d window and login expectations, want 2 or more", len(failed))
	}
	broken.Status = results.Failed
	errored := result(t, rf, "seed-flow-atomic")
	errored.Status, errored.Error = results.Errored, "database: connection refused"
	doc := render(t, "junit", rf, Options{})
	if out, err := validateJUnit(t, doc); err != nil {
		t.Fatalf("junit.xml is not valid: %v\n%s", err, out)
	}

	suites, err := junit.Ingest(doc)
	if err != nil || len(suites) != 1 {
		t.Fatalf("go-junit read %d suites: %v", len(suites), err)
	}
	byName := map[string]junit.Test{}
	for _, c := range suites[0].Tests {
		byName[c.Name] = c
	}
	if len(byName) != len(rf.Results) {
		t.Errorf("go-junit read %d test cases, want %d", len(byName), len(rf.Results))
	}
	c := byName["seed-flow-two-phase"]
	wantMsg := fmt.Sprintf("%s: %s: expected", failed[0].Pos, failed[0].Subject)
	if c.Status != junit.StatusFailed || !strings.HasPrefix(c.Message, wantMsg) || !strings.HasSuffix(c.Message, fmt.Sprintf("(and %d more failed expectations)", len(failed)-1)) {
		t.Errorf("seed-flow-two-phase: %s %q; want failed, message %q ... (and %d more failed expectations)", c.Status, c.Message, wantMsg, len(failed)-1)
	}
	for _, o := range failed {
		if !strings.Contains(c.Error.Error(), o.Pos.String()+": expectation failed: "+o.Subject) {
			t.Errorf("the failure's body lacks %s (%s):\n%s", o.Pos, o.Subject, c.Error)
		}
	}
	if c.Properties["file"] != broken.File || c.Properties["line"] != fmt.Sprint(failed[0].Pos.Line) {
		t.Errorf("file=%q line=%q, want %q and %d", c.Properties["file"], c.Properties["line"], broken.File, failed[0].Pos.Line)
	}
	if n := strings.Count(string(doc), "<failure "); n != 1 {
		t.Errorf("%d <failure> elements, want 1", n)
	}
	if e := byName["seed-flow-atomic"]; e.Status != junit.StatusError || !strings.Contains(e.Message, "connection refused") {
		t.Errorf("seed-flow-atomic: %s %q, want an error", e.Status, e.Message)
	}
	if p := byName["pk-reuse"]; p.Status != junit.StatusPassed || p.Properties["file"] == "" || p.Properties["line"] != "1" {
		t.Errorf("pk-reuse: %s, file=%q line=%q; want passed at its file's line 1", p.Status, p.Properties["file"], p.Properties["line"])
	}
	if !strings.Contains(suites[0].SystemOut, "seed-flow-two-phase (") || !strings.Contains(suites[0].SystemOut, "answer: ") {
		t.Errorf("the suite's system-out lacks the scenarios' answers:\n%s", suites[0].SystemOut)
	}
}
