package restore_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	pglocal "github.com/rehearse-dev/rehearse/pg/local"
	"github.com/rehearse-dev/rehearse/reinit"
	"github.com/rehearse-dev/rehearse/restore"
)

// BenchmarkRestore restores the same generated backup several ways in one
// run and prints rows/s and ratios. Into an empty schema: the engine
// (atomic, with reinit), a row-by-row INSERT baseline (what a naive loader
// does) and pg_restore of a pg_dump -Fc of the same data (the practical
// limit on this machine). Over the populated database, as a restore with
// reinit runs on a real system (staging holds data, the reinit deletes it,
// the restore loads the backup over it): both strategies, pg_restore
// --clean --if-exists --single-transaction of the dump, and the row-by-row
// baseline (reinit, then one upsert per object, as loaddata saves). It
// also prints the engine's peak heap (live, and with the garbage not yet
// collected) for a backup ten times smaller, to show that memory does not
// grow with the backup. The engine and pg_restore
// runs are repeated REHEARSE_BENCH_ROUNDS times (default 3), interleaved,
// and the medians compared: the machine may be shared. Run with: make bench
// (REHEARSE_BENCH_USERS sets the size; the default is the 10k-user,
// ~1M-row edms-large).
func BenchmarkRestore(b *testing.B) {
	spec := fixtures.LargeSpec
	if v := os.Getenv("REHEARSE_BENCH_USERS"); v != "" {
		fmt.Sscan(v, &spec.BulkUsers)
	}
	small := spec
	small.BulkUsers = spec.BulkUsers / 10
	dir := b.TempDir()
	big := generate(b, dir, "big.json", spec)
	little := generate(b, dir, "small.json", small)
	pgBin, err := pglocal.FindBinDir()
	if err != nil {
		b.Fatal(err)
	}
	rounds := 3
	if v := os.Getenv("REHEARSE_BENCH_ROUNDS"); v != "" {
		if _, err := fmt.Sscan(v, &rounds); err != nil || rounds < 1 {
			b.Fatalf("REHEARSE_BENCH_ROUNDS=%q: want a number of rounds, at least 1", v)
		}
	}
	for i := 0; i < b.N; i++ {
		e := benchEmptySchema(b, dir, pgBin, big, little, rounds)
		fmt.Printf("\nrestore of %d rows (%d users) into an empty schema\n", e.rows, len(spec.Users()))
		e.print(b)
		p := benchPopulated(b, e, big, little, rounds)
		fmt.Printf("\nrestore with reinit of %d rows over the populated database (%d rows)\n", p.rows, p.before)
		p.print(b)
	}
}

// emptyRun holds the empty-schema figures, and what the populated case
// reuses: the engine's database (now populated), the small one and the dump.
type emptyRun struct {
	rows                 int64
	engine, pgr          spread
	naive                time.Duration
	phases               restore.Timings
	peak, smallPeak      heapPeak
	bigDB, smallDB, dump string
	backupSize           string
}

func benchEmptySchema(b *testing.B, dir, pgBin, big, little string, rounds int) *emptyRun {
	e := &emptyRun{backupSize: humanSize(big), dump: filepath.Join(dir, "dump.fc")}
	var engineDSN string
	for r := 0; r < rounds; r++ {
		engineDSN = schemaDB(b)
		d, peak, phases := timeEngine(b, engineDSN, big, restore.Atomic)
		e.engine, e.phases, e.peak = append(e.engine, d), phases, e.peak.max(peak)
		if r == 0 {
			run(b, filepath.Join(pgBin, "pg_dump"), "-Fc", "-f", e.dump, "-d", engineDSN)
		}
		target := pgtest.NewDB(b)
		t0 := time.Now()
		run(b, filepath.Join(pgBin, "pg_restore"), "--no-owner", "-d", target, e.dump)
		e.pgr = append(e.pgr, time.Since(t0))
	}
	e.rows = countRows(b, engineDSN)
	smallDSN := schemaDB(b)
	_, e.smallPeak, _ = timeEngine(b, smallDSN, little, restore.Atomic)
	e.naive = timeNaive(b, schemaDB(b), big, false)
	e.bigDB, e.smallDB = dbName(b, engineDSN), dbName(b, smallDSN)
	return e
}

// spread is the times of one way of restoring, one per round.
type spread []time.Duration

