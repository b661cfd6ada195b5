package restore

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// gzipMember compresses b as one gzip member. Members concatenate into one
// valid gzip stream (RFC 1952 §2.2), so a bomb of gigabytes can be streamed
// from one small member without compressing gigabytes.
func gzipMember(t testing.TB, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	w, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

// whitespaceBomb opens { printf '['; head -c n /dev/zero | tr '\0' ' ';
// printf ']'; } | gzip as a stream, written by a goroutine into a pipe:
// nothing of it is held in memory or written to disk.
func whitespaceBomb(t testing.TB, n int64, l Limits) Opener {
	const block = 1 << 20
	open, blank, tail := gzipMember(t, []byte("[")), gzipMember(t, bytes.Repeat([]byte(" "), block)), gzipMember(t, bytes.Repeat([]byte(" "), int(n%block)))
	closing := gzipMember(t, []byte("]"))
	return WithLimits(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			var err error
			write := func(b []byte) {
				if err == nil {
					_, err = pw.Write(b)
				}
			}
			write(open)
			for i := int64(0); i < n/block; i++ {
				write(blank)
			}
			write(tail)
			write(closing)
			pw.CloseWithError(err)
		}()
		return pr, nil
	}, l)
}

// scanAll reads every object and returns how many there were.
func scanAll(open Opener) (int, error) {
	r, err := newDumpReader(open)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	for n := 0; ; n++ {
		if _, err := r.Next(); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
	}
}

// measure runs f and returns the bytes it allocated in all (an upper bound
// on the heap it grew by) and the peak live heap seen meanwhile.
func measure(f func()) (allocated, peak uint64) {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	stop := HeapPeak(2 * time.Millisecond)
	f()
	peak = stop()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, peak
}

// The bomb of issue 11 (2.2 MB gzipped, 2.3 GB of white space) made the
// restore peak at 10.8 GB: white space was never dropped from the buffer.
// With the expansion limit off, the scanner reads all of it in a few MiB.
// With -short, a 300 MB bomb (the old scanner grew a 512 MiB buffer for it).
func TestWhitespaceBombStaysSmall(t *testing.T) {
	n := int64(2_300_000_000)
	if testing.Short() {
		n = 300_000_000
	}
	var objects int
	var err error
	allocated, peak := measure(func() { objects, err = scanAll(whitespaceBomb(t, n, Limits{MaxExpansion: -1})) })
	if err != nil || objects != 0 {
		t.Fatalf("scan of the bomb: %d objects, %v", objects, err)
	}
	t.Logf("%s of white space: %s allocated, peak live heap %s", size(n), size(int64(allocated)), size(int64(peak)))
	const bound = 256 << 20
	if allocated > bound/4 || peak > bound {
		t.Fatalf("the scanner allocated %s (peak live heap %s) for a backup holding no object; want well under %s", size(int64(allocated)), size(int64(peak)), size(bound))
	}
}

// With the default limits, the bomb is refused once it has expanded past the
// grace, long before the scanner has read it all.
func TestGzipBombIsRefused(t *testing.T) {
	t.Parallel() // measures no memory
	start := time.Now()
	_, err := scanAll(whitespaceBomb(t, 2_300_000_000, Limits{}))
	var be *BackupError
	if !errors.As(err, &be) || be.Index != -1 || !strings.Contains(err.Error(), "expands more than 500 fold") || !strings.Contains(err.Error(), "gunzip it") {
		t.Fatalf("bomb: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("refusing the bomb took %v", d)
	}
	// A total cap, configurable.
	_, err = scanAll(whitespaceBomb(t, 5<<20, Limits{MaxDecompressedBytes: 1 << 20}))
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "decompresses to more than 1.0 MiB, the limit") {
		t.Fatalf("total cap: %v", err)
	}
	// A real backup is far from the default ratio.
	in := []byte(`[` + strings.Repeat(`{"model": "a.b", "pk": 1, "fields": {"x": "hello"}},`, 2_000_000) + `{"model": "a.b", "pk": 2, "fields": {}}]`)
	gz := gzipMember(t, in)
	if n, err := scanAll(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil }); err != nil || n != 2_000_001 {
		t.Fatalf("repetitive backup (%.0f fold): %d objects, %v", float64(len(in))/float64(len(gz)), n, err)
	}
}

