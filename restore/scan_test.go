package restore

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func readAll(t *testing.T, in string) ([]object, error) {
	t.Helper()
	r, err := newDumpReader(func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(in)), nil })
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []object
	for {
		o, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		c := object{Index: o.Index, Model: o.Model, PK: append([]byte(nil), o.PK...)}
		for _, f := range o.fields {
			c.fields = append(c.fields, rawField{f.name, append([]byte(nil), f.raw...)})
		}
		out = append(out, c)
	}
}

// The scanner accepts exactly the JSON that encoding/json accepts, and finds
// the same values.
func TestScannerMatchesEncodingJSON(t *testing.T) {
	valid := []string{
		`[]`, ` [ ] `, "[\n]\n",
		`[{"model": "a.b", "pk": 1, "fields": {}}]`,
		`[{"model":"a.b","pk":"x","fields":{"n":-1.5e+3,"s":"a\"b\\u00e9\n","l":[1,[2,{}],{"k":null}],"t":true,"f":false,"z":null}}]`,
		`[{"fields": {"x": 0}, "pk": 7, "model": "a.b", "extra": [1,2]}, {"model": "a.b", "pk": 8, "fields": {"x": 1, "x": 2}}]`,
		`[{"model": "a.b", "pk": 1, "fields": {"é": "ü"}}]`,
		`[{"model": "a\u002eb", "pk": 0, "fields": {"a\tb": 0.0}}]`,
	}
	for _, in := range valid {
		got, err := readAll(t, in)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		var want []struct {
			Model  string
			PK     json.RawMessage
			Fields map[string]json.RawMessage
		}
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%s: encoding/json: %v", in, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d objects, want %d", in, len(got), len(want))
		}
		for i := range got {
			if got[i].Model != want[i].Model || !bytes.Equal(got[i].PK, want[i].PK) || len(got[i].fields) != len(want[i].Fields) {
				t.Errorf("%s: object %d = %+v, want %+v", in, i, got[i], want[i])
			}
			for name, raw := range want[i].Fields {
				if g, ok := (&got[i]).field(name); !ok || !bytes.Equal(g, raw) {
					t.Errorf("%s: field %s = %s, want %s", in, name, g, raw)
				}
			}
		}
	}
	invalid := map[string]string{
		``:                     "empty",
		`   `:                  "empty",
		`this is not a backup`: "valid JSON",
		`{"model": "a.b"}`:     "does not start with '['",
		`[{"model": "a.b", "pk": 1, "fields": {}}`:                         "truncated",
		`[{"model": "a.b", "pk": 1, "fields": {"x": "ab`:                   "truncated",
		`[{"model": "a.b", "pk": 1, "fields": {"x": 1}},]`:                 "valid JSON",
		`[{"model": "a.b", "pk": 1, "fields": {"x": 1}} {}]`:               "valid JSON",
		`[{"model": "a.b", "pk": 01, "fields": {}}]`:                       "valid JSON",
		`[{"model": "a.b", "pk": 1., "fields": {}}]`:                       "valid JSON",
		`[{"model": "a.b", "pk": tru, "fields": {}}]`:                      "valid JSON",
		`[{"model": "a.b", "pk": 1, "fields": {"x": "\q"}}]`:               "valid JSON",
		"[{\"model\": \"a.b\", \"pk\": 1, \"fields\": {\"x\": \"a\nb\"}}]": "valid JSON",
		`[{"model": "a.b", "pk": 1, "fields": {}}] x`:                      "after the closing",
		`[{"model": 5, "pk": 1, "fields": {}}]`:                            `"model" must not be a JSON number`,
		`[{"model": "a.b", "pk": 1, "fields": []}]`:                        `"fields" must not be a JSON array`,
		`[{"pk": 1, "fields": {}}]`:                                        `missing "model"`,
		`[{"model": "a.b", "fields": {}}]`:                                 `missing "pk"`,
		`[{"model": "a.b", "pk": null, "fields": {}}]`:                     `missing "pk"`,
		`[{"model": "a.b", "pk": 1}]`:                                      `missing "fields"`,
		`[1]`:                                                              "not a dumpdata object",
		// Django's loaddata reads d["model"], d.get("pk") and d["fields"]:
		// member names are case-sensitive (encoding/json is not).
		`[{"Model": "a.b", "pk": 1, "fields": {}}]`:                                              `missing "model" (expected "app_label.modelname") (there is a member "Model": member names are case-sensitive`,
		`[{"model": "a.b", "PK": 1, "fields": {}}]`:                                              `missing "pk" (there is a member "PK"`,
		`[{"model": "a.b", "pk": 1, "FIELDS": {}}]`:                                              `missing "fields" object (there is a member "FIELDS"`,
		`[{"MODEL": "a.b", "PK": 1, "FIELDS": {}}]`:                                              `missing "model"`,
		`[{"model": "a.b", "pk": 1, "fields": {}, "fields": null}]`:                              `missing "fields"`,
		"[{\"model\": \"a.b\", \"pk\": 1, \"fields\": {\"x\": \"caf\xe9\"}}]":                    `object #0 (a.b pk=1) field "x": not valid UTF-8 (a string at byte 43`,
		"[{\"model\": \"a.\xffb\", \"pk\": 1, \"fields\": {}}]":                                  `object #0 field "model": not valid UTF-8`,
		"[{\"model\": \"a.b\", \"pk\": \"\xc3\", \"fields\": {}}]":                               "object #0 (a.b pk=\"\uFFFD\") field \"pk\": not valid UTF-8",
		"[{\"model\": \"a.b\", \"pk\": 1, \"fields\": {\"x\": [{\"deep\": \"\xed\xa0\x80\"}]}}]": `field "x": not valid UTF-8`,
		"[{\"model\": \"a.b\", \"pk\": 1, \"fields\": {\"\xff\": 1}}]":                           `field "\xff": not valid UTF-8`,
	}
	for in, want := range invalid {
		_, err := readAll(t, in)
		if err == nil {
			t.Errorf("%q accepted", in)
			continue
		}
		var be *BackupError
		if !errors.As(err, &be) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %q does not mention %q", in, err, want)
		}
		if json.Valid([]byte(in)) && strings.Contains(want, "valid JSON") {
			t.Errorf("%q is valid for encoding/json", in)
		}
	}
}

