package restore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/rehearse-dev/rehearse/internal/suggest"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// schemaMap maps dumpdata models and fields onto tables and columns, the way
// Django names them: model "app.model" → table "app_model"; FK field "author" →
// column "author_id"; many-to-many field "groups" of users_user → through table
// "users_user_groups" with one FK to users_user and one to the target.
type schemaMap struct {
	// readExisting, when set (inline pass), reads a table's existing keys the
	// first time one of its models is met.
	readExisting func(t *pgcatalog.Table) (*keySet, error)
	readUnique   func(t *pgcatalog.Table) (map[string]map[string]key, error)
	cat          *pgcatalog.Catalog
	columnFrom   map[string]string // defect: "table.column" → field to read instead
	open         Opener            // the backup, read again to tell a hash clash from a duplicate
	truncated    map[string]bool   // tables emptied with TRUNCATE before the reinit (replaceThenReinit)
	protected    map[string]bool
	models       map[string]*modelPlan
	// The validating pass (readBackup): the many-to-many rows it read per
	// table, and, for a two-phase restore, the rows PostgreSQL must check.
	pairRows map[string]int64
	check    *pgChecks
}

func newSchemaMap(cat *pgcatalog.Catalog, protected []string) *schemaMap {
	p := map[string]bool{}
	for _, t := range protected {
		p[t] = true
	}
	return &schemaMap{cat: cat, protected: p, models: map[string]*modelPlan{}}
}

// TableForModel returns the table Django would use for a model label.
func TableForModel(label string) string {
	return strings.Replace(strings.ToLower(label), ".", "_", 1)
}

// modelPlan is how objects of one model are checked and loaded.
type modelPlan struct {
	label    string
	table    *pgcatalog.Table
	pk       pgcatalog.Column
	pkConv   *converter
	fields   map[string]*fieldPlan // by dumpdata field name
	m2m      map[string]*m2mPlan
	columns  []string     // COPY column list, pk first; fixed by the first object seen
	colField []*fieldPlan // per column after the pk
	cells    []cell       // the current row, in column order (pk first)
	convs    []*converter // per column, pk first
	pairs    []m2mPair    // the current row's many-to-many pairs
	keys     *keySet      // pks seen in the backup
	existing *keySet      // inline pass: keys already in the table
	// inline pass: rows whose keys exist, written after the pass, as binary
	// COPY tuples, with their keys
	diverted     []byte
	divertedKeys []any
	// inline pass: existing rows by the text of a unique column's value, so a
	// backup row with the same unique value (a recreated admin, say) replaces
	// the existing row instead of failing on the unique index.
	uniqueVals map[string]map[string]key
	replace    *keySet // existing keys to delete because of such a clash
	reinserted []any   // keys that existed and were replaced by the backup's rows
	unique     []*uniqueCheck
}

type fieldPlan struct {
	name   string
	column pgcatalog.Column
	conv   *converter
	fk     *fkCheck
	from   string // defect: the field read instead of name
	hint   int    // where the field was in the previous object (see object.fieldAt)
	hint2  int
}

// fkCheck collects the keys a foreign key column refers to, to be checked
// against the target's keys once the whole backup has been read.
type fkCheck struct {
	fk   pgcatalog.ForeignKey
	refs *keySet
}

type m2mPlan struct {
	field   string
	through *pgcatalog.Table
	srcCol  string
	tgtCol  string
	tgtConv *converter
	fk      *fkCheck // through.tgtCol → target
}

func (m *schemaMap) model(o *object) (*modelPlan, error) {
	if p, ok := m.models[o.Model]; ok {
		return p, nil
	}
	name := TableForModel(o.Model)
	t, ok := m.cat.Table(name)
	if !ok {
		return nil, objErr(o, "", "model %q has no table %q in schema %q; is this backup from another application, or are migrations missing?", o.Model, name, m.cat.Schema)
	}
	if m.protected[name] {
		return nil, objErr(o, "", "table %q is protected bookkeeping that a restore never writes (it would bring revoked tokens back); remove these objects from the backup", name)
	}
	if t.PK() == "" {
		return nil, objErr(o, "", "table %q has no single-column primary key, so dumpdata pks cannot map onto it", name)
	}
	pk, _ := t.Column(t.PK())
	pkConv, err := converterFor(pk)
	if err != nil {
		return nil, objErr(o, "", "%v", err)
	}
	p := &modelPlan{label: o.Model, table: t, pk: pk, pkConv: pkConv, fields: map[string]*fieldPlan{}, m2m: map[string]*m2mPlan{}, keys: newKeySet()}
	for _, c := range t.Columns {
		if c.Name == pk.Name {
			continue
		}
		conv, err := converterFor(c)
		if err != nil {
			return nil, objErr(o, c.Name, "%v", err)
		}
		f := &fieldPlan{name: c.Name, column: c, conv: conv}
		if fk, ok := t.FK(c.Name); ok {
			f.fk = &fkCheck{fk: fk, refs: newKeySet()}
			if strings.HasSuffix(c.Name, "_id") {
				f.name = strings.TrimSuffix(c.Name, "_id")
			}
		}
		f.from = m.columnFrom[t.Name+"."+c.Name]
		p.fields[f.name] = f
		if f.name != c.Name {
			p.fields[c.Name] = f // accept "author_id" as well as "author"
		}
	}
	if m.readExisting != nil {
		if p.existing, err = m.readExisting(t); err != nil {
			return nil, err
		}
		p.replace = newKeySet()
		if p.existing.len() > 0 && m.readUnique != nil && len(t.Unique) > 0 {
			if p.uniqueVals, err = m.readUnique(t); err != nil {
				return nil, err
			}
		}
	}
	m.models[o.Model] = p
	return p, nil
}

