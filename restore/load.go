package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rehearse-dev/rehearse/integrity"
	"github.com/rehearse-dev/rehearse/pgcatalog"
)

// SequenceFix records how a sequence was moved past max(id).
type SequenceFix struct {
	Sequence string `json:"sequence"`
	Table    string `json:"table"`
	Column   string `json:"column"`
	Before   int64  `json:"before"` // next value before the fix
	After    int64  `json:"after"`  // next value after the fix
}

// load writes a validated backup inside tx: it replaces rows whose keys already
// exist, streams each run of same-model objects through COPY, writes the
// many-to-many rows, checks foreign keys, and fixes sequences.
func load(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, sm *schemaMap, opts *Options, res *Result) error {
	start := time.Now()
	skip := map[string]bool{}
	for _, t := range opts.Defects.SkipTables {
		skip[t] = true
	}
	var super bool
	if err := tx.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return fmt.Errorf("read role attributes: %w", err)
	}
	if super {
		// Fast path, as pg_restore does: no per-row FK trigger work while
		// loading; every FK touching a loaded table is checked set-wise below.
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		res.FastPath = true
	} else if _, err := tx.Exec(ctx, `SET CONSTRAINTS ALL DEFERRED`); err != nil {
		return err
	}
	touched := map[string]bool{}
	if err := replaceExisting(ctx, tx, cat, sm, super, touched); err != nil {
		return err
	}
	for _, p := range sm.models {
		p.columns, p.colField, p.keys = nil, nil, newKeySet()
	}

	r, err := newDumpReader(opts.Open)
	if err != nil {
		return err
	}
	defer r.Close()
	m2m := map[*m2mPlan][][]any{}
	o, err := r.Next()
	for err == nil {
		p, perr := sm.model(o)
		if perr != nil {
			return perr
		}
		src := &runSource{r: r, sm: sm, plan: p, first: o, m2m: m2m}
		if p.columns == nil {
			if err := sm.fix(p, o); err != nil {
				return err
			}
		}
		var n int64
		if skip[p.table.Name] {
			for src.Next() {
			}
		} else {
			n, err = tx.CopyFrom(ctx, pgx.Identifier{cat.Schema, p.table.Name}, p.columns, src)
			if src.err != nil {
				return src.err
			}
			if err != nil {
				return fmt.Errorf("load %s (model %s): %w", p.table.Name, p.label, err)
			}
			touched[p.table.Name] = true
		}
		res.Rows[p.table.Name] += n
		opts.emit(PhaseTableLoaded, p.table.Name, n)
		o, err = src.pending, src.err
		if o == nil && err == nil {
			err = io.EOF
		}
	}
	if !errors.Is(err, io.EOF) {
		return err
	}
	for mp, rows := range m2m {
		if skip[mp.through.Name] || skip[strings.TrimSuffix(mp.through.Name, "_"+mp.field)] {
			continue
		}
		n, err := tx.CopyFrom(ctx, pgx.Identifier{cat.Schema, mp.through.Name}, []string{mp.srcCol, mp.tgtCol}, pgx.CopyFromRows(rows))
		if err != nil {
			return fmt.Errorf("load many-to-many %s: %w", mp.through.Name, err)
		}
		res.Rows[mp.through.Name] += n
		touched[mp.through.Name] = true
	}
	if super {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = origin`); err != nil {
			return err
		}
	}
	if super && !opts.Defects.SkipFKCheck {
		broken, err := integrity.CheckForeignKeys(ctx, tx, cat, touched)
		if err != nil {
			return err
		}
		if bad := integrity.Broken(broken); len(bad) > 0 {
			b := bad[0]
			return fmt.Errorf("restore rolled back: %d rows of %s.%s refer to missing %s rows (constraint %s, e.g. key %s)", b.Count, b.Table, strings.Join(b.Columns, ","), b.RefTable, b.Constraint, b.Example)
		}
	}
	if !opts.Defects.SkipSequences {
		fixes, err := FixSequences(ctx, tx, cat, touched)
		if err != nil {
			return err
		}
		res.Sequences = fixes
	}
	res.Timings.Load = time.Since(start)
	return nil
}

// replaceExisting deletes the rows whose primary keys the backup brings again
// (Django's loaddata overwrites them too), and the many-to-many rows of those
// objects, so that COPY can insert every object.
func replaceExisting(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, sm *schemaMap, super bool, touched map[string]bool) error {
	for _, p := range sm.models {
		existing, err := existingKeys(ctx, tx, cat, p.table, p.pk.Name)
		if err != nil {
			return err
		}
		var clash []any
		existing.each(func(k key) bool {
			if p.keys.has(k) {
				clash = append(clash, k.value())
			}
			return true
		})
		if len(clash) == 0 {
			continue
		}
		if !super {
			for _, fk := range cat.Referencing(p.table.Name) {
				if fk.OnDelete == "c" || fk.OnDelete == "n" || fk.OnDelete == "d" || !fk.Deferrable {
					return fmt.Errorf("cannot replace %d existing rows of %s without superuser rights: foreign key %s on %s would act on delete (ON DELETE or not deferrable); run the restore as a superuser or empty the table first", len(clash), p.table.Name, fk.Name, fk.Table)
				}
			}
		}
		for _, mp := range p.m2m {
			if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s = ANY($1)", cat.QualifiedIdent(mp.through.Name), pgcatalog.Ident(mp.srcCol)), clash); err != nil {
				return fmt.Errorf("replace many-to-many rows of %s: %w", mp.through.Name, err)
			}
			touched[mp.through.Name] = true
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s = ANY($1)", cat.QualifiedIdent(p.table.Name), pgcatalog.Ident(p.pk.Name)), clash); err != nil {
			return fmt.Errorf("replace existing rows of %s: %w", p.table.Name, err)
		}
		touched[p.table.Name] = true
	}
	return nil
}

// runSource feeds COPY with the objects of one model until the next object is
// of another model (kept in pending for the next COPY).
type runSource struct {
	r       *dumpReader
	sm      *schemaMap
	plan    *modelPlan
	first   *object
	pending *object
	vals    []any
	m2m     map[*m2mPlan][][]any
	err     error
}

func (s *runSource) Next() bool {
	o := s.first
	s.first = nil
	if o == nil {
		var err error
		o, err = s.r.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.err = err
			}
			return false
		}
	}
	if o.Model != s.plan.label {
		s.pending = o
		return false
	}
	vals, pairs, err := s.sm.row(s.plan, o, s.vals)
	if err != nil {
		s.err = err
		return false
	}
	s.vals = vals
	for _, pr := range pairs {
		s.m2m[pr.plan] = append(s.m2m[pr.plan], []any{pr.src, pr.tgt})
	}
	return true
}

func (s *runSource) Values() ([]any, error) { return s.vals, nil }
func (s *runSource) Err() error             { return s.err }

// FixSequences moves every sequence owned by a column of the given tables past
// max(column). It never moves a sequence backwards: ids handed out before must
// not be handed out again.
func FixSequences(ctx context.Context, q interface {
	pgcatalog.Querier
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}, cat *pgcatalog.Catalog, tables map[string]bool) ([]SequenceFix, error) {
	states, err := integrity.CheckSequences(ctx, q, cat, tables)
	if err != nil {
		return nil, err
	}
	var fixes []SequenceFix
	for _, st := range states {
		want := st.Next
		if st.Max != nil && *st.Max+1 > want {
			want = *st.Max + 1
		}
		if _, err := q.Exec(ctx, `SELECT setval($1::regclass, $2, false)`, st.Sequence, want); err != nil {
			return nil, fmt.Errorf("move sequence %s: %w", st.Sequence, err)
		}
		fixes = append(fixes, SequenceFix{Sequence: st.Sequence, Table: st.Table, Column: st.Column, Before: st.Next, After: want})
	}
	return fixes, nil
}
