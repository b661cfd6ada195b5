package restore

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// hashSet answers as a map does, through many splits, for random hashes
// and for hashes that differ in their low bits only.
func TestHashSetIsASet(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s, want := newHashSet(), map[uint64]bool{}
	for i := 0; i < 200_000; i++ {
		h := r.Uint64()
		if i%3 == 0 {
			h = uint64(i % 5000) // low bits only: one bucket, and repeats
		}
		if got := s.add(h); got == want[h] {
			t.Fatalf("add(%#x) = %v with the hash %sthere", h, got, map[bool]string{true: "", false: "not "}[want[h]])
		}
		want[h] = true
	}
	for h := range want {
		if !s.has(h) {
			t.Fatalf("has(%#x) = false after add", h)
		}
	}
	for i := 0; i < 100_000; i++ {
		if h := r.Uint64(); s.has(h) != want[h] {
			t.Fatalf("has(%#x) = %v, want %v", h, !want[h], want[h])
		}
	}
	if s.n != len(want) {
		t.Errorf("%d hashes counted, want %d", s.n, len(want))
	}
}

// A million hashes take about 9 bytes each (a map[uint64]struct{} takes
// about 29): the unique checks' memory at a million rows.
func TestHashSetMemory(t *testing.T) {
	const n = 1_000_000
	r := rand.New(rand.NewPCG(3, 4))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := newHashSet()
	for i := 0; i < n; i++ {
		s.add(r.Uint64())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.1f bytes per hash", per)
	if per > 12 {
		t.Errorf("%.1f bytes per hash, want at most 12", per)
	}
	runtime.KeepAlive(s)
}

// hashRuns, merged from runs of a few hashes each, holds every hash once,
// names each repeated one, and answers has as a map does.
func TestHashRunsMerge(t *testing.T) {
	was := spillAt
	spillAt = 1000
	defer func() { spillAt = was }()
	r := rand.New(rand.NewPCG(3, 4))
	runs, want, repeated := newHashRuns(), map[uint64]bool{}, map[uint64]bool{}
	defer runs.close()
	for i := 0; i < 20_000; i++ {
		h := r.Uint64()
		if i%97 == 0 {
			h = uint64(i % 50) // repeats, within a run and across runs
		}
		if want[h] {
			repeated[h] = true
		}
		want[h] = true
		runs.add(h)
	}
	if err := runs.merge(); err != nil {
		t.Fatal(err)
	}
	if len(runs.runs) < 10 || runs.n != int64(len(want)) {
		t.Fatalf("%d runs merged into %d hashes, want 20 runs and %d", len(runs.runs), runs.n, len(want))
	}
	got := map[uint64]bool{}
	for _, h := range runs.dups {
		got[h] = true
	}
	if len(got) != len(repeated) {
		t.Errorf("%d repeated hashes noted, want %d", len(got), len(repeated))
	}
	for h := range repeated {
		if !got[h] {
			t.Errorf("repeated hash %#x not noted", h)
		}
	}
	for h := range want {
		if ok, err := runs.has(h); !ok || err != nil {
			t.Fatalf("has(%#x) = %v, %v after add", h, ok, err)
		}
	}
	for i := 0; i < 20_000; i++ {
		h := r.Uint64()
		if ok, _ := runs.has(h); ok != want[h] {
			t.Fatalf("has(%#x) = %v, want %v", h, ok, want[h])
		}
	}
}