// Members named like "model", "pk" or "fields" but for case are other
// members, which loaddata ignores, as it ignores any member it does not read.
func TestScannerKeysAreCaseSensitive(t *testing.T) {
	got, err := readAll(t, `[{"model": "a.b", "pk": 1, "fields": {"x": 1}, "Model": "c.d", "PK": 2, "Fields": {"y": 2}}]`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Model != "a.b" || string(got[0].PK) != "1" || len(got[0].fields) != 1 || got[0].fields[0].name != "x" {
		t.Fatalf("got %+v", got)
	}
}

// Objects larger than the scanner's buffer, split over many reads.
func TestScannerLargeObjects(t *testing.T) {
	big := strings.Repeat("x", 200_000)
	in := `[{"model": "a.b", "pk": 1, "fields": {"s": "` + big + `", "t": 2}}, {"model": "a.b", "pk": 2, "fields": {"s": "y"}}]`
	r, err := newDumpReader(func() (io.ReadCloser, error) { return io.NopCloser(&slowReader{s: in}), nil })
	if err != nil {
		t.Fatal(err)
	}
	o, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := o.field("s"); len(s) != len(big)+2 {
		t.Errorf("len = %d", len(s))
	}
	if v, _ := o.field("t"); string(v) != "2" {
		t.Errorf("t = %s", v)
	}
	if o, err = r.Next(); err != nil || string(o.PK) != "2" {
		t.Fatalf("second object: %v %v", o, err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
}

type slowReader struct{ s string }

func (r *slowReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 777)], r.s)
	r.s = r.s[n:]
	return n, nil
}

// The fast timestamp and date parsers agree with time.Parse on the layouts
// the converters accept, and step aside for anything else.
func TestFastTimestamp(t *testing.T) {
	cases := []string{
		"2026-01-04T10:00:00Z", "2026-01-04T10:00:00", "2026-01-04 10:00:00", "2026-01-04 10:00:00+02:00",
		"2026-01-04T10:00:00.123456789-05:30", "2026-01-04T10:00:00.1Z", "1969-12-31T23:59:59.999999Z",
		"2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-04T24:00:00Z",
		"2026-01-04T9:00:00Z", "2026-01-04T10:00:00.Z", "2026-01-04T10:00:00.1234567891Z", "2026-01-04T10:00:00+24:00",
		"0001-01-01T00:00:00Z", "2026-01-04T10:00:60Z", "2026-01-04t10:00:00Z", "2026-01-04T10:00:00,5Z",
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2000; i++ {
		tm := time.Unix(r.Int64N(8e9)-2e9, r.Int64N(1e9)).UTC()
		cases = append(cases, tm.Format(time.RFC3339Nano), tm.Format("2006-01-02 15:04:05.999999"), tm.In(time.FixedZone("", -r.IntN(50000))).Format(time.RFC3339Nano))
	}
	for _, s := range cases {
		for _, tz := range []bool{true, false} {
			var fast, slow cell
			raw := []byte(`"` + s + `"`)
			errFast := timeConv(raw, &fast, tz)
			// the reference: time.Parse only
			layouts := []string{"2006-01-02T15:04:05.999999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"}
			if tz {
				layouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}
			}
			var errSlow error = errors.New("no layout")
			for _, l := range layouts {
				if tm, err := time.Parse(l, s); err == nil {
					if !tz {
						tm = time.Date(tm.Year(), tm.Month(), tm.Day(), tm.Hour(), tm.Minute(), tm.Second(), tm.Nanosecond(), time.UTC)
					}
					slow.i = tm.Unix()*1_000_000 + int64(tm.Nanosecond())/1000 - y2kMicros
					errSlow = nil
					break
				}
			}
			if (errFast == nil) != (errSlow == nil) || fast.i != slow.i {
				t.Errorf("%q tz=%v: fast %d %v, time.Parse %d %v", s, tz, fast.i, errFast, slow.i, errSlow)
			}
		}
		if len(s) >= 10 {
			d := s[:10]
			var c cell
			err := (&converter{kind: kDate, notNull: true}).convert([]byte(`"`+d+`"`), &c)
			tm, perr := time.Parse("2006-01-02", d)
			if (err == nil) != (perr == nil) || (err == nil && c.i != (tm.Unix()-y2kUnix)/86400) {
				t.Errorf("date %q: %d %v, time.Parse %v %v", d, c.i, err, tm, perr)
			}
		}
	}
}

// A number beyond float4's range is refused for a real column (its binary
// form would be an infinity, where PostgreSQL refuses the text), not for a
// double precision one.
func TestFloat4Range(t *testing.T) {
	for _, c := range []struct {
		raw  string
		kind kind
		ok   bool
	}{{"3.4e38", kFloat4, true}, {"-3.4e38", kFloat4, true}, {"1e39", kFloat4, false}, {"-1e39", kFloat4, false}, {"1e39", kFloat8, true}} {
		var cl cell
		err := (&converter{kind: c.kind, notNull: true}).convert([]byte(c.raw), &cl)
		if (err == nil) != c.ok {
			t.Errorf("%s into kind %d: %v, want ok=%v", c.raw, c.kind, err, c.ok)
		}
	}
}
