package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
	"github.com/rehearse-dev/rehearse/pg/integrity"
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
//
// With inline set (atomic, small existing tables), the backup has not been
// validated yet: this single pass validates while it loads, rows whose keys
// already exist are held back and written after the pass, and the foreign
// key cross-check runs before the caller commits. Any failure rolls back.
func load(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, sm *schemaMap, opts *Options, res *Result, inline bool) error {
	start := time.Now()
	l := &loader{ctx: ctx, tx: tx, cat: cat, sm: sm, opts: opts, res: res, inline: inline,
		skip: map[string]bool{}, touched: map[string]bool{}, copied: map[string]bool{}, m2m: map[*m2mPlan]*pairList{}}
	for _, t := range opts.Defects.SkipTables {
		l.skip[t] = true
	}
	defer sm.releaseSpills()
	for _, step := range []func() error{l.prepare, l.stream, l.afterPass, l.writeManyToMany, l.finish} {
		if err := step(); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				// A unique index refused a row: a repeat a spilled set of the
				// pass left for its end is named here, as the pass would have.
				if ferr := sm.finishUnique(); ferr != nil {
					return ferr
				}
			}
			return err
		}
	}
	res.Timings.Load = time.Since(start)
	return nil
}

// loader is one load: its steps and what they share.
type loader struct {
	ctx     context.Context
	tx      pgx.Tx
	cat     *pgcatalog.Catalog
	sm      *schemaMap
	opts    *Options
	res     *Result
	inline  bool
	super   bool            // fast path: FK triggers off, checked set-wise after
	skip    map[string]bool // Defects.SkipTables
	touched map[string]bool // tables written
	copied  map[string]bool // tables whose indexes were looked at
	fresh   map[string]bool // tables truncateReplaced emptied
	dropped []droppedIndex
	m2m     map[*m2mPlan]*pairList
	objects int
}

// prepare chooses the fast path, replaces existing rows (after validation)
// or prepares the inline pass to find them, and truncates tables that
// never held a tuple.
func (l *loader) prepare() error {
	if err := l.tx.QueryRow(l.ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&l.super); err != nil {
		return fmt.Errorf("read role attributes: %w", err)
	}
	if l.super {
		// Fast path, as pg_restore does: no per-row FK trigger work while
		// loading; every FK touching a loaded table is checked set-wise after.
		if _, err := l.tx.Exec(l.ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		l.res.FastPath = true
	} else if _, err := l.tx.Exec(l.ctx, `SET CONSTRAINTS ALL DEFERRED`); err != nil {
		return err
	}
	ctx, tx, cat, sm := l.ctx, l.tx, l.cat, l.sm
	l.fresh = map[string]bool{}
	fresh := func(set map[string]bool) {
		for t := range set {
			l.fresh[t], l.touched[t] = true, true
		}
	}
	fresh(sm.truncated)
	if !l.inline {
		if l.super {
			more, err := truncateReplaced(ctx, tx, cat, sm, l.opts.keepReadable(), l.skip, nil)
			if err != nil {
				return err
			}
			fresh(more)
		}
		if err := replaceExisting(ctx, tx, cat, sm, l.super, l.touched); err != nil {
			return err
		}
		for _, p := range sm.models {
			p.columns, p.colField, p.keys = nil, nil, newKeySet()
			p.existing = nil
		}
	} else {
		sm.readExisting = func(t *pgcatalog.Table) (*keySet, error) { return existingKeys(ctx, tx, cat, t, t.PK()) }
		sm.readUnique = func(t *pgcatalog.Table) (map[string]map[string]key, error) { return uniqueValues(ctx, tx, cat, t) }
	}
	_, err := truncateUntouched(ctx, tx, cat, sm.protected, l.skip, l.fresh)
	return err
}

// stream reads the backup once and loads each run of one model's objects
// with one COPY.
func (l *loader) stream() error {
	r, err := newDumpReader(l.opts.Open)
	if err != nil {
		return err
	}
	closeBackup := sync.OnceValue(r.Close)
	defer closeBackup()
	o, err := r.Next()
	for err == nil {
		p, perr := l.sm.model(o)
		if perr != nil {
			return perr
		}
		src := &runSource{r: r, sm: l.sm, plan: p, first: o, m2m: l.m2m}
		if p.columns == nil {
			if err := l.sm.fix(p, o); err != nil {
				return err
			}
		}
		t0 := time.Now()
		n, rerr := l.run(p, src, closeBackup)
		if rerr != nil {
			return rerr
		}
		l.res.Rows[p.table.Name] += n
		l.opts.emitLoaded(p.table.Name, n, time.Since(t0))
		o, err = src.pending, src.err
		if o == nil && err == nil {
			err = io.EOF
		}
	}
	if !errors.Is(err, io.EOF) {
		return err
	}
	l.objects = r.next
	return nil
}

// run loads one run of p's objects (or reads past it, for a skipped table).
func (l *loader) run(p *modelPlan, src *runSource, closeBackup func() error) (int64, error) {
	if l.skip[p.table.Name] {
		var scratch []byte
		for ok := true; ok; scratch, ok = src.next(scratch[:0]) {
		}
		return 0, nil
	}
	if l.super && !l.copied[p.table.Name] {
		l.copied[p.table.Name] = true
		d, err := dropSecondaryIndexes(l.ctx, l.tx, l.cat, p.table.Name, l.fresh[p.table.Name])
		if err != nil {
			return 0, err
		}
		l.dropped = append(l.dropped, d...)
	}
	cr := &copyReader{src: src}
	n, err := copyRows(l.ctx, l.tx, l.cat, p, cr)
	if err != nil {
		// The COPY gave up (a cancelled context among others) and the
		// producer may be blocked reading a stalled backup: closing the
		// backup ends that read, so that cr.close returns.
		closeBackup()
	}
	cr.close()
	if src.err != nil && (err == nil || failedReading(err)) {
		return 0, src.err // the backup's own error, not the read after closeBackup
	}
	if err != nil {
		return 0, fmt.Errorf("load %s (model %s): %w", p.table.Name, p.label, err)
	}
	l.touched[p.table.Name] = true
	return n, nil
}

// failedReading says whether a COPY failed because reading its input did
// (pgx then ends the COPY with CopyFail).
func failedReading(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Message, "COPY from stdin failed")
}

