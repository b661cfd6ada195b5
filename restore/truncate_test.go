package restore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/pg/integrity"
	"github.com/rehearse-dev/rehearse/restore"
)

// populatedDB is a database holding a generated backup of users users (ten
// documents each), and the backup.
func populatedDB(t *testing.T, users int) (string, []byte) {
	t.Helper()
	data := generated(t, fixtures.LargeSpec, users)
	dsn := pgtest.NewDB(t)
	conn := pgtest.Connect(t, dsn)
	if err := edms.Install(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(data), Strategy: restore.Atomic, Protected: edms.Protected()}); err != nil {
		t.Fatal(err)
	}
	return dsn, data
}

// loginProbe runs, from another session, the query a login runs, with a
// short lock timeout: it fails when the restore holds a lock that blocks
// readers of the user table. It also reports whether the restore holds an
// ACCESS EXCLUSIVE lock on documents_document (the table was truncated).
func loginProbe(t *testing.T, dsn string) func() (loginErr error, docsLocked bool) {
	probe := pgtest.Connect(t, dsn)
	if _, err := probe.Exec(ctx, "SET lock_timeout = '300ms'"); err != nil {
		t.Fatal(err)
	}
	return func() (error, bool) {
		var id int64
		err := probe.QueryRow(ctx, "SELECT id FROM users_user WHERE username = 'admin'").Scan(&id)
		var locked bool
		if qerr := probe.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
			WHERE c.relname = 'documents_document' AND l.mode = 'AccessExclusiveLock' AND l.granted AND l.pid <> pg_backend_pid())`).Scan(&locked); qerr != nil {
			t.Fatal(qerr)
		}
		return err, locked
	}
}

// An atomic restore with reinit over a populated database empties the
// tables the backup replaces with TRUNCATE, which locks them until commit,
// but never the user table: a login's query is answered while the restore
// loads. With the user table not kept readable, the same query times out
// on the lock, which shows the probe can fail.
func TestAtomicRestoreKeepsUserTableReadable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keep      []string
		wantLogin bool
	}{{"default", nil, true}, {"nothing kept readable", []string{}, false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn, data := populatedDB(t, 40)
			conn := pgtest.Connect(t, dsn)
			want := rowCounts(t, conn)
			// Without group rows (the backup brings them back) nothing
			// that is not replaced refers to the user table: it could be
			// truncated too.
			if _, err := conn.Exec(ctx, "DELETE FROM users_user_groups"); err != nil {
				t.Fatal(err)
			}
			probe := loginProbe(t, dsn)
			var mu sync.Mutex
			var logins, blocked, truncated int
			opts := restore.Options{Open: bytesOpener(data), Strategy: restore.Atomic, Reinit: withReinit(true), Protected: edms.Protected(), KeepReadable: tc.keep,
				Progress: func(e restore.Event) {
					if e.Phase != restore.PhaseTableLoaded {
						return
					}
					err, locked := probe()
					mu.Lock()
					defer mu.Unlock()
					var pgErr *pgconn.PgError
					switch {
					case err == nil:
						logins++
					case errors.As(err, &pgErr) && pgErr.Code == "55P03":
						blocked++
					default:
						t.Errorf("login query: %v", err)
					}
					if locked {
						truncated++
					}
				}}
			res, err := restore.Restore(ctx, conn, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !res.FastPath || truncated == 0 {
				t.Fatalf("fast path %v, documents_document locked in %d of the table loads: the truncation did not run", res.FastPath, truncated)
			}
			if tc.wantLogin && (blocked > 0 || logins == 0) {
				t.Errorf("login query answered %d times, blocked %d times while the restore loaded; want never blocked", logins, blocked)
			}
			if !tc.wantLogin && blocked == 0 {
				t.Errorf("login query never blocked with the user table not kept readable (%d answered): the probe cannot fail", logins)
			}
			if got := rowCounts(t, conn); !equalCounts(got, want) {
				t.Errorf("rows after the restore %v, want the backup's %v", got, want)
			}
		})
	}
}

// A table the backup does not wholly replace keeps the rows whose keys the
// backup lacks: it is not truncated, for both strategies, whether the
// missing key lies past the backup's keys or in a gap between them.
func TestRestoreKeepsRowsTheBackupLacks(t *testing.T) {
	for _, s := range strategies() {
		for _, gap := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/gap=%v", s, gap), func(t *testing.T) {
				t.Parallel()
				dsn, data := populatedDB(t, 10)
				conn := pgtest.Connect(t, dsn)
				kept := int64(900001)
				if gap { // the backup without audit event 3, which the database keeps
					kept = 3
					data = regexp.MustCompile(`(?m)^\{"model": "audit.auditevent", "pk": 3, .*\n`).ReplaceAll(data, nil)
				} else if _, err := conn.Exec(ctx, `INSERT INTO audit_auditevent (id, actor_id, action, object_repr, details, created_at) VALUES (900001, 5, 'LOGIN', 'kept', '{}', now())`); err != nil {
					t.Fatal(err)
				}
				before := rowCounts(t, conn)
				if _, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(data), Strategy: s, Protected: edms.Protected()}); err != nil {
					t.Fatal(err)
				}
				if n := count(t, conn, fmt.Sprintf("SELECT count(*) FROM audit_auditevent WHERE id = %d", kept)); n != 1 {
					t.Fatalf("the row %d the backup lacks: %d rows, want 1", kept, n)
				}
				if after := rowCounts(t, conn); after["audit_auditevent"] != before["audit_auditevent"] || after["documents_document"] != before["documents_document"] {
					t.Errorf("rows before %v, after %v", before, after)
				}
			})
		}
	}
}

// A reinit that ran with its triggers on (a user trigger anywhere it
// deletes) leaves foreign-key trigger events pending, which TRUNCATE
// refuses: the restore falls back to deleting the rows, and succeeds. (A
// document the backup lacks keeps its table from being emptied before the
// reinit; the reinit deletes it, with its author.)
func TestRestoreWithPendingTriggerEvents(t *testing.T) {
	dsn, data := populatedDB(t, 10)
	conn := pgtest.Connect(t, dsn)
	want := rowCounts(t, conn)
	if _, err := conn.Exec(ctx, `CREATE FUNCTION keep_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
		CREATE TRIGGER keep_row BEFORE UPDATE ON users_user FOR EACH ROW EXECUTE FUNCTION keep_row();
		INSERT INTO documents_document (id, document_number, title, status, author_id, created_at, updated_at)
		VALUES (900001, 'DOC-EXTRA', 'extra', 'DRAFT', 1, now(), now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(data), Strategy: restore.Atomic, Reinit: withReinit(true), Protected: edms.Protected()}); err != nil {
		t.Fatal(err)
	}
	if got := rowCounts(t, conn); !equalCounts(got, want) {
		t.Errorf("rows after the restore %v, want the backup's %v", got, want)
	}
}

