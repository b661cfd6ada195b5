package restore

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"
	"testing"

	"github.com/rehearse-dev/rehearse/fixtures"
)

var (
	benchOnce   sync.Once
	benchBackup []byte
)

// benchmarkBackup is a generated edms backup of about 100k objects.
func benchmarkBackup(b *testing.B) []byte {
	benchOnce.Do(func() {
		spec := fixtures.LargeSpec
		spec.BulkUsers = 1000
		var buf bytes.Buffer
		if err := fixtures.Generate(&buf, spec); err != nil {
			b.Fatal(err)
		}
		benchBackup = buf.Bytes()
	})
	return benchBackup
}

// BenchmarkScan measures the scanner alone: bytes of backup per second.
//
//	go test -run '^$' -bench Scan ./restore
func BenchmarkScan(b *testing.B) {
	in := benchmarkBackup(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		n, err := scanAll(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(in)), nil })
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatal("no objects")
		}
	}
}

// BenchmarkScanEncodingJSON is the baseline for BenchmarkScan, in the same
// run: encoding/json's streaming decoder reading the same backup into
// model, pk and raw fields, as a scanner built on the standard library
// would. Compare their MB/s: go test -run '^$' -bench 'Scan' ./restore
func BenchmarkScanEncodingJSON(b *testing.B) {
	in := benchmarkBackup(b)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dec := json.NewDecoder(bytes.NewReader(in))
		if _, err := dec.Token(); err != nil {
			b.Fatal(err)
		}
		n := 0
		for dec.More() {
			var o struct {
				Model  string
				PK     json.RawMessage
				Fields map[string]json.RawMessage
			}
			if err := dec.Decode(&o); err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n == 0 {
			b.Fatal("no objects")
		}
	}
}

// BenchmarkScanMemory compares, in one run, the bytes the scanner allocates
// for the generated backup (the baseline: ~23 MB of real objects) and for
// the white-space bomb of issue 11 (2.3 GB, no object, no expansion limit).
// A ratio near 1 means memory does not grow with the input.
//
//	go test -run '^$' -bench ScanMemory -benchtime 1x ./restore
func BenchmarkScanMemory(b *testing.B) {
	in := benchmarkBackup(b)
	plain := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(in)), nil }
	bomb := whitespaceBomb(b, 2_300_000_000, Limits{MaxExpansion: -1})
	for i := 0; i < b.N; i++ {
		var err error
		base, basePeak := measure(func() { _, err = scanAll(plain) })
		if err != nil {
			b.Fatal(err)
		}
		bombed, bombPeak := measure(func() { _, err = scanAll(bomb) })
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(mib(base), "baseline-alloc-MiB")
		b.ReportMetric(mib(bombed), "bomb-alloc-MiB")
		b.ReportMetric(mib(basePeak), "baseline-peak-MiB") // the live heap holds the 23 MB input too
		b.ReportMetric(mib(bombPeak), "bomb-peak-MiB")
		b.ReportMetric(float64(bombed)/float64(base), "bomb/baseline")
	}
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }
