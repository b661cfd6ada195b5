package restore

import (
	"sort"
	"testing"
)

func TestKeySetIntsAcrossChunksAndNegatives(t *testing.T) {
	s := newKeySet()
	ids := []int64{0, 1, 63, 64, 65535, 65536, 1 << 40, -1, -65537}
	for _, id := range ids {
		if !s.addInt(id) {
			t.Fatalf("addInt(%d) reported duplicate on first add", id)
		}
	}
	for _, id := range ids {
		if s.addInt(id) {
			t.Fatalf("addInt(%d) reported new on second add", id)
		}
		if !s.hasInt(id) {
			t.Fatalf("hasInt(%d) = false", id)
		}
	}
	if s.hasInt(2) || s.hasInt(-2) {
		t.Fatal("hasInt of an absent id = true")
	}
	var got []int64
	s.each(func(k key) bool { got = append(got, k.i); return true })
	sort.Slice(got, func(i, j int) bool { return got[i] < got[j] })
	want := append([]int64(nil), ids...)
	sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
	if len(got) != len(want) {
		t.Fatalf("each visited %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("each visited %v, want %v", got, want)
		}
	}
	if s.len() != len(ids) {
		t.Fatalf("len = %d", s.len())
	}
}

func TestKeySetStrings(t *testing.T) {
	s := newKeySet()
	if !s.add(key{s: "a"}) || s.add(key{s: "a"}) || !s.has(key{s: "a"}) || s.has(key{s: "b"}) {
		t.Fatal("string keys misbehave")
	}
}
