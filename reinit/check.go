package reinit

import (
	"fmt"
	"strings"

	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
	"github.com/rehearse-dev/rehearse/pg/integrity"
)

// Deleting rows that other rows point at queues one foreign key check per
// row and constraint (a trigger), which costs more than the delete itself at
// a million rows. A superuser can switch those triggers off for the reinit's
// statements (session_replication_role = replica, as pg_restore does) and
// check set-wise instead (checkLeftovers). That is only done when nothing
// else would be switched off with them.

// skipTriggers says whether the reinit's statements may run with triggers
// off: the role may do it, and no table it changes has a trigger of its own
// or a rule, or is pointed at by a foreign key from another schema (the
// set-wise check only sees this one).
func (w *walker) skipTriggers() (bool, error) {
	var ok bool
	err := w.tx.QueryRow(w.ctx, `
SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
   AND current_setting('session_replication_role') = 'origin'
   AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = ANY(r.oids) AND NOT t.tgisinternal)
   AND NOT EXISTS (SELECT 1 FROM pg_rewrite x WHERE x.ev_class = ANY(r.oids) AND x.ev_type <> '1')
   AND NOT EXISTS (SELECT 1 FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
                   WHERE con.contype = 'f' AND con.confrelid = ANY(r.oids) AND c.relnamespace <> $1::regnamespace)
FROM (SELECT array_agg(c.oid) AS oids FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relname = ANY($2)) r`,
		w.cat.Schema, w.affected()).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("reinit: read triggers and roles: %w", err)
	}
	return ok, nil
}

// checkLeftovers looks, after the deletes, for rows that still point at a
// deleted row: rows of protected tables (the reinit never touches them, as
// Django's PROTECT refuses), foreign keys the walker does not follow
// (several columns), and rows another session added meanwhile. With
// triggers on, the constraints themselves catch the last kind at commit,
// so only the foreign keys the walker did not handle are checked.
func (w *walker) checkLeftovers(triggersOff bool) error {
	var rest []pgcatalog.ConstraintRef
	for _, c := range w.cat.AllForeignKeys {
		s, ok := w.sets[c.RefTable]
		if !ok || s.found == 0 {
			continue
		}
		handled := len(c.Columns) == 1 && !w.protected[c.Table]
		if handled && !triggersOff {
			continue
		}
		if len(c.Columns) != 1 || c.RefColumns[0] != s.table.PK() {
			rest = append(rest, c) // the deleted keys do not say which values went
			continue
		}
		var n int64
		var example string
		col := pgcatalog.Ident(c.Columns[0])
		err := w.tx.QueryRow(w.ctx, fmt.Sprintf("SELECT count(*), COALESCE(min(c.%s::text), '') FROM %s c WHERE c.%s IN (SELECT k FROM %s)", col, w.cat.QualifiedIdent(c.Table), col, s.all)).Scan(&n, &example)
		if err != nil {
			return fmt.Errorf("reinit: check %s.%s: %w", c.Table, c.Columns[0], err)
		}
		if n > 0 {
			return w.leftoverError(c, n, example)
		}
	}
	if len(rest) == 0 {
		return nil
	}
	only := *w.cat
	only.AllForeignKeys = rest
	found, err := integrity.CheckForeignKeys(w.ctx, w.tx, &only, nil)
	if err != nil {
		return fmt.Errorf("reinit: %w", err)
	}
	if bad := integrity.Broken(found); len(bad) > 0 {
		for _, c := range rest {
			if c.Name == bad[0].Constraint && c.Table == bad[0].Table {
				return w.leftoverError(c, bad[0].Count, bad[0].Example)
			}
		}
	}
	return nil
}

func (w *walker) leftoverError(c pgcatalog.ConstraintRef, n int64, example string) error {
	why := "rows added by another session while the reinit ran? run it again when the system is quiet"
	switch {
	case w.protected[c.Table]:
		why = fmt.Sprintf("%s is protected (the reinit never changes it), so the rows it points at cannot go: delete those rows first, or do not protect the table", c.Table)
	case len(c.Columns) != 1:
		why = "the reinit follows single-column foreign keys only: delete those rows first"
	}
	return fmt.Errorf("reinit refused, nothing changed: %d rows of %s still point at deleted %s rows (foreign key %s on %s, e.g. %s); %s",
		n, c.Table, c.RefTable, c.Name, strings.Join(c.Columns, ", "), example, why)
}
