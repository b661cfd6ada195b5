package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// A two-phase restore must refuse a bad backup before its reinit commits.
// Loading the whole backup once in a rolled-back savepoint (rehearse) proves
// it, at the price of a second load. When the engine's own checks cover
// every way the schema can refuse a row, the backup is instead checked by
// the validating pass (types, NOT NULL, lengths, primary and unique keys,
// foreign keys against the backup and the kept rows), and PostgreSQL itself
// checks the rows whose values come near a limit the engine does not model
// (a long value in an indexed column, a jsonb number with an exponent, a
// decimal near its precision), plus the first row of each model (its
// defaults), in temporary copies of their tables. engineChecksSuffice says
// when that holds; anything else keeps the full rehearsal.

// Limits of the rows PostgreSQL checks one by one: beyond them, the full
// rehearsal is cheaper than holding the rows.
const (
	maxCheckedRows  = 2000
	maxCheckedBytes = 8 << 20
	// longValue is the length from which a row's values in indexed columns
	// may not fit an index entry (btree's limit is about 2700 bytes).
	longValue = 2000
	// deepJSON is the nesting from which PostgreSQL's JSON parser is asked.
	deepJSON = 64
)

// schemaLimits reads, for every table of the schema, what would make the
// engine's checks fall short of PostgreSQL's when the backup writes it
// (reasonFor), and the indexed columns, whose long values are flagged.
// Before the validating pass: which tables the backup writes is known only
// after it.
func schemaLimits(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog) (*pgChecks, error) {
	pc := &pgChecks{byTable: map[string]*checkedRows{}, reasons: map[string]string{}}
	var super bool
	var encoding string
	if err := q.QueryRow(ctx, `SELECT rolsuper, current_setting('server_encoding') FROM pg_roles WHERE rolname = current_user`).Scan(&super, &encoding); err != nil {
		return nil, fmt.Errorf("read role attributes: %w", err)
	}
	switch {
	case !super:
		pc.global = "the role is not a superuser (privileges, row security and triggers apply)"
	case encoding != "UTF8":
		pc.global = "the server encoding is " + encoding + ", not UTF8"
	}
	if pc.global != "" {
		return pc, nil
	}
	reasons, err := queryPairs(ctx, q, `
	  SELECT c.relname, CASE con.contype WHEN 'c' THEN 'a CHECK constraint' ELSE 'an exclusion constraint' END
	    FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
	   WHERE c.relnamespace = $1::regnamespace AND con.contype IN ('c', 'x')
	  UNION ALL
	  SELECT c.relname, 'an index on an expression or with a predicate'
	    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
	   WHERE c.relnamespace = $1::regnamespace AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
	  UNION ALL
	  SELECT c.relname, 'column ' || a.attname || CASE WHEN a.attgenerated <> '' THEN ', which is generated' ELSE ', of a domain type' END
	    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid
	   WHERE c.relnamespace = $1::regnamespace AND a.attnum > 0 AND NOT a.attisdropped AND (a.attgenerated <> '' OR t.typtype = 'd')
	  UNION ALL
	  SELECT c.relname, 'a trigger that fires during a restore (ENABLE ALWAYS or REPLICA)'
	    FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
	   WHERE c.relnamespace = $1::regnamespace AND NOT tg.tgisinternal AND tg.tgenabled IN ('A', 'R')
	  UNION ALL
	  SELECT c.relname, 'partitions or inheritance'
	    FROM pg_class c
	   WHERE c.relnamespace = $1::regnamespace
	     AND (c.relkind = 'p' OR c.relispartition OR EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhparent = c.oid OR h.inhrelid = c.oid))
	  UNION ALL
	  SELECT c.relname, 'a unique index over ' || a.attname || ' (' || format_type(a.atttypid, a.atttypmod) || '), whose values the engine does not compare with the rows kept'
	    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
	    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY ((i.indkey::int2[])[0:i.indnkeyatts - 1])
	    JOIN pg_type t ON t.oid = a.atttypid
	    LEFT JOIN pg_collation co ON co.oid = a.attcollation
	   WHERE c.relnamespace = $1::regnamespace AND i.indisunique
	     -- the types keptComparable reads back from the rows kept
	     AND (t.typname NOT IN ('int2', 'int4', 'int8', 'text', 'varchar', 'name', 'uuid') OR NOT COALESCE(co.collisdeterministic, true))
	  UNION ALL
	  SELECT x.relname, 'the foreign key ' || con.conname || ', of several columns'
	    FROM pg_constraint con JOIN pg_class x ON x.oid IN (con.conrelid, con.confrelid)
	   WHERE con.contype = 'f' AND cardinality(con.conkey) > 1 AND x.relnamespace = $1::regnamespace`, cat.Schema)
	if err != nil {
		return nil, fmt.Errorf("read the constraints of the schema: %w", err)
	}
	for r := range reasons {
		if _, ok := pc.reasons[r[0]]; !ok || r[1] < pc.reasons[r[0]] {
			pc.reasons[r[0]] = r[1] // one per table, the same each run
		}
	}
	for _, name := range cat.TableNames() {
		for _, fk := range cat.Tables[name].ForeignKeys {
			if ref := cat.Tables[fk.RefTable]; ref == nil || ref.PK() != fk.RefColumn {
				pc.reasons[name] = "the foreign key " + fk.Name + ", to a column other than " + fk.RefTable + "'s primary key"
			}
		}
	}
	pc.indexed, err = queryPairs(ctx, q, `SELECT c.relname, a.attname FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
		WHERE c.relnamespace = $1::regnamespace`, cat.Schema)
	return pc, err
}

