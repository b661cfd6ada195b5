package restore

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// object is one entry of a Django dumpdata backup:
// {"model": "app_label.modelname", "pk": ..., "fields": {...}}.
//
// The reader reuses one object and its buffers: PK and field values alias the
// reader's buffer and are valid until the next call to Next.
type object struct {
	Index  int // 0-based position in the backup
	Model  string
	PK     []byte
	fields []rawField // in the order of the backup; a repeated name keeps its last value
}

// rawField is one "name": value pair of an object's "fields", value as JSON text.
type rawField struct {
	name string
	raw  []byte
}

// field returns the raw JSON value of the named field.
func (o *object) field(name string) ([]byte, bool) {
	for i := range o.fields {
		if o.fields[i].name == name {
			return o.fields[i].raw, true
		}
	}
	return nil, false
}

// fieldAt is field with a hint: the index the name had in a previous object
// of the same model (dumpdata writes the fields of a model in one order).
func (o *object) fieldAt(hint *int, name string) ([]byte, bool) {
	if h := *hint; h < len(o.fields) && o.fields[h].name == name {
		return o.fields[h].raw, true
	}
	for i := range o.fields {
		if o.fields[i].name == name {
			*hint = i
			return o.fields[i].raw, true
		}
	}
	return nil, false
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
// without holding more than one object in memory. It is a hand-written,
// validating JSON scanner specialised for the dumpdata shape: it checks the
// whole syntax as encoding/json does, but keeps values as raw JSON slices of
// its buffer instead of building maps and interface values.
type dumpReader struct {
	closer    io.Closer
	r         io.Reader
	buf       []byte
	pos       int   // next byte to scan
	end       int   // end of the data in buf
	keep      int   // start of the object being scanned: bytes from here on stay in buf
	base      int64 // input offset of buf[0]
	eof       bool
	rerr      error // read error other than io.EOF
	next      int
	done      bool
	obj       object
	spans     []fieldSpan
	spanStore []fieldSpan
	names     map[string]string // interned field names
	model     []byte            // last model label, to reuse its string
	pkSpan    span
}

// span locates a value relative to dumpReader.keep, which stays valid when
// the buffer is compacted or grown in the middle of an object.
type span struct{ off, n int }

type fieldSpan struct {
	name string
	val  span
}

// Opener opens the backup from its start. The engine reads a backup more than
// once (validate, then load), so it takes an opener rather than a reader.
type Opener func() (io.ReadCloser, error)

// errSyntax is a JSON syntax error at an input offset.
type errSyntax struct {
	msg string
	off int64
}

func (e *errSyntax) Error() string { return e.msg }

// errTypeMismatch is a dumpdata object whose top-level member has the wrong JSON type.
type errTypeMismatch struct{ field, got string }

func (e *errTypeMismatch) Error() string { return e.field + " " + e.got }

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
	d := &dumpReader{closer: rc, r: r, buf: make([]byte, 1<<16), names: map[string]string{}}
	if !d.skipWS() {
		rc.Close()
		if d.rerr == nil {
			return nil, &BackupError{Index: -1, Problem: "the file is empty; a dumpdata backup is a JSON list of objects"}
		}
		return nil, d.syntaxErr(d.eofErr())
	}
	if c := d.buf[d.pos]; c != '[' {
		defer rc.Close() // after reading the value: it may be longer than the buffer
		if err := d.skipValue(0); err != nil {
			return nil, d.syntaxErr(err)
		}
		return nil, &BackupError{Index: -1, Problem: "the file does not start with '[': a dumpdata backup is a JSON list of {\"model\", \"pk\", \"fields\"} objects"}
	}
	d.pos++
	return d, nil
}

func (d *dumpReader) Close() error { return d.closer.Close() }

func (d *dumpReader) offset() int64 { return d.base + int64(d.pos) }

