// Package guard keeps destructive steps off databases that are not meant for
// them. A database is a rehearsal target when it holds the marker table
// rehearse_target. A table, not a database comment, because CREATE DATABASE
// ... TEMPLATE copies tables but not comments: every database cloned from a
// marked template is marked too, while a production database is never marked
// unless someone marks it on purpose.
package guard

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Table is the marker table.
const Table = "rehearse_target"

// Querier is a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Mark makes the database a rehearsal target.
func Mark(ctx context.Context, conn *pgx.Conn, note string) error {
	_, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+Table+` (
    id        smallint PRIMARY KEY CHECK (id = 1),
    marked_at timestamptz NOT NULL DEFAULT now(),
    note      text NOT NULL
);
COMMENT ON TABLE `+Table+` IS 'rehearse: this database is a rehearsal target; destructive rehearsal steps are allowed here';`)
	if err != nil {
		return fmt.Errorf("mark the database as a rehearsal target: %w", err)
	}
	_, err = conn.Exec(ctx, `INSERT INTO `+Table+` (id, note) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, note)
	return err
}

// ErrNotMarked is returned (wrapped in *NotMarkedError) for unmarked databases.
var ErrNotMarked = errors.New("database is not marked as a rehearsal target")

// NotMarkedError says which database was refused and what to do.
type NotMarkedError struct {
	Database string
	Step     string
}

func (e *NotMarkedError) Error() string {
	return fmt.Sprintf("refusing to %s: database %q is not marked as a rehearsal target (it has no table %s). "+
		"rehearse only destroys data in databases made for rehearsals: create one with 'rehearse init --dsn DSN', "+
		"or, if this database really is a disposable copy, mark it with 'rehearse mark --dsn DSN' "+
		"(or pass --allow-unmarked for this run)", e.Step, e.Database, Table)
}

func (e *NotMarkedError) Unwrap() error { return ErrNotMarked }

// Check returns nil for a marked database and a *NotMarkedError otherwise.
// step names what would have been done ("reinit", "restore", ...).
func Check(ctx context.Context, q Querier, step string) error {
	var marked bool
	var db string
	err := q.QueryRow(ctx, `SELECT to_regclass('`+Table+`') IS NOT NULL AND EXISTS (SELECT 1 FROM pg_class WHERE relname = '`+Table+`'), current_database()`).Scan(&marked, &db)
	if err != nil {
		return fmt.Errorf("check the rehearsal marker: %w", err)
	}
	if !marked {
		return &NotMarkedError{Database: db, Step: step}
	}
	return nil
}
