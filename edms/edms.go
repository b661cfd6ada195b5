// Package edms is the reference implementation of the system rehearsed: a
// Django REST Framework + simplejwt document-management backend. It holds
// the schema (as Django makes it), the reinit settings of its
// `system_reinit`, and token revocation; the HTTP API is in edms/server.
package edms

import (
	"cmp"
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms/password"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/pg/guard"
	"github.com/rehearse-dev/rehearse/reinit"
	"github.com/rehearse-dev/rehearse/restore"
)

//go:embed schema.sql
var schemaSQL string

// RevocationTable holds the token cutoff. It is never backed up or restored.
const RevocationTable = "rehearse_token_revocation"

// UserTable is the Django user model's table.
const UserTable = "users_user"

// DefaultAdminPassword is what the system's reinit sets for admin.
const DefaultAdminPassword = "test123"

// Protected lists the tables that backups skip and restores refuse: token
// bookkeeping and the rehearsal-target marker.
func Protected() []string { return []string{RevocationTable, guard.Table} }

// Install creates the reference schema in an empty database and marks the
// database as a rehearsal target (package guard), both in guard.DefaultSchema,
// the schema the engine and the guard read: never wherever the session's
// search_path (from the DSN or ALTER DATABASE/ROLE ... SET) happens to point,
// and a lookalike users_user elsewhere on that path neither stops it nor is
// taken for the schema. All of it commits or nothing does.
func Install(ctx context.Context, conn *pgx.Conn) error {
	schema := guard.DefaultSchema
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var schemaExists bool
	var kind *string
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = $1),
       (SELECT c.relkind::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND c.relname = $2)`,
		schema, UserTable).Scan(&schemaExists, &kind)
	if err != nil {
		return err
	}
	if !schemaExists {
		return fmt.Errorf("the database has no schema %q, where rehearse writes; create it (CREATE SCHEMA %s) or use another database", schema, schema)
	}
	if kind != nil {
		return fmt.Errorf("the database already has a %s %s.%s; rehearse init wants an empty database (create one with: createdb NAME)", relkindName(*kind), schema, UserTable)
	}
	// pg_temp last: a temporary users_user must not capture the foreign keys.
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = "+pgx.Identifier{schema}.Sanitize()+", pg_temp"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, schemaSQL); err != nil {
		return err
	}
	// Mark runs on the connection, so inside tx: marked only if installed.
	if err := guard.Mark(ctx, conn, "created by rehearse init"); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// relkindName names a pg_class.relkind.
func relkindName(kind string) string {
	switch kind {
	case "r", "p":
		return "table"
	case "v":
		return "view"
	case "m":
		return "materialized view"
	case "S":
		return "sequence"
	case "f":
		return "foreign table"
	case "i", "I":
		return "index"
	}
	return "relation of kind " + kind
}

// Seed loads a fixture into a database that has the reference schema.
func Seed(ctx context.Context, conn *pgx.Conn, f *fixtures.Fixture) (*restore.Result, error) {
	return restore.Restore(ctx, conn, RestoreOptions(f.Open, restore.Atomic, nil))
}

// RestoreOptions are the restore of a backup (read from open) into the
// reference schema: the protected tables are refused, and with a reinit
// configuration (ReinitConfig, perhaps adjusted) the system is emptied
// first, the system's with_reinit: in the restore's transaction (atomic) or
// in one committed before it (two-phase). Callers add progress, hooks and
// defects to the result.
func RestoreOptions(open restore.Opener, strategy restore.Strategy, withReinit *reinit.Config) restore.Options {
	opts := restore.Options{Open: open, Strategy: strategy, Protected: Protected()}
	if withReinit != nil {
		opts.Reinit = ReinitFunc(*withReinit)
	}
	return opts
}

// ReinitFunc is the reinit of cfg as a restore runs it (Options.Reinit),
// reporting from its plan what it did to each table.
func ReinitFunc(cfg reinit.Config) func(ctx context.Context, tx pgx.Tx) ([]restore.ReinitEffect, error) {
	return func(ctx context.Context, tx pgx.Tx) ([]restore.ReinitEffect, error) {
		plan, err := reinit.Apply(ctx, tx, cfg)
		if err != nil {
			return nil, err
		}
		return Effects(plan, cmp.Or(cfg.UserTable, UserTable)), nil
	}
}

// Effects are a reinit plan's effects on each table; a recreated admin is
// a row of users after the reinit.
func Effects(plan *reinit.Plan, users string) []restore.ReinitEffect {
	out := make([]restore.ReinitEffect, 0, len(plan.Tables))
	for _, t := range plan.Tables {
		e := restore.ReinitEffect{Table: t.Table, Before: t.Before, After: t.Before - t.Deleted, Nulled: t.Nulled}
		if t.Table == users && plan.AdminAction == "recreated" {
			e.After++
		}
		out = append(out, e)
	}
	return out
}

// HashPassword hashes a password as the reference system stores it.
func HashPassword(plain string) (string, error) {
	return password.Make(plain, password.NewSalt(), password.DefaultIterations)
}

// ReinitConfig is the system's system_reinit: keep admin, reset its password to
// defaultPassword ("" = test123), delete everyone else and what hangs off
// them, reset sequences, and revoke every token issued so far (unless
// revokeTokens is false: a defect that reproduces plain simplejwt).
func ReinitConfig(defaultPassword string, revokeTokens bool) reinit.Config {
	cfg := reinit.Config{
		UserTable:       UserTable,
		AdminUsername:   "admin",
		AdminEmail:      "admin@edms.local",
		DefaultPassword: cmp.Or(defaultPassword, DefaultAdminPassword),
		Hash:            HashPassword,
		Protected:       Protected(),
	}
	if revokeTokens {
		cfg.AfterApply = func(ctx context.Context, tx pgx.Tx) error { return RevokeAll(ctx, tx, time.Now()) }
	}
	return cfg
}

// RevokeAll revokes every token issued up to and including the second of now:
// tokens carry iat in whole seconds, so the cutoff is the next second, and the
// server issues tokens with iat no earlier than the cutoff (see IssueTime).
// The cutoff moves forward by at least one second each time: a token issued
// between two reinits in the same second carries iat = the first cutoff, and
// the second reinit must revoke it too.
func RevokeAll(ctx context.Context, tx pgx.Tx, now time.Time) error {
	cutoff := now.Unix() + 1
	_, err := tx.Exec(ctx, `INSERT INTO `+RevocationTable+` (id, revoked_before) VALUES (1, $1)
ON CONFLICT (id) DO UPDATE SET revoked_before = GREATEST(`+RevocationTable+`.revoked_before + 1, EXCLUDED.revoked_before)`, cutoff)
	if err != nil {
		return fmt.Errorf("revoke tokens: %w", err)
	}
	return nil
}

// Querier reads one row.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// RevokedBefore returns the cutoff: tokens with iat earlier than it are refused.
func RevokedBefore(ctx context.Context, q Querier) (int64, error) {
	var cutoff int64
	err := q.QueryRow(ctx, `SELECT COALESCE(max(revoked_before), 0) FROM `+RevocationTable).Scan(&cutoff)
	return cutoff, err
}

// IssueTime is the iat for a token issued now: never before the cutoff, so a
// token issued in the same second as a reinit, but after it, stays valid.
func IssueTime(now time.Time, cutoff int64) time.Time {
	if now.Unix() < cutoff {
		return time.Unix(cutoff, 0)
	}
	return now
}
