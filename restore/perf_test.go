package restore_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

// TestPerfBreakdown is a development aid, skipped unless REHEARSE_PERF_USERS
// is set: it restores a generated backup (cached under REHEARSE_PERF_DIR,
// default the OS temp dir) once with the atomic strategy and prints where the
// time went, table by table.
func TestPerfBreakdown(t *testing.T) {
	v := os.Getenv("REHEARSE_PERF_USERS")
	if v == "" {
		t.Skip("set REHEARSE_PERF_USERS to run")
	}
	spec := fixtures.LargeSpec
	spec.BulkUsers, _ = strconv.Atoi(v)
	dir := os.Getenv("REHEARSE_PERF_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("rehearse-perf-%d.json", spec.BulkUsers))
	if _, err := os.Stat(path); err != nil {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := fixtures.Generate(f, spec); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	dsn := pgtest.NewDB(t)
	conn := pgtest.Connect(t, dsn)
	if err := edms.Install(ctx, conn); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	last := time.Now()
	t0 := last
	stop := sampleHeapT()
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
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("go cpu: user %.2fs sys %.2fs (whole test process)\n", time.Duration(ru.Utime.Nano()).Seconds(), time.Duration(ru.Stime.Nano()).Seconds())
	if err != nil {
		t.Fatal(err)
	}
	total := time.Since(t0)
	var rows int64
	for _, n := range res.Rows {
		rows += n
	}
	fmt.Printf("total %.3fs, %d rows, %.0f rows/s, reinit %s, load %s, peak heap %.1f MiB\n",
		total.Seconds(), rows, float64(rows)/total.Seconds(), res.Timings.Reinit, res.Timings.Load, float64(peak)/(1<<20))
}

func sampleHeapT() func() uint64 { return sampleHeap() }
