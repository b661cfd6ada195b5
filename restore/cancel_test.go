package restore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

const (
	// gone is how long a stopped restore's statement may stay active on
	// the server (the client check runs every second).
	gone = 3 * time.Second
	// stays is how long a statement nothing ends is watched to be still
	// running, for the case that shows what the guards prevent.
	stays = 1500 * time.Millisecond
)

// stalling serves the first half of a backup, then blocks (a stalled
// upload or network share) until it is closed.
type stalling struct {
	r       *bytes.Reader
	stallAt int64
	once    sync.Once
	closed  chan struct{}
	stalled chan struct{}
}

func newStalling(b []byte) *stalling {
	return &stalling{r: bytes.NewReader(b), stallAt: int64(len(b) / 2), closed: make(chan struct{}), stalled: make(chan struct{})}
}

func (s *stalling) Read(p []byte) (int, error) {
	pos := s.r.Size() - int64(s.r.Len())
	if pos >= s.stallAt {
		s.once.Do(func() { close(s.stalled) })
		<-s.closed
		return 0, os.ErrClosed
	}
	if rest := s.stallAt - pos; int64(len(p)) > rest {
		p = p[:rest]
	}
	return s.r.Read(p)
}

func (s *stalling) Close() error {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	return nil
}

// generated is the dumpdata backup of spec with users bulk users.
func generated(t *testing.T, spec fixtures.Spec, users int) []byte {
	t.Helper()
	spec.BulkUsers = users
	var buf bytes.Buffer
	if err := fixtures.Generate(&buf, spec); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A restore stopped while its COPY waits for data (the backup stalled), or
// while a statement of its transaction runs (here the reinit's), or while
// a two-phase restore's validating pass reads the stalled backup (like ""),
// ends on the server at once, returns instead of hanging, and changes
// nothing.
func TestStoppedRestoreEndsOnServer(t *testing.T) {
	b := generated(t, fixtures.SmallSpec, 300)
	sleepingReinit := func(ctx context.Context, tx pgx.Tx) ([]restore.ReinitEffect, error) {
		_, err := tx.Exec(ctx, `SELECT pg_sleep(30)`)
		return nil, err
	}
	cases := []struct {
		name, like string
		strategy   restore.Strategy
		fresh      bool // a schema without rows: one pass, which reads the backup while the COPY runs
		opts       func(o *restore.Options, s *stalling)
		stop       func(cancel func()) // called once the statement runs
		want       string
	}{
		{"cancel during COPY", "COPY%", restore.Atomic, true, func(o *restore.Options, s *stalling) {}, func(cancel func()) { cancel() }, "context canceled"},
		{"cancel during COPY, two-phase", "COPY%", restore.TwoPhase, true, func(o *restore.Options, s *stalling) {
			opens := 0 // the validating pass reads the whole backup; the load's pass stalls
			o.Open = func() (io.ReadCloser, error) {
				if opens++; opens == 1 {
					return io.NopCloser(bytes.NewReader(b)), nil
				}
				return s, nil
			}
		}, func(cancel func()) { cancel() }, "context canceled"},
		{"cancel during the validating pass, two-phase", "", restore.TwoPhase, true, func(o *restore.Options, s *stalling) {}, func(cancel func()) { cancel() }, "context canceled"},
		{"cancel during the reinit", "SELECT pg_sleep%", restore.Atomic, false, func(o *restore.Options, s *stalling) {
			o.Reinit, o.Open = sleepingReinit, bytesOpener(b)
		}, func(cancel func()) { cancel() }, "context canceled"},
		{"statement timeout", "SELECT pg_sleep%", restore.TwoPhase, false, func(o *restore.Options, s *stalling) {
			o.Reinit, o.Open, o.StatementTimeout = sleepingReinit, bytesOpener(b), 300*time.Millisecond
		}, func(cancel func()) {}, "raise Options.StatementTimeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.SeededDB(t)
			if c.fresh {
				dsn = pgtest.NewDB(t)
				setup := pgtest.Connect(t, dsn)
				if err := edms.Install(ctx, setup); err != nil {
					t.Fatal(err)
				}
			}
			conn := pgtest.Connect(t, dsn)
			mon := pgtest.Connect(t, dsn)
			before := checksums(t, mon)
			s := newStalling(b)
			opts := restore.Options{Open: func() (io.ReadCloser, error) { return s, nil }, Strategy: c.strategy, Protected: edms.Protected()}
			c.opts(&opts, s)
			pid := conn.PgConn().PID()
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			go func() {
				if c.like == "" {
					select {
					case <-s.stalled:
						c.stop(cancel)
					case <-time.After(10 * time.Second):
					}
				} else if pgtest.WaitFor(10*time.Second, func() bool { return pgtest.Active(t, mon, c.like, "pid = $1", pid) }) {
					c.stop(cancel)
				}
			}()
			done := make(chan error, 1)
			go func() { _, err := restore.Restore(rctx, conn, opts); done <- err }()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the stopped restore did not return")
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("restore returned %v, want an error with %q", err, c.want)
			}
			t0 := time.Now()
			if !pgtest.WaitFor(gone, func() bool { return !pgtest.Active(t, mon, "%", "pid = $1", pid) }) {
				t.Fatalf("the restore's statement still runs on the server %s after it was stopped", gone)
			}
			t.Logf("the server's statement ended %s after Restore returned: %v", time.Since(t0).Round(time.Millisecond), err)
			sameSums(t, "stopped restore", before, checksums(t, mon))
		})
	}
}

