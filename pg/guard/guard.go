// Package guard keeps destructive steps off databases that are not meant for
// them. A database is a rehearsal target when the schema the engine writes
// (public unless configured) holds the marker table rehearse_target with the
// row Mark writes. A table, not a database comment, because CREATE DATABASE
// ... TEMPLATE copies tables but not comments: every database cloned from a
// marked template is marked too, while a production database is never marked
// unless someone marks it on purpose.
//
// The marker is looked up by schema and name in pg_catalog, never through
// the search path: a view, sequence, index or type of that name, or a table
// in another schema that the session's search_path happens to reach first,
// does not mark the schema that reinit and restore write.
package guard

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Table is the marker table.
const Table = "rehearse_target"

// DefaultSchema is the schema Check and Mark look at: the one the engine
// writes unless configured otherwise.
const DefaultSchema = "public"

// Querier is a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Mark makes the database a rehearsal target (its public schema).
func Mark(ctx context.Context, conn *pgx.Conn, note string) error {
	return MarkSchema(ctx, conn, DefaultSchema, note)
}

// MarkSchema makes schema ("" = public) of the database a rehearsal target.
// It refuses to adopt a relation of that name that is not the marker table.
func MarkSchema(ctx context.Context, conn *pgx.Conn, schema, note string) error {
	schema = schemaOrDefault(schema)
	st, err := inspect(ctx, conn, schema)
	if err != nil {
		return err
	}
	if st.kind != "" && st.kind != "r" {
		return fmt.Errorf("cannot mark the database: %s already exists and is %s, not the marker table; drop it or mark another database", st.qualified(), kindName(st.kind))
	}
	if st.kind == "r" && !st.shaped {
		return fmt.Errorf("cannot mark the database: %s exists but is not the table rehearse mark creates (it lacks smallint id and text note); drop it or mark another database", st.qualified())
	}
	qualified := pgx.Identifier{schema, Table}.Sanitize()
	_, err = conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+qualified+` (
    id        smallint PRIMARY KEY CHECK (id = 1),
    marked_at timestamptz NOT NULL DEFAULT now(),
    note      text NOT NULL
);
COMMENT ON TABLE `+qualified+` IS 'rehearse: this database is a rehearsal target; destructive rehearsal steps are allowed here';`)
	if err != nil {
		return fmt.Errorf("mark the database as a rehearsal target: %w", err)
	}
	if _, err = conn.Exec(ctx, `INSERT INTO `+qualified+` (id, note) VALUES (1, $1) ON CONFLICT (id) DO NOTHING`, note); err != nil {
		return fmt.Errorf("mark the database as a rehearsal target: %w", err)
	}
	// What Check will see, so that a mark that does not hold (a rule, a
	// trigger, row-level security) fails here rather than at the next reinit.
	return CheckSchema(ctx, conn, schema, "mark")
}

// ErrNotMarked is returned (wrapped in *NotMarkedError) for unmarked databases.
var ErrNotMarked = errors.New("database is not marked as a rehearsal target")

// NotMarkedError says which database was refused, why, and what to do.
type NotMarkedError struct {
	Database string
	Schema   string
	Step     string
	Reason   string // what was found instead of the marker
}

func (e *NotMarkedError) Error() string {
	return fmt.Sprintf("refusing to %s: database %q is not marked as a rehearsal target (%s). "+
		"rehearse only destroys data in databases made for rehearsals: create one with 'rehearse init --dsn DSN', "+
		"or, if this database really is a disposable copy, mark it with 'rehearse mark --dsn DSN' "+
		"(or pass --allow-unmarked for this run)", e.Step, e.Database, e.Reason)
}

func (e *NotMarkedError) Unwrap() error { return ErrNotMarked }

// Check returns nil when the public schema is marked, a *NotMarkedError
// otherwise. step names what would have been done ("reinit", "restore", ...).
func Check(ctx context.Context, q Querier, step string) error {
	return CheckSchema(ctx, q, DefaultSchema, step)
}

