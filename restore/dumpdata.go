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
	"unicode/utf8"
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
	return strings.ToValidUTF8(s, "\uFFFD")
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
	return &BackupError{Index: o.Index, Model: strings.ToValidUTF8(o.Model, "\uFFFD"), PK: o.pkText(), Field: field, Problem: fmt.Sprintf(format, args...)}
}

// dumpReader streams objects out of a dumpdata file (plain or gzipped JSON)
// without holding more than one object in memory. It is a hand-written,
// validating JSON scanner specialised for the dumpdata shape: it checks the
// whole syntax as encoding/json does, but keeps values as raw JSON slices of
// its buffer instead of building maps and interface values. It is as strict
// as Django's loaddata where encoding/json is laxer: member names are
// case-sensitive and the text must be UTF-8.
//
// Memory is bounded whatever the input: white space and separators between
// objects are dropped from the buffer as they are scanned, one object may
// not exceed Limits.MaxObjectBytes, and a gzip stream may not expand beyond
// Limits.MaxExpansion.
type dumpReader struct {
	closer    io.Closer
	r         io.Reader
	limits    Limits
	buf       []byte
	pos       int   // next byte to scan
	end       int   // end of the data in buf
	keep      int   // start of the object being scanned: bytes from here on stay in buf
	between   bool  // between objects: nothing before pos is needed any more
	base      int64 // input offset of buf[0]
	eof       bool
	rerr      error // read error other than io.EOF
	next      int
	done      bool
	obj       object
	spans     []fieldSpan
	spanStore []fieldSpan
	spanIndex map[string]int    // name → index in spans, for objects with many fields
	names     map[string]string // interned field names
	model     []byte            // last model label, to reuse its string
	modelText string            // the same as a string
	pkSpan    span
	badUTF8   int64  // input offset of the object's first string that is not UTF-8, or -1
	badMember string // the member ("model", "pk" or a field name) holding it
	caseMiss  string // a member named like "model", "pk" or "fields" but for case
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

const readChunk = 1 << 16

func newDumpReader(open Opener) (*dumpReader, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	d := &dumpReader{closer: rc, limits: limitsOf(rc), buf: make([]byte, readChunk), names: map[string]string{}, between: true, badUTF8: -1}
	compressed := &countingReader{r: rc}
	br := bufio.NewReaderSize(compressed, readChunk)
	d.r = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, &BackupError{Index: -1, Problem: fmt.Sprintf("the file looks gzipped but its header is broken (%v); check the upload or the copy", err)}
		}
		d.r = &expansionLimit{r: gz, compressed: compressed, limits: d.limits}
	}
	if !d.skipWS() {
		rc.Close()
		if d.rerr == nil {
			return nil, &BackupError{Index: -1, Problem: "the file is empty; a dumpdata backup is a JSON list of objects"}
		}
		return nil, d.syntaxErr(d.eofErr())
	}
	if c := d.buf[d.pos]; c != '[' {
		defer rc.Close() // after reading the value: it may be longer than the buffer
		notList := &BackupError{Index: -1, Problem: "the file does not start with '[': a dumpdata backup is a JSON list of {\"model\", \"pk\", \"fields\"} objects"}
		d.startValue()
		if err := d.skipValue(0); err != nil {
			if errors.As(err, new(*errLimit)) {
				return nil, notList
			}
			return nil, d.syntaxErr(err)
		}
		return nil, notList
	}
	d.pos++
	return d, nil
}

func (d *dumpReader) Close() error { return d.closer.Close() }

func (d *dumpReader) offset() int64 { return d.base + int64(d.pos) }

// startValue marks pos as the start of a value that must stay in the buffer
// until the next call to Next.
func (d *dumpReader) startValue() {
	d.keep = d.pos
	d.between = false
}

