package main

import (
	"bytes"
	"context"
	"os/exec"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
)

// Ctrl-C on `rehearse rehearse --dsn` against the real Django app, once
// after the accounts were created and before the operation, once in the
// window (the app's reinit deleted them, its restore is still loading):
// when rehearse has exited and the app has finished what it was doing, its
// users table holds no account rehearse created.
func TestRehearseInterruptedRemovesAccounts(t *testing.T) {
	bin := buildRehearse(t)
	for _, c := range []struct {
		name string
		// interruptAt says, from the number of created accounts seen
		// now and at most before, whether it is time for the SIGINT.
		interruptAt func(now, most int) bool
	}{
		{"after creating them", func(now, _ int) bool { return now == 2 }},
		{"in the window", func(now, most int) bool { return most == 2 && now == 0 }},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newDjangoApp(t, "plain")
			a.seedUsers()
			if code, _, stderr := rehearse(t, "mark", "--dsn", a.dsn); code != exitOK {
				t.Fatal(stderr)
			}
			a.start()
			usersBefore := a.userRows()
			conn := pgtest.Connect(t, a.dsn)
			defer conn.Close(context.Background())
			created := func() (n int) {
				if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM users_user WHERE username LIKE 'rehearse\_%'`).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}

			var out bytes.Buffer
			cmd := exec.Command(bin, "rehearse", "--target", a.base, "--dsn", a.dsn, "--report-dir", "")
			cmd.Dir, cmd.Stdout, cmd.Stderr = t.TempDir(), &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			most, interrupted := 0, false
			for deadline := time.Now().Add(60 * time.Second); !interrupted && time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				select {
				case err := <-exited:
					t.Fatalf("rehearse ended (%v) before the moment to interrupt it came (most accounts seen: %d):\n%s", err, most, out.String())
				default:
				}
				n := created()
				most = max(most, n)
				if c.interruptAt(n, most) {
					interrupted = cmd.Process.Signal(syscall.SIGINT) == nil
				}
			}
			if !interrupted {
				cmd.Process.Kill()
				t.Fatalf("the moment to interrupt never came (most accounts seen: %d):\n%s", most, out.String())
			}
			select {
			case err := <-exited:
				t.Logf("rehearse after SIGINT: %v\n%s", err, out.String())
			case <-time.After(90 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("rehearse did not end within 90s of SIGINT:\n%s", out.String())
			}
			// The app may still be restoring: wait until its backend is idle.
			a.waitIdle(conn)
			if n := created(); n != 0 {
				t.Errorf("%d accounts rehearse created are still in the app's users table after the interrupted run:\n%s", n, out.String())
			}
			if after := a.userRows(); !reflect.DeepEqual(after, usersBefore) {
				t.Errorf("users after the interrupted run = %v\nwant %v", after, usersBefore)
			}
		})
	}
}

// waitIdle waits (at most 60s) until no other session of the app's
// database is in a statement or a transaction: the app finished its restore.
func (a *djangoApp) waitIdle(conn *pgx.Conn) {
	a.t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var busy int
		err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle'`).Scan(&busy)
		if err != nil {
			a.t.Fatal(err)
		}
		if busy == 0 {
			return
		}
	}
	a.t.Fatalf("the app's database was still busy 60s after the run\n%s", a.log())
}
