package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

// windowBody is the 500 of a restore that failed after its reinit committed.
type windowBody struct {
	Status  string              `json:"status"`
	Detail  string              `json:"detail"`
	Lost    []restore.TableLoss `json:"lost"`
	Kept    string              `json:"backup_kept"`
	Command string              `json:"recovery_command"`
}

// A two-phase restore that fails after its reinit committed — an error in
// the window, or its connection terminated there — answers a 500 that
// says what the system lost (each table's rows before and now, as the
// database has them) and how to recover; the upload is kept where the
// body says, no spool file is left, and restoring the kept file as the
// command does brings the system back.
func TestWindowFailureKeepsTheBackup(t *testing.T) {
	cases := []struct {
		name  string
		hook  func(ctx context.Context, dsn string) error
		cause string
	}{
		{"failure between the phases", func(context.Context, string) error { return errors.New("injected failure") }, "injected failure"},
		{"connection terminated in the window", func(ctx context.Context, dsn string) error {
			return terminateOthers(ctx, dsn)
		}, "restore failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			dsn := pgtest.SeededDB(t)
			e := startOn(t, dsn, func(cfg *Config) {
				cfg.TempDir = dir
				cfg.Hooks.BetweenPhases = func(ctx context.Context) error { return c.hook(ctx, dsn) }
			})
			conn := pgtest.Connect(t, dsn+" application_name=monitor")
			before := dbState(t, conn)
			counts := rowCounts(t, conn)
			admin, _ := e.tokens("admin", "admin_secure_password_123")
			backup := backupOf(t, e.dsn)
			r := e.restore(admin, backup, reinitFields)
			var body windowBody
			if err := json.Unmarshal([]byte(r.body), &body); err != nil || r.status != 500 || body.Status != "error" {
				t.Fatalf("failure in the window: %d %s", r.status, r.body)
			}
			t.Logf("detail: %s", body.Detail)
			for _, want := range []string{c.cause, "the reinit had already committed", "what it lost", "users_user", body.Kept, body.Command} {
				if !strings.Contains(body.Detail, want) {
					t.Errorf("the detail lacks %q: %s", want, body.Detail)
				}
			}
			now := rowCounts(t, conn)
			for _, l := range body.Lost {
				if l.Before != counts[l.Table] || l.Now != now[l.Table] || l.Backup != counts[l.Table] {
					t.Errorf("%s: the body says %d -> %d (backup %d), the database had %d and has %d", l.Table, l.Before, l.Now, l.Backup, counts[l.Table], now[l.Table])
				}
			}
			if len(body.Lost) == 0 || now["users_user"] != 1 {
				t.Errorf("lost %v, users now %d", body.Lost, now["users_user"])
			}
			kept, err := os.ReadFile(body.Kept)
			if err != nil || string(kept) != string(backup) || filepath.Dir(body.Kept) != dir {
				t.Fatalf("the kept backup %q: %v (%d bytes, uploaded %d)", body.Kept, err, len(kept), len(backup))
			}
			wantCmd := "--from-file " + body.Kept + " --with-reinit --strategy atomic"
			if !strings.HasPrefix(body.Command, "rehearse restore --dsn ") || !strings.HasSuffix(body.Command, wantCmd) {
				t.Errorf("recovery command %q, want rehearse restore --dsn … %s", body.Command, wantCmd)
			}
			if !strings.Contains(e.logs.all(), body.Kept) {
				t.Error("the log does not say where the backup is kept")
			}
			noSpool(t, dir)
			recoverFrom(t, dsn, body.Kept)
			after := dbState(t, conn)
			for _, p := range edms.Protected() { // the reinit moved the token cutoff, as it should
				delete(before, p)
				delete(after, p)
			}
			sameState(t, "recovered from the kept backup", before, after)
		})
	}
}

// terminateOthers ends every other session of the database but the
// test's monitor (the restore's among them).
func terminateOthers(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name <> 'monitor'`)
	return err
}

// recoverFrom does what the recovery command does: the backup restored
// with the reinit in one transaction.
func recoverFrom(t *testing.T, dsn, path string) {
	t.Helper()
	cfg := edms.ReinitConfig("", true)
	opts := edms.RestoreOptions(func() (io.ReadCloser, error) { return os.Open(path) }, restore.Atomic, &cfg)
	if _, err := restore.Restore(context.Background(), pgtest.Connect(t, dsn), opts); err != nil {
		t.Fatalf("recover from %s: %v", path, err)
	}
}

// rowCounts counts the rows of every table.
func rowCounts(t *testing.T, conn *pgx.Conn) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for table, state := range dbState(t, conn) {
		var n int64
		fmt.Sscanf(state, "%d rows", &n)
		out[table] = n
	}
	return out
}

// noSpool fails when an upload's spool file is left in dir.
func noSpool(t *testing.T, dir string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(dir, spoolPrefix+"*"))
	if len(left) > 0 {
		t.Errorf("spool files left: %v", left)
	}
}

// Every restore request that does not fail in the window leaves no spool
// file: a success, a refused backup, a refused field, an upload over the
// limit, a client that leaves halfway through its upload.
func TestSpoolRemovedOnEveryPath(t *testing.T) {
	dir := t.TempDir()
	e := start(t, func(c *Config) { c.TempDir = dir; c.MaxUploadBytes = 1 << 20 })
	admin, _ := e.tokens("admin", "admin_secure_password_123")
	good := backupOf(t, e.dsn)
	for _, c := range []struct {
		name   string
		status int
		send   func() int
	}{
		{"refused backup", 400, func() int { return e.restore(admin, []byte(badBackup), reinitFields).status }},
		{"refused field", 400, func() int { return e.restore(admin, good, [][2]string{{"with_reinit", "maybe"}}).status }},
		{"over the limit", 413, func() int { return e.restore(admin, make([]byte, 2<<20), reinitFields).status }},
		{"client gone halfway", 0, func() int { abandonUpload(t, e, admin); return 0 }},
		{"success", 200, func() int { return e.restore(admin, good, reinitFields).status }},
	} {
		if got := c.send(); got != c.status {
			t.Errorf("%s: status %d, want %d", c.name, got, c.status)
		}
		if c.name == "success" {
			admin, _ = e.tokens("admin", "admin_secure_password_123")
		}
		deadline := time.Now().Add(5 * time.Second)
		for left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) > 0 && time.Now().Before(deadline); left, _ = filepath.Glob(filepath.Join(dir, "*")) {
			time.Sleep(10 * time.Millisecond)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, "*")); len(left) > 0 {
			t.Errorf("%s: files left in the spool directory: %v", c.name, left)
		}
	}
}

// abandonUpload starts a restore upload, sends part of its file and
// closes the connection once the server has spooled some of it.
func abandonUpload(t *testing.T, e *env, access string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := bufio.NewWriter(c)
	fmt.Fprintf(w, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 900000\r\n\r\n", DefaultRoutes().Restore, access)
	fmt.Fprintf(w, "--B\r\nContent-Disposition: form-data; name=\"backup_file\"; filename=\"b.json\"\r\n\r\n[%s", strings.Repeat(" ", 300000))
	w.Flush()
	deadline := time.Now().Add(5 * time.Second)
	for left, _ := filepath.Glob(filepath.Join(e.srv.tempDir, spoolPrefix+"*")); len(left) == 0 && time.Now().Before(deadline); left, _ = filepath.Glob(filepath.Join(e.srv.tempDir, spoolPrefix+"*")) {
		time.Sleep(5 * time.Millisecond)
	}
}
