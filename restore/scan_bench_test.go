package restore

import (
	"bytes"
	"encoding/json"
	"errors"
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
		r, err := newDumpReader(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(in)), nil })
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		r.Close()
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
