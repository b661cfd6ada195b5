package restore

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// BackupOptions configure Backup.
type BackupOptions struct {
	Schema  string   // "" = public
	Exclude []string // tables never written (bookkeeping such as token revocation)
}

// BackupStats says what Backup wrote.
type BackupStats struct {
	Objects int            `json:"objects"`
	Models  map[string]int `json:"models"`
}

// Backup writes the application tables of the database in Django dumpdata
// format: one object per row, model label from the table name, FK fields as
// the target pk, many-to-many fields as sorted lists of pks. Output is
// deterministic: models sorted by label, objects by pk. It reads in one
// REPEATABLE READ transaction, so the backup is a consistent snapshot.
func Backup(ctx context.Context, conn *pgx.Conn, w io.Writer, opts BackupOptions) (*BackupStats, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	cat, err := pgcatalog.Load(ctx, tx, opts.Schema)
	if err != nil {
		return nil, err
	}
	excluded := map[string]bool{}
	for _, t := range opts.Exclude {
		excluded[t] = true
	}
	models := modelTables(cat, excluded)
	bw := bufio.NewWriterSize(w, 1<<16)
	stats := &BackupStats{Models: map[string]int{}}
	bw.WriteString("[")
	first := true
	for _, m := range models {
		n, err := writeModel(ctx, tx, cat, m, bw, &first)
		if err != nil {
			return nil, fmt.Errorf("back up %s: %w", m.table.Name, err)
		}
		stats.Models[m.label] = n
		stats.Objects += n
	}
	if first {
		bw.WriteString("]\n")
	} else {
		bw.WriteString("\n]\n")
	}
	return stats, bw.Flush()
}

type backupModel struct {
	label string
	table *pgcatalog.Table
	m2m   []backupM2M
}

type backupM2M struct {
	field   string
	through *pgcatalog.Table
	src     string
	tgt     string
}

// ModelLabel is the dumpdata label of a Django table: "documents_documentversion"
// → "documents.documentversion". Django model names have no underscores, so the
// last underscore separates the app label.
func ModelLabel(table string) string {
	i := strings.LastIndexByte(table, '_')
	if i <= 0 {
		return table
	}
	return table[:i] + "." + table[i+1:]
}

func modelTables(cat *pgcatalog.Catalog, excluded map[string]bool) []backupModel {
	byTable := map[string]*backupModel{}
	var through []*pgcatalog.Table
	for _, name := range cat.TableNames() {
		t := cat.Tables[name]
		if excluded[name] {
			continue
		}
		if _, ok := cat.ManyToManyOf(t); ok {
			through = append(through, t)
			continue
		}
		if t.PK() == "" {
			continue
		}
		byTable[name] = &backupModel{label: ModelLabel(name), table: t}
	}
	for _, t := range through {
		mm, _ := cat.ManyToManyOf(t)
		if m := byTable[mm.Owner]; m != nil {
			m.m2m = append(m.m2m, backupM2M{field: mm.Field, through: t, src: mm.OwnerCol, tgt: mm.TgtCol})
		}
	}
	out := make([]backupModel, 0, len(byTable))
	for _, m := range byTable {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].label < out[j].label })
	return out
}

func writeModel(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, m backupModel, w *bufio.Writer, first *bool) (int, error) {
	t := m.table
	pk := t.PK()
	var sel []string
	var names []string
	for _, c := range t.Columns {
		sel = append(sel, "t."+pgcatalog.Ident(c.Name))
		names = append(names, c.Name)
	}
	for _, mm := range m.m2m {
		sel = append(sel, fmt.Sprintf("ARRAY(SELECT x.%s FROM %s x WHERE x.%s = t.%s ORDER BY 1)",
			pgcatalog.Ident(mm.tgt), cat.QualifiedIdent(mm.through.Name), pgcatalog.Ident(mm.src), pgcatalog.Ident(pk)))
	}
	rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s FROM %s t ORDER BY t.%s", strings.Join(sel, ", "), cat.QualifiedIdent(t.Name), pgcatalog.Ident(pk)))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	labelJSON, _ := json.Marshal(m.label)
	n := 0
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return n, err
		}
		if *first {
			w.WriteString("\n")
			*first = false
		} else {
			w.WriteString(",\n")
		}
		w.WriteString(`{"model": `)
		w.Write(labelJSON)
		w.WriteString(`, "pk": `)
		var pkVal any
		for i, name := range names {
			if name == pk {
				pkVal = vals[i]
			}
		}
		writeValue(w, pkVal)
		w.WriteString(`, "fields": {`)
		sep := ""
		for i, c := range t.Columns {
			if c.Name == pk {
				continue
			}
			field := c.Name
			if _, isFK := t.FK(c.Name); isFK && strings.HasSuffix(field, "_id") {
				field = strings.TrimSuffix(field, "_id")
			}
			w.WriteString(sep)
			sep = ", "
			fmt.Fprintf(w, "%q: ", field)
			if tv, ok := vals[i].(time.Time); ok && c.Type == "date" {
				w.WriteString(`"` + tv.Format("2006-01-02") + `"`)
				continue
			}
			writeValue(w, vals[i])
		}
		for j, mm := range m.m2m {
			w.WriteString(sep)
			sep = ", "
			fmt.Fprintf(w, "%q: ", mm.field)
			writeValue(w, vals[len(names)+j])
		}
		w.WriteString("}}")
		n++
	}
	return n, rows.Err()
}

// writeValue renders a value as Django's serializer does: timestamps in ISO
// 8601 with "Z" for UTC (microseconds kept, so a round trip is exact), dates as YYYY-MM-DD, decimals and
// UUIDs as strings, JSON as JSON.
func writeValue(w *bufio.Writer, v any) {
	switch x := v.(type) {
	case nil:
		w.WriteString("null")
	case bool:
		w.WriteString(strconv.FormatBool(x))
	case int16:
		w.WriteString(strconv.FormatInt(int64(x), 10))
	case int32:
		w.WriteString(strconv.FormatInt(int64(x), 10))
	case int64:
		w.WriteString(strconv.FormatInt(x, 10))
	case float32:
		w.WriteString(strconv.FormatFloat(float64(x), 'g', -1, 32))
	case float64:
		w.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case string:
		b, _ := json.Marshal(x)
		w.Write(b)
	case time.Time:
		w.WriteString(`"` + djangoTime(x) + `"`)
	case pgtype.Numeric:
		b, _ := x.MarshalJSON()
		w.WriteString(`"` + strings.Trim(string(b), `"`) + `"`)
	case [16]byte:
		w.WriteString(fmt.Sprintf(`"%x-%x-%x-%x-%x"`, x[0:4], x[4:6], x[6:8], x[8:10], x[10:16]))
	case []byte:
		w.WriteString(`"` + base64.StdEncoding.EncodeToString(x) + `"`)
	case []any:
		w.WriteString("[")
		for i, e := range x {
			if i > 0 {
				w.WriteString(", ")
			}
			writeValue(w, e)
		}
		w.WriteString("]")
	default:
		b, err := json.Marshal(x) // jsonb decodes to maps, slices and scalars
		if err != nil {
			b, _ = json.Marshal(fmt.Sprint(x))
		}
		w.Write(b)
	}
}

func djangoTime(t time.Time) string {
	t = t.UTC()
	s := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s + "Z"
}
