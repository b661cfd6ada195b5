package restore

import (
	"bytes"
	"os"
	"testing"

	"github.com/rehearse-dev/rehearse/fixtures"
)

// skimAll runs the skimmer over data in chunks of n bytes.
func skimAll(data []byte, n int) ([]string, bool) {
	var got []string
	s := skimmer{emit: func(o *object) bool {
		got = append(got, o.Model+" "+string(o.PK))
		return true
	}}
	for len(data) > 0 {
		k := min(n, len(data))
		if !s.feed(data[:k]) {
			return got, false
		}
		data = data[k:]
	}
	return got, s.depth == 0 && !s.inStr && s.closed
}

// scanPKs reads in with the validating scanner (readAll): model and pk of
// each object, up to the first error.
func scanPKs(t *testing.T, in string) ([]string, error) {
	objs, err := readAll(t, in)
	var got []string
	for _, o := range objs {
		got = append(got, o.Model+" "+string(o.PK))
	}
	return got, err
}

func TestSkimFindsWhatTheScannerFinds(t *testing.T) {
	small, err := os.ReadFile("../fixtures/edms-small.json")
	if err != nil {
		t.Fatal(err)
	}
	var gen bytes.Buffer
	spec := fixtures.LargeSpec
	spec.BulkUsers = 20
	if err := fixtures.Generate(&gen, spec); err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"fixture":   string(small),
		"generated": gen.String(),
		"tricky": `[ {"fields": {"a": "x\"}{][", "b": {"c": ["}", "\\"]}, "d": null}, "pk" : 7 , "model":"a.b"},
			{"model": "a.b", "pk": "s-1", "extra": [1, {"pk": 9}], "fields": {"pk": "\\\\\"", "model": "z.z"}},
			{"pk": 1e3, "model": "c.d", "fields": {}}, {"model": "a.b", "pk": 1, "model": "c.e", "fields": {"u": "\u00e9\\u0022"}}]`,
		"empty": ` [ ] `,
	}
	for name, text := range cases {
		want, err := scanPKs(t, text)
		if err != nil {
			t.Fatalf("%s: scanner: %v", name, err)
		}
		for _, n := range []int{1, 2, 3, 7, 64, 1 << 20} {
			got, ok := skimAll([]byte(text), n)
			if !ok {
				t.Fatalf("%s, chunks of %d: the skimmer gave up", name, n)
			}
			if len(got) != len(want) {
				t.Fatalf("%s, chunks of %d: %d objects, want %d", name, n, len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s, chunks of %d: object %d is %q, want %q", name, n, i, got[i], want[i])
				}
			}
		}
	}
}

func TestSkimGivesUpOnTheUnusual(t *testing.T) {
	for _, text := range []string{
		`{"model": "a.b"}`,
		`[{"model": "a\u002eb", "pk": 1, "fields": {}}]`,
		`[{"mod\u0065l": "a.b", "pk": 1, "fields": {}}]`,
		`[{"model": "a.b", "pk": "x\"y", "fields": {}}]`,
		`[{"model": "a.b", "pk": [1], "fields": {}}]`,
		`[{"model": "a.b", "fields": {}}]`,
		`[{"pk": 1, "fields": {}}]`,
		`[{"model": null, "pk": 1, "fields": {}}]`,
		`[1, {"model": "a.b", "pk": 1, "fields": {}}]`,
		`["x"]`,
		`[[]]`,
		`[{"model": "a.b", "pk": 1, "fields": {}}`,
		`[{"model": "a.b", "pk": 1, "fields": {"a": "}]`,
	} {
		for _, n := range []int{1, 5, 1 << 20} {
			if _, ok := skimAll([]byte(text), n); ok {
				t.Errorf("%s (chunks of %d): the skimmer did not give up", text, n)
			}
		}
	}
}