// reasonFor returns "" when the engine's checks and the flagged rows cover
// every refusal PostgreSQL could make while loading sm's tables on the
// fast path (superuser, triggers off), or why the backup must be rehearsed.
func (pc *pgChecks) reasonFor(sm *schemaMap) string {
	if pc.global != "" {
		return pc.global
	}
	for _, name := range sm.writtenTables() {
		if r := pc.reasons[name]; r != "" {
			return "table " + name + " has " + r
		}
	}
	for _, label := range slices.Sorted(maps.Keys(sm.models)) {
		if r := unwrittenKeyColumn(sm.models[label]); r != "" {
			return r
		}
	}
	if pc.overflow {
		return fmt.Sprintf("more than %d rows (or %d MiB) need PostgreSQL's own check", maxCheckedRows, maxCheckedBytes>>20)
	}
	return ""
}

// unwrittenKeyColumn names a column of a unique index or a foreign key
// that p's objects leave out, when PostgreSQL fills it with a default:
// the same default in every row clashes from the second on, or refers to
// a row that may not exist, and only PostgreSQL evaluates it (the engine
// checks the first row's defaults only). A nullable column without a
// default is NULL, which never clashes nor refers (unless NULLs are not
// distinct in the index).
func unwrittenKeyColumn(p *modelPlan) string {
	if p.columns == nil {
		return ""
	}
	unwritten := func(name string, nullsEqual bool) bool {
		if slices.Contains(p.columns, name) {
			return false
		}
		col, _ := p.table.Column(name)
		return col.HasDefault || nullsEqual
	}
	for _, us := range p.table.UniqueSets {
		for _, c := range us.Columns {
			if unwritten(c, us.NullsNotDistinct) {
				return fmt.Sprintf("table %s has the unique index %s over column %s, which the backup's %s objects leave to its default", p.table.Name, us.Name, c, p.label)
			}
		}
	}
	for _, fk := range p.table.ForeignKeys {
		if unwritten(fk.Column, false) {
			return fmt.Sprintf("table %s has the foreign key %s over column %s, which the backup's %s objects leave to its default", p.table.Name, fk.Name, fk.Column, p.label)
		}
	}
	return ""
}

// queryPairs runs a query returning (table, column) rows, as a set.
func queryPairs(ctx context.Context, q pgcatalog.Querier, sql string, args ...any) (map[[2]string]bool, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	out := map[[2]string]bool{}
	var t, c string
	_, err = pgx.ForEachRow(rows, []any{&t, &c}, func() error {
		out[[2]string{t, c}] = true
		return nil
	})
	return out, err
}

