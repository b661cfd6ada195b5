package reinit_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/reinit"
)

// slowDelete makes the reinit's DELETE of alice's 2000 tasks run for 20 s:
// a row trigger sleeps 10 ms per row. (A trigger of its own keeps the
// walker's triggers on; the statement is an ordinary long DELETE.)
const slowDelete = `
INSERT INTO task SELECT i, 11, NULL FROM generate_series(1000, 2999) i;
CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN OLD; END $$;
CREATE TRIGGER slow AFTER DELETE ON task FOR EACH ROW EXECUTE FUNCTION slow();`

const (
	// gone is how long a cancelled reinit's statement may stay active on
	// the server (the client check runs every second).
	gone = 3 * time.Second
	// stays is how long a statement nothing cancels is watched to be still
	// running, for the tests that show what the guards prevent.
	stays = 1500 * time.Millisecond
)

// activeDelete reports whether a backend matching where (a pg_stat_activity
// condition) runs the reinit's DELETE.
func activeDelete(t *testing.T, mon *pgx.Conn, where string, args ...any) bool {
	t.Helper()
	return pgtest.Active(t, mon, "DELETE FROM%task%", where, args...)
}

// A cancelled context (Ctrl-C and scenario timeouts cancel one) ends the
// running statement on the server, not only on the client.
func TestCancelEndsStatementOnServer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		run  func(conn *pgx.Conn, started <-chan struct{}) error
		want string // in the error
	}{
		{"cancel", func(conn *pgx.Conn, started <-chan struct{}) error {
			c, cancel := context.WithCancel(ctx)
			go func() { <-started; cancel() }()
			_, err := reinit.Run(c, conn, chainConfig())
			return err
		}, "context canceled"},
		{"timeout", func(conn *pgx.Conn, started <-chan struct{}) error {
			c, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			_, err := reinit.Run(c, conn, chainConfig())
			return err
		}, "deadline exceeded"},
		{"statement timeout", func(conn *pgx.Conn, started <-chan struct{}) error {
			cfg := chainConfig()
			cfg.StatementTimeout = 500 * time.Millisecond
			_, err := reinit.Run(ctx, conn, cfg)
			return err
		}, "raise Config.StatementTimeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dsn, conn := chainDSN(t, slowDelete)
			mon := pgtest.Connect(t, dsn)
			pid := conn.PgConn().PID()
			started := make(chan struct{})
			go func() {
				pgtest.WaitFor(10*time.Second, func() bool { return activeDelete(t, mon, "pid = $1", pid) })
				close(started)
			}()
			err := c.run(conn, started)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("reinit returned %v, want an error with %q", err, c.want)
			}
			t0 := time.Now()
			if !pgtest.WaitFor(gone, func() bool { return !activeDelete(t, mon, "pid = $1", pid) }) {
				t.Fatalf("the reinit's DELETE still runs on the server %s after it was stopped", gone)
			}
			t.Logf("the server's statement ended %s after Run returned: %v", time.Since(t0).Round(time.Millisecond), err)
			if n := count(t, mon, `SELECT count(*) FROM users`); n != 3 {
				t.Errorf("users after a stopped reinit: %d, want 3", n)
			}
		})
	}
}

// A lock another session holds makes the reinit fail after LockTimeout,
// with a message that says so, instead of waiting (and making everyone
// queue behind it).
func TestLockTimeout(t *testing.T) {
	t.Parallel()
	dsn := pgtest.NewDB(t)
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(ctx, chainSchema); err != nil {
		t.Fatal(err)
	}
	other := pgtest.Connect(t, dsn)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT * FROM project WHERE id = 11 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	cfg := chainConfig()
	cfg.LockTimeout = 300 * time.Millisecond
	t0 := time.Now()
	_, err = reinit.Run(ctx, conn, cfg)
	if err == nil || !strings.Contains(err.Error(), "raise Config.LockTimeout") || time.Since(t0) > 3*time.Second {
		t.Fatalf("reinit against a held lock returned after %s: %v", time.Since(t0), err)
	}
	t.Log(err)
	// Without a lock timeout it waits (until the context gives up).
	cfg.LockTimeout = -1
	c, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	if _, err := reinit.Run(c, conn, cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("reinit without a lock timeout returned %v, want it to wait until the deadline", err)
	}
}

const (
	helperEnv      = "REHEARSE_REINIT_HELPER_DSN"
	helperNoGuards = "REHEARSE_REINIT_HELPER_NO_GUARDS"
)

// helperMain is the program the signal tests start: a reinit, which a
// signal cancels as it does cmd/rehearse's.
func helperMain(dsn string) int {
	return pgtest.RunHelper(dsn, helperNoGuards, reinit.WithoutServerGuards, "reinit:", func(c context.Context, conn *pgx.Conn) error {
		_, err := reinit.Run(c, conn, chainConfig())
		return err
	})
}

// Killing a running `rehearse reinit` ends its statement on the server
// within seconds: SIGINT and SIGTERM through the cancelled context (a
// cancel request), SIGKILL (nothing runs in the client any more) through
// the server's client check. Without the client check, the statement of a
// killed client runs on: what the check below would catch.
func TestSignalEndsStatementOnServer(t *testing.T) {
	t.Parallel()
	cases := []pgtest.SignalCase{{Sig: syscall.SIGINT}, {Sig: syscall.SIGTERM}, {Sig: syscall.SIGKILL}, {Sig: syscall.SIGKILL, NoGuards: true}}
	pgtest.SignalCases(t, cases, "without guards", func(t *testing.T, i int, c pgtest.SignalCase) {
		dsn, setup := chainDSN(t, slowDelete)
		app := fmt.Sprintf("rehearse_reinit_helper_%d_%d", os.Getpid(), i)
		pgtest.SignalHelper{
			Args: []string{"-test.run=^$"}, Env: []string{helperEnv + "=" + dsn + " application_name=" + app},
			Mon: setup, App: app, // Running for 300 ms: the slow DELETE, not the 2-row one
			// through task's other foreign key, which ends on its own.
			Running: func() bool {
				return activeDelete(t, setup, "application_name = $1 AND clock_timestamp() - query_start > interval '300 ms'", app)
			},
			NoGuardsEnv: helperNoGuards, Stays: stays, Gone: gone,
			NeverStarted: "the helper's DELETE never started",
			EndedAnyway:  "without the guards the statement ended anyway: this case no longer shows what they prevent",
			StillRuns:    "the DELETE still runs on the server",
		}.Signal(t, c)
		if c.NoGuards {
			return
		}
		if n := count(t, setup, `SELECT count(*) FROM users`); n != 3 {
			t.Errorf("users after a killed reinit: %d, want 3", n)
		}
	})
}