func (s spread) median() time.Duration {
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	return sorted[(len(sorted)-1)/2]
}

func (s spread) String() string {
	if len(s) == 1 {
		return fmt.Sprintf("%8.2fs", s[0].Seconds())
	}
	return fmt.Sprintf("%8.2fs (%d runs %.2f-%.2f)", s.median().Seconds(), len(s), slices.Min(s).Seconds(), slices.Max(s).Seconds())
}

func (e *emptyRun) print(b *testing.B) {
	rate := func(d time.Duration) float64 { return float64(e.rows) / d.Seconds() }
	engine, pgr := e.engine.median(), e.pgr.median()
	fmt.Printf("  %-42s %-28s %10.0f rows/s\n", "engine (atomic, with reinit)", e.engine, rate(engine))
	fmt.Printf("  %-42s %-28s %10.0f rows/s\n", "row-by-row INSERT baseline", spread{e.naive}, rate(e.naive))
	fmt.Printf("  %-42s %-28s %10.0f rows/s\n", "pg_restore of pg_dump -Fc", e.pgr, rate(pgr))
	fmt.Printf("  engine phases: validate %s, reinit %s, load %s\n", e.phases.Validate.Round(time.Millisecond), e.phases.Reinit.Round(time.Millisecond), e.phases.Load.Round(time.Millisecond))
	fmt.Printf("  engine vs row-by-row: %.1fx faster (goal >= 10x)\n", e.naive.Seconds()/engine.Seconds())
	fmt.Printf("  engine vs pg_restore: %.2fx its time (goal <= 1.0x)\n", engine.Seconds()/pgr.Seconds())
	fmt.Printf("  engine peak heap for %s (flat means streaming): %s\n", e.backupSize, e.peak.vs(e.smallPeak))
	b.ReportMetric(rate(engine), "rows/s")
	b.ReportMetric(e.naive.Seconds()/engine.Seconds(), "x-vs-naive")
	b.ReportMetric(engine.Seconds()/pgr.Seconds(), "x-of-pg_restore")
	b.ReportMetric(mib(e.peak.live), "peak-live-MiB")
}

// populatedRun holds the figures over the populated database.
type populatedRun struct {
	rows, before              int64
	atomic, twoPhase, pgClean spread
	naive                     time.Duration
	atomicPhases, twoPhases   restore.Timings
	peak, smallPeak           heapPeak // atomic
	twoPeak, twoSmallPeak     heapPeak
	backupSize                string
}

// benchPopulated restores the backup with reinit over copies of the
// database that already holds its data, each way.
func benchPopulated(b *testing.B, e *emptyRun, big, little string, rounds int) *populatedRun {
	p := &populatedRun{rows: e.rows, before: e.rows, backupSize: e.backupSize}
	pgBin, err := pglocal.FindBinDir()
	if err != nil {
		b.Fatal(err)
	}
	for r := 0; r < rounds; r++ {
		dsn := clone(b, e.bigDB)
		d, peak, phases := timeEngine(b, dsn, big, restore.Atomic)
		p.atomic, p.atomicPhases, p.peak = append(p.atomic, d), phases, p.peak.max(peak)
		sameRows(b, "atomic over the populated database", dsn, e.rows)
		dsn = clone(b, e.bigDB)
		d, peak, p.twoPhases = timeEngine(b, dsn, big, restore.TwoPhase)
		p.twoPeak = p.twoPeak.max(peak)
		p.twoPhase = append(p.twoPhase, d)
		sameRows(b, "two-phase over the populated database", dsn, e.rows)
		dsn = clone(b, e.bigDB)
		t0 := time.Now()
		run(b, filepath.Join(pgBin, "pg_restore"), "--no-owner", "--clean", "--if-exists", "--single-transaction", "-d", dsn, e.dump)
		p.pgClean = append(p.pgClean, time.Since(t0))
		sameRows(b, "pg_restore --clean", dsn, e.rows)
	}
	dsn := clone(b, e.bigDB)
	p.naive = timeNaive(b, dsn, big, true)
	sameRows(b, "row-by-row over the populated database", dsn, e.rows)
	_, p.smallPeak, _ = timeEngine(b, clone(b, e.smallDB), little, restore.Atomic)
	_, p.twoSmallPeak, _ = timeEngine(b, clone(b, e.smallDB), little, restore.TwoPhase)
	return p
}

