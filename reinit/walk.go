package reinit

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// The walker finds every row that hangs off the deleted users and deletes it,
// set-wise: the keys to delete live in temporary tables on the server (any
// amount of data, flat client memory), every step is a join of a table with
// a key set, and each key is followed to the rows that refer to it once
// (semi-naive: only the keys found in the last round are joined), so the
// work grows linearly with the rows.

// keySet holds the keys of one table's rows to delete. A table that no
// foreign key points at needs no keys: its rows are deleted through the
// foreign keys in via, straight from the parents' key sets.
type keySet struct {
	table *pgcatalog.Table
	all   string // every key found so far, once ("" for a table deleted via)
	via   []pgcatalog.ForeignKey
	// pending holds keys found but not yet followed to the rows that refer
	// to them, next is where a self-reference adds keys while pending is
	// read. Both are "" for a table that no followed foreign key refers to.
	pending, next string
	hasPending    bool
	found         int64 // rows in all
	deleted       bool
}

type walker struct {
	ctx       context.Context
	tx        pgx.Tx
	cat       *pgcatalog.Catalog
	protected map[string]bool
	sets      map[string]*keySet
	order     []string // tables in the order their keys were first looked for
	temps     []string // temporary tables to drop at the end
	progress  func(Progress)
}

func (w *walker) report(step, table, column string, rows int64, start time.Time) {
	if w.progress != nil {
		w.progress(Progress{Step: step, Table: table, Column: column, Rows: rows, Took: time.Since(start)})
	}
}

func newWalker(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, protected []string) *walker {
	w := &walker{ctx: ctx, tx: tx, cat: cat, protected: map[string]bool{}, sets: map[string]*keySet{}}
	for _, t := range protected {
		w.protected[t] = true
	}
	return w
}

// cascades lists the foreign keys whose rows are deleted with the rows they
// point at: NOT NULL ones from unprotected tables (a nullable one is set to
// NULL instead, as Django's SET_NULL).
func (w *walker) cascades(table string) []pgcatalog.ForeignKey { return w.referencing(table, true) }

// nullable lists the foreign keys set to NULL when the rows they point at go.
func (w *walker) nullable(table string) []pgcatalog.ForeignKey { return w.referencing(table, false) }

// referencing lists the foreign keys from unprotected tables that point at
// table, whose column is NOT NULL as notNull says.
func (w *walker) referencing(table string, notNull bool) []pgcatalog.ForeignKey {
	var out []pgcatalog.ForeignKey
	for _, fk := range w.cat.Referencing(table) {
		if w.protected[fk.Table] {
			continue
		}
		if col, _ := w.cat.Tables[fk.Table].Column(fk.Column); col.NotNull == notNull {
			out = append(out, fk)
		}
	}
	return out
}

func (w *walker) temp(typ string) (string, error) {
	name := fmt.Sprintf("pg_temp.rehearse_reinit_%d", len(w.temps)+1)
	if _, err := w.tx.Exec(w.ctx, fmt.Sprintf("CREATE TEMP TABLE %s (k %s) ON COMMIT DROP", name, typ)); err != nil {
		return "", fmt.Errorf("reinit: create a temporary table for keys: %w", err)
	}
	w.temps = append(w.temps, name)
	return name, nil
}

// pointedAt says whether any foreign key points at table.
func (w *walker) pointedAt(table string) bool {
	for _, c := range w.cat.AllForeignKeys {
		if c.RefTable == table {
			return true
		}
	}
	return false
}

// set returns table's key set, creating it (keyed, or deleted via foreign
// keys when keyed is false) on first use.
func (w *walker) set(table string, keyed bool) (*keySet, error) {
	if s, ok := w.sets[table]; ok {
		return s, nil
	}
	t := w.cat.Tables[table]
	s := &keySet{table: t}
	if !keyed {
		w.sets[table] = s
		w.order = append(w.order, table)
		return s, nil
	}
	if t.PK() == "" {
		return nil, fmt.Errorf("reinit: rows of table %q must be deleted and other rows point at them, but it has no single-column primary key, so its rows cannot be tracked", table)
	}
	pk, _ := t.Column(t.PK())
	var err error
	if s.all, err = w.temp(pk.Display); err != nil {
		return nil, err
	}
	if len(w.cascades(table)) > 0 {
		if s.pending, err = w.temp(pk.Display); err != nil {
			return nil, err
		}
		if s.next, err = w.temp(pk.Display); err != nil {
			return nil, err
		}
	}
	w.sets[table] = s
	w.order = append(w.order, table)
	return s, nil
}

