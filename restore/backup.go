package restore

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
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
	// Models maps a table to its model label, for a Django model whose
	// db_table is not "<app_label>_<model>" ("legacy_people" → "people.person").
	Models map[string]string
	// IncludeModels, when set, keeps only these models; ExcludeModels leaves
	// these out. Entries are labels ("auth.user") or app labels ("auth"), as
	// dumpdata takes them. Naming a model of DjangoDefaultExcludes in
	// IncludeModels keeps it; ExcludeModels wins over both.
	IncludeModels []string
	ExcludeModels []string
}

// BackupStats says what Backup wrote, and what it left out and why.
type BackupStats struct {
	Objects int            `json:"objects"`
	Models  map[string]int `json:"models"`
	Labels  string         `json:"labels"` // LabelsFromContentTypes or LabelsFromTableNames
	Skipped []Skipped      `json:"skipped,omitempty"`
}

// Backup writes the application tables of the database in Django dumpdata
// format: one object per row, FK fields as the target pk, many-to-many
// fields as sorted lists of pks. In a Django schema (one with
// django_content_type) each table is written under its model's label
// (app_label.model), tables that are no model are left out, and so, by
// default, are DjangoDefaultExcludes; elsewhere the label is guessed from the
// table name (ModelLabel). Output is deterministic: models sorted by label,
// objects by pk. It reads in one REPEATABLE READ transaction, so the backup
// is a consistent snapshot.
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
	plan, err := planBackup(ctx, tx, cat, opts)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	stats := &BackupStats{Models: map[string]int{}, Labels: plan.labels, Skipped: plan.skipped}
	bw.WriteString("[")
	first := true
	for _, m := range plan.models {
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

type backupPlan struct {
	models  []backupModel
	skipped []Skipped
	labels  string
}

func (p *backupPlan) skip(table, model string, r SkipReason, detail string) {
	p.skipped = append(p.skipped, Skipped{Table: table, Model: model, Reason: r, Detail: detail})
}

// planBackup decides which tables are written under which label, and which
// are left out and why.
func planBackup(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog, opts BackupOptions) (*backupPlan, error) {
	cts, ctLabels, django, err := loadContentTypes(ctx, q, cat)
	if err != nil {
		return nil, err
	}
	p := &backupPlan{labels: LabelsFromTableNames}
	if django {
		p.labels = LabelsFromContentTypes
	}
	explicit, err := explicitLabels(cat, opts.Models, cts, ctLabels, django)
	if err != nil {
		return nil, err
	}
	excluded := map[string]bool{}
	for _, t := range opts.Exclude {
		excluded[t] = true
	}
	var candidates []*backupModel
	var through []*pgcatalog.Table
	for _, name := range cat.TableNames() {
		t := cat.Tables[name]
		label, ok := explicit[name]
		switch {
		case excluded[name]:
			p.skip(name, "", SkipExcludedTable, "excluded: bookkeeping that is never restored")
			continue
		case ok:
		case isThrough(cat, t):
			through = append(through, t)
			continue
		case django && name == migrationsTable:
			p.skip(name, "", SkipNotAModel, "no model: Django's record of applied migrations, which the target's own migrate writes")
			continue
		case django:
			p.skip(name, "", SkipNotAModel, "no model: django_content_type names none for this table (a model with a custom db_table needs a mapping table → app_label.model)")
			continue
		default:
			label = ModelLabel(name)
		}
		if t.PK() == "" {
			p.skip(name, label, SkipNoPrimaryKey, "no single-column primary key, which dumpdata needs to name a row")
			continue
		}
		candidates = append(candidates, &backupModel{label: label, table: t})
	}
	known := map[string]bool{}
	for l := range ctLabels {
		known[l] = true
	}
	byLabel := map[string]string{}
	for _, m := range candidates {
		if other, dup := byLabel[m.label]; dup {
			return nil, fmt.Errorf("tables %s and %s would both be written as model %s: map one of them to its own label", other, m.table.Name, m.label)
		}
		byLabel[m.label] = m.table.Name
		known[m.label] = true
	}
	sel, err := p.choose(cat, candidates, through, known, opts, django)
	if err != nil {
		return nil, err
	}
	for l := range ctLabels {
		if r, _ := sel.why(l); byLabel[l] == "" && r == "" {
			app, model, _ := strings.Cut(l, ".")
			p.skip("", l, SkipNoTable, "django_content_type names this model but there is no table "+djangoTableName(app, model)+
				": a proxy or unmanaged model, one since removed, or a custom db_table to map (table → "+l+")")
		}
	}
	sort.Slice(p.models, func(i, j int) bool { return p.models[i].label < p.models[j].label })
	sort.SliceStable(p.skipped, func(i, j int) bool {
		a, b := p.skipped[i], p.skipped[j]
		return a.Table+"\x00"+a.Model < b.Table+"\x00"+b.Model
	})
	return p, nil
}

// isThrough reports whether t is an auto-created many-to-many table, written
// as a list field of its owner.
func isThrough(cat *pgcatalog.Catalog, t *pgcatalog.Table) bool {
	_, ok := cat.ManyToManyOf(t)
	return ok
}

// choose applies IncludeModels, ExcludeModels and Django's defaults to the
// candidates, and attaches each many-to-many table to its owner.
func (p *backupPlan) choose(cat *pgcatalog.Catalog, candidates []*backupModel, through []*pgcatalog.Table, known map[string]bool, opts BackupOptions, django bool) (selection, error) {
	inc, err := checkEntries("include models", opts.IncludeModels, known)
	if err != nil {
		return selection{}, err
	}
	exc, err := checkEntries("exclude models", opts.ExcludeModels, known)
	if err != nil {
		return selection{}, err
	}
	sel := selection{include: inc, exclude: exc, django: django}
	kept := map[string]*backupModel{}
	for _, m := range candidates {
		if r, why := sel.why(m.label); r != "" {
			p.skip(m.table.Name, m.label, r, why)
			continue
		}
		kept[m.table.Name] = m
	}
	for _, t := range through {
		mm, _ := cat.ManyToManyOf(t)
		if m := kept[mm.Owner]; m != nil {
			m.m2m = append(m.m2m, backupM2M{field: mm.Field, through: t, src: mm.OwnerCol, tgt: mm.TgtCol})
		} else {
			p.skip(t.Name, "", SkipOwnerLeftOut, "many-to-many table of "+mm.Owner+", which is left out")
		}
	}
	for _, m := range candidates {
		if kept[m.table.Name] != nil {
			p.models = append(p.models, *m)
		}
	}
	return sel, nil
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
			writeColumn(w, c.Type, vals[i])
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

// writeColumn renders a column's value where its type, not its Go value,
// decides Django's format: dates without a time, and naive timestamps (a
// DateTimeField with USE_TZ off) without a zone.
func writeColumn(w *bufio.Writer, typ string, v any) {
	if tv, ok := v.(time.Time); ok {
		switch typ {
		case "date":
			w.WriteString(`"` + tv.Format("2006-01-02") + `"`)
			return
		case "timestamp":
			w.WriteString(`"` + strings.TrimSuffix(djangoTime(tv), "Z") + `"`)
			return
		}
	}
	writeValue(w, v)
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
	case pgtype.Time: // TimeField: time.isoformat()
		us := x.Microseconds
		s := fmt.Sprintf("%02d:%02d:%02d", us/3600e6, us/60e6%60, us/1e6%60)
		if us%1e6 != 0 {
			s += fmt.Sprintf(".%06d", us%1e6)
		}
		w.WriteString(`"` + s + `"`)
	case pgtype.Interval: // DurationField
		w.WriteString(`"` + djangoDuration(x) + `"`)
	case netip.Prefix: // GenericIPAddressField is inet; a host address has no /32
		s := x.String()
		if x.Bits() == x.Addr().BitLen() {
			s = x.Addr().String()
		}
		w.WriteString(`"` + s + `"`)
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

// djangoDuration is django.utils.duration.duration_string of the timedelta
// psycopg2 reads from an interval (a month is 30 days): "[D ]HH:MM:SS[.ffffff]",
// days negative and the rest positive for a negative duration.
func djangoDuration(iv pgtype.Interval) string {
	const day = int64(86400e6)
	total := (int64(iv.Months)*30+int64(iv.Days))*day + iv.Microseconds
	days := total / day
	if total%day < 0 {
		days--
	}
	rest := total - days*day
	s := fmt.Sprintf("%02d:%02d:%02d", rest/3600e6, rest/60e6%60, rest/1e6%60)
	if days != 0 {
		s = strconv.FormatInt(days, 10) + " " + s
	}
	if rest%1e6 != 0 {
		s += fmt.Sprintf(".%06d", rest%1e6)
	}
	return s
}

func djangoTime(t time.Time) string {
	t = t.UTC()
	s := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s + "Z"
}