// afterPass finishes an inline pass: the foreign keys it saw are checked
// against the backup and the kept rows, and the rows held back replace
// the existing ones.
func (l *loader) afterPass() error {
	if !l.inline {
		return nil
	}
	l.res.Objects = l.objects
	if !l.opts.Defects.SkipFKCheck {
		if err := checkReferences(l.ctx, l.sm, l.opts, func(t string) (*keySet, error) { return l.sm.existingOf(t) }); err != nil {
			return err
		}
	}
	l.opts.emit(PhaseValidated, "", int64(l.objects))
	return writeDiverted(l.ctx, l.tx, l.cat, l.sm, l.super, l.touched, l.skip, l.res)
}

func (l *loader) writeManyToMany() error {
	for _, p := range l.sm.models {
		for _, mp := range p.m2m {
			if l.skip[mp.through.Name] || l.skip[p.table.Name] {
				continue
			}
			n, err := syncManyToMany(l.ctx, l.tx, l.cat, mp, l.m2m[mp], p.reinserted)
			if err != nil {
				return fmt.Errorf("load many-to-many %s: %w", mp.through.Name, err)
			}
			l.res.Rows[mp.through.Name] += n
			l.touched[mp.through.Name] = true
		}
	}
	return nil
}

// finish rebuilds the dropped indexes, checks the foreign keys of the fast
// path set-wise, and moves the sequences past the loaded keys.
func (l *loader) finish() error {
	if err := rebuildIndexes(l.ctx, l.tx, l.dropped); err != nil {
		return err
	}
	if l.super {
		if _, err := l.tx.Exec(l.ctx, `SET LOCAL session_replication_role = origin`); err != nil {
			return err
		}
	}
	if l.super && !l.opts.Defects.SkipFKCheck {
		check := l.cat
		if l.inline && len(l.skip) == 0 {
			check = withoutProven(l.cat, l.sm)
		}
		broken, err := integrity.CheckForeignKeys(l.ctx, l.tx, check, l.touched)
		if err != nil {
			return err
		}
		if bad := integrity.Broken(broken); len(bad) > 0 {
			b := bad[0]
			return fmt.Errorf("restore rolled back: %d rows of %s.%s refer to missing %s rows (constraint %s, e.g. key %s)", b.Count, b.Table, strings.Join(b.Columns, ","), b.RefTable, b.Constraint, b.Example)
		}
	}
	if !l.opts.Defects.SkipSequences {
		fixes, err := FixSequences(l.ctx, l.tx, l.cat, l.touched)
		if err != nil {
			return err
		}
		l.res.Sequences = fixes
	}
	return nil
}