func (p *populatedRun) print(b *testing.B) {
	rate := func(d time.Duration) float64 { return float64(p.rows) / d.Seconds() }
	atomic, twoPhase, pgClean := p.atomic.median(), p.twoPhase.median(), p.pgClean.median()
	line := func(what string, s spread, ph *restore.Timings) {
		fmt.Printf("  %-42s %-28s %10.0f rows/s", what, s, rate(s.median()))
		if ph != nil {
			fmt.Printf("   (validate %s, reinit %s, load %s)", ph.Validate.Round(time.Millisecond), ph.Reinit.Round(time.Millisecond), ph.Load.Round(time.Millisecond))
		}
		fmt.Println()
	}
	line("engine, atomic, with reinit", p.atomic, &p.atomicPhases)
	line("engine, two-phase, with reinit", p.twoPhase, &p.twoPhases)
	line("row-by-row: reinit, one upsert per object", spread{p.naive}, nil)
	line("pg_restore --clean --single-transaction", p.pgClean, nil)
	fmt.Printf("  atomic vs pg_restore --clean:    %.2fx its time (goal <= 1.5x)\n", atomic.Seconds()/pgClean.Seconds())
	fmt.Printf("  two-phase vs pg_restore --clean: %.2fx its time (goal <= 1.5x)\n", twoPhase.Seconds()/pgClean.Seconds())
	fmt.Printf("  atomic vs row-by-row: %.1fx faster, two-phase vs row-by-row: %.1fx faster\n", p.naive.Seconds()/atomic.Seconds(), p.naive.Seconds()/twoPhase.Seconds())
	fmt.Printf("  atomic peak heap for %s over its data: %s\n", p.backupSize, p.peak.vs(p.smallPeak))
	fmt.Printf("  two-phase peak heap for %s over its data: %s\n", p.backupSize, p.twoPeak.vs(p.twoSmallPeak))
	b.ReportMetric(atomic.Seconds()/pgClean.Seconds(), "atomic-x-of-pg_restore-clean")
	b.ReportMetric(twoPhase.Seconds()/pgClean.Seconds(), "two-phase-x-of-pg_restore-clean")
	b.ReportMetric(mib(p.peak.live), "populated-peak-live-MiB")
	b.ReportMetric(mib(p.twoPeak.live), "two-phase-peak-live-MiB")
}

func generate(b *testing.B, dir, name string, spec fixtures.Spec) string {
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := fixtures.Generate(f, spec); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return path
}

func schemaDB(b *testing.B) string {
	dsn := pgtest.NewDB(b)
	conn := pgtest.Connect(b, dsn)
	if err := edms.Install(context.Background(), conn); err != nil {
		b.Fatal(err)
	}
	conn.Close(context.Background())
	return dsn
}

// clone copies the database named template (which nobody may be connected
// to) into a new one, dropped when the benchmark ends, and returns its DSN.
func clone(b *testing.B, template string) string {
	admin, err := pgx.Connect(ctx, pgtest.AdminDSN())
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	name := fmt.Sprintf("%s_copy_%d", template, time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if c, err := pgx.Connect(ctx, pgtest.AdminDSN()); err == nil {
			c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	return pgtest.DSN(name)
}

func dbName(b *testing.B, dsn string) string {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		b.Fatal(err)
	}
	return cfg.Database
}

// timeEngine restores path with reinit on dsn and returns the time, the
// peak heap and the engine's phases. It closes its connection, so that the
// database can be copied afterwards.
func timeEngine(b *testing.B, dsn, path string, strategy restore.Strategy) (time.Duration, heapPeak, restore.Timings) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	runtime.GC()
	stop := restore.HeapPeaks(5 * time.Millisecond)
	t0 := time.Now()
	res, err := restore.Restore(context.Background(), conn, restore.Options{
		Open:      func() (io.ReadCloser, error) { return os.Open(path) },
		Strategy:  strategy,
		Reinit:    withReinit(true),
		Protected: edms.Protected(),
	})
	d := time.Since(t0)
	var peak heapPeak
	peak.objects, peak.live = stop()
	if err != nil {
		b.Fatal(err)
	}
	return d, peak, res.Timings
}

// heapPeak is a run's peak heap: the live heap as each garbage collection
// found it (what the engine holds), and every object not yet collected
// (which the collector's pacing lets grow to about twice the process's
// live heap, the benchmark's own data included).
type heapPeak struct{ objects, live uint64 }