func equalCounts(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// Over a populated database, an atomic restore (which empties the tables
// the backup wholly replaces before its reinit) leaves exactly what a
// two-phase one (whose reinit deletes row by row and commits) leaves:
// the same rows, checksums and sequences; with rows the backup lacks too
// (a document of a user the reinit deletes, an audit event of admin's it
// keeps). Restoring a database's own backup gives it back unchanged.
func TestAtomicOverPopulatedMatchesTwoPhase(t *testing.T) {
	for _, extra := range []bool{false, true} {
		sums := map[restore.Strategy]map[string]integrity.Checksum{}
		var before map[string]integrity.Checksum
		for _, s := range strategies() {
			dsn, data := populatedDB(t, 20)
			conn := pgtest.Connect(t, dsn)
			before = checksums(t, conn)
			if extra {
				if _, err := conn.Exec(ctx, `INSERT INTO documents_document (id, document_number, title, status, author_id, created_at, updated_at)
					VALUES (900001, 'DOC-EXTRA', 'extra', 'DRAFT', 1, now(), now());
					INSERT INTO audit_auditevent (id, actor_id, action, object_repr, details, created_at) VALUES (900001, 5, 'LOGIN', 'kept', '{}', '2025-01-01')`); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(data), Strategy: s, Reinit: withReinit(true), Protected: edms.Protected()}); err != nil {
				t.Fatal(err)
			}
			sums[s] = checksums(t, conn)
			if extra {
				kept := count(t, conn, "SELECT count(*) FROM audit_auditevent WHERE id = 900001")
				gone := count(t, conn, "SELECT count(*) FROM documents_document WHERE id = 900001")
				if kept != 1 || gone != 0 {
					t.Errorf("%s: admin's audit event the backup lacks: %d rows, want 1 (kept); the deleted user's document: %d rows, want 0", s, kept, gone)
				}
			}
		}
		sameSums(t, fmt.Sprintf("atomic vs two-phase (rows the backup lacks: %v)", extra), sums[restore.TwoPhase], sums[restore.Atomic])
		if !extra {
			sameSums(t, "own backup restored", before, sums[restore.Atomic])
		}
	}
}