// collect adds the keys selected by seed to table's set, then follows every
// new key to the rows that refer to it until no new key turns up.
func (w *walker) collect(table, seed string, args ...any) error {
	if err := w.add(table, seed, args...); err != nil {
		return err
	}
	for {
		var s *keySet
		for _, name := range w.order {
			if w.sets[name].hasPending {
				s = w.sets[name]
				break
			}
		}
		if s == nil {
			break
		}
		if err := w.follow(s); err != nil {
			return err
		}
	}
	for _, name := range w.order {
		if all := w.sets[name].all; all != "" {
			if _, err := w.tx.Exec(w.ctx, "ANALYZE "+all); err != nil {
				return err
			}
		}
	}
	return nil
}

// add inserts the keys query selects, and not in table's set yet, into the
// set; the new ones are also kept as pending, to be followed. (An anti-join
// rather than a unique index with ON CONFLICT: a third of the time.)
func (w *walker) add(table, query string, args ...any) error {
	s, err := w.set(table, true)
	if err != nil {
		return err
	}
	sql := fmt.Sprintf("INSERT INTO %s SELECT q.k FROM (%s) AS q(k) WHERE NOT EXISTS (SELECT 1 FROM %s a WHERE a.k = q.k)", s.all, query, s.all)
	if s.pending != "" {
		sql = fmt.Sprintf("WITH added AS (%s RETURNING k) INSERT INTO %s SELECT k FROM added", sql, s.pending)
	}
	tag, err := w.tx.Exec(w.ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("reinit: collect rows of %s: %w", table, err)
	}
	s.found += tag.RowsAffected()
	if s.pending != "" && tag.RowsAffected() > 0 {
		s.hasPending = true
	}
	return nil
}

// follow adds the rows that refer to s's pending keys to their tables' sets.
func (w *walker) follow(s *keySet) error {
	cur := s.pending
	s.pending, s.next, s.hasPending = s.next, cur, false
	if _, err := w.tx.Exec(w.ctx, "ANALYZE "+cur); err != nil {
		return err
	}
	for _, fk := range w.cascades(s.table.Name) {
		child := w.cat.Tables[fk.Table]
		if !w.pointedAt(child.Name) {
			c, err := w.set(child.Name, false)
			if err != nil {
				return err
			}
			if !slices.ContainsFunc(c.via, func(v pgcatalog.ForeignKey) bool { return v.Name == fk.Name }) {
				c.via = append(c.via, fk)
			}
			continue
		}
		q := fmt.Sprintf("SELECT c.%s FROM %s c WHERE c.%s IN (%s)", pgcatalog.Ident(child.PK()), w.cat.QualifiedIdent(child.Name), pgcatalog.Ident(fk.Column), w.referenced(fk, cur))
		if err := w.add(child.Name, q); err != nil {
			return err
		}
	}
	_, err := w.tx.Exec(w.ctx, "TRUNCATE "+cur)
	return err
}

// referenced is a query for the values fk's column holds in the rows whose
// keys are in the temporary table keys (fk may point at a column other than
// the primary key).
func (w *walker) referenced(fk pgcatalog.ForeignKey, keys string) string {
	parent := w.cat.Tables[fk.RefTable]
	if fk.RefColumn == parent.PK() {
		return "SELECT k FROM " + keys
	}
	return fmt.Sprintf("SELECT p.%s FROM %s p WHERE p.%s IN (SELECT k FROM %s)", pgcatalog.Ident(fk.RefColumn), w.cat.QualifiedIdent(parent.Name), pgcatalog.Ident(parent.PK()), keys)
}

// deleteOrder returns the collected tables, every table after the tables
// that refer to it (so that a foreign key checked at each statement holds);
// a cycle is cut where it is met.
func (w *walker) deleteOrder() []string {
	var out []string
	seen := map[string]bool{}
	var visit func(table string)
	visit = func(table string) {
		if seen[table] {
			return
		}
		seen[table] = true
		for _, fk := range w.cat.Referencing(table) {
			if _, ok := w.sets[fk.Table]; ok {
				visit(fk.Table)
			}
		}
		out = append(out, table)
	}
	for _, t := range w.order {
		visit(t)
	}
	return out
}