// writtenTables lists the tables the backup writes rows to: its models'
// and their many-to-many tables.
func (m *schemaMap) writtenTables() []string {
	seen := map[string]bool{}
	var out []string
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, p := range m.models {
		add(p.table.Name)
		for _, mp := range p.m2m {
			add(mp.through.Name)
		}
	}
	slices.Sort(out)
	return out
}

// backupRows is the rows the validating pass read, per table (many-to-many
// tables included).
func (m *schemaMap) backupRows() map[string]int64 {
	out := maps.Clone(m.pairRows)
	if out == nil {
		out = map[string]int64{}
	}
	for _, p := range m.models {
		out[p.table.Name] += int64(p.keys.len())
	}
	return out
}

// pgChecks collects, during the validating pass, the rows PostgreSQL must
// check itself.
type pgChecks struct {
	global   string            // why no table can do without the rehearsal
	reasons  map[string]string // why a table cannot
	indexed  map[[2]string]bool
	byTable  map[string]*checkedRows
	rows     int
	bytes    int
	overflow bool // more than maxCheckedRows or maxCheckedBytes: rehearse instead
}

// checkedRows are one model's flagged rows, as binary COPY tuples.
type checkedRows struct {
	p       *modelPlan
	columns []string
	tuples  [][]byte
	objects []BackupError // which object each tuple is (Index, Model, PK)
}

// consider keeps p's current row (just converted from o) when one of its
// values needs PostgreSQL's own check, or when it is the model's first.
func (pc *pgChecks) consider(p *modelPlan, o *object) {
	if pc.overflow {
		return
	}
	cr := pc.byTable[p.label]
	first := cr == nil
	if !first && !pc.flagged(p) {
		return
	}
	if first {
		cr = &checkedRows{p: p, columns: append([]string(nil), p.columns...)}
		pc.byTable[p.label] = cr
	}
	tuple := p.encode(nil)
	pc.rows++
	pc.bytes += len(tuple)
	if pc.rows > maxCheckedRows || pc.bytes > maxCheckedBytes {
		pc.overflow = true
		return
	}
	cr.tuples = append(cr.tuples, tuple)
	cr.objects = append(cr.objects, BackupError{Index: o.Index, Model: strings.ToValidUTF8(o.Model, "\uFFFD"), PK: o.pkText()})
}

// flagged says whether a value of p's current row is near a limit of
// PostgreSQL's that the converters do not model. An index entry holds all
// of its columns (INCLUDE ones too), so the lengths of the row's indexed
// values are added up.
func (pc *pgChecks) flagged(p *modelPlan) bool {
	indexedBytes := 0
	for i, cv := range p.convs {
		c := &p.cells[i]
		if c.null {
			continue
		}
		switch cv.kind {
		case kText, kBytea, kJSON, kJSONB:
			if pc.indexed[[2]string{p.table.Name, p.columns[i]}] {
				n := len(c.b)
				if cv.kind == kJSONB {
					n *= 4 // its stored form can be several times its text (arrays of small numbers)
				}
				if indexedBytes += n; indexedBytes > longValue {
					return true
				}
			}
		}
		switch {
		case cv.kind == kText && cv.name && len(c.b) >= 64:
			return true
		case (cv.kind == kJSON || cv.kind == kJSONB) && unusualJSON(c.b, cv.kind == kJSON):
			return true
		case cv.kind == kNumeric && c.nearLimit:
			return true
		}
	}
	return false
}

