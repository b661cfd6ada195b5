package reinit

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/pgguard"
)

// Server-side guard rails of the transactions Run and DryRun open. The
// defaults are far above what a legitimate reinit needs (seconds at a
// million rows) and far below "forever".
const (
	DefaultStatementTimeout = 10 * time.Minute
	DefaultLockTimeout      = 30 * time.Second
)

// clientCheckInterval makes the server notice a client that went away
// (killed, crashed) while a statement runs, and end the statement
// (client_connection_check_interval, PostgreSQL 14+ on Linux). A test
// switches it off, with sendCancelRequest, to show what they prevent.
var (
	clientCheckInterval = time.Second
	sendCancelRequest   = true
)

// beginGuarded opens a transaction on conn whose statements the server ends
// when they outlive the limits or the client.
func beginGuarded(ctx context.Context, conn *pgx.Conn, statement, lock time.Duration) (pgx.Tx, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	if err := setLimits(ctx, tx, statement, lock); err != nil {
		tx.Rollback(context.Background())
		return nil, err
	}
	return tx, nil
}

// setLimits sets statement_timeout and lock_timeout (0 = the default,
// negative = leave the server's value) and the client check for the rest of tx.
func setLimits(ctx context.Context, tx pgx.Tx, statement, lock time.Duration) error {
	return pgguard.SetLocal(ctx, tx, "reinit", clientCheckInterval,
		pgguard.Limit{Name: "statement_timeout", D: orDefault(statement, DefaultStatementTimeout)},
		pgguard.Limit{Name: "lock_timeout", D: orDefault(lock, DefaultLockTimeout)})
}

// cancelOnDone sends a cancel request for conn's statement as soon as ctx
// is done (pgguard.CancelOnDone).
func cancelOnDone(ctx context.Context, conn *pgx.Conn) (stop func()) {
	return pgguard.CancelOnDone(ctx, conn, sendCancelRequest)
}

// explainLimit says what to do when the server ended a statement because
// of a guard rail (and not because ctx was cancelled).
func explainLimit(ctx context.Context, err error, statement, lock time.Duration) error {
	return pgguard.Explain(ctx, err, orDefault(statement, DefaultStatementTimeout), orDefault(lock, DefaultLockTimeout), "reinit", "Config", "the data")
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}