// existingOf returns the keys a table held before an inline pass (empty when
// none of its models was met).
func (m *schemaMap) existingOf(table string) (*keySet, error) {
	for _, p := range m.models {
		if p.table.Name == table && p.existing != nil {
			return p.existing, nil
		}
	}
	t, ok := m.cat.Table(table)
	if !ok || t.PK() == "" || m.readExisting == nil {
		return newKeySet(), nil
	}
	return m.readExisting(t)
}

// m2mFor finds the through table of a many-to-many field.
func (m *schemaMap) m2mFor(p *modelPlan, field string) (*m2mPlan, bool) {
	if mp, ok := p.m2m[field]; ok {
		return mp, true
	}
	through, ok := m.cat.Table(p.table.Name + "_" + field)
	if !ok {
		return nil, false
	}
	var src, tgt *pgcatalog.ForeignKey
	for i := range through.ForeignKeys {
		fk := &through.ForeignKeys[i]
		if fk.RefTable == p.table.Name && src == nil {
			src = fk
		} else {
			tgt = fk
		}
	}
	if src == nil || tgt == nil {
		return nil, false
	}
	col, _ := through.Column(tgt.Column)
	conv, err := converterFor(col)
	if err != nil {
		return nil, false
	}
	mp := &m2mPlan{field: field, through: through, srcCol: src.Column, tgtCol: tgt.Column, tgtConv: conv, fk: &fkCheck{fk: *tgt, refs: newKeySet()}}
	p.m2m[field] = mp
	return mp, true
}

// fix decides the COPY column list from the first object of a model, so that
// columns the backup never mentions keep their database defaults.
func (m *schemaMap) fix(p *modelPlan, o *object) error {
	names := make([]string, 0, len(o.fields))
	for _, f := range o.fields {
		names = append(names, f.name)
	}
	sort.Strings(names)
	for _, name := range names {
		if p.fields[name] != nil {
			continue
		}
		if _, ok := m.m2mFor(p, name); !ok {
			return m.unknownField(p, o, name)
		}
	}
	p.columns = []string{p.pk.Name}
	seen := map[string]bool{}
	for _, c := range p.table.Columns {
		if c.Name == p.pk.Name {
			continue
		}
		f := p.fields[strings.TrimSuffix(c.Name, "_id")]
		if f == nil || f.column.Name != c.Name {
			f = p.fields[c.Name]
		}
		_, byName := o.field(f.name)
		_, byCol := o.field(c.Name)
		if !byName && !byCol {
			if c.NotNull && !c.HasDefault {
				return objErr(o, f.name, "required field is missing (column %q is NOT NULL and has no default)", c.Name)
			}
			continue
		}
		if seen[c.Name] {
			continue
		}
		seen[c.Name] = true
		p.columns = append(p.columns, c.Name)
		p.colField = append(p.colField, f)
	}
	p.cells = make([]cell, len(p.columns))
	p.convs = []*converter{p.pkConv}
	for _, f := range p.colField {
		p.convs = append(p.convs, f.conv)
	}
	for _, u := range p.unique { // the last pass's, done with
		if u.seen.spill != nil {
			u.seen.spill.close()
		}
	}
	p.unique = uniqueChecks(p, m.open) // a new pass over the backup starts here
	return nil
}

