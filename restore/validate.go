package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// validate reads the whole backup once and checks every object: its model maps
// to a table, its fields to columns, its values fit their types, its pk and
// unique values are not duplicates; then that no unique value belongs to a
// row the restore keeps, and that every foreign key refers to a row that is
// in the backup or kept in the database (as q sees it, after any reinit).
func validate(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog, opts *Options, res *Result) (*schemaMap, error) {
	start := time.Now()
	sm, err := readBackup(ctx, cat, opts, res, nil)
	if err != nil {
		return nil, err
	}
	if err := checkAgainst(ctx, q, sm, opts, res, start); err != nil {
		sm.releaseSpills()
		return nil, err
	}
	return sm, nil
}

// readBackup reads the whole backup once and checks every object on its
// own: the first half of validate, which needs no database.
//
// check, when not nil, collects the rows PostgreSQL must check itself.
func readBackup(ctx context.Context, cat *pgcatalog.Catalog, opts *Options, res *Result, check *pgChecks) (*schemaMap, error) {
	sm := newSchemaMap(cat, opts.Protected)
	if err := sm.readAll(ctx, opts, res, check); err != nil {
		sm.releaseSpills() // a pass stopped halfway
		return nil, err
	}
	return sm, nil
}

// readAll is readBackup's pass.
func (sm *schemaMap) readAll(ctx context.Context, opts *Options, res *Result, check *pgChecks) error {
	sm.pairRows, sm.check = map[string]int64{}, check
	sm.columnFrom = opts.Defects.ColumnFrom
	sm.open = opts.Open
	r, err := newDumpReader(opts.Open)
	if err != nil {
		return err
	}
	defer r.Close()
	n := 0
	for {
		o, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		p, err := sm.model(o)
		if err != nil {
			return err
		}
		if _, err = sm.row(p, o); err != nil {
			return err
		}
		for _, pr := range p.pairs {
			sm.pairRows[pr.plan.through.Name]++
		}
		if sm.check != nil {
			sm.check.consider(p, o)
		}
		n++
		if n%65536 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err := sm.finishUnique(); err != nil {
		return err
	}
	res.Objects = n
	return nil
}

// checkAgainst is the second half of validate, begun at start: the
// backup's unique values and foreign keys against the rows q sees.
func checkAgainst(ctx context.Context, q pgcatalog.Querier, sm *schemaMap, opts *Options, res *Result, start time.Time) error {
	if err := checkKeptUnique(ctx, q, sm); err != nil {
		return err
	}
	if !opts.Defects.SkipFKCheck {
		kept := map[string]*keySet{}
		keptKeys := func(table string) (*keySet, error) {
			if ks, ok := kept[table]; ok {
				return ks, nil
			}
			t, ok := sm.cat.Table(table)
			if !ok || t.PK() == "" {
				return newKeySet(), nil
			}
			ks, err := existingKeys(ctx, q, sm.cat, t, t.PK())
			kept[table] = ks
			return ks, err
		}
		if err := checkReferences(ctx, sm, opts, keptKeys); err != nil {
			return err
		}
	}
	res.Timings.Validate = time.Since(start)
	opts.emit(PhaseValidated, "", int64(res.Objects))
	return nil
}

// checkReferences compares the keys every FK column refers to with the keys of
// its target: those in the backup plus those kept in the database.
func checkReferences(ctx context.Context, sm *schemaMap, opts *Options, keptKeys func(table string) (*keySet, error)) error {
	byTable := map[string]*modelPlan{}
	for _, p := range sm.models {
		byTable[p.table.Name] = p
	}
	check := func(p *modelPlan, field string, fc *fkCheck) error {
		target := byTable[fc.fk.RefTable]
		ks, err := keptKeys(fc.fk.RefTable)
		if err != nil {
			return err
		}
		var missing key // not &k in the callback: that would allocate per key
		found := false
		fc.refs.each(func(k key) bool {
			if (target != nil && target.keys.has(k)) || ks.has(k) {
				return true
			}
			missing, found = k, true
			return false
		})
		if !found {
			return nil
		}
		return findDangling(opts.Open, p.label, field, missing, fc.fk.RefTable)
	}
	for _, p := range sm.models {
		for name, f := range p.fields {
			if f.fk == nil || name != f.name {
				continue
			}
			if err := check(p, name, f.fk); err != nil {
				return err
			}
		}
		for name, mp := range p.m2m {
			if err := check(p, name, mp.fk); err != nil {
				return err
			}
		}
	}
	return nil
}

// existingKeys reads the primary keys of a table as the querier sees them.
func existingKeys(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog, t *pgcatalog.Table, col string) (*keySet, error) {
	rows, err := q.Query(ctx, fmt.Sprintf("SELECT %s FROM %s", pgcatalog.Ident(col), cat.QualifiedIdent(t.Name)))
	if err != nil {
		return nil, fmt.Errorf("read keys of %s: %w", t.Name, err)
	}
	defer rows.Close()
	ks := newKeySet()
	if c, _ := t.Column(col); c.Type == "int2" || c.Type == "int4" || c.Type == "int8" {
		var i int64 // scanned unboxed: a million keys without a million allocations
		for rows.Next() {
			if err := rows.Scan(&i); err != nil {
				return nil, err
			}
			ks.addInt(i)
		}
		return ks, rows.Err()
	}
	for rows.Next() {
		var v any
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		ks.add(scannedKey(v))
	}
	return ks, rows.Err()
}

// scannedKey turns a key read from the database into its comparable form.
func scannedKey(v any) key {
	switch x := v.(type) {
	case int16:
		return key{isInt: true, i: int64(x)}
	case int32:
		return key{isInt: true, i: int64(x)}
	case int64:
		return key{isInt: true, i: x}
	case [16]byte:
		return key{s: fmt.Sprintf("%x", x)}
	default:
		return key{s: fmt.Sprint(x)}
	}
}

// findDangling reads the backup again to name the first object that refers to
// a missing key. It only runs when validation has already failed.
func findDangling(open Opener, model, field string, missing key, target string) error {
	generic := &BackupError{Index: -1, Model: model, Field: field,
		Problem: fmt.Sprintf("a %s object's field %q refers to %s pk %s, which is neither in the backup nor kept in the database", model, field, target, missing)}
	r, err := newDumpReader(open)
	if err != nil {
		return generic
	}
	defer r.Close()
	want := fmtKey(missing)
	for {
		o, err := r.Next()
		if err != nil {
			return generic
		}
		if o.Model != model {
			continue
		}
		raw, ok := o.field(field)
		if !ok {
			raw, ok = o.field(field + "_id")
		}
		if !ok {
			continue
		}
		if refersTo(raw, want) {
			return objErr(o, field, "refers to %s pk %s, which is neither in the backup nor kept in the database (a dangling foreign key: was the backup cut, or taken while rows were being deleted?)", target, want)
		}
	}
}

func refersTo(raw []byte, want string) bool {
	s := string(raw)
	if s == want || s == `"`+want+`"` {
		return true
	}
	if len(s) > 0 && s[0] == '[' {
		var list []any
		if err := jsonUnmarshal(raw, &list); err == nil {
			for _, item := range list {
				if fmt.Sprint(item) == want {
					return true
				}
			}
		}
	}
	return false
}