func (d *dumpReader) syntaxErr(err error) *BackupError {
	at := fmt.Sprintf(" at byte %d", d.offset())
	var le *errLimit
	if errors.As(err, &le) {
		return &BackupError{Index: le.index, Problem: le.problem}
	}
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

// fill reads more input. Bytes before keep are dropped (between objects,
// everything scanned is), so that the buffer only grows for an object
// larger than it, and never beyond the object size limit.
func (d *dumpReader) fill() bool {
	if d.rerr != nil || d.eof {
		return false
	}
	if d.between {
		d.keep = d.pos
	}
	if d.keep > 0 {
		copy(d.buf, d.buf[d.keep:d.end])
		d.pos -= d.keep
		d.end -= d.keep
		d.base += int64(d.keep)
		d.keep = 0
	}
	if d.end == len(d.buf) {
		max := d.limits.maxObject()
		if !d.between && d.pos-d.keep > max || len(d.buf) >= max+readChunk {
			d.rerr = d.tooLarge(d.pos - d.keep)
			return false
		}
		nb := make([]byte, min(2*len(d.buf), max+readChunk))
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

// tooLarge is the error for an object of at least n bytes, beyond the limit.
func (d *dumpReader) tooLarge(n int) error {
	return &errLimit{index: d.next, problem: fmt.Sprintf("the object is larger than %s, the limit for one object (%s read of it so far); a dumpdata object that large is damaged or hostile; if it is genuine, raise the object size limit",
		size(int64(d.limits.maxObject())), size(int64(n)))}
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

// Next returns the next object, or io.EOF after the closing ']'. The
// previous object's values are invalid from here on.
func (d *dumpReader) Next() (*object, error) {
	if d.done {
		return nil, io.EOF
	}
	d.between = true
	c, more, err := d.nextElement()
	if err != nil || !more {
		return nil, err
	}
	idx := d.next
	d.startValue()
	d.badUTF8, d.badMember, d.caseMiss = -1, "", ""
	model, hasModel, err := d.object(c)
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
	if n := d.pos - d.keep; n > d.limits.maxObject() {
		return nil, d.syntaxErr(d.tooLarge(n))
	}
	d.next++
	return d.finish(idx, model, hasModel)
}

// nextElement moves to the next element of the list: it returns its first
// byte, or more=false (and io.EOF) after the closing ']'.
func (d *dumpReader) nextElement() (c byte, more bool, err error) {
	if !d.skipWS() {
		return 0, false, d.syntaxErr(d.eofErr())
	}
	c = d.buf[d.pos]
	afterComma := false
	if d.next > 0 {
		switch c {
		case ',':
			afterComma = true
			d.pos++
			if !d.skipWS() {
				return 0, false, d.syntaxErr(d.eofErr())
			}
			c = d.buf[d.pos]
		case ']':
		default:
			return 0, false, d.syntaxErr(d.badChar(c, "after array element"))
		}
	}
	if c != ']' {
		return c, true, nil
	}
	if afterComma {
		return 0, false, d.syntaxErr(d.badChar(c, "looking for beginning of value"))
	}
	d.pos++
	// Anything after the list other than white space means a damaged file.
	if d.skipWS() {
		return 0, false, &BackupError{Index: -1, Problem: "unexpected data after the closing ']' of the backup"}
	}
	if d.rerr != nil {
		return 0, false, d.syntaxErr(d.rerr)
	}
	d.done = true
	return 0, false, io.EOF
}

// finish makes the scanned object available as d.obj and checks what every
// dumpdata object must have.
func (d *dumpReader) finish(idx int, model []byte, hasModel bool) (*object, error) {
	o := &d.obj
	o.Index = idx
	o.Model = ""
	if hasModel && len(model) > 0 && d.badMember != "model" {
		if !bytes.Equal(model, d.model) {
			d.model = append(d.model[:0], model...)
			d.modelText = string(model)
		}
		o.Model = d.modelText
	}
	o.PK = d.slice(d.pkSpan)
	o.fields = o.fields[:0]
	for _, f := range d.spans {
		o.fields = append(o.fields, rawField{name: f.name, raw: d.slice(f.val)})
	}
	if d.badUTF8 >= 0 {
		return nil, d.notUTF8(o)
	}
	if !hasModel || len(model) == 0 {
		return nil, &BackupError{Index: idx, Problem: `missing "model" (expected "app_label.modelname")` + d.caseHint()}
	}
	if len(o.PK) == 0 || string(o.PK) == "null" {
		return nil, objErr(o, "", `missing "pk"%s; natural-key backups are not supported: dump with --natural-primary off`, d.caseHint())
	}
	if d.spans == nil {
		return nil, objErr(o, "", `missing "fields" object%s`, d.caseHint())
	}
	return o, nil
}

// caseHint points at a member that differs from a required one only in case.
func (d *dumpReader) caseHint() string {
	if d.caseMiss == "" {
		return ""
	}
	return fmt.Sprintf(" (there is a member %q: member names are case-sensitive, as Django's loaddata reads them)", d.caseMiss)
}

// notUTF8 is the error for an object holding bytes that are not UTF-8.
func (d *dumpReader) notUTF8(o *object) *BackupError {
	problem := fmt.Sprintf("not valid UTF-8 (a string at byte %d of the file): Django's loaddata refuses such a file and PostgreSQL cannot store it; "+
		"re-export the data, or convert the file to UTF-8 (iconv -f latin1 -t utf-8) if you know its encoding", d.badUTF8)
	switch d.badMember {
	case "model":
		return &BackupError{Index: o.Index, Field: "model", Problem: problem}
	case "pk":
		return objErr(o, "pk", "%s", problem)
	}
	return objErr(o, d.badMember, "%s", problem)
}

func (d *dumpReader) slice(s span) []byte {
	if s.n == 0 {
		return nil
	}
	return d.buf[d.keep+s.off : d.keep+s.off+s.n : d.keep+s.off+s.n]
}

// topLevel collects the members of one object as they are scanned.
type topLevel struct {
	model    span
	modelEsc bool
	hasModel bool
	typeErr  error // the first member of the wrong JSON type
}

// object scans one {"model": ..., "pk": ..., "fields": {...}} object starting
// at c. The model comes back as its (unescaped) text; the pk and fields are
// recorded in pkSpan and spans (spans is nil when "fields" is absent or null).
// A repeated member keeps its last value, as Python's json module does.
func (d *dumpReader) object(c byte) (model []byte, hasModel bool, err error) {
	d.pkSpan = span{}
	d.spans = nil
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
	var top topLevel
	for more, err := d.firstMember(); more || err != nil; more, err = d.nextMember() {
		if err != nil {
			return nil, false, err
		}
		if err := d.topMember(&top); err != nil {
			return nil, false, err
		}
	}
	if top.typeErr != nil {
		return nil, false, top.typeErr
	}
	if top.hasModel {
		m := d.buf[d.keep+top.model.off : d.keep+top.model.off+top.model.n]
		if top.modelEsc {
			model = []byte(unescape(m))
		} else {
			model = m[1 : len(m)-1]
		}
	}
	return model, top.hasModel, nil
}

// topMember scans one member of an object: "model", "pk", "fields", or
// another, which is skipped as loaddata ignores it.
func (d *dumpReader) topMember(top *topLevel) error {
	wasBad := d.badUTF8 >= 0
	ks, kesc, err := d.objectKey(d.buf[d.pos])
	if err != nil {
		return err
	}
	name := d.keyText(ks, kesc)
	switch string(name) { // compared without a copy
	case "model":
		err = d.modelValue(top)
	case "pk":
		start := d.pos - d.keep
		err = d.skipValue(0)
		d.pkSpan = span{start, d.pos - d.keep - start}
	case "fields":
		err = d.fieldsValue(top)
	default:
		if d.caseMiss == "" && (bytes.EqualFold(name, []byte("model")) || bytes.EqualFold(name, []byte("pk")) || bytes.EqualFold(name, []byte("fields"))) {
			d.caseMiss = string(name)
		}
		err = d.skipValue(0)
	}
	if !wasBad && d.badUTF8 >= 0 && d.badMember == "" {
		d.badMember = string(name)
	}
	return err
}

// keyText returns a member name, unescaped. Without escapes, it aliases the
// buffer until the next read.
func (d *dumpReader) keyText(ks span, esc bool) []byte {
	key := d.buf[d.keep+ks.off : d.keep+ks.off+ks.n]
	if esc {
		return []byte(unescape(key))
	}
	return key[1 : len(key)-1]
}

func (d *dumpReader) modelValue(top *topLevel) error {
	switch d.buf[d.pos] {
	case '"':
		var err error
		top.model, top.modelEsc, err = d.str()
		top.hasModel = err == nil
		return err
	case 'n':
		top.hasModel = false
		return d.skipValue(0)
	}
	return d.mismatch(top, "model")
}

func (d *dumpReader) fieldsValue(top *topLevel) error {
	switch d.buf[d.pos] {
	case '{':
		return d.fields()
	case 'n':
		d.spans = nil
		return d.skipValue(0)
	}
	return d.mismatch(top, "fields")
}

// mismatch skips a member's value of the wrong JSON type and remembers the
// first such member for the error.
func (d *dumpReader) mismatch(top *topLevel, member string) error {
	got, err := d.kindOf(d.buf[d.pos])
	if err != nil {
		return err
	}
	if err := d.skipValue(0); err != nil {
		return err
	}
	if top.typeErr == nil {
		top.typeErr = &errTypeMismatch{field: member, got: got}
	}
	return nil
}

// firstMember is called after an object's '{': it reports whether a member
// follows (the scanner then stands on its key) or the object is empty.
func (d *dumpReader) firstMember() (bool, error) {
	if !d.skipWS() {
		return false, d.eofErr()
	}
	if d.buf[d.pos] == '}' {
		d.pos++
		return false, nil
	}
	return true, nil
}

// nextMember is called after a member's value: it reports whether another
// member follows (the scanner then stands on its key) or the object ended.
func (d *dumpReader) nextMember() (bool, error) {
	if !d.skipWS() {
		return false, d.eofErr()
	}
	switch c := d.buf[d.pos]; c {
	case '}':
		d.pos++
		return false, nil
	case ',':
		d.pos++
		if !d.skipWS() {
			return false, d.eofErr()
		}
		return true, nil
	default:
		return false, d.badChar(c, "after object key:value pair")
	}
}

// fields scans the "fields" object into d.spans, replacing an earlier
// "fields" member of the same object.
func (d *dumpReader) fields() error {
	d.pos++ // '{'
	d.spans = d.spansBuf()
	if len(d.spanIndex) > 0 {
		clear(d.spanIndex)
	}
	for more, err := d.firstMember(); more || err != nil; more, err = d.nextMember() {
		if err != nil {
			return err
		}
		if err := d.field(); err != nil {
			return err
		}
	}
	return nil
}

// field scans one "name": value member of "fields".
func (d *dumpReader) field() error {
	wasBad := d.badUTF8 >= 0
	ks, kesc, err := d.objectKey(d.buf[d.pos])
	if err != nil {
		return err
	}
	start := d.pos - d.keep
	if err := d.skipValue(0); err != nil {
		return err
	}
	name := d.fieldName(ks, kesc)
	if !wasBad && d.badUTF8 >= 0 {
		d.badMember = name
	}
	val := span{start, d.pos - d.keep - start}
	if i, ok := d.fieldIndex(name); ok {
		d.spans[i].val = val // the last value wins, as with encoding/json
		return nil
	}
	if len(d.spans) >= maxFields {
		return &errLimit{index: d.next, problem: fmt.Sprintf("the object has more than %d fields, and no table has that many columns (PostgreSQL allows 1600): the backup is damaged or hostile", maxFields)}
	}
	d.spans = append(d.spans, fieldSpan{name: name, val: val})
	d.spanStore = d.spans
	if len(d.spanIndex) > 0 {
		d.spanIndex[name] = len(d.spans) - 1
	}
	return nil
}

// linearFields is how many fields fieldIndex searches one by one; beyond,
// it keeps an index, so that an object of many fields costs linear time.
const linearFields = 32

func (d *dumpReader) fieldIndex(name string) (int, bool) {
	if len(d.spans) <= linearFields {
		for i := range d.spans {
			if d.spans[i].name == name {
				return i, true
			}
		}
		return 0, false
	}
	if len(d.spanIndex) == 0 {
		if d.spanIndex == nil {
			d.spanIndex = map[string]int{}
		}
		for i, f := range d.spans {
			d.spanIndex[f.name] = i
		}
	}
	i, ok := d.spanIndex[name]
	return i, ok
}

// fieldName returns a field's name, interned: most objects repeat the names
// of the previous one.
func (d *dumpReader) fieldName(ks span, esc bool) string {
	key := d.buf[d.keep+ks.off : d.keep+ks.off+ks.n]
	if esc {
		return d.intern(unescape(key))
	}
	if n, ok := d.names[string(key[1:len(key)-1])]; ok {
		return n
	}
	return d.intern(string(key[1 : len(key)-1]))
}

// spansBuf returns the reused, emptied, non-nil span slice.
func (d *dumpReader) spansBuf() []fieldSpan {
	if d.spanStore == nil {
		d.spanStore = make([]fieldSpan, 0, 16)
	}
	return d.spanStore[:0]
}

// intern bounds what it keeps: a hostile backup must not grow it forever.
func (d *dumpReader) intern(s string) string {
	if n, ok := d.names[s]; ok {
		return n
	}
	if len(d.names) < 4096 && len(s) <= 64 {
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

// Classes of bytes inside a JSON string, for str's inner loop: one table
// lookup per byte finds the few that need a look.
const (
	strPlain byte = iota
	strQuote
	strEscape
	strControl
	strHigh // the start or continuation of a multi-byte UTF-8 sequence
)

var strClass = func() (t [256]byte) {
	for c := 0; c < 0x20; c++ {
		t[c] = strControl
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = strHigh
	}
	t['"'], t['\\'] = strQuote, strEscape
	return t
}()

// str scans a string starting at pos (a '"'). It returns its span, quotes
// included, and whether it holds escapes. A string that is not UTF-8 is
// scanned to its end and recorded in badUTF8 for the object's error.
func (d *dumpReader) str() (span, bool, error) {
	start := d.pos - d.keep
	d.pos++
	esc, high := false, false
	for {
		buf := d.buf[:d.end]
		i := d.pos
		for i < len(buf) {
			switch strClass[buf[i]] {
			case strPlain:
				i++
				continue
			case strHigh:
				high = true
				i++
				continue
			case strQuote:
				d.pos = i + 1
				s := span{start, d.pos - d.keep - start}
				if high && d.badUTF8 < 0 && !utf8.Valid(d.buf[d.keep+s.off:d.pos]) {
					d.badUTF8 = d.base + int64(d.keep+s.off)
				}
				return s, esc, nil
			case strEscape:
				d.pos = i
				if err := d.escape(); err != nil {
					return span{}, false, err
				}
				esc = true
				buf = d.buf[:d.end]
				i = d.pos
				continue
			}
			d.pos = i
			return span{}, false, d.badChar(buf[i], "in string literal")
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