func (d *dumpReader) syntaxErr(err error) *BackupError {
	at := fmt.Sprintf(" at byte %d", d.offset())
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &BackupError{Index: -1, Problem: fmt.Sprintf("the file is truncated%s, after %d complete objects; take the backup again or copy it whole", at, d.next)}
	case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader):
		return &BackupError{Index: -1, Problem: fmt.Sprintf("the gzip stream is corrupted (%v) after %d objects; take the backup again", err, d.next)}
	}
	var se *errSyntax
	if errors.As(err, &se) {
		return &BackupError{Index: -1, Problem: fmt.Sprintf("not valid JSON at byte %d (in or after object #%d): %v", se.off, d.next, err)}
	}
	return &BackupError{Index: -1, Problem: fmt.Sprintf("cannot read object #%d%s: %v", d.next, at, err)}
}

// fill reads more input. Bytes before keep are dropped, so that the buffer
// only grows for an object larger than it.
func (d *dumpReader) fill() bool {
	if d.rerr != nil || d.eof {
		return false
	}
	if d.keep > 0 {
		copy(d.buf, d.buf[d.keep:d.end])
		d.pos -= d.keep
		d.end -= d.keep
		d.base += int64(d.keep)
		d.keep = 0
	}
	if d.end == len(d.buf) {
		nb := make([]byte, 2*len(d.buf))
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	for {
		n, err := d.r.Read(d.buf[d.end:])
		d.end += n
		if err != nil {
			if errors.Is(err, io.EOF) {
				d.eof = true
			} else {
				d.rerr = err
			}
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
}

// eofErr is the error for input that ended (or failed) in the middle of a value.
func (d *dumpReader) eofErr() error {
	if d.rerr != nil {
		return d.rerr
	}
	return io.ErrUnexpectedEOF
}

func (d *dumpReader) synErr(format string, args ...any) error {
	return &errSyntax{msg: fmt.Sprintf(format, args...), off: d.offset()}
}

func (d *dumpReader) badChar(c byte, context string) error {
	return d.synErr("invalid character %q %s", c, context)
}

// ensure makes n bytes available at pos.
func (d *dumpReader) ensure(n int) bool {
	for d.end-d.pos < n {
		if !d.fill() {
			return false
		}
	}
	return true
}

// skipWS skips white space and reports whether a byte is available.
func (d *dumpReader) skipWS() bool {
	for {
		for d.pos < d.end {
			switch d.buf[d.pos] {
			case ' ', '\n', '\r', '\t':
				d.pos++
			default:
				return true
			}
		}
		if !d.fill() {
			return false
		}
	}
}

// Next returns the next object, or io.EOF after the closing ']'.
func (d *dumpReader) Next() (*object, error) {
	if d.done {
		return nil, io.EOF
	}
	if !d.skipWS() {
		return nil, d.syntaxErr(d.eofErr())
	}
	c := d.buf[d.pos]
	afterComma := false
	if d.next > 0 {
		switch c {
		case ',':
			afterComma = true
			d.pos++
			if !d.skipWS() {
				return nil, d.syntaxErr(d.eofErr())
			}
			c = d.buf[d.pos]
		case ']':
		default:
			return nil, d.syntaxErr(d.badChar(c, "after array element"))
		}
	}
	if c == ']' {
		if afterComma {
			return nil, d.syntaxErr(d.badChar(c, "looking for beginning of value"))
		}
		d.pos++
		// Anything after the list other than white space means a damaged file.
		if d.skipWS() {
			return nil, &BackupError{Index: -1, Problem: "unexpected data after the closing ']' of the backup"}
		}
		if d.rerr != nil {
			return nil, d.syntaxErr(d.rerr)
		}
		d.done = true
		return nil, io.EOF
	}
	idx := d.next
	d.keep = d.pos
	model, hasModel, err := d.object()
	if err != nil {
		var te *errTypeMismatch
		if errors.As(err, &te) {
			if te.field == "" {
				return nil, &BackupError{Index: idx, Problem: fmt.Sprintf("not a dumpdata object: expected {\"model\", \"pk\", \"fields\"}, got a JSON %s", te.got)}
			}
			return nil, &BackupError{Index: idx, Problem: fmt.Sprintf("not a dumpdata object: %q must not be a JSON %s", te.field, te.got)}
		}
		return nil, d.syntaxErr(err)
	}
	d.next++
	o := &d.obj
	o.Index = idx
	if !hasModel || len(model) == 0 {
		o.Model, o.PK, o.fields = "", nil, o.fields[:0]
		return nil, &BackupError{Index: idx, Problem: `missing "model" (expected "app_label.modelname")`}
	}
	if !bytes.Equal(model, d.model) {
		d.model = append(d.model[:0], model...)
		o.Model = string(model)
	}
	o.PK = d.slice(d.pkSpan)
	o.fields = o.fields[:0]
	for _, f := range d.spans {
		o.fields = append(o.fields, rawField{name: f.name, raw: d.slice(f.val)})
	}
	if len(o.PK) == 0 || string(o.PK) == "null" {
		return nil, objErr(o, "", `missing "pk"; natural-key backups are not supported: dump with --natural-primary off`)
	}
	if d.spans == nil {
		return nil, objErr(o, "", `missing "fields" object`)
	}
	return o, nil
}

func (d *dumpReader) slice(s span) []byte {
	if s.n == 0 {
		return nil
	}
	return d.buf[d.keep+s.off : d.keep+s.off+s.n : d.keep+s.off+s.n]
}

// object scans one {"model": ..., "pk": ..., "fields": {...}} object. The
// model comes back as its (unescaped) text; the pk and fields are recorded in
// pkSpan and spans (spans is nil when "fields" is absent or null).
func (d *dumpReader) object() (model []byte, hasModel bool, err error) {
	d.pkSpan = span{}
	d.spans = nil
	c := d.buf[d.pos]
	if c != '{' {
		got, err := d.kindOf(c)
		if err != nil {
			return nil, false, err
		}
		if err := d.skipValue(0); err != nil {
			return nil, false, err
		}
		return nil, false, &errTypeMismatch{got: got}
	}
	d.pos++
	var typeErr error
	var modelSpan span
	var modelEsc bool
	first := true
	for {
		if !d.skipWS() {
			return nil, false, d.eofErr()
		}
		c := d.buf[d.pos]
		if c == '}' && first {
			d.pos++
			break
		}
		ks, kesc, err := d.objectKey(c)
		if err != nil {
			return nil, false, err
		}
		key := d.buf[d.keep+ks.off : d.keep+ks.off+ks.n]
		var name string
		if kesc {
			name = unescape(key)
		} else {
			name = string(key[1 : len(key)-1])
		}
		c = d.buf[d.pos]
		switch {
		case matchKey(name, "model"):
			switch c {
			case '"':
				if modelSpan, modelEsc, err = d.str(); err != nil {
					return nil, false, err
				}
				hasModel = true
			case 'n':
				if err := d.skipValue(0); err != nil {
					return nil, false, err
				}
				hasModel = false
			default:
				got, err := d.kindOf(c)
				if err != nil {
					return nil, false, err
				}
				if err := d.skipValue(0); err != nil {
					return nil, false, err
				}
				if typeErr == nil {
					typeErr = &errTypeMismatch{field: "model", got: got}
				}
			}
		case matchKey(name, "pk"):
			start := d.pos - d.keep
			if err := d.skipValue(0); err != nil {
				return nil, false, err
			}
			d.pkSpan = span{start, d.pos - d.keep - start}
		case matchKey(name, "fields"):
			switch c {
			case '{':
				if err := d.fields(); err != nil {
					return nil, false, err
				}
			case 'n':
				if err := d.skipValue(0); err != nil {
					return nil, false, err
				}
			default:
				got, err := d.kindOf(c)
				if err != nil {
					return nil, false, err
				}
				if err := d.skipValue(0); err != nil {
					return nil, false, err
				}
				if typeErr == nil {
					typeErr = &errTypeMismatch{field: "fields", got: got}
				}
			}
		default:
			if err := d.skipValue(0); err != nil {
				return nil, false, err
			}
		}
		first = false
		if !d.skipWS() {
			return nil, false, d.eofErr()
		}
		c = d.buf[d.pos]
		d.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			d.pos--
			return nil, false, d.badChar(c, "after object key:value pair")
		}
	}
	if typeErr != nil {
		return nil, false, typeErr
	}
	if hasModel {
		m := d.buf[d.keep+modelSpan.off : d.keep+modelSpan.off+modelSpan.n]
		if modelEsc {
			model = []byte(unescape(m))
		} else {
			model = m[1 : len(m)-1]
		}
	}
	return model, hasModel, nil
}

// matchKey matches a member name the way encoding/json matches struct fields:
// exactly, or else case-insensitively.
func matchKey(name, want string) bool {
	return name == want || (len(name) == len(want) && strings.EqualFold(name, want))
}

// fields scans the "fields" object into d.spans.
func (d *dumpReader) fields() error {
	d.pos++ // '{'
	if d.spans == nil {
		d.spans = d.spansBuf()
	}
	first := true
	for {
		if !d.skipWS() {
			return d.eofErr()
		}
		c := d.buf[d.pos]
		if c == '}' && first {
			d.pos++
			return nil
		}
		ks, kesc, err := d.objectKey(c)
		if err != nil {
			return err
		}
		start := d.pos - d.keep
		if err := d.skipValue(0); err != nil {
			return err
		}
		key := d.buf[d.keep+ks.off : d.keep+ks.off+ks.n]
		var name string
		if kesc {
			name = d.intern(unescape(key))
		} else if n, ok := d.names[string(key[1:len(key)-1])]; ok {
			name = n
		} else {
			name = d.intern(string(key[1 : len(key)-1]))
		}
		val := span{start, d.pos - d.keep - start}
		dup := false
		for i := range d.spans {
			if d.spans[i].name == name {
				d.spans[i].val = val // the last value wins, as with encoding/json
				dup = true
			}
		}
		if !dup {
			d.spans = append(d.spans, fieldSpan{name: name, val: val})
			d.spanStore = d.spans
		}
		first = false
		if !d.skipWS() {
			return d.eofErr()
		}
		c = d.buf[d.pos]
		d.pos++
		if c == '}' {
			return nil
		}
		if c != ',' {
			d.pos--
			return d.badChar(c, "after object key:value pair")
		}
	}
}

// spansBuf returns the reused, emptied, non-nil span slice.
func (d *dumpReader) spansBuf() []fieldSpan {
	if d.spanStore == nil {
		d.spanStore = make([]fieldSpan, 0, 16)
	}
	return d.spanStore[:0]
}

func (d *dumpReader) intern(s string) string {
	if n, ok := d.names[s]; ok {
		return n
	}
	if len(d.names) < 4096 { // bounded: a hostile backup must not grow it forever
		d.names[s] = s
	}
	return s
}

func unescape(quoted []byte) string {
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return string(quoted)
	}
	return s
}

// kindOf names the JSON type a value starting with c has, for type errors.
func (d *dumpReader) kindOf(c byte) (string, error) {
	switch {
	case c == '"':
		return "string", nil
	case c == '[':
		return "array", nil
	case c == '{':
		return "object", nil
	case c == 't' || c == 'f':
		return "bool", nil
	case c == 'n':
		return "null", nil
	case c == '-' || (c >= '0' && c <= '9'):
		return "number", nil
	}
	return "", d.badChar(c, "looking for beginning of value")
}

// objectKey reads a member name starting at c (the current byte), the ':'
// after it, and the white space up to the value.
func (d *dumpReader) objectKey(c byte) (span, bool, error) {
	if c != '"' {
		return span{}, false, d.badChar(c, "looking for beginning of object key string")
	}
	ks, esc, err := d.str()
	if err != nil {
		return span{}, false, err
	}
	if !d.skipWS() {
		return span{}, false, d.eofErr()
	}
	if d.buf[d.pos] != ':' {
		return span{}, false, d.badChar(d.buf[d.pos], "after object key")
	}
	d.pos++
	if !d.skipWS() {
		return span{}, false, d.eofErr()
	}
	return ks, esc, nil
}

// str scans a string starting at pos (a '"'). It returns its span, quotes
// included, and whether it holds escapes.
func (d *dumpReader) str() (span, bool, error) {
	start := d.pos - d.keep
	d.pos++
	esc := false
	for {
		buf := d.buf[:d.end]
		i := d.pos
		for i < len(buf) {
			c := buf[i]
			if c == '"' {
				d.pos = i + 1
				return span{start, d.pos - d.keep - start}, esc, nil
			}
			if c == '\\' {
				d.pos = i
				if err := d.escape(); err != nil {
					return span{}, false, err
				}
				esc = true
				buf = d.buf[:d.end]
				i = d.pos
				continue
			}
			if c < 0x20 {
				d.pos = i
				return span{}, false, d.badChar(c, "in string literal")
			}
			i++
		}
		d.pos = i
		if !d.fill() {
			return span{}, false, d.eofErr()
		}
	}
}

// escape checks the escape sequence at pos and moves past it.
func (d *dumpReader) escape() error {
	if !d.ensure(2) {
		return d.eofErr()
	}
	switch c := d.buf[d.pos+1]; c {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		d.pos += 2
		return nil
	case 'u':
		if !d.ensure(6) {
			return d.eofErr()
		}
		for k := 2; k < 6; k++ {
			h := d.buf[d.pos+k]
			if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
				d.pos += k
				return d.badChar(h, "in \\u hexadecimal character escape")
			}
		}
		d.pos += 6
		return nil
	default:
		d.pos++
		return d.badChar(c, "in string escape code")
	}
}