// affected lists every table the deletion changes: the collected ones and
// those whose foreign keys are set to NULL, sorted.
func (w *walker) affected() []string {
	set := map[string]bool{}
	for name, s := range w.sets {
		set[name] = true
		if s.found > 0 {
			for _, fk := range w.nullable(name) {
				set[fk.Table] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// apply deletes the collected rows, table by table, after setting to NULL
// the nullable foreign keys that point at them.
func (w *walker) apply() ([]TableEffect, error) {
	effects, err := w.countRows(w.affected())
	if err != nil {
		return nil, err
	}
	for _, table := range w.deleteOrder() {
		if err := w.delete(w.sets[table], effects); err != nil {
			return nil, err
		}
	}
	out := make([]TableEffect, 0, len(effects))
	for _, e := range effects {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out, nil
}

// delete deletes s's rows, after setting to NULL the nullable foreign keys
// that point at them, and counts what it did in effects.
func (w *walker) delete(s *keySet, effects map[string]*TableEffect) error {
	defer func() { s.deleted = true }()
	table := w.cat.QualifiedIdent(s.table.Name)
	var deletes []string
	if s.all == "" {
		for _, fk := range s.via {
			if parent := w.sets[fk.RefTable]; parent.found > 0 {
				deletes = append(deletes, fmt.Sprintf("DELETE FROM %s c WHERE c.%s IN (%s)", table, pgcatalog.Ident(fk.Column), w.referenced(fk, parent.all)))
			}
		}
	} else if s.found > 0 {
		for _, fk := range w.nullable(s.table.Name) {
			start := time.Now()
			n, err := w.setNull(fk, s)
			if err != nil {
				return err
			}
			effects[fk.Table].Nulled += n
			w.report(StepNulled, fk.Table, fk.Column, n, start)
		}
		deletes = append(deletes, fmt.Sprintf("DELETE FROM %s WHERE %s IN (SELECT k FROM %s)", table, pgcatalog.Ident(s.table.PK()), s.all))
	}
	start := time.Now()
	var n int64
	for _, sql := range deletes {
		tag, err := w.tx.Exec(w.ctx, sql)
		if err != nil {
			return fmt.Errorf("reinit: delete from %s: %w", s.table.Name, err)
		}
		n += tag.RowsAffected()
	}
	effects[s.table.Name].Deleted += n
	if len(deletes) > 0 {
		w.report(StepDeleted, s.table.Name, "", n, start)
	}
	return nil
}

// setNull sets fk's column to NULL in the rows that point at parent's
// collected rows, except in rows that are deleted themselves: those went
// already (the child table comes first in the delete order) or are skipped
// with an anti-join on their own key set.
func (w *walker) setNull(fk pgcatalog.ForeignKey, parent *keySet) (int64, error) {
	child := w.cat.Tables[fk.Table]
	col := pgcatalog.Ident(fk.Column)
	q := fmt.Sprintf("UPDATE %s c SET %s = NULL WHERE c.%s IN (%s)", w.cat.QualifiedIdent(child.Name), col, col, w.referenced(fk, parent.all))
	if own, ok := w.sets[child.Name]; ok && !own.deleted {
		if own.all != "" {
			q += fmt.Sprintf(" AND NOT EXISTS (SELECT 1 FROM %s o WHERE o.k = c.%s)", own.all, pgcatalog.Ident(child.PK()))
		}
		for _, via := range own.via { // (the delete order puts such a table first: defensive)
			if p := w.sets[via.RefTable]; p.found > 0 {
				q += fmt.Sprintf(" AND NOT EXISTS (SELECT 1 FROM (%s) o(k) WHERE o.k = c.%s)", w.referenced(via, p.all), pgcatalog.Ident(via.Column))
			}
		}
	}
	tag, err := w.tx.Exec(w.ctx, q)
	if err != nil {
		return 0, fmt.Errorf("reinit: set %s.%s to NULL: %w", child.Name, fk.Column, err)
	}
	return tag.RowsAffected(), nil
}

// countRows counts the rows of tables in one statement, before any change.
func (w *walker) countRows(tables []string) (map[string]*TableEffect, error) {
	effects := map[string]*TableEffect{}
	if len(tables) == 0 {
		return effects, nil
	}
	parts := make([]string, len(tables))
	dest := make([]any, len(tables))
	for i, t := range tables {
		e := &TableEffect{Table: t}
		effects[t] = e
		parts[i] = "(SELECT count(*) FROM " + w.cat.QualifiedIdent(t) + ")"
		dest[i] = &e.Before
	}
	if err := w.tx.QueryRow(w.ctx, "SELECT "+strings.Join(parts, ", ")).Scan(dest...); err != nil {
		return nil, fmt.Errorf("reinit: count rows: %w", err)
	}
	return effects, nil
}

// dropTemps drops the key sets, so that another reinit can run in the same
// transaction.
func (w *walker) dropTemps() error {
	if len(w.temps) == 0 {
		return nil
	}
	_, err := w.tx.Exec(w.ctx, "DROP TABLE "+strings.Join(w.temps, ", "))
	w.temps = nil
	return err
}