// replaceExisting deletes the rows whose primary keys the backup brings again
// (Django's loaddata overwrites them too), and the many-to-many rows of those
// objects, so that COPY can insert every object. The keys go to the server
// in batches of replaceBatch, so that memory stays flat however many rows
// the database holds.
func replaceExisting(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, sm *schemaMap, super bool, touched map[string]bool) error {
	for _, p := range sm.models {
		existing, err := existingKeys(ctx, tx, cat, p.table, p.pk.Name)
		if err != nil {
			return err
		}
		var clash []any
		flush := func() error {
			if len(clash) == 0 {
				return nil
			}
			err := deleteKeys(ctx, tx, cat, p, clash, nil, super, touched)
			clash = clash[:0]
			return err
		}
		existing.each(func(k key) bool {
			if p.keys.has(k) {
				if clash = append(clash, k.value()); len(clash) == replaceBatch {
					err = flush()
				}
			}
			return err == nil
		})
		if err == nil {
			err = flush()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

const replaceBatch = 50_000

// deleteKeys deletes the rows of p's table with these keys, and their
// many-to-many rows, so that the backup's versions can be inserted.
func deleteKeys(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, p *modelPlan, clash, gone []any, super bool, touched map[string]bool) error {
	if !super {
		for _, fk := range cat.Referencing(p.table.Name) {
			if fk.OnDelete == "c" || fk.OnDelete == "n" || fk.OnDelete == "d" || !fk.Deferrable {
				return fmt.Errorf("cannot replace existing rows of %s without superuser rights: foreign key %s on %s would act on delete (ON DELETE or not deferrable); run the restore as a superuser or empty the table first", p.table.Name, fk.Name, fk.Table)
			}
		}
	}
	// Rows that come back keep their many-to-many rows (synced after the
	// load, as Django's m2m set() does); rows replaced by another key lose them.
	if len(p.m2m) > 0 {
		p.reinserted = append(p.reinserted, clash...)
	}
	for _, mp := range p.m2m {
		if len(gone) == 0 {
			break
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s = ANY($1)", cat.QualifiedIdent(mp.through.Name), pgcatalog.Ident(mp.srcCol)), keyArray(gone)); err != nil {
			return fmt.Errorf("replace many-to-many rows of %s: %w", mp.through.Name, err)
		}
		touched[mp.through.Name] = true
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s = ANY($1)", cat.QualifiedIdent(p.table.Name), pgcatalog.Ident(p.pk.Name)), keyArray(clash, gone)); err != nil {
		return fmt.Errorf("replace existing rows of %s: %w", p.table.Name, err)
	}
	touched[p.table.Name] = true
	return nil
}

// keyArray joins lists of keys into one array parameter: an []int64 when
// they are all integers (sent as int8[] in binary: a fraction of the time
// of a generic array), else as they are.
func keyArray(lists ...[]any) any {
	var all []any
	ints := []int64{}
	for _, l := range lists {
		for _, k := range l {
			if i, ok := k.(int64); ok && all == nil {
				ints = append(ints, i)
				continue
			}
			if all == nil {
				all = make([]any, 0, len(ints)+len(l))
				for _, i := range ints {
					all = append(all, i)
				}
			}
			all = append(all, k)
		}
	}
	if all != nil {
		return all
	}
	return ints
}

// runSource feeds COPY with the objects of one model until the next object is
// of another model (kept in pending for the next COPY).
type runSource struct {
	r       *dumpReader
	sm      *schemaMap
	plan    *modelPlan
	first   *object
	pending *object
	m2m     map[*m2mPlan]*pairList
	err     error
}

// next appends the next row of the run to dst as a binary COPY tuple; false
// at the end of the run (or on an error, in s.err).
func (s *runSource) next(dst []byte) ([]byte, bool) {
	p := s.plan
	for {
		o := s.first
		s.first = nil
		if o == nil {
			var err error
			o, err = s.r.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					s.err = err
				}
				return dst, false
			}
		}
		if o.Model != p.label {
			s.pending = o
			return dst, false
		}
		pk, err := s.sm.row(p, o)
		if err != nil {
			s.err = err
			return dst, false
		}
		for _, pr := range p.pairs {
			l := s.m2m[pr.plan]
			if l == nil {
				l = &pairList{}
				s.m2m[pr.plan] = l
			}
			l.add(pr.src, pr.tgt)
		}
		if p.clashes(pk) {
			// The key exists already: hold the row back, replace it after the pass.
			p.diverted = p.encode(p.diverted)
			p.divertedKeys = append(p.divertedKeys, pk.value())
			continue
		}
		return p.encode(dst), true
	}
}

// pairList holds many-to-many pairs compactly: integer pairs flattened.
type pairList struct {
	ints []int64 // src, tgt, src, tgt, ...
	keys []key   // the same for other keys
}

func (l *pairList) add(src, tgt key) {
	if src.isInt && tgt.isInt {
		l.ints = append(l.ints, src.i, tgt.i)
	} else {
		l.keys = append(l.keys, src, tgt)
	}
}

// columns returns the sources and the targets as two arrays for unnest.
func (l *pairList) columns() (srcs, tgts any, n int) {
	if l == nil {
		return []int64{}, []int64{}, 0
	}
	if len(l.keys) == 0 {
		s := make([]int64, 0, len(l.ints)/2)
		t := make([]int64, 0, len(l.ints)/2)
		for i := 0; i < len(l.ints); i += 2 {
			s = append(s, l.ints[i])
			t = append(t, l.ints[i+1])
		}
		return s, t, len(s)
	}
	var s, t []any
	for i := 0; i < len(l.ints); i += 2 {
		s = append(s, l.ints[i])
		t = append(t, l.ints[i+1])
	}
	for i := 0; i < len(l.keys); i += 2 {
		s = append(s, l.keys[i].value())
		t = append(t, l.keys[i+1].value())
	}
	return s, t, len(s)
}

// binary COPY framing
var (
	copyHeader  = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	copyTrailer = []byte{0xff, 0xff}
)

// copyReader turns a runSource into a binary COPY stream. A producer
// goroutine decodes and encodes chunks while the previous one is being sent
// (and parsed by the server): decoding and sending overlap on two cores.
type copyReader struct {
	src   *runSource
	full  chan []byte // encoded chunks, in order; closed after the last
	free  chan []byte // chunks to reuse
	stop  chan struct{}
	done  chan struct{}
	cur   []byte
	off   int
	begun bool
}

const copyChunk = 64 << 10

func (c *copyReader) start() {
	c.full = make(chan []byte, 2)
	c.free = make(chan []byte, 3)
	c.stop = make(chan struct{})
	c.done = make(chan struct{})
	for i := 0; i < 3; i++ {
		c.free <- make([]byte, 0, copyChunk+4096)
	}
	go func() {
		defer close(c.done)
		defer close(c.full)
		buf := append(<-c.free, copyHeader...)
		for {
			ok := true
			for ok && len(buf) < copyChunk {
				buf, ok = c.src.next(buf)
			}
			if !ok { // the run ended (or failed)
				buf = append(buf, copyTrailer...)
			}
			select {
			case c.full <- buf:
			case <-c.stop:
				return
			}
			if !ok {
				return
			}
			select {
			case buf = <-c.free:
				buf = buf[:0]
			case <-c.stop:
				return
			}
		}
	}()
}

func (c *copyReader) Read(p []byte) (int, error) {
	if !c.begun {
		c.begun = true
		c.start()
	}
	for c.off == len(c.cur) {
		if c.cur != nil {
			c.free <- c.cur
			c.cur = nil
		}
		buf, ok := <-c.full
		if !ok {
			if c.src.err != nil {
				return 0, c.src.err
			}
			return 0, io.EOF
		}
		c.cur, c.off = buf, 0
	}
	n := copy(p, c.cur[c.off:])
	c.off += n
	return n, nil
}

// close stops the producer and waits for it: afterwards the runSource may
// be read again.
func (c *copyReader) close() {
	if !c.begun {
		return
	}
	close(c.stop)
	<-c.done
}

// copyRows runs COPY ... FROM STDIN (FORMAT binary) into p's table.
func copyRows(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, p *modelPlan, r io.Reader) (int64, error) {
	sql := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT binary)", cat.QualifiedIdent(p.table.Name), pgcatalog.ColumnList(p.columns))
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, r, sql)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

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
		if want == st.Next {
			continue
		}
		// ALTER SEQUENCE is transactional (setval is not): a restore that
		// rolls back leaves the sequence where it was.
		if _, err := q.Exec(ctx, fmt.Sprintf(`ALTER SEQUENCE %s RESTART WITH %d`, st.Sequence, want)); err != nil {
			return nil, fmt.Errorf("move sequence %s: %w", st.Sequence, err)
		}
		fixes = append(fixes, SequenceFix{Sequence: st.Sequence, Table: st.Table, Column: st.Column, Before: st.Next, After: want})
	}
	return fixes, nil
}

