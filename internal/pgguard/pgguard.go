// Package pgguard holds the server-side guard rails the engines (restore,
// reinit) put on their transactions: timeouts the server enforces even when
// rehearse is gone, a check that notices a client that died, and a cancel
// request sent the moment the caller gives up.
package pgguard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// Explain says what to do when the server ended a statement because of a
// guard rail (and not because ctx was cancelled): what names the engine,
// knobs its options ("Options", "Config"), data what it works on.
func Explain(ctx context.Context, err error, statement, lock time.Duration, what, knobs, data string) error {
	var pgErr *pgconn.PgError
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		// The server ended the statement because ctx is done (our cancel
		// request, or pgx's): say so, so callers can tell a deadline or
		// an interrupt from the server's own refusal with errors.Is.
		return fmt.Errorf("%w (stopped: %w)", err, ctx.Err())
	}
	if err == nil || ctx.Err() != nil || !errors.As(err, &pgErr) {
		return err
	}
	switch {
	case pgErr.Code == "57014" && strings.Contains(pgErr.Message, "statement timeout"): // query_canceled
		return fmt.Errorf("%w (a statement ran longer than the statement timeout, %s: raise %s.StatementTimeout if %s is that large)", err, statement, knobs, data)
	case pgErr.Code == "55P03": // lock_not_available
		return fmt.Errorf("%w (another session held a lock the %s needs for longer than the lock timeout, %s: retry when it is done, or raise %s.LockTimeout)", err, what, lock, knobs)
	}
	return err
}
