package restore

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"unicode/utf8"

	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// fuzzLimits keep the fuzzer's inputs from needing megabytes to reach a limit.
var fuzzLimits = Limits{MaxObjectBytes: 4 << 10, MaxExpansion: 50, MaxDecompressedBytes: 1 << 20}

// FuzzScanner feeds arbitrary bytes (plain or gzipped) to the dumpdata
// scanner: it must not panic, its buffer must stay within the object limit,
// and whatever it accepts must be valid UTF-8 JSON that encoding/json reads
// to the same models, pks and fields (with case-sensitive member names).
//
//	go test -run '^$' -fuzz '^FuzzScanner$' -fuzztime 10s -fuzzminimizetime 5s ./restore
func FuzzScanner(f *testing.F) {
	f.Add([]byte(`[{"model": "a.b", "pk": 1, "fields": {"x": "y", "n": [1, {"k": null}]}}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := newDumpReader(WithLimits(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(in)), nil }, fuzzLimits))
		if err != nil {
			checkRefusal(t, err)
			return
		}
		defer r.Close()
		var got []object
		for {
			o, err := r.Next()
			if len(r.buf) > fuzzLimits.MaxObjectBytes+readChunk || len(r.spans) > maxFields {
				t.Fatalf("buffer %d bytes, %d fields: beyond the limits", len(r.buf), len(r.spans))
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				checkRefusal(t, err)
				return
			}
			got = append(got, copyObject(o))
		}
		if len(in) > 1 && in[0] == 0x1f && in[1] == 0x8b {
			return // gzipped: the plain text is not at hand to compare
		}
		sameAsEncodingJSON(t, in, got)
	})
}

// checkRefusal: a refusal is a *BackupError, never another error type.
func checkRefusal(t *testing.T, err error) {
	var be *BackupError
	if !errors.As(err, &be) {
		t.Fatalf("refusal %v is %T, not a *BackupError", err, err)
	}
	if !utf8.ValidString(err.Error()) {
		t.Fatalf("message is not UTF-8: %q", err.Error())
	}
}

func copyObject(o *object) object {
	c := object{Index: o.Index, Model: o.Model, PK: bytes.Clone(o.PK)}
	for _, f := range o.fields {
		c.fields = append(c.fields, rawField{f.name, bytes.Clone(f.raw)})
	}
	return c
}

// sameAsEncodingJSON checks an accepted input against encoding/json.
func sameAsEncodingJSON(t *testing.T, in []byte, got []object) {
	if !utf8.Valid(in) || !json.Valid(in) {
		t.Fatalf("accepted input that is not valid UTF-8 JSON: %q", in)
	}
	var want []map[string]json.RawMessage
	if err := json.Unmarshal(in, &want); err != nil {
		t.Fatalf("accepted, but encoding/json says: %v", err)
	}
	if len(want) != len(got) {
		t.Fatalf("%d objects, encoding/json finds %d", len(got), len(want))
	}
	for i, w := range want {
		var model string
		var fields map[string]json.RawMessage
		if json.Unmarshal(w["model"], &model) != nil || json.Unmarshal(w["fields"], &fields) != nil {
			t.Fatalf("object %d: accepted without a string model and a fields object", i)
		}
		if got[i].Model != model || !bytes.Equal(got[i].PK, w["pk"]) || len(got[i].fields) != len(fields) {
			t.Fatalf("object %d: got model %q pk %s with %d fields; encoding/json: %q %s %d", i, got[i].Model, got[i].PK, len(got[i].fields), model, w["pk"], len(fields))
		}
		for name, raw := range fields {
			if g, ok := got[i].field(name); !ok || !bytes.Equal(g, raw) {
				t.Fatalf("object %d field %q: %s, encoding/json: %s", i, name, g, raw)
			}
		}
	}
}

// FuzzConvert feeds arbitrary JSON values to the converter of every column
// type: no panic, and a value accepted for a text column is text
// PostgreSQL can store.
//
//	go test -run '^$' -fuzz '^FuzzConvert$' -fuzztime 10s -fuzzminimizetime 5s ./restore
func FuzzConvert(f *testing.F) {
	f.Add([]byte(`"2026-01-04T10:00:00Z"`))
	types := []string{"int2", "int4", "int8", "float4", "float8", "numeric", "bool", "text", "uuid", "date", "timestamptz", "timestamp", "json", "jsonb", "bytea"}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) || !utf8.Valid(raw) {
			return // the scanner refuses it before any converter sees it
		}
		for _, typ := range types {
			cv, err := converterFor(pgcatalog.Column{Name: "c", Type: typ, MaxLen: 20})
			if err != nil {
				t.Fatal(err)
			}
			var c cell
			if cv.convert(raw, &c) != nil || c.null {
				continue
			}
			// No NUL, no invalid UTF-8, and no U+FFFD the input did not
			// spell (encoding/json's stand-in for a lone surrogate).
			replaced := bytes.ContainsRune(c.b, utf8.RuneError) && !bytes.ContainsRune(raw, utf8.RuneError) && !bytes.Contains(bytes.ToLower(raw), []byte(`\ufffd`))
			if typ == "text" && (!utf8.Valid(c.b) || bytes.IndexByte(c.b, 0) >= 0 || replaced) {
				t.Fatalf("text %q accepted as %q, which is not what it says", raw, c.b)
			}
			cv.encode(nil, &c)
			cv.text(&c)
		}
	})
}
