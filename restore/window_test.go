package restore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/pg/integrity"
	"github.com/rehearse-dev/rehearse/restore"
)

// A two-phase restore that fails after its reinit committed returns a
// WindowError whose tables are what the system really lost: the rows
// before the reinit, the rows left, and the rows the backup holds; the
// same window is announced before the reinit commits. Restoring the backup
// in one transaction with the reinit brings everything back.
func TestWindowErrorSaysWhatWasLost(t *testing.T) {
	cases := []struct {
		name string
		// fault, called on every event, breaks the restore after the reinit committed.
		fault func(e restore.Event, killer *pgx.Conn, pid uint32, cancel func()) error
		want  string
	}{
		{"failure between the phases", nil, "between reinit and restore: injected"},
		{"connection terminated during the load", func(e restore.Event, killer *pgx.Conn, pid uint32, _ func()) error {
			if e.Phase == restore.PhaseTableLoaded && e.Table == "documents_document" {
				_, err := killer.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
				return err
			}
			return nil
		}, "the restore failed"},
		{"stopped during the load", func(e restore.Event, _ *pgx.Conn, _ uint32, cancel func()) error {
			if e.Phase == restore.PhaseTableLoaded && e.Table == "documents_document" {
				cancel()
			}
			return nil
		}, "restore stopped: context canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.SeededDB(t)
			conn, killer := pgtest.Connect(t, dsn), pgtest.Connect(t, dsn)
			before := checksums(t, killer)
			b := backup(t, conn)
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var announced *restore.Window
			opts := restore.Options{Open: bytesOpener(b), Strategy: restore.TwoPhase, Reinit: withReinit(true), Protected: edms.Protected()}
			opts.Progress = func(e restore.Event) {
				if e.Phase == restore.PhaseValidated {
					announced = e.Window
				}
				if c.fault != nil {
					if err := c.fault(e, killer, conn.PgConn().PID(), cancel); err != nil {
						t.Error(err)
					}
				}
			}
			if c.fault == nil {
				opts.BetweenPhases = func(context.Context) error { return errors.New("injected") }
			}
			_, err := restore.Restore(rctx, conn, opts)
			var we *restore.WindowError
			if !errors.As(err, &we) || !strings.Contains(err.Error(), c.want) || we.Unknown != "" {
				t.Fatalf("restore returned %v, want a WindowError with %q", err, c.want)
			}
			t.Logf("the error says:\n%v", err)
			if announced == nil || !sameWindow(announced, we.Window) {
				t.Errorf("announced before the commit: %+v, the error says %+v", announced, we.Window)
			}
			matchesLoss(t, we.Window, before, checksums(t, killer))
			fresh := pgtest.Connect(t, dsn)
			if _, err := restore.Restore(ctx, fresh, restore.Options{Open: bytesOpener(b), Strategy: restore.Atomic, Reinit: withReinit(true), Protected: edms.Protected()}); err != nil {
				t.Fatalf("recover: %v", err)
			}
			sameSums(t, "recovered", withoutSequences(before), withoutSequences(checksums(t, fresh)))
		})
	}
}

func sameWindow(a, b *restore.Window) bool {
	if len(a.Tables) != len(b.Tables) {
		return false
	}
	for i := range a.Tables {
		if a.Tables[i] != b.Tables[i] {
			return false
		}
	}
	return true
}

// matchesLoss checks a window against the database: every table whose
// rows changed is listed with its rows before and now, and the backup
// (taken before) holds what was there.
func matchesLoss(t *testing.T, w *restore.Window, before, now map[string]integrity.Checksum) {
	t.Helper()
	listed := map[string]bool{}
	for _, l := range w.Tables {
		listed[l.Table] = true
		if l.Before != before[l.Table].Rows || l.Now != now[l.Table].Rows || l.Backup != before[l.Table].Rows {
			t.Errorf("%s: the window says %d -> %d (backup %d), the database had %d and has %d", l.Table, l.Before, l.Now, l.Backup, before[l.Table].Rows, now[l.Table].Rows)
		}
	}
	for table, b := range before {
		if !strings.HasPrefix(table, "sequence ") && b.Rows != now[table].Rows && !listed[table] {
			t.Errorf("%s lost rows (%d -> %d) the window does not list", table, b.Rows, now[table].Rows)
		}
	}
	if len(w.Tables) == 0 {
		t.Error("the window lists no table")
	}
}

// withoutSequences drops the sequences: a restore moves them past max(id),
// not back to where they were.
func withoutSequences(sums map[string]integrity.Checksum) map[string]integrity.Checksum {
	out := map[string]integrity.Checksum{}
	for k, v := range sums {
		if !strings.HasPrefix(k, "sequence ") {
			out[k] = v
		}
	}
	return out
}

// A two-phase restore stopped while its reinit commits (here the commit
// runs a slow deferred trigger) waits for the server's answer instead of
// abandoning the commit: the server cancels it, the reinit is rolled back,
// and the restore says it stopped with nothing changed — not that the
// reinit may have committed.
func TestStopDuringTheReinitCommitIsAnswered(t *testing.T) {
	t.Parallel()
	dsn := pgtest.SeededDB(t)
	conn, mon := pgtest.Connect(t, dsn), pgtest.Connect(t, dsn)
	if _, err := mon.Exec(ctx, `CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END $$;
		CREATE CONSTRAINT TRIGGER slow_commit AFTER DELETE ON users_user DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit();
		ALTER TABLE users_user ENABLE ALWAYS TRIGGER slow_commit`); err != nil {
		t.Fatal(err)
	}
	before := checksums(t, mon)
	b := backup(t, conn)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pid := conn.PgConn().PID()
	go func() {
		if pgtest.WaitFor(20*time.Second, func() bool { return pgtest.Active(t, mon, "commit", "pid = $1", pid) }) {
			cancel()
		}
	}()
	_, err := restore.Restore(rctx, conn, restore.Options{Open: bytesOpener(b), Strategy: restore.TwoPhase, Reinit: withReinit(true), Protected: edms.Protected()})
	var we *restore.WindowError
	if err == nil || errors.As(err, &we) || !errors.Is(err, context.Canceled) {
		t.Fatalf("restore returned %v, want it stopped with the reinit rolled back", err)
	}
	t.Log(err)
	sameSums(t, "stopped during the reinit's commit", before, checksums(t, mon))
}
