package restore

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/pgguard"
)

// Server-side guard rails of every transaction the engine opens. The
// defaults are far above what a legitimate restore needs (seconds per
// statement at a million rows) and far below "forever".
const (
	DefaultStatementTimeout = 10 * time.Minute
	DefaultLockTimeout      = 30 * time.Second
)

// clientCheckInterval makes the server notice a client that went away
// (killed, crashed) while a statement runs, and end the statement
// (client_connection_check_interval, PostgreSQL 14+ on Linux).
var clientCheckInterval = time.Second

// begin opens a transaction on conn whose statements the server ends when
// they outlive the limits of opts or the client.
func begin(ctx context.Context, conn *pgx.Conn, opts *Options) (pgx.Tx, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if err := setLimits(ctx, tx, opts); err != nil {
		tx.Rollback(context.Background())
		return nil, err
	}
	return tx, nil
}

// setLimits sets statement_timeout, idle_in_transaction_session_timeout
// and lock_timeout (0 = the default, negative = leave the server's value)
// and the client check for the rest of tx.
func setLimits(ctx context.Context, tx pgx.Tx, opts *Options) error {
	return pgguard.SetLocal(ctx, tx, "restore", clientCheckInterval,
		pgguard.Limit{Name: "statement_timeout", D: opts.statementTimeout()},
		pgguard.Limit{Name: "lock_timeout", D: opts.lockTimeout()},
		// A client that stops without dying (stopped, cut off) between two
		// statements holds the transaction and its locks open: as long as a
		// statement may run is as long as it may idle.
		pgguard.Limit{Name: "idle_in_transaction_session_timeout", D: opts.statementTimeout()})
}

func (o *Options) statementTimeout() time.Duration {
	if o.StatementTimeout == 0 {
		return DefaultStatementTimeout
	}
	return o.StatementTimeout
}

func (o *Options) lockTimeout() time.Duration {
	if o.LockTimeout == 0 {
		return DefaultLockTimeout
	}
	return o.LockTimeout
}

// cancelOnDone sends a cancel request for conn's statement as soon as ctx
// is done (pgguard.CancelOnDone).
func cancelOnDone(ctx context.Context, conn *pgx.Conn) (stop func()) {
	return pgguard.CancelOnDone(ctx, conn, true)
}

// explainLimit says what to do when the server ended a statement because
// of a guard rail (and not because ctx was cancelled).
func explainLimit(ctx context.Context, err error, opts *Options) error {
	return pgguard.Explain(ctx, err, opts.statementTimeout(), opts.lockTimeout(), "restore", "Options", "the backup")
}

// closeOnDone wraps open so that every stream it opens is closed as soon as
// ctx is done: a read blocked on a stalled backup (a pipe, a network share)
// then returns, wherever the engine is reading, instead of hanging.
func closeOnDone(ctx context.Context, open Opener) Opener {
	return func() (io.ReadCloser, error) {
		rc, err := open()
		if err != nil {
			return nil, err
		}
		if lb, ok := rc.(*limitedBackup); ok { // keep the scanner's limits in sight
			wrapped := *lb
			wrapped.ReadCloser = newClosedOnDone(ctx, lb.ReadCloser)
			return &wrapped, nil
		}
		return newClosedOnDone(ctx, rc), nil
	}
}

// closedOnDone is a backup stream that ctx closes when it is done.
type closedOnDone struct {
	io.ReadCloser
	once    sync.Once
	err     error
	unwatch func() bool
}

func newClosedOnDone(ctx context.Context, rc io.ReadCloser) *closedOnDone {
	c := &closedOnDone{ReadCloser: rc}
	c.unwatch = context.AfterFunc(ctx, func() { c.Close() })
	return c
}

// Close closes the stream once, whether the engine or ctx does it first.
func (c *closedOnDone) Close() error {
	c.once.Do(func() {
		c.unwatch()
		c.err = c.ReadCloser.Close()
	})
	return c.err
}
