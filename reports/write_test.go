package reports

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/results"
)

func TestWriteAll(t *testing.T) {
	rf := realRun(t)
	dir := filepath.Join(t.TempDir(), "reports-out")
	paths, err := WriteAll(dir, rf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, filepath.Base(p))
		info, err := os.Stat(p)
		if err != nil || info.Size() == 0 {
			t.Errorf("%s: %v, size %d", p, err, info.Size())
		}
	}
	if strings.Join(names, " ") != "report.md report.html junit.xml results.json" {
		t.Errorf("wrote %v", names)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("%d files in %s, want 4 (no temporary files left behind)", len(entries), dir)
	}
	if err := Write(&bytes.Buffer{}, "pdf", rf, Options{}); err == nil || !strings.Contains(err.Error(), "md, json, junit, html") {
		t.Errorf("unknown format: %v", err)
	}
}

func TestWriteFileAtomicReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.txt")
	for _, content := range []string{"first", "second"} {
		if err := WriteFileAtomic(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("read %q, want %q", b, content)
		}
	}
	if err := WriteFileAtomic(filepath.Join(t.TempDir(), "missing", "a.txt"), nil); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}

// The HTML report opens offline: nothing is fetched, nothing runs.
func TestHTMLIsSelfContained(t *testing.T) {
	page := string(render(t, "html", realRun(t), Options{}))
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", "url(", "http://", "https://", "src="} {
		if strings.Contains(page, bad) {
			t.Errorf("the HTML report contains %q", bad)
		}
	}
}

// Passwords and tokens never appear in clear, in any format, even when the
// system under test or the harness put them into a message.
func TestSecretsNeverPrinted(t *testing.T) {
	rf := realRun(t)
	fx, err := fixtures.Get("edms-small")
	if err != nil {
		t.Fatal(err)
	}
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjo1LCJqdGkiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz"
	hash := "pbkdf2_sha256$1000$c2FsdA$aGFzaGhhc2hoYXNo="
	password := fx.Users[0].Password
	r := result(t, rf, "seed-flow-two-phase")
	if !slices.Contains(r.Secrets, password) {
		t.Errorf("the harness did not record the passwords it used (Result.Secrets = %d entries): reports cannot hide them", len(r.Secrets))
	}
	r.Expectations[0].Measured = "401 for Authorization: Bearer " + jwt
	r.Facts.OperationBody = "user row: " + hash
	r.Invariants[0].Evidence = "logged in with " + password
	r.Timeline.Samples[0].Detail = jwt
	secrets := []string{jwt, hash, password, "c2lnbmF0dXJlLWJ5dGVz"}
	for _, u := range fx.Users {
		secrets = append(secrets, u.Password)
	}
	for _, format := range FormatNames() {
		out := string(render(t, format, rf, Options{}))
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("%s: a secret is printed in clear: %q", format, s)
			}
		}
		if format != "junit" && !strings.Contains(out, results.Fingerprint(password)) {
			t.Errorf("%s: the password's fingerprint is missing", format)
		}
	}
	// The caller's copy is left as it was.
	if !strings.Contains(r.Invariants[0].Evidence, password) {
		t.Error("rendering changed the caller's results")
	}
	if regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.`).MatchString(string(render(t, "md", realRun(t), Options{}))) {
		t.Error("a token-like string in the report of a plain run")
	}
}

// Sparse or odd results (no probes, no phases, nothing measured, a nil
// entry) render in every format without a panic.
func TestSparseResultsRender(t *testing.T) {
	rf := realRun(t)
	r := rf.Results[0]
	r.Probes, r.Tokens, r.Invariants, r.Expectations = nil, nil, nil, nil
	r.Timeline = results.Timeline{}
	r.Facts = results.Facts{}
	e := rf.Results[1]
	e.Status, e.Error = results.Errored, "could not start"
	rf.Results = append(rf.Results, nil, &results.Result{Name: "empty"})
	for _, format := range FormatNames() {
		for _, normalize := range []bool{false, true} {
			if out := render(t, format, rf, Options{Normalize: normalize}); len(out) == 0 {
				t.Errorf("%s: empty output", format)
			}
		}
	}
	if out := render(t, "md", &results.RunFile{}, Options{}); !bytes.Contains(out, []byte("Not measured")) {
		t.Errorf("a run without results: %s", out)
	}
}