// writeDiverted replaces the rows held back by an inline pass: it deletes the
// existing rows with those keys (and their many-to-many rows), then copies
// the backup's versions.
func writeDiverted(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, sm *schemaMap, super bool, touched, skip map[string]bool, res *Result) error {
	for _, p := range sm.models {
		if len(p.diverted) == 0 || skip[p.table.Name] {
			continue
		}
		keys := p.divertedKeys
		var gone []any
		p.replace.each(func(k key) bool { gone = append(gone, k.value()); return true })
		if err := deleteKeys(ctx, tx, cat, p, keys, gone, super, touched); err != nil {
			return err
		}
		stream := append(append(append([]byte(nil), copyHeader...), p.diverted...), copyTrailer...)
		n, err := copyRows(ctx, tx, cat, p, bytes.NewReader(stream))
		if err != nil {
			return fmt.Errorf("load %s (model %s): %w", p.table.Name, p.label, err)
		}
		res.Rows[p.table.Name] += n
		touched[p.table.Name] = true
	}
	return nil
}

// uniqueValues reads, for each single-column unique index of t, the text of
// every existing value and the key of its row.
func uniqueValues(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, t *pgcatalog.Table) (map[string]map[string]key, error) {
	out := map[string]map[string]key{}
	for _, col := range t.Unique {
		rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s, %s::text FROM %s WHERE %s IS NOT NULL", pgcatalog.Ident(t.PK()), pgcatalog.Ident(col), cat.QualifiedIdent(t.Name), pgcatalog.Ident(col)))
		if err != nil {
			return nil, err
		}
		m := map[string]key{}
		for rows.Next() {
			var pk any
			var v string
			if err := rows.Scan(&pk, &v); err != nil {
				rows.Close()
				return nil, err
			}
			m[v] = scannedKey(pk)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		out[col] = m
	}
	return out, nil
}

// syncManyToMany makes the through table hold the backup's pairs: for
// objects that existed before (reinserted), pairs the backup does not list
// are deleted; pairs not yet present are inserted. Existing pairs keep their
// rows and ids, as with Django's m2m set().
func syncManyToMany(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, mp *m2mPlan, pairs *pairList, reinserted []any) (int64, error) {
	srcCol, _ := mp.through.Column(mp.srcCol)
	tgtCol, _ := mp.through.Column(mp.tgtCol)
	srcs, tgts, npairs := pairs.columns()
	t := cat.QualifiedIdent(mp.through.Name)
	sc, tc := pgcatalog.Ident(mp.srcCol), pgcatalog.Ident(mp.tgtCol)
	unnest := fmt.Sprintf("unnest($1::%s[], $2::%s[]) AS p(s, g)", srcCol.Display, tgtCol.Display)
	if len(reinserted) > 0 {
		_, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s t WHERE t.%s = ANY($3) AND NOT EXISTS (SELECT 1 FROM %s WHERE p.s = t.%s AND p.g = t.%s)", t, sc, unnest, sc, tc), srcs, tgts, reinserted)
		if err != nil {
			return 0, err
		}
	}
	if npairs == 0 {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s (%s, %s) SELECT DISTINCT p.s, p.g FROM %s WHERE NOT EXISTS (SELECT 1 FROM %s t WHERE t.%s = p.s AND t.%s = p.g)", t, sc, tc, unnest, t, sc, tc), srcs, tgts)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
