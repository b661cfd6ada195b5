package restore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strconv"
	"strings"

	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// uniqueCheck remembers the values one unique index (one column or
// several, Django's unique_together) takes in a backup, to refuse a second
// object with the same values before PostgreSQL's index does, naming the
// object.
type uniqueCheck struct {
	set    pgcatalog.UniqueSet
	cells  []int // per column of the set, its index in modelPlan.cells
	fields []*fieldPlan
	seen   *valueSet
	plan   *modelPlan
	open   Opener
}

// uniqueChecks makes the checks for the unique indexes a model's objects
// write (p.columns must be fixed). An index over a column the objects do
// not write, or over the primary key (unique through it anyway), is left
// to PostgreSQL.
func uniqueChecks(p *modelPlan, open Opener) []*uniqueCheck {
	var out []*uniqueCheck
	for _, us := range p.table.UniqueSets {
		u := &uniqueCheck{set: us, seen: newValueSet(), plan: p, open: open}
		for _, col := range us.Columns {
			i := slices.IndexFunc(p.colField, func(f *fieldPlan) bool { return f.column.Name == col })
			if i < 0 {
				u = nil
				break
			}
			u.cells, u.fields = append(u.cells, i+1), append(u.fields, p.colField[i])
		}
		if u != nil {
			out = append(out, u)
		}
	}
	return out
}

// composite says whether values are encoded column by column (several
// columns, or a NULL that counts as a value) rather than as the one
// column's key.
func (u *uniqueCheck) composite() bool { return len(u.cells) > 1 || u.set.NullsNotDistinct }

// value is the comparable form of the row in cells (at the indexes idx):
// equal for the rows the index takes as equal (for the types it can tell),
// or false for a row with a NULL that never clashes.
func (u *uniqueCheck) value(cells []cell, idx []int) (key, bool) {
	if !u.composite() {
		c := &cells[idx[0]]
		return u.columnKey(0, c), !c.null
	}
	var b []byte
	for j, i := range idx {
		c := &cells[i]
		if c.null {
			if !u.set.NullsNotDistinct {
				return key{}, false
			}
			b = append(b, 'N')
			continue
		}
		if k := u.columnKey(j, c); k.isInt {
			b = binary.BigEndian.AppendUint64(append(b, 'I'), uint64(k.i))
		} else {
			b = append(binary.AppendUvarint(append(b, 'S'), uint64(len(k.s))), k.s...)
		}
	}
	return key{s: string(b)}, true
}

// columnKey is the comparable form of the set's column j (others fall back
// to PostgreSQL's error).
func (u *uniqueCheck) columnKey(j int, c *cell) key {
	f := u.fields[j]
	switch f.conv.kind {
	case kInt2, kInt4, kInt8:
		return key{isInt: true, i: c.i}
	case kDate, kTimestamp, kTimestamptz, kBool:
		// sparse values: a string key, not the bitset meant for ids
		return key{s: strconv.FormatInt(c.i, 36)}
	case kUUID:
		return key{s: string(c.u[:])}
	case kFloat4, kFloat8:
		return key{s: strconv.FormatFloat(c.f, 'g', -1, 64)}
	}
	if f.column.Type == "citext" { // compares case-insensitively
		return key{s: strings.ToLower(string(c.b))}
	}
	return key{s: string(c.b)}
}