// unusualJSON says whether PostgreSQL's JSON parser should see raw (JSON the
// scanner has checked): nested deeper than deepJSON, or, for jsonb, a number
// with an exponent or more than 15 digits (numeric's input has its own
// range), or, for json, any \u escape (its parser checks them its own way).
func unusualJSON(raw []byte, plainJSON bool) bool {
	if plainJSON && bytes.Contains(raw, []byte(`\u`)) {
		return true
	}
	depth, inString, escaped := 0, false, false
	for i := 0; i < len(raw); i++ {
		b := raw[i]
		switch {
		case inString:
			if escaped {
				escaped = false
			} else if b == '\\' {
				escaped = true
			} else if b == '"' {
				inString = false
			}
		case b == '"':
			inString = true
		case b == '{' || b == '[':
			if depth++; depth > deepJSON {
				return true
			}
		case b == '}' || b == ']':
			depth--
		case b == '-' || (b >= '0' && b <= '9'):
			j := i
			for j < len(raw) && strings.IndexByte("+-.0123456789eE", raw[j]) >= 0 {
				if raw[j] == 'e' || raw[j] == 'E' {
					return !plainJSON
				}
				j++
			}
			if !plainJSON && j-i > 15 {
				return true
			}
			i = j - 1
		}
	}
	return false
}

// nearPrecision says whether the decimal text s may not fit numeric(p, s):
// rounding to scale decimals adds at most one digit before the point, so a
// value with fewer than p-scale digits there always fits.
func nearPrecision(text string, precision, scale int) bool {
	t := strings.TrimLeft(strings.TrimPrefix(text, "-"), "0")
	if strings.ContainsAny(t, "eE") {
		return true
	}
	intDigits := len(t)
	if i := strings.IndexByte(t, '.'); i >= 0 {
		intDigits = i
	}
	return intDigits >= precision-scale
}

var numericTypmod = regexp.MustCompile(`^numeric\((\d+),(-?\d+)\)$`)

// numericLimits reads numeric(p, s) from a column's display type (0, 0 for
// numeric without a typmod).
func numericLimits(display string) (precision, scale int) {
	m := numericTypmod.FindStringSubmatch(display)
	if m == nil {
		return 0, 0
	}
	precision, _ = strconv.Atoi(m[1])
	scale, _ = strconv.Atoi(m[2])
	return precision, scale
}

// checkInPostgres copies each flagged row, one COPY each, into a temporary
// copy of its table (LIKE ... INCLUDING ALL: its types, defaults, NOT NULL
// and indexes, not its foreign keys or triggers), in a savepoint of tx that
// is rolled back: a row PostgreSQL refuses is refused by name.
func checkInPostgres(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, pc *pgChecks) error {
	if pc == nil || len(pc.byTable) == 0 {
		return nil
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	defer sp.Rollback(context.WithoutCancel(ctx))
	n := 0
	for _, label := range slices.Sorted(maps.Keys(pc.byTable)) {
		cr := pc.byTable[label]
		n++
		temp := fmt.Sprintf("pg_temp.rehearse_check_%d", n)
		if _, err := sp.Exec(ctx, fmt.Sprintf("CREATE TEMP TABLE %s (LIKE %s INCLUDING ALL)", temp, cat.QualifiedIdent(cr.p.table.Name))); err != nil {
			return fmt.Errorf("copy table %s to check rows in it: %w", cr.p.table.Name, err)
		}
		sql := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", temp, pgcatalog.ColumnList(cr.columns))
		for i, tuple := range cr.tuples {
			stream := append(append(append([]byte(nil), copyHeader...), tuple...), copyTrailer...)
			if _, err := sp.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(stream), sql); err != nil {
				var pgErr *pgconn.PgError
				if ctx.Err() != nil || !errors.As(err, &pgErr) {
					return err
				}
				be := cr.objects[i]
				be.Field = pgErr.ColumnName
				be.Problem = "PostgreSQL refuses it: " + pgErr.Message
				if pgErr.Detail != "" {
					be.Problem += " (" + pgErr.Detail + ")"
				}
				// Name the table, not its temporary copy (nor the copy's indexes).
				be.Problem = strings.ReplaceAll(be.Problem, strings.TrimPrefix(temp, "pg_temp."), cr.p.table.Name)
				return &be
			}
		}
	}
	return sp.Rollback(ctx)
}

// rowsChecked is how many rows checkInPostgres checks.
func (pc *pgChecks) rowsChecked() int {
	n := 0
	for _, cr := range pc.byTable {
		n += len(cr.tuples)
	}
	return n
}