// CheckSchema is Check for the schema ("" = public) the engine writes.
func CheckSchema(ctx context.Context, q Querier, schema, step string) error {
	schema = schemaOrDefault(schema)
	st, err := inspect(ctx, q, schema)
	if err != nil {
		return err
	}
	refuse := func(format string, args ...any) error {
		return &NotMarkedError{Database: st.database, Schema: schema, Step: step, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case st.kind == "":
		return refuse("it has no table %s", st.qualified())
	case st.kind != "r":
		return refuse("%s is %s, not a table", st.qualified(), kindName(st.kind))
	case !st.shaped:
		return refuse("%s is not the table rehearse mark creates", st.qualified())
	}
	var rows int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, Table}.Sanitize()+` WHERE id = 1`).Scan(&rows); err != nil {
		return fmt.Errorf("check the rehearsal marker %s: %w", st.qualified(), err)
	}
	if rows != 1 {
		return refuse("%s holds no marker row", st.qualified())
	}
	return nil
}

// marker is what the catalog says about schema.rehearse_target.
type marker struct {
	database, schema string
	kind             string // pg_class.relkind, "" when there is no such relation
	shaped           bool   // a smallint id and a text note, as Mark creates them
}

func (m marker) qualified() string { return m.schema + "." + Table }

// inspect looks the marker up by schema and name. Every catalog name is
// qualified with pg_catalog so that nothing on the search path can stand in.
func inspect(ctx context.Context, q Querier, schema string) (marker, error) {
	m := marker{schema: schema}
	err := q.QueryRow(ctx, `
SELECT pg_catalog.current_database(),
       COALESCE(c.relkind::text, ''),
       c.relkind IS NOT NULL
         AND EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped
                       AND a.attname = 'id' AND a.atttypid = 'pg_catalog.int2'::pg_catalog.regtype)
         AND EXISTS (SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND NOT a.attisdropped
                       AND a.attname = 'note' AND a.atttypid = 'pg_catalog.text'::pg_catalog.regtype)
FROM (SELECT) AS one
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = $2`, schema, Table).Scan(&m.database, &m.kind, &m.shaped)
	if err != nil {
		return m, fmt.Errorf("check the rehearsal marker: %w", err)
	}
	return m, nil
}

func schemaOrDefault(schema string) string {
	if schema == "" {
		return DefaultSchema
	}
	return schema
}

// kindName describes a pg_class.relkind.
func kindName(kind string) string {
	switch kind {
	case "r":
		return "a table"
	case "p":
		return "a partitioned table"
	case "v":
		return "a view"
	case "m":
		return "a materialized view"
	case "S":
		return "a sequence"
	case "i", "I":
		return "an index"
	case "c":
		return "a composite type"
	case "f":
		return "a foreign table"
	case "t":
		return "a TOAST table"
	}
	return "a relation of kind " + kind
}

// Contents lists up to max relations (tables, views, sequences, ...) that
// the database holds outside the system schemas, as "schema.name (kind)",
// the marker table aside. init uses it to refuse a database that is not
// empty: marking one would let reinit wipe what is in it.
func Contents(ctx context.Context, conn *pgx.Conn, max int) ([]string, error) {
	rows, err := conn.Query(ctx, `
SELECT n.nspname, c.relname, c.relkind::text
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\_%'
  AND NOT (c.relname = $1 AND c.relkind = 'r')
ORDER BY n.nspname, c.relname
LIMIT $2`, Table, max)
	if err != nil {
		return nil, fmt.Errorf("list what the database holds: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var schema, name, kind string
		if err := rows.Scan(&schema, &name, &kind); err != nil {
			return nil, err
		}
		out = append(out, fmt.Sprintf("%s.%s (%s)", schema, name, strings.TrimPrefix(strings.TrimPrefix(kindName(kind), "a "), "an ")))
	}
	return out, rows.Err()
}