// A valid backup padded with white space between its objects (the server
// went from 21.7 MB to 1.55 GB for 300 MB of it) reads in constant memory.
func TestWhitespaceBetweenObjectsIsDropped(t *testing.T) {
	pad := bytes.Repeat([]byte(" \n\t\r"), 1<<18) // 1 MiB
	padding := func(w io.Writer, mib int) {
		for i := 0; i < mib; i++ {
			w.Write(pad)
		}
	}
	open := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { // writes without allocating, so that measure sees the scanner's
			padding(pw, 32)
			pw.Write([]byte("["))
			for i := 0; i < 100; i++ {
				padding(pw, 1)
				fmt.Fprintf(pw, `{"model": "a.b", "pk": %d, "fields": {"x": %d}}`, i, i)
				padding(pw, 1)
				pw.Write([]byte(","))
			}
			padding(pw, 32)
			pw.Write([]byte(`{"model": "a.b", "pk": 100, "fields": {}}`))
			padding(pw, 32)
			pw.Write([]byte("]"))
			padding(pw, 32)
			pw.Close()
		}()
		return pr, nil
	}
	var n int
	var err error
	allocated, _ := measure(func() { n, err = scanAll(open) })
	if err != nil || n != 101 {
		t.Fatalf("padded backup: %d objects, %v", n, err)
	}
	if allocated > 16<<20 {
		t.Fatalf("reading a backup padded with 328 MiB of white space allocated %s", size(int64(allocated)))
	}
}

// One object may not exceed MaxObjectBytes, white space inside it included;
// the error names the object and its size so far.
func TestObjectSizeLimit(t *testing.T) {
	l := Limits{MaxObjectBytes: 1 << 20}
	small := `{"model": "a.b", "pk": 1, "fields": {"x": "small"}}`
	cases := map[string]string{
		"long string":      `{"model": "a.b", "pk": 2, "fields": {"x": "` + strings.Repeat("x", 2<<20) + `"}}`,
		"inner whitespace": `{"model": "a.b", "pk": 2, "fields": {"x":` + strings.Repeat(" ", 2<<20) + `1}}`,
		"just over":        `{"model": "a.b", "pk": 2, "fields": {"x": "` + strings.Repeat("x", 1<<20-40) + `"}}`,
		"endless":          `{"model": "a.b", "pk": 2, "fields": {"x": "` + strings.Repeat("x", 8<<20),
	}
	for name, big := range cases {
		in := "[" + small + "," + big + "]"
		_, err := scanAll(WithLimits(func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(in)), nil }, l))
		var be *BackupError
		if !errors.As(err, &be) || be.Index != 1 || !strings.Contains(err.Error(), "object #1: the object is larger than 1.0 MiB, the limit for one object (") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// At the limit exactly, it is accepted; the buffer never grows past the
	// limit and one read.
	exact := `{"model": "a.b", "pk": 2, "fields": {"x": "` + strings.Repeat("x", 1<<20-46) + `"}}`
	if len(exact) != 1<<20 {
		t.Fatalf("len = %d", len(exact))
	}
	r, err := newDumpReader(WithLimits(func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("[" + small + "," + exact + "]")), nil
	}, l))
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = r.Next()
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("object of exactly the limit: %v", err)
	}
	if len(r.buf) > 1<<20+readChunk {
		t.Errorf("buffer grew to %d bytes", len(r.buf))
	}
	// The default is 64 MiB.
	if (Limits{}).maxObject() != 64<<20 {
		t.Error("default object limit is not 64 MiB")
	}
}

// A file that is one huge value and not a list is refused as not a list,
// without reading it whole.
func TestHugeNonListIsRefused(t *testing.T) {
	in := `{"results": "` + strings.Repeat("x", 3<<20) + `"}`
	_, err := scanAll(WithLimits(func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(in)), nil }, Limits{MaxObjectBytes: 1 << 20}))
	if err == nil || !strings.Contains(err.Error(), "does not start with '['") {
		t.Fatalf("huge non-list: %v", err)
	}
}

// An object of many small fields costs memory per field, not per byte: the
// number of fields is bounded, and finding repeated names stays linear.
func TestManyFields(t *testing.T) {
	var b strings.Builder
	b.WriteString(`[{"model": "a.b", "pk": 1, "fields": {`)
	for i := 0; i < 100_000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%d": %d`, i, i)
	}
	b.WriteString(`}}]`)
	start := time.Now()
	_, err := readAll(t, b.String())
	if err == nil || !strings.Contains(err.Error(), "object #0: the object has more than 10000 fields") {
		t.Fatalf("100k fields: %v", err)
	}
	// Under the bound, with every name repeated: the last value wins.
	b.Reset()
	b.WriteString(`[{"model": "a.b", "pk": 1, "fields": {`)
	for i := 0; i < 2*maxFields; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%d": %d`, i%maxFields, i)
	}
	b.WriteString(`}}]`)
	got, err := readAll(t, b.String())
	if err != nil || len(got) != 1 || len(got[0].fields) != maxFields {
		t.Fatalf("repeated names: %v", err)
	}
	if v, _ := got[0].field("f7"); string(v) != fmt.Sprint(maxFields+7) {
		t.Errorf("f7 = %s, want the last value", v)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v: quadratic?", d)
	}
}
