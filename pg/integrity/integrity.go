// Package integrity checks the invariants a restore must leave behind, on any
// PostgreSQL schema: every foreign key holds (scanned row by row, because a
// constraint that is NOT VALID, or rows loaded with triggers disabled, leave the
// catalog saying nothing), and every serial or identity sequence is ahead of
// the largest value in its column.
package integrity

import (
	"context"
	"fmt"
	"strings"

	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// Orphans is the result of checking one foreign key constraint.
type Orphans struct {
	Constraint string   `json:"constraint"`
	Table      string   `json:"table"`
	Columns    []string `json:"columns"`
	RefTable   string   `json:"ref_table"`
	Validated  bool     `json:"validated"` // false: NOT VALID in the catalog
	Count      int64    `json:"orphans"`   // rows whose key has no target
	Example    string   `json:"example,omitempty"`
}

// CheckForeignKeys counts orphan rows for every foreign key constraint of the
// catalog (MATCH SIMPLE: rows with a NULL in the key are not orphans). When
// only is non-nil, constraints that touch none of those tables are skipped.
func CheckForeignKeys(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog, only map[string]bool) ([]Orphans, error) {
	var out []Orphans
	for _, c := range cat.AllForeignKeys {
		if only != nil && !only[c.Table] && !only[c.RefTable] {
			continue
		}
		var notNull, join []string
		for i, col := range c.Columns {
			notNull = append(notNull, "c."+pgcatalog.Ident(col)+" IS NOT NULL")
			join = append(join, "p."+pgcatalog.Ident(c.RefColumns[i])+" = c."+pgcatalog.Ident(col))
		}
		sql := fmt.Sprintf(`SELECT count(*), COALESCE(min((%s)::text), '') FROM %s c WHERE %s AND NOT EXISTS (SELECT 1 FROM %s p WHERE %s)`,
			"c."+pgcatalog.Ident(c.Columns[0]),
			cat.QualifiedIdent(c.Table), strings.Join(notNull, " AND "),
			cat.QualifiedIdent(c.RefTable), strings.Join(join, " AND "))
		o := Orphans{Constraint: c.Name, Table: c.Table, Columns: c.Columns, RefTable: c.RefTable, Validated: c.Validated}
		if err := q.QueryRow(ctx, sql).Scan(&o.Count, &o.Example); err != nil {
			return nil, fmt.Errorf("check foreign key %s on %s: %w", c.Name, c.Table, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// Broken returns the constraints with orphans.
func Broken(list []Orphans) []Orphans {
	var bad []Orphans
	for _, o := range list {
		if o.Count > 0 {
			bad = append(bad, o)
		}
	}
	return bad
}

// SequenceState compares a sequence with the column it feeds.
type SequenceState struct {
	Sequence string `json:"sequence"`
	Table    string `json:"table"`
	Column   string `json:"column"`
	Next     int64  `json:"next"` // the value nextval() would return
	Max      *int64 `json:"max"`  // max(column), nil for an empty table
	OK       bool   `json:"ok"`   // Max is nil or Next > Max
}

// CheckSequences reads every owned sequence of the catalog (or of only's tables).
func CheckSequences(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog, only map[string]bool) ([]SequenceState, error) {
	var out []SequenceState
	for _, name := range cat.TableNames() {
		if only != nil && !only[name] {
			continue
		}
		t := cat.Tables[name]
		for _, s := range t.Sequences {
			st, err := sequenceState(ctx, q, cat, s)
			if err != nil {
				return nil, err
			}
			out = append(out, st)
		}
	}
	return out, nil
}

func sequenceState(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog, s pgcatalog.Sequence) (SequenceState, error) {
	st := SequenceState{Sequence: s.Name, Table: s.Table, Column: s.Column}
	var last, incr int64
	var called bool
	err := q.QueryRow(ctx, fmt.Sprintf(`SELECT s.last_value, s.is_called, q.seqincrement FROM %s s, pg_sequence q WHERE q.seqrelid = $1::regclass`, s.Name), s.Name).Scan(&last, &called, &incr)
	if err != nil {
		return st, fmt.Errorf("read sequence %s: %w", s.Name, err)
	}
	st.Next = last
	if called {
		st.Next = last + incr
	}
	if err := q.QueryRow(ctx, fmt.Sprintf(`SELECT max(%s)::bigint FROM %s`, pgcatalog.Ident(s.Column), cat.QualifiedIdent(s.Table))).Scan(&st.Max); err != nil {
		return st, fmt.Errorf("read max(%s) of %s: %w", s.Column, s.Table, err)
	}
	st.OK = st.Max == nil || st.Next > *st.Max
	return st, nil
}
