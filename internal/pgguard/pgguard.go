// Package pgguard holds the server-side guard rails the engines (restore,
// reinit) put on their transactions: timeouts the server enforces even when
// rehearse is gone, a check that notices a client that died, and a cancel
// request sent the moment the caller gives up.
package pgguard

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Limit is one SET LOCAL of a duration setting; zero or negative leaves the
// server's value.
type Limit struct {
	Name string // statement_timeout, lock_timeout, ...
	D    time.Duration
}

// SetLocal sets the limits for the rest of tx and, when clientCheck is
// positive, client_connection_check_interval: the server then ends a
// statement whose client went away. what names the engine in errors.
func SetLocal(ctx context.Context, tx pgx.Tx, what string, clientCheck time.Duration, limits ...Limit) error {
	sql := ""
	for _, l := range limits {
		if l.D > 0 {
			sql += fmt.Sprintf("SET LOCAL %s = %d;", l.Name, max(l.D.Milliseconds(), 1))
		}
	}
	if sql != "" {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: set the statement and lock timeouts: %w", what, err)
		}
	}
	if clientCheck <= 0 {
		return nil
	}
	// Not every server has the setting (before 14) or allows it (non-Linux):
	// try it in a savepoint, so that a refusal leaves the transaction usable.
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	if _, err := sp.Exec(ctx, fmt.Sprintf("SET LOCAL client_connection_check_interval = %d", clientCheck.Milliseconds())); err != nil {
		return sp.Rollback(ctx)
	}
	return sp.Commit(ctx)
}

// CancelOnDone sends the server a cancel request for conn's running
// statement as soon as ctx is done (unless send is false, for tests that
// show what it prevents). pgx sends one too, from a goroutine, when it gives
// the connection up; this one is out before the engine returns, so a
// program that exits right after (on Ctrl-C) does not lose it. The returned
// stop ends the watch.
func CancelOnDone(ctx context.Context, conn *pgx.Conn, send bool) (stop func()) {
	done := make(chan struct{})
	unwatch := context.AfterFunc(ctx, func() {
		defer close(done)
		if !send {
			return
		}
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.PgConn().CancelRequest(c) // best effort: the client check and timeouts remain
	})
	return func() {
		if !unwatch() {
			<-done // already fired: let the request out before the caller goes on
		}
	}
}
