package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/results"
)

// buildRehearse compiles the command, so that the system under test runs
// as a separate process, as a user's would; in a git checkout the binary
// records the revision (whatever GOFLAGS says), as go install does.
func buildRehearse(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rehearse")
	args := []string{"build", "-o", bin}
	if exec.Command("git", "rev-parse", "HEAD").Run() == nil {
		args = append(args, "-buildvcs=true")
	}
	cmd := exec.Command("go", append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// servedTarget is a `rehearse serve` process.
type servedTarget struct {
	url, dsn string
}

var (
	servingLine  = regexp.MustCompile(`^serving (http://127\.0\.0\.1:\d+) `)
	databaseLine = regexp.MustCompile(`^database: (.+) \(seeded with`)
)

// startServe starts `rehearse serve` with the custom target of
// testdata/http, waits for its address and database, and stops it (SIGINT)
// when the test ends.
func startServe(t *testing.T, bin string, extra ...string) servedTarget {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--quiet",
		"--routes", "testdata/http/target.yaml"}, extra...) // signing key and admin's default password come from the target file
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			t.Errorf("rehearse serve did not stop on SIGINT")
		}
	})
	var st servedTarget
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
	for st.url == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("rehearse serve exited before serving:\n%s", stderr.String())
			}
			if m := databaseLine.FindStringSubmatch(line); m != nil {
				st.dsn = m[1]
			}
			if m := servingLine.FindStringSubmatch(line); m != nil {
				st.url = m[1]
			}
		case <-deadline:
			t.Fatalf("rehearse serve did not start in 60s:\n%s", stderr.String())
		}
	}
	go io.Copy(io.Discard, stdout) // keep draining
	go func() {
		for range lines {
		}
	}()
	if st.dsn == "" {
		t.Fatal("rehearse serve did not print its database")
	}
	return st
}