const maxDepth = 10000

// skipValue scans any JSON value starting at pos (white space skipped).
func (d *dumpReader) skipValue(depth int) error {
	if depth > maxDepth {
		return d.synErr("exceeded max depth")
	}
	c := d.buf[d.pos]
	switch {
	case c == '"':
		_, _, err := d.str()
		return err
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		d.pos++
		first := true
		for {
			if !d.skipWS() {
				return d.eofErr()
			}
			c := d.buf[d.pos]
			if c == closer && first {
				d.pos++
				return nil
			}
			if closer == '}' {
				if _, _, err := d.objectKey(c); err != nil {
					return err
				}
			}
			if err := d.skipValue(depth + 1); err != nil {
				return err
			}
			first = false
			if !d.skipWS() {
				return d.eofErr()
			}
			c = d.buf[d.pos]
			if c == closer {
				d.pos++
				return nil
			}
			if c != ',' {
				if closer == '}' {
					return d.badChar(c, "after object key:value pair")
				}
				return d.badChar(c, "after array element")
			}
			d.pos++
		}
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	}
	return d.badChar(c, "looking for beginning of value")
}

func (d *dumpReader) literal(want string) error {
	for k := 0; k < len(want); k++ {
		if d.pos >= d.end && !d.fill() {
			return d.eofErr()
		}
		if d.buf[d.pos] != want[k] {
			return d.badChar(d.buf[d.pos], "in literal "+want+" (expecting "+strconv.QuoteRune(rune(want[k]))+")")
		}
		d.pos++
	}
	return nil
}

