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
	"runtime/metrics"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	pglocal "github.com/rehearse-dev/rehearse/pg/local"
	"github.com/rehearse-dev/rehearse/restore"
)

// BenchmarkRestore restores the same generated backup three ways in one run
// and prints rows/s and ratios: the engine (atomic, with reinit), a row-by-row
// INSERT baseline (what a naive loader does), and pg_restore of a pg_dump -Fc
// of the same data (the practical limit on this machine). It also prints the
// engine's peak heap for a backup ten times smaller, to show that memory does
// not grow with the backup. Run with: make bench (REHEARSE_BENCH_USERS sets
// the size; the default is the 10k-user, ~1M-row edms-large).
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

	for i := 0; i < b.N; i++ {
		engineDSN := schemaDB(b)
		engine, peak := timeEngine(b, engineDSN, big)
		rows := countRows(b, engineDSN)

		_, smallPeak := timeEngine(b, schemaDB(b), little)

		naive := timeNaive(b, schemaDB(b), big)

		dump := filepath.Join(dir, "dump.fc")
		pgBin, err := pglocal.FindBinDir()
		if err != nil {
			b.Fatal(err)
		}
		run(b, filepath.Join(pgBin, "pg_dump"), "-Fc", "-f", dump, "-d", engineDSN)
		target := pgtest.NewDB(b)
		t0 := time.Now()
		run(b, filepath.Join(pgBin, "pg_restore"), "--no-owner", "-d", target, dump)
		pgr := time.Since(t0)

		rate := func(d time.Duration) float64 { return float64(rows) / d.Seconds() }
		fmt.Printf("\nrestore of %d rows (%d users)\n", rows, len(spec.Users()))
		fmt.Printf("  %-28s %8.2fs %10.0f rows/s\n", "engine (atomic, with reinit)", engine.Seconds(), rate(engine))
		fmt.Printf("  %-28s %8.2fs %10.0f rows/s\n", "row-by-row INSERT baseline", naive.Seconds(), rate(naive))
		fmt.Printf("  %-28s %8.2fs %10.0f rows/s\n", "pg_restore of pg_dump -Fc", pgr.Seconds(), rate(pgr))
		fmt.Printf("  engine vs row-by-row: %.1fx faster (goal >= 10x)\n", naive.Seconds()/engine.Seconds())
		fmt.Printf("  engine vs pg_restore: %.2fx its time (goal <= 1.5x)\n", engine.Seconds()/pgr.Seconds())
		fmt.Printf("  engine peak heap: %.1f MiB for %s, %.1f MiB for a backup 10x smaller (ratio %.2f; flat means streaming)\n",
			mib(peak), humanSize(big), mib(smallPeak), float64(peak)/float64(smallPeak))
		b.ReportMetric(rate(engine), "rows/s")
		b.ReportMetric(naive.Seconds()/engine.Seconds(), "x-vs-naive")
		b.ReportMetric(engine.Seconds()/pgr.Seconds(), "x-of-pg_restore")
		b.ReportMetric(mib(peak), "peak-MiB")
	}
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

func timeEngine(b *testing.B, dsn, path string) (time.Duration, uint64) {
	conn := pgtest.Connect(b, dsn)
	runtime.GC()
	stop := sampleHeap()
	t0 := time.Now()
	res, err := restore.Restore(context.Background(), conn, restore.Options{
		Open:      func() (io.ReadCloser, error) { return os.Open(path) },
		Strategy:  restore.Atomic,
		Reinit:    withReinit(true),
		Protected: edms.Protected(),
	})
	d := time.Since(t0)
	peak := stop()
	if err != nil {
		b.Fatal(err)
	}
	if testing.Verbose() {
		fmt.Printf("  engine phases: validate %s, reinit %s, load %s\n", res.Timings.Validate, res.Timings.Reinit, res.Timings.Load)
	}
	return d, peak
}

// sampleHeap polls the live heap every 5 ms until stopped and returns its peak.
func sampleHeap() func() uint64 {
	var mu sync.Mutex
	var peak uint64
	done := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			mu.Lock()
			if v := sample[0].Value.Uint64(); v > peak {
				peak = v
			}
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// timeNaive loads the backup the way a naive loader does: one INSERT per
// object (prepared, in one transaction), many-to-many rows one by one too.
func timeNaive(b *testing.B, dsn, path string) time.Duration {
	ctx := context.Background()
	conn := pgtest.Connect(b, dsn)
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
		table := restore.TableForModel(o.Model)
		cols := []string{"id"}
		vals := []any{o.PK}
		var m2m []any
		keys := make([]string, 0, len(o.Fields))
		for k := range o.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			raw := o.Fields[k]
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
		for i := range ph {
			ph[i] = fmt.Sprintf("$%d", i+1)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(cols, ","), strings.Join(ph, ",")), vals...); err != nil {
			b.Fatalf("naive insert into %s: %v", table, err)
		}
		for _, g := range m2m {
			if _, err := tx.Exec(ctx, "INSERT INTO users_user_groups (user_id, group_id) VALUES ($1, $2)", o.PK, g); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	return time.Since(t0)
}

func countRows(b *testing.B, dsn string) int64 {
	conn := pgtest.Connect(b, dsn)
	var n int64
	err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM auth_group) + (SELECT count(*) FROM users_user) + (SELECT count(*) FROM users_user_groups)
		+ (SELECT count(*) FROM documents_document) + (SELECT count(*) FROM documents_documentversion)
		+ (SELECT count(*) FROM workflows_workflowassignment) + (SELECT count(*) FROM audit_auditevent)`).Scan(&n)
	if err != nil {
		b.Fatal(err)
	}
	return n
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

var _ = pgx.Identifier{}