func count(t *testing.T, conn *pgx.Conn, sql string) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// A session reading a table the backup wholly replaces (a lock TRUNCATE
// would wait for) makes the restore delete the rows instead: it neither
// waits for the reader (here up to a 20 s lock timeout) nor fails.
func TestRestoreDoesNotWaitForReaders(t *testing.T) {
	for _, s := range strategies() {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			dsn, data := populatedDB(t, 10)
			conn := pgtest.Connect(t, dsn)
			want := rowCounts(t, conn)
			reader, err := pgtest.Connect(t, dsn).Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer reader.Rollback(ctx)
			if _, err := reader.Exec(ctx, "SELECT count(*) FROM documents_document"); err != nil {
				t.Fatal(err)
			}
			opts := restore.Options{Open: bytesOpener(data), Strategy: s, Reinit: withReinit(true), Protected: edms.Protected(), LockTimeout: 20 * time.Second}
			t0 := time.Now()
			if _, err := restore.Restore(ctx, conn, opts); err != nil {
				t.Fatalf("with a reader on documents_document: %v", err)
			}
			if took := time.Since(t0); took > 10*time.Second {
				t.Errorf("the restore took %s with a reader on documents_document: it waited for the reader's lock", took)
			}
			if got := rowCounts(t, conn); !equalCounts(got, want) {
				t.Errorf("rows after the restore %v, want the backup's %v", got, want)
			}
		})
	}
}

// Over a populated database a two-phase restore empties the tables the
// backup wholly replaces at its reinit, as the atomic one does: in the
// window they hold no rows, the window lists them as emptied with the rows
// they held, and the user table keeps the admin (row by row). A backup
// that only PostgreSQL refuses (a jsonb number beyond numeric's range,
// which the engine's own checks let through) is refused by the rehearsal,
// before anything commits: the database is left as it was.
func TestTwoPhaseOverPopulatedEmptiesReplacedTables(t *testing.T) {
	dsn, data := populatedDB(t, 10)
	conn := pgtest.Connect(t, dsn)
	want := rowCounts(t, conn)
	before := checksums(t, conn)
	bad := bytes.Replace(data, []byte(`"details": {`), []byte(`"details": {"n": 1e999999, `), 1)
	if bytes.Equal(bad, data) {
		t.Fatal("no audit event's details to break in the generated backup")
	}
	_, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(bad), Strategy: restore.TwoPhase, Reinit: withReinit(true), Protected: edms.Protected()})
	var we *restore.WindowError
	if err == nil || errors.As(err, &we) {
		t.Fatalf("a jsonb number beyond numeric's range: %v, want a refusal before the reinit commits", err)
	}
	sameSums(t, "refused backup", before, checksums(t, conn))

	var window *restore.Window
	var inWindow map[string]int64
	opts := restore.Options{Open: bytesOpener(data), Strategy: restore.TwoPhase, Reinit: withReinit(true), Protected: edms.Protected(),
		Progress: func(e restore.Event) {
			if e.Phase == restore.PhaseReinitCommitted {
				window = e.Window
			}
		},
		BetweenPhases: func(context.Context) error {
			inWindow = rowCounts(t, pgtest.Connect(t, dsn))
			return nil
		}}
	res, err := restore.Restore(ctx, conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	if pv := res.Prevalidation; pv == nil || pv.Rehearsed {
		t.Errorf("prevalidation %+v: the reference schema is proven by the engine's checks, without the rehearsal", pv)
	}
	if got := rowCounts(t, conn); !equalCounts(got, want) {
		t.Errorf("rows after the restore %v, want the backup's %v", got, want)
	}
	if inWindow["documents_document"] != 0 || inWindow["users_user"] != 1 {
		t.Errorf("in the window: %d documents, %d users; want 0 (emptied) and 1 (admin)", inWindow["documents_document"], inWindow["users_user"])
	}
	if window == nil {
		t.Fatal("no window announced at the reinit's commit")
	}
	emptied := map[string]restore.TableLoss{}
	for _, l := range window.Tables {
		if l.Emptied {
			emptied[l.Table] = l
		}
	}
	for _, table := range []string{"documents_document", "documents_documentversion", "audit_auditevent"} {
		l, ok := emptied[table]
		if !ok || l.Before != want[table] || l.Now != 0 || l.Backup != want[table] {
			t.Errorf("window's %s: %+v (emptied: %v), want emptied from %d rows to 0, the backup holding %d", table, l, ok, want[table], want[table])
		}
	}
	if _, ok := emptied["users_user"]; ok {
		t.Error("the window lists users_user as emptied: the user table is kept readable, never truncated")
	}
	for _, line := range window.Lines("") {
		if strings.HasPrefix(line, "documents_document ") && !strings.Contains(line, "emptied with TRUNCATE") {
			t.Errorf("window line %q does not say the table was emptied", line)
		}
	}
}
