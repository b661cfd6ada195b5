package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
)

const python = "/usr/bin/python3" // Debian's, where apt puts Django

// needDjango skips without Debian's Django, DRF and simplejwt, unless
// REHEARSE_REQUIRE_DJANGO=1 (CI installs them) makes that a failure.
func needDjango(t *testing.T) {
	t.Helper()
	err := exec.Command(python, "-c", "import django, rest_framework, rest_framework_simplejwt, psycopg2").Run()
	if err == nil {
		return
	}
	msg := "needs Debian's python3-django python3-djangorestframework python3-djangorestframework-simplejwt python3-psycopg2"
	if os.Getenv("REHEARSE_REQUIRE_DJANGO") == "1" {
		t.Fatalf("%s (%v)", msg, err)
	}
	t.Skip(msg)
}

// The built-in rehearsal against a real Django REST Framework + simplejwt
// app (testdata/django, the seed's endpoints, plain simplejwt) flags what
// the research predicted: after the restore, old tokens authenticate again,
// because simplejwt only checks that a user with that id exists.
func TestRehearseRealDjangoApp(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Django server")
	}
	needDjango(t)
	dsn := pgtest.NewDB(t)
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	app, _ := filepath.Abs("testdata/django")
	env := append(os.Environ(),
		"DJANGO_SECRET_KEY=rehearse-django-test-key-0123456789abcdef",
		"PGHOST="+cfg.Host, "PGPORT="+strconv.Itoa(int(cfg.Port)), "PGUSER="+cfg.User, "PGDATABASE="+cfg.Database,
		"PYTHONDONTWRITEBYTECODE=1")
	manage := func(args ...string) {
		t.Helper()
		cmd := exec.Command(python, append([]string{"manage.py"}, args...)...)
		cmd.Dir, cmd.Env = app, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("manage.py %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	writeUsersFixture(t, users)
	manage("migrate", "-v0")
	manage("loaddata", users)
	backup := filepath.Join(dir, "backup.json")
	manage("dumpdata", "users", "auth.group", "--output", backup) // Django's own backup, for its loaddata
	if code, _, stderr := rehearse(t, "mark", "--dsn", dsn); code != exitOK {
		t.Fatal(stderr)
	}

	addr := freeLoopbackAddr(t)
	server := exec.Command(python, "manage.py", "runserver", addr, "--noreload")
	server.Dir, server.Env = app, env
	logFile, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		t.Fatal(err)
	}
	server.Stdout, server.Stderr = logFile, logFile
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Process.Kill(); server.Wait(); logFile.Close() })
	log := func() string { b, _ := os.ReadFile(logFile.Name()); return string(b) }
	waitListening(t, addr, log)

	reports := filepath.Join(dir, "report")
	code, stdout, stderr := rehearse(t, "rehearse", "--target", "http://"+addr, "--dsn", dsn, "--backup", backup,
		"--target-file", "../../docs/targets/drf-simplejwt.yaml", "--report-dir", reports)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1 (old tokens work again)\n%s\n%s\nserver:\n%s", code, stdout, stderr, log())
	}
	for _, want := range []string{
		"expectation failed: token author-before on profile after the operation",
		"measured: 200 (authenticated as author01)",
		"expectation failed: token admin-before on profile after the operation",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if n := strings.Count(stdout, "expectation failed"); n != 2 {
		t.Errorf("%d failed expectations, want only the two old tokens:\n%s", n, stdout)
	}
	md, err := os.ReadFile(filepath.Join(reports, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "the old token works again afterwards") || !strings.Contains(string(md), "| reinit committed |") {
		t.Errorf("report does not tell the resurrection or the window:\n%s", md)
	}
}

// writeUsersFixture keeps the users and groups of edms-small: the demo app
// has no documents or workflows.
func writeUsersFixture(t *testing.T, path string) {
	t.Helper()
	f, err := fixtures.Get("edms-small")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	var objs []map[string]any
	if err := json.Unmarshal(data, &objs); err != nil {
		t.Fatal(err)
	}
	var keep []map[string]any
	for _, o := range objs {
		if m := o["model"]; m == "users.user" || m == "auth.group" {
			keep = append(keep, o)
		}
	}
	out, _ := json.Marshal(keep)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func waitListening(t *testing.T, addr string, log func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the Django server did not listen on %s in 60s:\n%s", addr, log())
}