func (h heapPeak) max(o heapPeak) heapPeak {
	return heapPeak{max(h.objects, o.objects), max(h.live, o.live)}
}

// vs says how h compares with the peak for a backup ten times smaller.
func (h heapPeak) vs(small heapPeak) string {
	return fmt.Sprintf("live %.1f MiB, %.1f MiB for a backup 10x smaller (ratio %.2f); objects not yet collected %.1f and %.1f MiB (ratio %.2f)",
		mib(h.live), mib(small.live), float64(h.live)/float64(small.live), mib(h.objects), mib(small.objects), float64(h.objects)/float64(small.objects))
}

// timeNaive loads the backup the way a naive loader does: one statement per
// object (prepared, in one transaction), many-to-many rows one by one too.
// Over a populated database (withReinit), the reinit runs first in the same
// transaction and each object is an upsert, as loaddata's save() updates a
// row that exists.
func timeNaive(b *testing.B, dsn, path string, withReinit bool) time.Duration {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	t0 := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if withReinit {
		if _, err := reinit.Apply(ctx, tx, edms.ReinitConfig("", true)); err != nil {
			b.Fatal(err)
		}
	}
	dec := json.NewDecoder(f)
	dec.Token()
	for dec.More() {
		var o struct {
			Model  string                     `json:"model"`
			PK     any                        `json:"pk"`
			Fields map[string]json.RawMessage `json:"fields"`
		}
		if err := dec.Decode(&o); err != nil {
			b.Fatal(err)
		}
		sql, vals, groups := naiveInsert(o.Model, o.PK, o.Fields, withReinit)
		if _, err := tx.Exec(ctx, sql, vals...); err != nil {
			b.Fatalf("naive insert: %v", err)
		}
		for _, g := range groups {
			if _, err := tx.Exec(ctx, "INSERT INTO users_user_groups (user_id, group_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", o.PK, g); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	return time.Since(t0)
}

// naiveInsert is the statement a naive loader writes for one object (an
// upsert when upsert is set), and the object's groups.
func naiveInsert(model string, pk any, fields map[string]json.RawMessage, upsert bool) (string, []any, []any) {
	table := restore.TableForModel(model)
	cols := []string{"id"}
	vals := []any{pk}
	var m2m []any
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		raw := fields[k]
		if k == "groups" {
			json.Unmarshal(raw, &m2m)
			continue
		}
		col := k
		switch k {
		case "author", "document", "assignee", "actor", "created_by":
			col = k + "_id"
		}
		var v any
		json.Unmarshal(raw, &v)
		if k == "details" {
			v = string(raw)
		}
		cols = append(cols, col)
		vals = append(vals, v)
	}
	ph := make([]string, len(vals))
	set := make([]string, 0, len(cols))
	for i, c := range cols {
		ph[i] = fmt.Sprintf("$%d", i+1)
		if i > 0 {
			set = append(set, c+" = EXCLUDED."+c)
		}
	}
	sql := fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(cols, ","), strings.Join(ph, ","))
	if upsert {
		sql += " ON CONFLICT (id) DO UPDATE SET " + strings.Join(set, ", ")
	}
	return sql, vals, m2m
}

func countRows(b *testing.B, dsn string) int64 {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM auth_group) + (SELECT count(*) FROM users_user) + (SELECT count(*) FROM users_user_groups)
		+ (SELECT count(*) FROM documents_document) + (SELECT count(*) FROM documents_documentversion)
		+ (SELECT count(*) FROM workflows_workflowassignment) + (SELECT count(*) FROM audit_auditevent)`).Scan(&n)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// sameRows fails the benchmark when a way of restoring left other than
// want rows: a fast wrong restore is no result.
func sameRows(b *testing.B, what, dsn string, want int64) {
	if got := countRows(b, dsn); got != want {
		b.Fatalf("%s left %d rows, want %d", what, got, want)
	}
}

func run(b *testing.B, name string, args ...string) {
	cmd := exec.Command(name, args...)
	if os.Geteuid() == 0 {
		cmd.Env = append(os.Environ(), "PGUSER=postgres")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", name, err, out)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func humanSize(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return path
	}
	return fmt.Sprintf("a %.0f MiB backup", float64(st.Size())/(1<<20))
}
