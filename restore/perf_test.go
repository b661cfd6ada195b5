package restore_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

// BenchmarkRestoreBreakdown is a development aid: it restores a generated
// backup with the atomic strategy and prints where the time went, table by
// table. REHEARSE_PERF_USERS sets the bulk users (default 1000, ~100k rows);
// the backup is cached under REHEARSE_PERF_DIR (default the temp dir).
//
//	go test -run '^$' -bench RestoreBreakdown -benchtime 1x ./restore
func BenchmarkRestoreBreakdown(b *testing.B) {
	spec := fixtures.LargeSpec
	spec.BulkUsers = 1000
	if v := os.Getenv("REHEARSE_PERF_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("REHEARSE_PERF_USERS=%q: want a number of users", v)
		}
		spec.BulkUsers = n
	}
	dir := os.Getenv("REHEARSE_PERF_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	name := fmt.Sprintf("rehearse-perf-%d.json", spec.BulkUsers)
	path := filepath.Join(dir, name)
	if _, err := os.Stat(path); err != nil {
		generate(b, dir, name, spec)
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		conn := pgtest.Connect(b, pgtest.NewDB(b))
		if err := edms.Install(ctx, conn); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		b.StartTimer()
		last := time.Now()
		stop := restore.HeapPeak(5 * time.Millisecond)
		res, err := restore.Restore(ctx, conn, restore.Options{
			Open:      func() (io.ReadCloser, error) { return os.Open(path) },
			Strategy:  restore.Atomic,
			Reinit:    withReinit(true),
			Protected: edms.Protected(),
			Progress: func(e restore.Event) {
				fmt.Printf("  %-32s %-28s %8d rows %8.3fs\n", e.Phase, e.Table, e.Rows, e.At.Sub(last).Seconds())
				last = e.At
			},
		})
		peak := stop()
		if err != nil {
			b.Fatal(err)
		}
		var rows int64
		for _, n := range res.Rows {
			rows += n
		}
		fmt.Printf("%d rows: reinit %s, load %s, total %s, peak heap %.1f MiB\n",
			rows, res.Timings.Reinit, res.Timings.Load, res.Timings.Total, float64(peak)/(1<<20))
	}
}
