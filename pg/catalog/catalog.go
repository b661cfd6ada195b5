// Package pgcatalog reads the shape of a PostgreSQL schema (tables, columns,
// primary keys, foreign keys, owned sequences) from the system catalog, so that
// the restore and reinit engines can work on any Django-made schema without a
// hand-written model list.
package catalog

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Querier is what the catalog needs: a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Column is one user-visible column of a table.
type Column struct {
	Name       string
	Type       string // base type name from pg_type (domains resolved), e.g. "int8", "varchar", "timestamptz", "_int4"
	Display    string // format_type output, e.g. "character varying(150)"
	NotNull    bool
	HasDefault bool // a DEFAULT expression or an identity column
	Identity   bool
	MaxLen     int // varchar/char length limit, 0 = none
}

// ForeignKey is a single-column foreign key constraint. Multi-column keys are
// kept in Table.CompositeFKs and only checked, never mapped to dumpdata fields.
type ForeignKey struct {
	Name       string
	Table      string
	Column     string
	RefTable   string
	RefColumn  string
	Deferrable bool
	Validated  bool   // false for NOT VALID constraints
	OnDelete   string // a=no action, r=restrict, c=cascade, n=set null, d=set default
}

// Sequence is a sequence owned by a column (serial or identity).
type Sequence struct {
	Name     string // schema-qualified, quoted, ready for regclass
	Table    string
	Column   string
	Identity bool
}

// Table is one ordinary or partitioned table.
type Table struct {
	Name        string
	Columns     []Column
	PrimaryKey  []string
	ForeignKeys []ForeignKey
	Sequences   []Sequence
	// Unique lists single-column UNIQUE constraints and indexes (not the primary key).
	Unique []string
	// UniqueSets lists every UNIQUE constraint and index but the primary
	// key, one or more columns each, in index order. Partial and
	// expression indexes are left out: which rows they cover, or what they
	// compare, is decided by PostgreSQL alone.
	UniqueSets []UniqueSet
	colIndex   map[string]int
}

// UniqueSet is one unique index: the key columns (INCLUDE columns are not
// part of it) whose values no two rows may share.
type UniqueSet struct {
	Name    string // the index
	Columns []string
	// NullsNotDistinct: NULLs are equal here (PostgreSQL 15's NULLS NOT
	// DISTINCT); otherwise a row with a NULL in a key column never clashes.
	NullsNotDistinct bool
}

// Column returns the named column.
func (t *Table) Column(name string) (Column, bool) {
	i, ok := t.colIndex[name]
	if !ok {
		return Column{}, false
	}
	return t.Columns[i], true
}

// PK returns the single primary-key column, or "" when the key is absent or composite.
func (t *Table) PK() string {
	if len(t.PrimaryKey) == 1 {
		return t.PrimaryKey[0]
	}
	return ""
}

// FK returns the single-column foreign key on the named column.
func (t *Table) FK(column string) (ForeignKey, bool) {
	for _, fk := range t.ForeignKeys {
		if fk.Column == column {
			return fk, true
		}
	}
	return ForeignKey{}, false
}

// Catalog is the schema of one PostgreSQL schema (namespace).
type Catalog struct {
	Schema string
	Tables map[string]*Table
	// AllForeignKeys includes multi-column keys, rendered for the integrity checker.
	AllForeignKeys []ConstraintRef
}

// ConstraintRef names any foreign key constraint, including multi-column ones.
type ConstraintRef struct {
	Name       string
	Table      string
	Columns    []string
	RefTable   string
	RefColumns []string
	Validated  bool
}

// Table returns the named table.
func (c *Catalog) Table(name string) (*Table, bool) {
	t, ok := c.Tables[name]
	return t, ok
}

