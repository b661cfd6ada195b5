package restore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

// A failed COMMIT is unknown unless the server answered it (a statement
// error, a cancel, a rollback) or it never went out.
func TestCommitUnknown(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"committed", nil, false},
		{"rolled back", pgx.ErrTxCommitRollback, false},
		{"deferred foreign key", &pgconn.PgError{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "23503"}, false},
		{"cancelled", &pgconn.PgError{Severity: "ERROR", SeverityUnlocalized: "ERROR", Code: "57014"}, false},
		{"server shutting down", &pgconn.PgError{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01"}, true},
		{"connection failure", &pgconn.PgError{Severity: "FATAL", Code: "08006"}, true},
		{"closed while the answer was awaited", fmt.Errorf("commit: %w", pgconn.ErrConnClosed), true},
		{"broken connection", &net.OpError{Op: "read", Err: io.ErrUnexpectedEOF}, true},
		{"client timeout", context.DeadlineExceeded, true},
	} {
		if got := restore.CommitUnknown(c.err); got != c.want {
			t.Errorf("%s (%v): unknown %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

// txid_status, asked on a new connection, tells a committed transaction
// from a rolled-back one and from one still running.
func TestCommitStatus(t *testing.T) {
	dsn := pgtest.NewDB(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn := pgtest.Connect(t, dsn)
	txid := func(tx pgx.Tx) int64 {
		var id int64
		if err := tx.QueryRow(ctx, "SELECT txid_current()").Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	tx, _ := conn.Begin(ctx)
	committed := txid(tx)
	tx.Commit(ctx)
	tx, _ = conn.Begin(ctx)
	aborted := txid(tx)
	tx.Rollback(ctx)
	tx, _ = conn.Begin(ctx)
	defer tx.Rollback(ctx)
	running := txid(tx)
	defer restore.ShortCommitStatusWait(500 * time.Millisecond)()
	for id, want := range map[int64]string{committed: "committed", aborted: "aborted", running: "in progress"} {
		if got, err := restore.CommitStatus(ctx, cfg, id); got != want || err != nil {
			t.Errorf("txid %d: %q %v, want %q", id, got, err, want)
		}
	}
}

// commitCutter is a TCP proxy to the server that, on the first COMMIT it
// sees, either forwards it and then breaks both connections before the
// answer can come back (forward), or breaks them without forwarding it.
type commitCutter struct {
	ln      net.Listener
	forward bool
	hold    bool // forward, then keep the connection open without an answer
	cut     atomic.Bool
	wg      sync.WaitGroup
	done    chan struct{}
}

func newCommitCutter(t *testing.T, server string, forward bool) *commitCutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &commitCutter{ln: ln, forward: forward, done: make(chan struct{})}
	t.Cleanup(func() { close(p.done); ln.Close(); p.wg.Wait() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			srv, err := net.Dial("tcp", server)
			if err != nil {
				client.Close()
				continue
			}
			var cut atomic.Bool // this connection's
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.serverToClient(srv, client, &cut) }()
			go func() { defer p.wg.Done(); p.clientToServer(client, srv, &cut) }()
		}
	}()
	return p
}

// serverToClient forwards the server's messages until the cut: from then
// on nothing reaches the client (the COMMIT's answer is lost).
func (p *commitCutter) serverToClient(srv, client net.Conn, cut *atomic.Bool) {
	defer client.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := srv.Read(buf)
		if cut.Load() {
			if p.hold {
				<-p.done // the client is left waiting on an open connection
			}
			return
		}
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *commitCutter) clientToServer(client, srv net.Conn, cut *atomic.Bool) {
	defer srv.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			chunk := buf[:n]
			if bytes.Contains(chunk, []byte("Q\x00\x00\x00\x0bcommit\x00")) && p.cut.CompareAndSwap(false, true) {
				cut.Store(true)
				if p.forward {
					srv.Write(chunk)
					time.Sleep(300 * time.Millisecond) // the server commits; its answer is dropped
				}
				if p.hold {
					<-p.done // no answer, no close: only the client's own timeout ends the wait
				}
				client.Close()
				return
			}
			if _, err := srv.Write(chunk); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// A restore whose COMMIT went out but whose answer was lost asks the
// server again and reports what happened: committed (the restore
// succeeded, the backup's rows are there) or, when the COMMIT never
// reached the server, the error, with the database as it was.
func TestRestoreCommitWithoutAnswer(t *testing.T) {
	for _, forward := range []bool{true, false} {
		t.Run(fmt.Sprintf("commit reached the server: %v", forward), func(t *testing.T) {
			conn, setup, p := proxiedDB(t, forward)
			b := backup(t, pgtest.Connect(t, pgtest.SeededDB(t)))
			_, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(b), Strategy: restore.Atomic, Protected: edms.Protected()})
			if !p.cut.Load() {
				t.Fatal("the proxy saw no COMMIT")
			}
			users := count(t, setup, "SELECT count(*) FROM users_user")
			if forward {
				if err != nil || users == 0 {
					t.Fatalf("the commit went through but its answer was lost: %v, %d users; want success, found out by asking again", err, users)
				}
				return
			}
			if err == nil || users != 0 || errors.Is(err, context.Canceled) {
				t.Fatalf("the COMMIT never reached the server: %v, %d users; want the error and no rows", err, users)
			}
		})
	}
}

// A COMMIT whose answer never comes, on a connection that stays open, ends
// with the client's own timeout; the server, asked again with a context of
// its own, says it committed: the restore succeeded.
func TestRestoreCommitAnswerNeverComes(t *testing.T) {
	defer restore.ShortCommitTimeout(time.Second)()
	conn, setup, p := proxiedDB(t, true)
	p.hold = true
	b := backup(t, pgtest.Connect(t, pgtest.SeededDB(t)))
	_, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(b), Strategy: restore.Atomic, Protected: edms.Protected(), StatementTimeout: -1})
	if !p.cut.Load() {
		t.Fatal("the proxy saw no COMMIT")
	}
	if users := count(t, setup, "SELECT count(*) FROM users_user"); err != nil || users == 0 {
		t.Fatalf("the commit went through, its answer never came: %v, %d users; want success, found out by asking again", err, users)
	}
}

// When the reinit's commit loses its answer and the server says it
// committed, a two-phase restore goes on with a new connection (pgx closed
// the first) and completes.
func TestTwoPhaseGoesOnAfterTheReinitCommitLostItsAnswer(t *testing.T) {
	conn, setup, p := proxiedDB(t, true)
	seeded := pgtest.Connect(t, pgtest.SeededDB(t))
	b := backup(t, seeded)
	if _, err := restore.Restore(ctx, pgtest.Connect(t, pgtest.DSN(setup.Config().Database)), restore.Options{Open: bytesOpener(b), Strategy: restore.Atomic, Protected: edms.Protected()}); err != nil {
		t.Fatal(err)
	}
	want := checksums(t, setup)
	var phases []string
	res, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(b), Strategy: restore.TwoPhase, Reinit: withReinit(false), Protected: edms.Protected(),
		Progress: func(e restore.Event) { phases = append(phases, e.Phase) }})
	if !p.cut.Load() {
		t.Fatal("the proxy saw no COMMIT")
	}
	if err != nil || res == nil {
		t.Fatalf("the reinit committed (its answer lost), then: %v; want the restore to go on and commit", err)
	}
	if !slices.Contains(phases, restore.PhaseReinitCommitted) || !slices.Contains(phases, restore.PhaseRestoreCommitted) {
		t.Errorf("phases %v: want the reinit's and the restore's commits", phases)
	}
	sameSums(t, "after the two-phase restore", want, checksums(t, setup))
}

// proxiedDB is an empty database with the reference schema, a connection
// to it through a commitCutter (forwarding the first COMMIT or not), and
// one without.
func proxiedDB(t *testing.T, forward bool) (proxied, direct *pgx.Conn, p *commitCutter) {
	t.Helper()
	dsn := pgtest.NewDB(t)
	direct = pgtest.Connect(t, dsn)
	if err := edms.Install(ctx, direct); err != nil {
		t.Fatal(err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var port uint16
	if err := direct.QueryRow(ctx, "SELECT current_setting('port')::int").Scan(&port); err != nil {
		t.Fatal(err)
	}
	p = newCommitCutter(t, fmt.Sprintf("127.0.0.1:%d", port), forward)
	proxied = pgtest.Connect(t, fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable", p.ln.Addr().(*net.TCPAddr).Port, cfg.User, cfg.Database))
	return proxied, direct, p
}