// A scenario with target: http runs against `rehearse serve` started as a
// separate process whose endpoint paths, field names, auth scheme, confirm
// phrase and admin default password all differ from the defaults
// (docs/targets/drf-simplejwt.yaml), configured by a target file; it passes. The same scenario against the server started
// with a defect fails on the expectation the defect breaks.
func TestHTTPTargetAgainstSeparateServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts rehearse serve")
	}
	bin := buildRehearse(t)
	scenario := "testdata/http/rehearsal.yaml"

	// Not parallel: it sets an environment variable.
	t.Run("scenario names its own users", func(t *testing.T) {
		st := startServe(t, bin)
		t.Setenv("REHEARSE_TEST_ADMIN_PASSWORD", "admin_secure_password_123")
		code, stdout, stderr := rehearse(t, "rehearse", "--target", st.url, "--dsn", st.dsn, "--scenario", "testdata/http/own-users.yaml", "--report-dir", "")
		if code != exitOK || !strings.Contains(stdout, "PASS  own-users") {
			t.Errorf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		t.Setenv("REHEARSE_TEST_ADMIN_PASSWORD", "")
		// Found when the rehearsal is planned, before anything runs.
		code, stdout, stderr = rehearse(t, "rehearse", "--target", st.url, "--dsn", st.dsn, "--scenario", "testdata/http/own-users.yaml", "--report-dir", "")
		if code != exitError || !strings.Contains(stderr, "password_env names REHEARSE_TEST_ADMIN_PASSWORD, which is not set") {
			t.Errorf("unset password_env: exit %d\n%s\n%s", code, stdout, stderr)
		}
	})
	t.Run("passes", func(t *testing.T) {
		t.Parallel()
		st := startServe(t, bin)
		out := filepath.Join(t.TempDir(), "results.json")
		reportDir := t.TempDir()
		code, stdout, stderr := rehearse(t, "rehearse", "--target", st.url, "--dsn", st.dsn, "--scenario", scenario, "--out", out, "--report-dir", reportDir)
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		md, err := os.ReadFile(filepath.Join(reportDir, "report.md"))
		if err != nil || !strings.Contains(string(md), "http-custom-target") {
			t.Errorf("auth-impact report: %v\n%s", err, md)
		}
		rf := readResults(t, out)
		r := rf.Results[0]
		if r.Target != harness.TargetHTTP || r.Strategy != "two-phase" {
			t.Errorf("target %q strategy %q, want http and the observed two-phase", r.Target, r.Strategy)
		}
		if r.Facts.WindowMS <= 0 || r.Facts.UsersInWindow == nil || *r.Facts.UsersInWindow != 1 || r.Facts.Window != results.WindowObserved {
			t.Errorf("the watcher did not see the window: %+v", r.Facts)
		}
		if len(r.Tokens) != 2 || r.Tokens[0].Before != 200 || r.Tokens[1].Before != 200 {
			t.Errorf("tokens (login and minted) did not work before the operation: %+v", r.Tokens)
		}
	})
	t.Run("atomic server shows no window", func(t *testing.T) {
		t.Parallel()
		st := startServe(t, bin, "--strategy", "atomic")
		out := filepath.Join(t.TempDir(), "results.json")
		code, stdout, stderr := rehearse(t, "rehearse", "--target", st.url, "--dsn", st.dsn, "--scenario", scenario, "--out", out, "--report-dir", "")
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		r := readResults(t, out).Results[0]
		if r.Strategy != results.Atomic || r.Facts.WindowMS != 0 || r.Facts.UsersInWindow != nil || r.Facts.Window != results.WindowNone {
			t.Errorf("strategy %q, facts %+v: want the observed atomic, no window", r.Strategy, r.Facts)
		}
		for _, p := range r.Probes {
			// Logins with original passwords never fail on an atomic server
			// (the reinit's password never works, and old tokens are revoked).
			if p.Kind == "login" && p.Password != "default" && p.Failures > 0 {
				t.Errorf("probe %s failed %d times on an atomic server", p.Name, p.Failures)
			}
		}
	})
	t.Run("defect no-revocation fails", func(t *testing.T) {
		t.Parallel()
		st := startServe(t, bin, "--defect", "no-revocation")
		code, stdout, stderr := rehearse(t, "rehearse", "--target", st.url, "--dsn", st.dsn, "--scenario", scenario, "--report-dir", "")
		if code != exitFailed {
			t.Fatalf("exit %d, want 1 (an expectation failed)\n%s\n%s", code, stdout, stderr)
		}
		for _, want := range []string{
			"rehearsal.yaml:19:5: expectation failed: token author-login on profile after the operation",
			"measured: 200 (authenticated as author01)",
			"rehearsal.yaml:20:5: expectation failed: token author-minted on profile after the operation",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("output lacks %q:\n%s", want, stdout)
			}
		}
	})
	t.Run("documented DRF target file", func(t *testing.T) {
		t.Parallel()
		doc := "../../docs/targets/drf-simplejwt.yaml"
		st := startServe(t, bin, "--routes", doc)
		code, stdout, stderr := rehearse(t, "rehearse", "--target-file", doc, "--target", st.url, "--dsn", st.dsn, "--report-dir", "")
		if code != exitOK {
			t.Errorf("README's Django command: exit %d\n%s\n%s", code, stdout, stderr)
		}
		// Without the database: HTTP alone is judged, nothing is made up.
		backup := filepath.Join(t.TempDir(), "backup.json")
		if code, _, stderr := rehearse(t, "backup", "--dsn", st.dsn, "--output", backup); code != exitOK {
			t.Fatal(stderr)
		}
		out := filepath.Join(t.TempDir(), "results.json")
		if code, _, stderr := rehearse(t, "rehearse", "--target-file", doc, "--target", st.url, "--backup", backup, "--report-dir", ""); code != exitError || !strings.Contains(stderr, "--allow-unmarked") {
			t.Errorf("without --dsn and without --allow-unmarked: exit %d %s", code, stderr)
		}
		code, stdout, stderr = rehearse(t, "rehearse", "--target-file", doc, "--target", st.url, "--backup", backup, "--allow-unmarked", "--out", out, "--report-dir", "")
		if code != exitOK {
			t.Fatalf("without --dsn: exit %d\n%s\n%s", code, stdout, stderr)
		}
		r := readResults(t, out).Results[0]
		if r.Facts.UsersInWindow != nil || r.Facts.Window != results.WindowNotObserved || r.Strategy != results.StrategyNotObserved || len(r.Invariants) != 0 {
			t.Errorf("without a database the window, strategy and invariants are unknown, got %+v %q %d", r.Facts, r.Strategy, len(r.Invariants))
		}
	})
	t.Run("wrong target file is a clear error", func(t *testing.T) {
		t.Parallel()
		st := startServe(t, bin)
		// The built-in rehearsal speaks the defaults (docs/targets/drf-simplejwt.yaml); this server does not.
		code, stdout, _ := rehearse(t, "rehearse", "--target", st.url, "--dsn", st.dsn, "--report-dir", "")
		if code != exitError || !strings.Contains(stdout, "answered 404: is that the login endpoint? (set login.path in the target file)") {
			t.Errorf("exit %d:\n%s", code, stdout)
		}
		// A minted token signed with another key is refused before anything runs.
		dir := t.TempDir()
		target, _ := os.ReadFile("testdata/http/target.yaml")
		os.WriteFile(filepath.Join(dir, "target.yaml"), target, 0o644)
		os.WriteFile(filepath.Join(dir, "signing.key"), []byte("another-key-0123456789abcdef-0123456789"), 0o600)
		code, stdout, _ = rehearse(t, "rehearse", "--target", st.url, "--dsn", st.dsn, "--report-dir", "",
			"--scenario", scenario, "--target-file", filepath.Join(dir, "target.yaml"))
		if code != exitError || !strings.Contains(stdout, `token "author-minted" does not authenticate before the operation`) || !strings.Contains(stdout, "is the signing key the system's?") {
			t.Errorf("wrong signing key: exit %d:\n%s", code, stdout)
		}
	})
}

func readResults(t *testing.T, path string) results.RunFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rf results.RunFile
	if err := json.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	if len(rf.Results) != 1 {
		t.Fatalf("%d results", len(rf.Results))
	}
	return rf
}