// A restore stopped while it validates a stalled backup (client side:
// more rows exist than an inline pass may hold back, so the backup is
// read once before loading) returns at once, saying it was stopped.
func TestStoppedValidationReturns(t *testing.T) {
	t.Parallel()
	conn := pgtest.Connect(t, pgtest.SeededDB(t))
	if _, err := conn.Exec(ctx, `INSERT INTO audit_auditevent (actor_id, action, object_repr, details, created_at)
		SELECT NULL, 'SYSTEM', 'x', '{}', now() FROM generate_series(1, 120000)`); err != nil {
		t.Fatal(err)
	}
	s := newStalling(generated(t, fixtures.SmallSpec, 300))
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { <-s.stalled; cancel() }()
	done := make(chan error, 1)
	go func() {
		_, err := restore.Restore(rctx, conn, restore.Options{Open: func() (io.ReadCloser, error) { return s, nil }, Strategy: restore.Atomic, Protected: edms.Protected()})
		done <- err
	}()
	select {
	case err := <-done:
		var be *restore.BackupError
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "restore stopped") || errors.As(err, &be) {
			t.Fatalf("restore returned %v, want it stopped by the context (not a backup refusal)", err)
		}
		t.Log(err)
	case <-time.After(10 * time.Second):
		t.Fatal("the restore stopped during validation did not return")
	}
}

// A client that stops between two statements without dying (here it
// waits for a stalled backup while validating it, after the reinit ran in
// the transaction) leaves its transaction idle, holding the reinit's
// locks: the server ends the session after StatementTimeout. Without the
// timeout (the server's default) the transaction stays open.
func TestIdleTransactionEndsOnServer(t *testing.T) {
	for _, c := range []struct {
		name    string
		timeout time.Duration
		ends    bool
	}{{"with the timeout", 500 * time.Millisecond, true}, {"without", -1, false}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.SeededDB(t)
			conn, mon := pgtest.Connect(t, dsn), pgtest.Connect(t, dsn)
			pid := conn.PgConn().PID()
			s := newStalling(generated(t, fixtures.SmallSpec, 300))
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() {
				_, err := restore.Restore(rctx, conn, restore.Options{Open: func() (io.ReadCloser, error) { return s, nil },
					Strategy: restore.Atomic, Reinit: withReinit(true), StatementTimeout: c.timeout, Protected: edms.Protected()})
				done <- err
			}()
			defer func() { cancel(); <-done }()
			select {
			case <-s.stalled:
			case <-time.After(10 * time.Second):
				t.Fatal("the restore never read the backup")
			}
			idle := func() bool {
				var n int
				if err := mon.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND state LIKE 'idle in transaction%'`, pid).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n > 0
			}
			if !pgtest.WaitFor(time.Second, idle) && !c.ends {
				t.Fatal("the stopped client's transaction is not idle: this case no longer shows what the timeout ends")
			}
			if c.ends && !pgtest.WaitFor(gone, func() bool { return !idle() }) {
				t.Fatalf("the idle transaction still holds its locks %s after the client stopped", gone)
			}
			if !c.ends {
				time.Sleep(stays)
				if !idle() {
					t.Fatal("the idle transaction ended without the timeout: this case no longer shows what it ends")
				}
			}
		})
	}
}

const (
	restoreHelperEnv      = "REHEARSE_RESTORE_HELPER_DSN"
	restoreHelperNoGuards = "REHEARSE_RESTORE_HELPER_NO_GUARDS"
)

// TestRestoreHelper is not a test: it is the program the signal test
// starts (the test binary again): a restore whose reinit sleeps on the
// server, which a signal cancels as it does cmd/rehearse's.
func TestRestoreHelper(t *testing.T) {
	dsn := os.Getenv(restoreHelperEnv)
	if dsn == "" {
		t.Skip("run by TestSignalEndsRestoreOnServer")
	}
	os.Exit(pgtest.RunHelper(dsn, restoreHelperNoGuards, restore.WithoutClientCheck, "restore:", func(c context.Context, conn *pgx.Conn) error {
		_, err := restore.Restore(c, conn, restore.Options{
			Open: bytesOpener([]byte("[]")), Strategy: restore.Atomic, AllowEmpty: true, Protected: edms.Protected(),
			Reinit: func(ctx context.Context, tx pgx.Tx) ([]restore.ReinitEffect, error) {
				_, err := tx.Exec(ctx, `SELECT pg_sleep(30)`)
				return nil, err
			},
		})
		return err
	}))
}

// Killing a running `rehearse restore` ends its statement on the server
// within seconds: SIGTERM through the cancelled context, SIGKILL through
// the server's client check; without the check, it runs on.
func TestSignalEndsRestoreOnServer(t *testing.T) {
	cases := []pgtest.SignalCase{{Sig: syscall.SIGTERM}, {Sig: syscall.SIGKILL}, {Sig: syscall.SIGKILL, NoGuards: true}}
	pgtest.SignalCases(t, cases, "without client check", func(t *testing.T, i int, c pgtest.SignalCase) {
		dsn := pgtest.SeededDB(t)
		mon := pgtest.Connect(t, dsn)
		app := fmt.Sprintf("rehearse_restore_helper_%d_%d", os.Getpid(), i)
		pgtest.SignalHelper{
			Args: []string{"-test.run=^TestRestoreHelper$"},
			Env:  []string{restoreHelperEnv + "=" + dsn + " application_name=" + app, "REHEARSE_TEST_DSN=" + pgtest.AdminDSN()},
			Mon:  mon, App: app, Running: func() bool { return pgtest.Active(t, mon, "SELECT pg_sleep%", "application_name = $1", app) },
			NoGuardsEnv: restoreHelperNoGuards, Stays: stays, Gone: gone,
			NeverStarted: "the helper's restore never started",
			EndedAnyway:  "without the client check the statement ended anyway: this case no longer shows what it prevents",
			StillRuns:    "the restore's statement still runs on the server",
		}.Signal(t, c)
	})
}
