package reports

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

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

func validateJUnit(t *testing.T, doc []byte) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(xmllint(t), "--noout", "--schema", filepath.Join("testdata", "junit-10.xsd"), file).CombinedOutput()
	return string(out), err
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
		if out, err := validateJUnit(t, doc); err != nil {
			t.Fatalf("normalize=%t: junit.xml is not valid against testdata/junit-10.xsd: %v\n%s", normalize, err, out)
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
