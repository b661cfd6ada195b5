package restore

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// object is one entry of a Django dumpdata backup:
// {"model": "app_label.modelname", "pk": ..., "fields": {...}}.
type object struct {
	Index  int // 0-based position in the backup
	Model  string
	PK     json.RawMessage
	Fields map[string]json.RawMessage
}

func (o *object) pkText() string {
	s := string(o.PK)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// BackupError says why a backup was refused and which object is at fault.
// Index is -1 when the problem is not tied to one object (truncated file, ...).
type BackupError struct {
	Index   int
	Model   string
	PK      string
	Field   string
	Problem string
}

func (e *BackupError) Error() string {
	var b strings.Builder
	b.WriteString("backup refused: ")
	if e.Index >= 0 {
		fmt.Fprintf(&b, "object #%d", e.Index)
		if e.Model != "" {
			fmt.Fprintf(&b, " (%s pk=%s)", e.Model, e.PK)
		}
		if e.Field != "" {
			fmt.Fprintf(&b, " field %q", e.Field)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Problem)
	return b.String()
}

func objErr(o *object, field, format string, args ...any) *BackupError {
	return &BackupError{Index: o.Index, Model: o.Model, PK: o.pkText(), Field: field, Problem: fmt.Sprintf(format, args...)}
}

// dumpReader streams objects out of a dumpdata file (plain or gzipped JSON)
// without holding more than one object in memory.
type dumpReader struct {
	closer io.Closer
	dec    *json.Decoder
	next   int
	done   bool
}

// Opener opens the backup from its start. The engine reads a backup more than
// once (validate, then load), so it takes an opener rather than a reader.
type Opener func() (io.ReadCloser, error)

func newDumpReader(open Opener) (*dumpReader, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 1<<16)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, &BackupError{Index: -1, Problem: fmt.Sprintf("the file looks gzipped but its header is broken (%v); check the upload or the copy", err)}
		}
		r = gz
	}
	dec := json.NewDecoder(r)
	dec.UseNumber()
	d := &dumpReader{closer: rc, dec: dec}
	tok, err := dec.Token()
	if err != nil {
		rc.Close()
		if errors.Is(err, io.EOF) {
			return nil, &BackupError{Index: -1, Problem: "the file is empty; a dumpdata backup is a JSON list of objects"}
		}
		return nil, d.syntaxErr(err)
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '[' {
		rc.Close()
		return nil, &BackupError{Index: -1, Problem: "the file does not start with '[': a dumpdata backup is a JSON list of {\"model\", \"pk\", \"fields\"} objects"}
	}
	return d, nil
}

func (d *dumpReader) Close() error { return d.closer.Close() }

func (d *dumpReader) syntaxErr(err error) *BackupError {
	at := fmt.Sprintf(" at byte %d", d.dec.InputOffset())
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &BackupError{Index: -1, Problem: fmt.Sprintf("the file is truncated%s, after %d complete objects; take the backup again or copy it whole", at, d.next)}
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader):
		return &BackupError{Index: -1, Problem: fmt.Sprintf("the gzip stream is corrupted (%v) after %d objects; take the backup again", err, d.next)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &BackupError{Index: -1, Problem: fmt.Sprintf("not valid JSON at byte %d (in or after object #%d): %v", se.Offset, d.next, err)}
	}
	return &BackupError{Index: -1, Problem: fmt.Sprintf("cannot read object #%d%s: %v", d.next, at, err)}
}

// Next returns the next object, or io.EOF after the closing ']'.
func (d *dumpReader) Next() (*object, error) {
	if d.done {
		return nil, io.EOF
	}
	if !d.dec.More() {
		tok, err := d.dec.Token()
		if err != nil {
			return nil, d.syntaxErr(err)
		}
		if delim, ok := tok.(json.Delim); !ok || delim != ']' {
			return nil, &BackupError{Index: -1, Problem: fmt.Sprintf("unexpected %v after object #%d", tok, d.next-1)}
		}
		// Anything after the list other than white space means a damaged file.
		if _, err := d.dec.Token(); !errors.Is(err, io.EOF) {
			if err != nil {
				return nil, d.syntaxErr(err)
			}
			return nil, &BackupError{Index: -1, Problem: "unexpected data after the closing ']' of the backup"}
		}
		d.done = true
		return nil, io.EOF
	}
	var raw struct {
		Model  *string                    `json:"model"`
		PK     json.RawMessage            `json:"pk"`
		Fields map[string]json.RawMessage `json:"fields"`
	}
	idx := d.next
	if err := d.dec.Decode(&raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, &BackupError{Index: idx, Problem: fmt.Sprintf("not a dumpdata object: %q must not be a JSON %s", te.Field, te.Value)}
		}
		return nil, d.syntaxErr(err)
	}
	d.next++
	o := &object{Index: idx, PK: raw.PK, Fields: raw.Fields}
	if raw.Model == nil || *raw.Model == "" {
		return nil, &BackupError{Index: idx, Problem: `missing "model" (expected "app_label.modelname")`}
	}
	o.Model = *raw.Model
	if len(raw.PK) == 0 || string(raw.PK) == "null" {
		return nil, objErr(o, "", `missing "pk"; natural-key backups are not supported: dump with --natural-primary off`)
	}
	if raw.Fields == nil {
		return nil, objErr(o, "", `missing "fields" object`)
	}
	return o, nil
}