// row checks one object and converts it into p.cells (COPY column order), and
// its many-to-many pairs into p.pairs. It records the pk and every FK
// reference for the final cross-check, and returns the pk.
func (m *schemaMap) row(p *modelPlan, o *object) (key, error) {
	if p.columns == nil {
		if err := m.fix(p, o); err != nil {
			return key{}, err
		}
	}
	cells := p.cells
	if err := p.pkConv.convert(o.PK, &cells[0]); err != nil {
		return key{}, objErr(o, "pk", "%v", err)
	}
	if cells[0].null {
		return key{}, objErr(o, "pk", "expected a pk, got null")
	}
	pk := p.pkConv.key(&cells[0])
	if !p.keys.add(pk) {
		return key{}, objErr(o, "pk", "duplicate primary key: another %s object in this backup has pk %s", o.Model, o.pkText())
	}
	used := 0
	for i, f := range p.colField {
		c := &cells[i+1]
		name := f.name
		if f.from != "" {
			name = f.from
		}
		raw, ok := o.fieldAt(&f.hint, name)
		if !ok {
			raw, ok = o.fieldAt(&f.hint2, f.column.Name)
		}
		if !ok {
			if f.column.NotNull {
				return key{}, objErr(o, f.name, "required field is missing")
			}
			c.null = true
			continue
		}
		used++
		if len(raw) > 0 && raw[0] == '[' && f.fk != nil {
			return key{}, objErr(o, f.name, "natural foreign keys are not supported; dump with --natural-foreign off")
		}
		if err := f.conv.convert(raw, c); err != nil {
			return key{}, objErr(o, f.name, "%v", err)
		}
		if f.fk != nil && !c.null {
			f.fk.refs.add(f.conv.key(c))
		}
	}
	if err := p.checkUnique(o); err != nil {
		return key{}, err
	}
	p.pairs = p.pairs[:0]
	if used != len(o.fields) {
		if err := m.otherFields(p, o, pk); err != nil {
			return key{}, err
		}
	}
	return pk, nil
}

// otherFields handles the fields of an object that are not columns of the
// first object's: many-to-many lists, which go to p.pairs, and else errors.
func (m *schemaMap) otherFields(p *modelPlan, o *object, pk key) error {
	for _, fl := range o.fields {
		name, raw := fl.name, fl.raw
		if f := p.fields[name]; f != nil {
			continue
		}
		mp, ok := m.m2mFor(p, name)
		if !ok {
			return m.unknownField(p, o, name)
		}
		if err := p.manyToMany(o, mp, raw, pk); err != nil {
			return err
		}
	}
	// Fields present in this object but not in the model's first one.
	for _, fl := range o.fields {
		f := p.fields[fl.name]
		if f == nil {
			continue
		}
		if !containsStr(p.columns, f.column.Name) {
			return objErr(o, fl.name, "this field is absent from the first %s object; dumpdata writes the same fields for every object of a model", o.Model)
		}
	}
	return nil
}

// manyToMany adds the pairs of one many-to-many list to p.pairs. It decodes
// one entry at a time: a list of millions of entries costs no more than
// the pairs it makes, and their number is bounded.
func (p *modelPlan) manyToMany(o *object, mp *m2mPlan, raw []byte, pk key) error {
	notList := func() error {
		return objErr(o, mp.field, "a many-to-many field must be a list of pks, got %s", describe(raw))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return notList()
	}
	for n := 0; dec.More(); n++ {
		if n == maxManyToMany {
			return objErr(o, mp.field, "more than %d many-to-many entries in one object: the backup is damaged or hostile", maxManyToMany)
		}
		var item json.RawMessage
		if err := dec.Decode(&item); err != nil {
			return notList()
		}
		var tc cell
		if err := mp.tgtConv.convert(item, &tc); err != nil || tc.null {
			return objErr(o, mp.field, "many-to-many entry %s: expected a pk", describe(item))
		}
		tk := mp.tgtConv.key(&tc)
		mp.fk.refs.add(tk)
		p.pairs = append(p.pairs, m2mPair{plan: mp, src: pk, tgt: tk})
	}
	return nil
}

// encode appends the current row (p.cells) as a binary COPY tuple.
func (p *modelPlan) encode(dst []byte) []byte {
	n := len(p.cells)
	dst = append(dst, byte(n>>8), byte(n))
	for i := range p.cells {
		dst = p.convs[i].encode(dst, &p.cells[i])
	}
	return dst
}

type m2mPair struct {
	plan     *m2mPlan
	src, tgt key
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func fmtKey(k key) string { return fmt.Sprint(k.value()) }

func (m *schemaMap) unknownField(p *modelPlan, o *object, name string) error {
	hint := "is the backup from another version of the application?"
	if best := suggest.Closest(name, slices.Sorted(maps.Keys(p.fields))); best != "" {
		hint = fmt.Sprintf("did you mean %q?", best)
	}
	return objErr(o, name, "unknown field: table %q has no column %q or %q and there is no many-to-many table %q; %s", p.table.Name, name, name+"_id", p.table.Name+"_"+name, hint)
}

// clashes reports whether the current row (p.cells, key pk) must be held
// back: its key exists, or one of its unique values belongs to an existing row
// (which is then marked for replacement).
func (p *modelPlan) clashes(pk key) bool {
	if p.existing == nil || p.existing.len() == 0 {
		return false
	}
	hold := p.existing.has(pk)
	for col, byVal := range p.uniqueVals {
		for i, f := range p.colField {
			c := &p.cells[i+1]
			if f.column.Name != col || c.null {
				continue
			}
			if owner, ok := byVal[f.conv.text(c)]; ok && owner != pk {
				p.replace.add(owner)
				hold = true
			}
		}
	}
	return hold
}