// TableNames returns table names in sorted order.
func (c *Catalog) TableNames() []string {
	names := make([]string, 0, len(c.Tables))
	for n := range c.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Referencing returns every single-column foreign key that points at table.
func (c *Catalog) Referencing(table string) []ForeignKey {
	var out []ForeignKey
	for _, name := range c.TableNames() {
		for _, fk := range c.Tables[name].ForeignKeys {
			if fk.RefTable == table {
				out = append(out, fk)
			}
		}
	}
	return out
}

// Load reads the catalog of schema ("" means "public").
func Load(ctx context.Context, q Querier, schema string) (*Catalog, error) {
	if schema == "" {
		schema = "public"
	}
	cat := &Catalog{Schema: schema, Tables: map[string]*Table{}}
	if err := loadColumns(ctx, q, cat); err != nil {
		return nil, err
	}
	if err := loadPrimaryKeys(ctx, q, cat); err != nil {
		return nil, err
	}
	if err := loadForeignKeys(ctx, q, cat); err != nil {
		return nil, err
	}
	if err := loadUnique(ctx, q, cat); err != nil {
		return nil, err
	}
	if err := loadSequences(ctx, q, cat); err != nil {
		return nil, err
	}
	return cat, nil
}

func loadColumns(ctx context.Context, q Querier, cat *Catalog) error {
	var table string
	var col Column
	return each(ctx, q, cat, "columns from pg_attribute", `
SELECT c.relname, a.attname,
       COALESCE(bt.typname, t.typname),
       format_type(a.atttypid, a.atttypmod),
       a.attnotnull, a.atthasdef OR a.attidentity <> '', a.attidentity <> '',
       CASE WHEN COALESCE(bt.typname, t.typname) IN ('varchar','bpchar') AND a.atttypmod > 4 THEN a.atttypmod - 4 ELSE 0 END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE n.nspname = $1 AND c.relkind IN ('r','p') AND NOT c.relispartition
ORDER BY c.relname, a.attnum`, []any{&table, &col.Name, &col.Type, &col.Display, &col.NotNull, &col.HasDefault, &col.Identity, &col.MaxLen}, func() error {
		t := cat.Tables[table]
		if t == nil {
			t = &Table{Name: table, colIndex: map[string]int{}}
			cat.Tables[table] = t
		}
		t.colIndex[col.Name] = len(t.Columns)
		t.Columns = append(t.Columns, col)
		return nil
	})
}

func loadPrimaryKeys(ctx context.Context, q Querier, cat *Catalog) error {
	return loadIndexColumns(ctx, q, cat, "primary keys", `
SELECT c.relname, a.attname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = $1 AND i.indisprimary
ORDER BY c.relname, k.ord`, func(t *Table, col string) { t.PrimaryKey = append(t.PrimaryKey, col) })
}

// loadIndexColumns runs query (rows of table, column in schema $1) and hands
// each column to add for its table.
func loadIndexColumns(ctx context.Context, q Querier, cat *Catalog, what, query string, add func(t *Table, col string)) error {
	var table, col string
	return each(ctx, q, cat, what+" from pg_index", query, []any{&table, &col}, func() error {
		if t := cat.Tables[table]; t != nil {
			add(t, col)
		}
		return nil
	})
}

// each runs query over schema $1 and calls fn after each row is scanned
// into dest (pgx.ForEachRow); what names the rows in errors.
func each(ctx context.Context, q Querier, cat *Catalog, what, query string, dest []any, fn func() error) error {
	rows, err := q.Query(ctx, query, cat.Schema)
	if err != nil {
		return fmt.Errorf("read %s: %w", what, err)
	}
	_, err = pgx.ForEachRow(rows, dest, fn)
	return err
}

func loadForeignKeys(ctx context.Context, q Querier, cat *Catalog) error {
	var ref ConstraintRef
	var deferrable bool
	var onDelete string
	return each(ctx, q, cat, "foreign keys from pg_constraint", `
SELECT con.conname, c.relname, rc.relname,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o)::text[],
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)::text[],
       con.condeferrable, con.convalidated, con.confdeltype::text
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_class rc ON rc.oid = con.confrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0 AND n.nspname = $1
ORDER BY c.relname, con.conname`, []any{&ref.Name, &ref.Table, &ref.RefTable, &ref.Columns, &ref.RefColumns, &deferrable, &ref.Validated, &onDelete}, func() error {
		defer func() { ref.Columns, ref.RefColumns = nil, nil }() // the next row's arrays are its own
		cat.AllForeignKeys = append(cat.AllForeignKeys, ref)
		t := cat.Tables[ref.Table]
		if t == nil || len(ref.Columns) != 1 {
			return nil
		}
		t.ForeignKeys = append(t.ForeignKeys, ForeignKey{
			Name: ref.Name, Table: ref.Table, Column: ref.Columns[0],
			RefTable: ref.RefTable, RefColumn: ref.RefColumns[0],
			Deferrable: deferrable, Validated: ref.Validated, OnDelete: onDelete,
		})
		return nil
	})
}

func loadSequences(ctx context.Context, q Querier, cat *Catalog) error {
	var seq Sequence
	return each(ctx, q, cat, "owned sequences from pg_depend", `
SELECT quote_ident(sn.nspname) || '.' || quote_ident(s.relname), c.relname, a.attname, d.deptype = 'i'
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_class c ON c.oid = d.refobjid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.deptype IN ('a','i') AND n.nspname = $1
ORDER BY c.relname, a.attname`, []any{&seq.Name, &seq.Table, &seq.Column, &seq.Identity}, func() error {
		if t := cat.Tables[seq.Table]; t != nil {
			t.Sequences = append(t.Sequences, seq)
		}
		return nil
	})
}

// Ident quotes an identifier for SQL text.
func Ident(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

// QualifiedIdent quotes schema.name.
func (c *Catalog) QualifiedIdent(table string) string {
	return pgx.Identifier{c.Schema, table}.Sanitize()
}

// ColumnList returns quoted, comma-separated column names.
func ColumnList(cols []string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = Ident(c)
	}
	return strings.Join(q, ", ")
}

// ManyToMany describes a Django many-to-many through table: named
// "<owner>_<field>", with a primary key and exactly two foreign keys, one of
// them to the owner.
type ManyToMany struct {
	Owner, Field     string
	OwnerCol, TgtCol string
}

// ManyToManyOf reports whether t is such a through table.
func (c *Catalog) ManyToManyOf(t *Table) (ManyToMany, bool) {
	if len(t.ForeignKeys) != 2 || len(t.Columns) != 3 || t.PK() == "" {
		return ManyToMany{}, false
	}
	for i, fk := range t.ForeignKeys {
		prefix := fk.RefTable + "_"
		if strings.HasPrefix(t.Name, prefix) && len(t.Name) > len(prefix) {
			other := t.ForeignKeys[1-i]
			return ManyToMany{Owner: fk.RefTable, Field: t.Name[len(prefix):], OwnerCol: fk.Column, TgtCol: other.Column}, true
		}
	}
	return ManyToMany{}, false
}

func loadUnique(ctx context.Context, q Querier, cat *Catalog) error {
	if err := loadUniqueSets(ctx, q, cat); err != nil {
		return err
	}
	return loadIndexColumns(ctx, q, cat, "unique indexes", `
SELECT c.relname, a.attname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
WHERE n.nspname = $1 AND i.indisunique AND NOT i.indisprimary AND i.indnatts = 1
  AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY c.relname, a.attname`, func(t *Table, col string) { t.Unique = append(t.Unique, col) })
}

// loadUniqueSets reads the unique indexes with their key columns in order.
// indnullsnotdistinct is read through to_jsonb, so that servers before
// PostgreSQL 15, which lack the column, read as "NULLs are distinct".
func loadUniqueSets(ctx context.Context, q Querier, cat *Catalog) error {
	var table string
	var u UniqueSet
	return each(ctx, q, cat, "unique indexes from pg_index", `
SELECT c.relname, ic.relname, COALESCE((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false),
       ARRAY(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(n, o)
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n
             WHERE k.o <= i.indnkeyatts ORDER BY k.o)::text[]
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND i.indisunique AND NOT i.indisprimary
  AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY c.relname, ic.relname`, []any{&table, &u.Name, &u.NullsNotDistinct, &u.Columns}, func() error {
		if t := cat.Tables[table]; t != nil {
			t.UniqueSets = append(t.UniqueSets, u)
		}
		u.Columns = nil // the next row's array is its own
		return nil
	})
}