// number scans a JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *dumpReader) number() error {
	const (
		sStart = iota
		sMinus
		sZero
		sInt
		sDot
		sFrac
		sE
		sESign
		sExp
	)
	st := sStart
	for {
		if d.pos >= d.end && !d.fill() {
			if d.rerr != nil {
				return d.rerr
			}
			break // a number may end the input; the caller reports what is missing
		}
		c := d.buf[d.pos]
		digit := c >= '0' && c <= '9'
		next := -1
		switch st {
		case sStart:
			if c == '-' {
				next = sMinus
			} else if c == '0' {
				next = sZero
			} else if digit {
				next = sInt
			}
		case sMinus:
			if c == '0' {
				next = sZero
			} else if digit {
				next = sInt
			}
		case sZero:
			if c == '.' {
				next = sDot
			} else if c == 'e' || c == 'E' {
				next = sE
			}
		case sInt:
			if digit {
				next = sInt
			} else if c == '.' {
				next = sDot
			} else if c == 'e' || c == 'E' {
				next = sE
			}
		case sDot, sFrac:
			if digit {
				next = sFrac
			} else if st == sFrac && (c == 'e' || c == 'E') {
				next = sE
			}
		case sE:
			if c == '+' || c == '-' {
				next = sESign
			} else if digit {
				next = sExp
			}
		case sESign, sExp:
			if digit {
				next = sExp
			}
		}
		if next < 0 {
			break
		}
		st = next
		d.pos++
	}
	switch st {
	case sZero, sInt, sFrac, sExp:
		return nil
	}
	if d.pos >= d.end {
		return d.eofErr()
	}
	return d.badChar(d.buf[d.pos], "in numeric literal")
}