// describe renders the row's values of the set as the error shows them.
func (u *uniqueCheck) describe(cells []cell, idx []int) string {
	parts := make([]string, len(idx))
	for j, i := range idx {
		if cells[i].null {
			parts[j] = "NULL"
		} else {
			parts[j] = describe([]byte(u.fields[j].conv.text(&cells[i])))
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func (u *uniqueCheck) fieldNames() string {
	names := make([]string, len(u.fields))
	for j, f := range u.fields {
		names[j] = f.name
	}
	return strings.Join(names, ",")
}

func (p *modelPlan) checkUnique(o *object) error {
	for _, u := range p.unique {
		v, ok := u.value(p.cells, u.cells)
		if !ok {
			continue // NULLs never clash
		}
		dup, err := u.seen.add(v, func(h uint64) ([]string, error) { return u.valuesWithHash(h, o.Index) })
		if err != nil {
			return err
		}
		if dup {
			return u.duplicate(o, p.cells, u.cells)
		}
	}
	return nil
}

// duplicate is the refusal of object o, whose values of the set (in cells,
// at idx) an earlier object of the backup has too.
func (u *uniqueCheck) duplicate(o *object, cells []cell, idx []int) error {
	if len(idx) == 1 {
		return objErr(o, u.fields[0].name, "duplicate value %s in unique column %q: another %s object in this backup has it too, and PostgreSQL (like Django's loaddata) refuses the second; fix the backup",
			u.describe(cells, idx), u.set.Columns[0], o.Model)
	}
	return objErr(o, u.fieldNames(), "duplicate values %s in unique columns (%s) (index %s): another %s object in this backup has them too, and PostgreSQL (like Django's loaddata, for unique_together) refuses the second; fix the backup",
		u.describe(cells, idx), strings.Join(u.set.Columns, ", "), u.set.Name, o.Model)
}

// finish, at the end of a pass, finds the duplicates a spilled set left
// for then (the first object that repeats a value, found by reading the
// backup again for the values whose hashes came twice), and frees nothing
// has still needs.
func (u *uniqueCheck) finish() error {
	r := u.seen.spill
	if r == nil {
		return nil
	}
	if err := r.merge(); err != nil || len(r.dups) == 0 {
		return err
	}
	candidates := map[uint64]bool{}
	for _, h := range r.dups {
		candidates[h] = true
	}
	seen := map[string]bool{}
	var found error
	cells := make([]cell, len(u.fields))
	idx := make([]int, len(u.fields))
	for j := range idx {
		idx[j] = j
	}
	err := u.eachValue(-1, func(o *object, v key) bool {
		if v.isInt || !candidates[hashString(v.s)] {
			return true
		}
		if seen[v.s] {
			u.rowOf(o, cells)
			found = u.duplicate(o, cells, idx)
			return false
		}
		seen[v.s] = true
		return true
	})
	if err != nil {
		return fmt.Errorf("read the backup again to name a duplicate unique value of %s: %w", u.plan.label, err)
	}
	return found
}

// finishUnique runs finish for every unique index of the pass's models.
func (m *schemaMap) finishUnique() error {
	for _, p := range m.models {
		for _, u := range p.unique {
			if err := u.finish(); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseSpills closes the temporary files of the pass's spilled sets.
func (m *schemaMap) releaseSpills() {
	for _, p := range m.models {
		for _, u := range p.unique {
			if u.seen.spill != nil {
				u.seen.spill.close()
			}
		}
	}
}

// eachValue reads the backup again and calls fn with the index of every
// object of u's model before object upto (-1: all) and its value of the
// set, until fn returns false.
func (u *uniqueCheck) eachValue(upto int, fn func(o *object, v key) bool) error {
	r, err := newDumpReader(u.open)
	if err != nil {
		return err
	}
	defer r.Close()
	cells := make([]cell, len(u.fields))
	idx := make([]int, len(u.fields))
	for j := range idx {
		idx[j] = j
	}
	for {
		o, err := r.Next()
		if errors.Is(err, io.EOF) || (err == nil && upto >= 0 && o.Index >= upto) {
			return nil
		}
		if err != nil {
			return err
		}
		if o.Model != u.plan.label || !u.rowOf(o, cells) {
			continue
		}
		if v, ok := u.value(cells, idx); ok && !fn(o, v) {
			return nil
		}
	}
}

// rowOf converts o's values of the set into cells, as the pass did.
func (u *uniqueCheck) rowOf(o *object, cells []cell) bool {
	for j, f := range u.fields {
		name := f.name
		if f.from != "" {
			name = f.from
		}
		raw, ok := o.field(name)
		if !ok {
			raw, ok = o.field(f.column.Name)
		}
		cells[j] = cell{null: !ok}
		if ok && f.conv.convert(raw, &cells[j]) != nil {
			return false
		}
	}
	return true
}

// valuesWithHash lists the values of the set before object upto (-1: in
// the whole backup) whose hash is h.
func (u *uniqueCheck) valuesWithHash(h uint64, upto int) ([]string, error) {
	var out []string
	err := u.eachValue(upto, func(_ *object, v key) bool {
		if !v.isInt && hashString(v.s) == h && !slices.Contains(out, v.s) {
			out = append(out, v.s)
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("read the backup again to compare unique values of %s exactly: %w", u.plan.label, err)
	}
	return out, nil
}

// valueSet remembers values of a unique index in flat memory: integers in
// a keySet's bitset, other values as 64-bit hashes only. When a hash comes
// again, the earlier values with that hash are read again (the caller's
// earlier) and kept exactly, so that a clash of hashes is never reported
// as a duplicate; such clashes are rare enough that the exact sets stay
// small.
//
// Beyond spillAt hashes the set spills (hashRuns): its hashes, and every
// later one, go to a temporary file, and a repeat is found only when the
// pass ends (uniqueCheck.finish) rather than at the object.
type valueSet struct {
	ints   *keySet
	hashes *hashSet
	exact  map[uint64][]string
	spill  *hashRuns
}

func newValueSet() *valueSet {
	return &valueSet{ints: newKeySet(), hashes: newHashSet(), exact: map[uint64][]string{}}
}

var hashSeed = maphash.MakeSeed()

// hashString hashes a value; a test replaces it to make every value clash.
var hashString = func(s string) uint64 { return maphash.String(hashSeed, s) }

// add adds k and reports whether it was there already.
func (s *valueSet) add(k key, earlier func(h uint64) ([]string, error)) (bool, error) {
	if k.isInt {
		return !s.ints.addInt(k.i), nil
	}
	h := hashString(k.s)
	if s.spill != nil {
		s.spill.add(h)
		return false, s.spill.err
	}
	vals, err := s.exactly(h, earlier)
	if err != nil {
		return false, err
	}
	if vals == nil {
		if s.hashes.add(h); s.hashes.n > spillAt {
			s.spillHashes()
		}
		return false, nil
	}
	if slices.Contains(vals, k.s) {
		return true, nil
	}
	s.exact[h] = append(vals, k.s)
	return false, nil
}

// spillHashes moves the hashes to a hashRuns, which takes the later ones.
func (s *valueSet) spillHashes() {
	s.spill = newHashRuns()
	for _, b := range s.hashes.buckets {
		for _, h := range b {
			s.spill.add(h)
		}
	}
	s.hashes = newHashSet()
}

// has reports whether k is in the set; all lists every value with a hash.
func (s *valueSet) has(k key, all func(h uint64) ([]string, error)) (bool, error) {
	if k.isInt {
		return s.ints.hasInt(k.i), nil
	}
	vals, err := s.exactly(hashString(k.s), all)
	return slices.Contains(vals, k.s), err
}

// exactly returns the values with hash h (nil when none has it), read
// with read the first time the hash is asked for again.
func (s *valueSet) exactly(h uint64, read func(h uint64) ([]string, error)) ([]string, error) {
	if vals, ok := s.exact[h]; ok {
		return vals, nil
	}
	in := s.hashes.has(h)
	if s.spill != nil && !in {
		var err error
		if in, err = s.spill.has(h); err != nil {
			return nil, err
		}
	}
	if !in {
		return nil, nil
	}
	vals, err := read(h)
	if err != nil {
		return nil, err
	}
	s.exact[h] = vals // (and in hashes, where it stays: nothing is removed)
	return vals, nil
}

// hashSet is a set of 64-bit hashes in about 9 bytes each, where a Go map
// takes about 29: sorted buckets, chosen by the hash's top bits, each split
// in two when the set outgrows them. Hashes are uniform, so the buckets
// stay even; an insertion moves at most a bucket's worth of memory.
type hashSet struct {
	shift   uint // a hash's bucket is h >> shift
	buckets [][]uint64
	n       int
}

const hashBucket = 128 // mean entries per bucket before the buckets split

func newHashSet() *hashSet { return &hashSet{shift: 60, buckets: make([][]uint64, 16)} }

func (s *hashSet) has(h uint64) bool {
	_, ok := slices.BinarySearch(s.buckets[h>>s.shift], h)
	return ok
}

// add adds h and reports whether it was new.
func (s *hashSet) add(h uint64) bool {
	i := h >> s.shift
	b := s.buckets[i]
	j, ok := slices.BinarySearch(b, h)
	if ok {
		return false
	}
	if len(b) == cap(b) { // grow by a quarter, not double: memory is the point
		nb := make([]uint64, len(b), len(b)+len(b)/4+4)
		copy(nb, b)
		b = nb
	}
	b = b[:len(b)+1]
	copy(b[j+1:], b[j:])
	b[j] = h
	s.buckets[i] = b
	if s.n++; s.n > len(s.buckets)*hashBucket && s.shift > 0 {
		s.split()
	}
	return true
}

// split doubles the buckets: each sorted bucket splits where the next bit
// of its hashes turns to 1, and is freed as soon as it is copied.
func (s *hashSet) split() {
	old := s.buckets
	s.shift--
	s.buckets = make([][]uint64, 2*len(old))
	for i, b := range old {
		k, _ := slices.BinarySearch(b, uint64(2*i+1)<<s.shift)
		s.buckets[2*i], s.buckets[2*i+1] = slices.Clone(b[:k]), slices.Clone(b[k:])
		old[i] = nil
	}
}

// checkKeptUnique refuses a backup object whose values in a unique index
// belong to a row the restore keeps (its pk is not in the backup, so it is
// not replaced): COPY would fail on the unique index with a bare SQL error.
func checkKeptUnique(ctx context.Context, q pgcatalog.Querier, sm *schemaMap) error {
	for _, p := range sm.models {
		for _, u := range p.unique {
			owner, want, found, err := u.keptClash(ctx, q, sm.cat)
			if err != nil {
				return err
			}
			if found {
				return u.findClash(want, owner)
			}
		}
	}
	return nil
}

// keptClash looks for a kept row of the table whose values in the set are
// also in the backup.
func (u *uniqueCheck) keptClash(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog) (owner, value key, found bool, err error) {
	p := u.plan
	cols := make([]string, len(u.set.Columns))
	var where []string
	for j, c := range u.set.Columns {
		cols[j] = pgcatalog.Ident(c)
		if !u.set.NullsNotDistinct {
			where = append(where, cols[j]+" IS NOT NULL")
		}
		if !keptComparable(u.fields[j].conv.kind) {
			return key{}, key{}, false, nil // PostgreSQL's error is the fallback
		}
	}
	sql := fmt.Sprintf("SELECT %s, %s FROM %s", pgcatalog.Ident(p.pk.Name), strings.Join(cols, ", "), cat.QualifiedIdent(p.table.Name))
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := q.Query(ctx, sql)
	if err != nil {
		return key{}, key{}, false, fmt.Errorf("read unique values of %s (%s): %w", p.table.Name, strings.Join(u.set.Columns, ", "), err)
	}
	defer rows.Close()
	cells := make([]cell, len(cols))
	idx := make([]int, len(cols))
	dest := make([]any, len(cols)+1)
	vals := make([]any, len(cols)+1)
	for i := range dest {
		dest[i] = &vals[i]
	}
	for j := range idx {
		idx[j] = j
	}
	all := func(h uint64) ([]string, error) { return u.valuesWithHash(h, -1) }
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return key{}, key{}, false, err
		}
		pk := scannedKey(vals[0])
		if p.keys.has(pk) {
			continue // the backup replaces the row
		}
		for j := range cells {
			cells[j] = keptCell(vals[j+1])
		}
		v, ok := u.value(cells, idx)
		if !ok {
			continue
		}
		// A hash the backup has too makes has read the backup again: only
		// for a row that is kept, where it is a clash (or, rarely, two
		// values with one hash).
		if in, err := u.seen.has(v, all); err != nil || in {
			return pk, v, in, err
		}
	}
	return key{}, key{}, false, rows.Err()
}

// keptComparable says whether a value read from the database compares as
// the backup's does, for the column kinds keptCell reads.
func keptComparable(k kind) bool {
	switch k {
	case kInt2, kInt4, kInt8, kText, kUUID:
		return true
	}
	return false
}

// keptCell is a value read from the database as a cell.
func keptCell(v any) cell {
	var c cell
	switch x := v.(type) {
	case nil:
		c.null = true
	case int16:
		c.i = int64(x)
	case int32:
		c.i = int64(x)
	case int64:
		c.i = x
	case string:
		c.b = []byte(x)
	case [16]byte:
		c.u = x
	}
	return c
}

// findClash reads the backup again to name the object that brings values
// a kept row holds. It only runs when validation has failed.
func (u *uniqueCheck) findClash(want, owner key) error {
	p := u.plan
	what := fmt.Sprintf("its value in unique column %q is", u.set.Columns[0])
	if len(u.set.Columns) > 1 {
		what = fmt.Sprintf("its values in unique columns (%s) (index %s) are", strings.Join(u.set.Columns, ", "), u.set.Name)
	}
	problem := fmt.Sprintf("%s already held by the %s row with pk %s, which this restore keeps (its pk is not in the backup); PostgreSQL would refuse the object: restore with the reinit, which empties the table first, or remove that row", what, p.table.Name, owner)
	var found error
	u.eachValue(-1, func(o *object, v key) bool {
		if v == want {
			found = objErr(o, u.fieldNames(), "%s", problem)
		}
		return found == nil
	})
	if found == nil {
		found = &BackupError{Index: -1, Model: p.label, Field: u.fieldNames(), Problem: "a " + p.label + " object: " + problem}
	}
	return found
}
