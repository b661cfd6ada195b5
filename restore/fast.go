package restore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// Bulk-load helpers, as pg_restore loads: data first, secondary indexes
// after. Everything here runs inside the restore's transaction, so a failure
// or a rollback undoes it; the price is an ACCESS EXCLUSIVE lock on the
// tables concerned until commit (readers of those tables wait instead of
// seeing the old rows).

// truncateUntouched gives every table the backup may write that holds no
// tuple at all — not even a dead one — a new, empty relfilenode, with TRUNCATE.
// On a wal_level=minimal server, COPY into a relation created in the same
// transaction skips WAL. Because the table has no tuples, TRUNCATE changes
// nothing any snapshot can see (TRUNCATE is not MVCC-safe for tables with
// rows, so those are left alone). Tables referenced by a foreign key from a
// table outside the set are left alone too (TRUNCATE refuses them). Tables in
// fresh, truncated in this transaction already, are not truncated again.
func truncateUntouched(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, protected, skip, fresh map[string]bool) ([]string, error) {
	var level string
	if err := tx.QueryRow(ctx, "SELECT current_setting('wal_level')").Scan(&level); err != nil {
		return nil, err
	}
	if level != "minimal" {
		return nil, nil
	}
	var names []string
	for _, name := range cat.TableNames() {
		if !protected[name] && !skip[name] {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	const emptySQL = `SELECT c.relname FROM pg_class c
		WHERE c.relnamespace = $1::regnamespace AND c.relname = ANY($2) AND c.relkind = 'r' AND NOT c.relispartition
		  AND has_table_privilege(c.oid, 'TRUNCATE') AND pg_relation_size(c.oid) = 0`
	set, err := queryNames(ctx, tx, emptySQL, cat.Schema, names)
	if err != nil {
		return nil, err
	}
	closeOverReferences(cat, set)
	if len(set) == 0 {
		return nil, nil
	}
	// Lock, then check again: a row committed in between must not be truncated.
	if _, err := tx.Exec(ctx, "LOCK TABLE "+tableList(cat, set)+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		return nil, err
	}
	still, err := queryNames(ctx, tx, emptySQL, cat.Schema, names)
	if err != nil {
		return nil, err
	}
	for n := range set {
		if !still[n] {
			delete(set, n)
		}
	}
	closeOverReferences(cat, set)
	if len(set) == 0 {
		return nil, nil
	}
	// The tables truncateReplaced emptied in this transaction have a fresh
	// relation already: truncating them again would only cost time. The
	// others are truncated alone when TRUNCATE allows it (no foreign key
	// from a table outside them refers to them), else all of them are.
	rest := map[string]bool{}
	for n := range set {
		if !fresh[n] {
			rest[n] = true
		}
	}
	if len(rest) < len(set) {
		n := len(rest)
		closeOverReferences(cat, rest)
		if len(rest) == n {
			set = rest
		}
	}
	if len(set) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, "TRUNCATE "+tableList(cat, set)); err != nil {
		return nil, fmt.Errorf("give empty tables a fresh relation: %w", err)
	}
	var out []string
	for n := range set {
		out = append(out, n)
	}
	return out, nil
}

// droppedIndex is a secondary index dropped for the load, to be rebuilt.
type droppedIndex struct {
	name, def string
}

// dropSecondaryIndexes drops the plain secondary indexes of an empty table
// (not unique, not the primary key, not backing a constraint, not clustered,
// without comment or dependants) and returns their definitions: building an
// index once after the load is much cheaper than maintaining it row by row.
//
// CREATE INDEX refuses a table with pending trigger events, so this is only
// for the fast path (FK triggers off while loading) and for tables that have
// no user trigger and no insert, update or delete yet in this transaction (a
// reinit's deletes queue deferred FK checks, which must keep running at
// commit, or never in a rolled-back rehearsal, as before), or that are
// fresh: truncated in this transaction by truncateReplaced, which TRUNCATE
// only allows without pending trigger events.
func dropSecondaryIndexes(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, table string, fresh bool) ([]droppedIndex, error) {
	var empty bool
	if err := tx.QueryRow(ctx, "SELECT NOT EXISTS (SELECT 1 FROM "+cat.QualifiedIdent(table)+")").Scan(&empty); err != nil {
		return nil, err
	}
	if !empty {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT quote_ident(n.nspname) || '.' || quote_ident(ic.relname), pg_get_indexdef(i.indexrelid)
		FROM pg_index i
		JOIN pg_class ic ON ic.oid = i.indexrelid
		JOIN pg_class c ON c.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = ic.relnamespace
		WHERE c.relnamespace = $1::regnamespace AND c.relname = $2 AND c.relkind = 'r' AND NOT c.relispartition
		  AND pg_has_role(c.relowner, 'USAGE') -- DROP INDEX needs ownership
		  AND current_setting('track_counts') = 'on'
		  AND NOT EXISTS (SELECT 1 FROM pg_trigger tg WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal)
		  AND ($3 OR COALESCE((SELECT s.n_tup_ins + s.n_tup_upd + s.n_tup_del FROM pg_stat_xact_user_tables s WHERE s.relid = c.oid), 0) = 0)
		  AND NOT i.indisunique AND NOT i.indisprimary AND NOT i.indisexclusion AND NOT i.indisclustered
		  AND i.indisvalid AND i.indisready AND i.indislive
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)
		  AND NOT EXISTS (SELECT 1 FROM pg_description d WHERE d.objoid = i.indexrelid)
		  AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.refclassid = 'pg_class'::regclass AND dep.refobjid = i.indexrelid AND dep.deptype <> 'a')
		ORDER BY 1`, cat.Schema, table, fresh)
	if err != nil {
		return nil, err
	}
	var out []droppedIndex
	for rows.Next() {
		var d droppedIndex
		if err := rows.Scan(&d.name, &d.def); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, d := range out {
		if _, err := tx.Exec(ctx, "DROP INDEX "+d.name); err != nil {
			return nil, fmt.Errorf("drop index %s for the load: %w", d.name, err)
		}
	}
	return out, nil
}

// rebuildIndexes recreates the indexes dropped for the load.
func rebuildIndexes(ctx context.Context, tx pgx.Tx, dropped []droppedIndex) error {
	if len(dropped) == 0 {
		return nil
	}
	var mem int64
	if err := tx.QueryRow(ctx, "SELECT pg_size_bytes(current_setting('maintenance_work_mem'))").Scan(&mem); err != nil {
		return err
	}
	if mem < 256<<20 {
		if _, err := tx.Exec(ctx, "SET LOCAL maintenance_work_mem = '256MB'"); err != nil {
			return err
		}
	}
	for _, d := range dropped {
		if _, err := tx.Exec(ctx, d.def); err != nil {
			return fmt.Errorf("rebuild index %s: %w", d.name, err)
		}
	}
	return nil
}

// withoutProven returns cat without the foreign keys that an inline pass
// has already proven in Go, so that the set-wise check after a fast-path
// load only scans what it must. A foreign key is proven when its table was
// empty when the pass met it (every row comes from this backup, checked as
// it was read) and every value it holds is the integer primary key of a row
// this backup inserted into the referenced table — rows of this uncommitted
// transaction that no other session can delete, and that the engine only
// ever deletes to insert them again (writeDiverted).
func withoutProven(cat *pgcatalog.Catalog, sm *schemaMap) *pgcatalog.Catalog {
	byTable := map[string][]*modelPlan{}
	through := map[string]bool{} // also written by the many-to-many sync
	for _, p := range sm.models {
		byTable[p.table.Name] = append(byTable[p.table.Name], p)
		for _, mp := range p.m2m {
			through[mp.through.Name] = true
		}
	}
	proven := func(c pgcatalog.ConstraintRef) bool {
		child, parent := byTable[c.Table], byTable[c.RefTable]
		if len(c.Columns) != 1 || len(child) != 1 || len(parent) != 1 || through[c.Table] {
			return false
		}
		cp, pp := child[0], parent[0]
		if cp.existing == nil || cp.existing.len() != 0 || cp.columns == nil || pp.pk.Name != c.RefColumns[0] {
			return false
		}
		var fc *fkCheck
		for _, f := range cp.colField {
			if f.column.Name == c.Columns[0] && f.fk != nil && f.fk.fk.Name == c.Name {
				fc = f.fk
			}
		}
		if fc == nil || len(fc.refs.strs) > 0 || len(pp.keys.strs) > 0 {
			return false
		}
		ok := true
		fc.refs.each(func(k key) bool {
			ok = pp.keys.has(k)
			return ok
		})
		return ok
	}
	out := *cat
	out.AllForeignKeys = nil
	for _, c := range cat.AllForeignKeys {
		if !proven(c) {
			out.AllForeignKeys = append(out.AllForeignKeys, c)
		}
	}
	return &out
}

// DefaultKeepReadable are the tables a restore never locks against
// readers when Options.KeepReadable is nil: Django's user tables, which
// logins and profile calls read while the restore runs.
var DefaultKeepReadable = []string{"users_user", "auth_user"}

// truncateReplaced empties with TRUNCATE, before the load, the tables
// whose every row the backup replaces (every existing key is in the
// backup, or the table holds no row), instead of deleting their rows one
// by one: the load then writes a fresh relation, without dead tuples, and
// its secondary indexes are built once after it (as pg_restore --clean
// does). The committed result is the same as with DELETE: the rows the
// deletes would remove are all the table holds.
//
// Only on the fast path (superuser, FK triggers off: no trigger event is
// queued by the load), for plain tables without user triggers (TRUNCATE
// fires no delete trigger) or inheritance children, and never for the
// tables in keep: TRUNCATE holds an ACCESS EXCLUSIVE lock until commit,
// so readers of these tables wait for the restore instead of seeing the
// old rows. The tables are locked and checked again before the TRUNCATE,
// so that a row another session committed meanwhile is never lost; a
// table another session holds a lock on, or with trigger events still
// pending in this transaction (a reinit that ran with its triggers on),
// leaves the work to the deletes instead.
//
// counted, when not nil, receives each table's rows, counted under the
// lock just before the TRUNCATE.
func truncateReplaced(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, sm *schemaMap, keep, skip map[string]bool, counted map[string]int64) (map[string]bool, error) {
	byTable := map[string]*modelPlan{}
	for _, p := range sm.models {
		byTable[p.table.Name] = p
	}
	var names []string
	for _, name := range cat.TableNames() {
		if !sm.protected[name] && !skip[name] && !keep[name] {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	plain, err := queryNames(ctx, tx, `SELECT c.relname FROM pg_class c
		WHERE c.relnamespace = $1::regnamespace AND c.relname = ANY($2) AND c.relkind = 'r' AND NOT c.relispartition
		  AND has_table_privilege(c.oid, 'TRUNCATE')
		  AND NOT EXISTS (SELECT 1 FROM pg_trigger tg WHERE tg.tgrelid = c.oid AND NOT tg.tgisinternal)
		  AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhparent = c.oid)`, cat.Schema, names)
	if err != nil {
		return nil, err
	}
	// replaced says whether every row of table is one the backup brings again.
	replaced := func(table string) (bool, error) {
		p := byTable[table]
		if p == nil {
			var empty bool
			err := tx.QueryRow(ctx, "SELECT NOT EXISTS (SELECT 1 FROM "+cat.QualifiedIdent(table)+")").Scan(&empty)
			return empty, err
		}
		if lo, hi, ok := p.keys.intRange(); ok && int64(p.keys.len()) == hi-lo+1 {
			// The backup's keys are one dense range (ids 1..n, the usual
			// case): the index answers without reading the keys.
			var outside bool
			err := tx.QueryRow(ctx, fmt.Sprintf("SELECT EXISTS (SELECT 1 FROM %s WHERE %s < $1 OR %s > $2)", cat.QualifiedIdent(table), pgcatalog.Ident(p.pk.Name), pgcatalog.Ident(p.pk.Name)), lo, hi).Scan(&outside)
			return !outside, err
		}
		existing, err := existingKeys(ctx, tx, cat, p.table, p.pk.Name)
		if err != nil {
			return false, err
		}
		all := true
		existing.each(func(k key) bool {
			all = p.keys.has(k)
			return all
		})
		return all, nil
	}
	check := func(set map[string]bool) error {
		for name := range set {
			ok, err := replaced(name)
			if err != nil {
				return err
			}
			if !ok {
				delete(set, name)
			}
		}
		closeOverReferences(cat, set)
		return nil
	}
	set := plain
	if err := check(set); err != nil || len(set) == 0 {
		return nil, err
	}
	return lockAndTruncate(ctx, tx, cat, set, check, counted)
}

// lockAndTruncate locks set's tables, checks them again (check drops a
// table that no longer qualifies), counts their rows into counted (when
// not nil) and truncates them, in a savepoint of tx; it returns the tables
// truncated, or none when a lock or a pending trigger event is in the way.
func lockAndTruncate(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, set map[string]bool, check func(map[string]bool) error, counted map[string]int64) (map[string]bool, error) {
	list := tableList(cat, set)
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer sp.Rollback(context.Background())
	// Lock, then check again: a row committed in between must not be lost.
	// NOWAIT: a session reading one of the tables (or holding any lock on
	// it) makes the deletes do the work, rather than the restore wait for
	// it while every later reader of the table queues behind the restore.
	if _, err := sp.Exec(ctx, "LOCK TABLE "+list+" IN ACCESS EXCLUSIVE MODE NOWAIT"); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
			return nil, sp.Rollback(ctx)
		}
		return nil, err
	}
	locked := len(set)
	if err := check(set); err != nil || len(set) != locked {
		// A row came meanwhile: give the locks back (the savepoint's
		// rollback does) rather than hold tables not truncated.
		return nil, errors.Join(err, sp.Rollback(ctx))
	}
	if counted != nil {
		if err := countInto(ctx, sp, cat, set, counted); err != nil {
			return nil, err
		}
	}
	if _, err := sp.Exec(ctx, "TRUNCATE "+list); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55006" { // pending trigger events
			return nil, sp.Rollback(ctx)
		}
		return nil, fmt.Errorf("empty the tables the backup replaces: %w", err)
	}
	return set, sp.Commit(ctx)
}

// countInto counts the rows of set's tables, in one statement, into counted.
func countInto(ctx context.Context, q pgx.Tx, cat *pgcatalog.Catalog, set map[string]bool, counted map[string]int64) error {
	var names, parts []string
	for _, n := range cat.TableNames() {
		if set[n] {
			names = append(names, n)
			parts = append(parts, "(SELECT count(*) FROM "+cat.QualifiedIdent(n)+")")
		}
	}
	n := make([]int64, len(names))
	dest := make([]any, len(names))
	for i := range n {
		dest[i] = &n[i]
	}
	if err := q.QueryRow(ctx, "SELECT "+strings.Join(parts, ", ")).Scan(dest...); err != nil {
		return fmt.Errorf("count the rows of the tables the backup replaces: %w", err)
	}
	for i, name := range names {
		counted[name] = n[i]
	}
	return nil
}

// closeOverReferences removes from set every table a foreign key from a
// table outside it points at (TRUNCATE refuses those), until none is left.
func closeOverReferences(cat *pgcatalog.Catalog, set map[string]bool) {
	for changed := true; changed; {
		changed = false
		for _, c := range cat.AllForeignKeys {
			if set[c.RefTable] && !set[c.Table] {
				delete(set, c.RefTable)
				changed = true
			}
		}
	}
}

// tableList is the qualified names of set's tables, comma-separated, in
// catalog order.
func tableList(cat *pgcatalog.Catalog, set map[string]bool) string {
	var q []string
	for _, n := range cat.TableNames() {
		if set[n] {
			q = append(q, cat.QualifiedIdent(n))
		}
	}
	return strings.Join(q, ", ")
}

// queryNames runs a query that returns one name per row, as a set.
func queryNames(ctx context.Context, tx pgx.Tx, sql string, args ...any) (map[string]bool, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		out[n] = true
	}
	rows.Close()
	return out, rows.Err()
}
