package restore

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// kind is how a column's values are checked and sent in binary COPY format.
type kind uint8

const (
	kInt2 kind = iota
	kInt4
	kInt8
	kFloat4
	kFloat8
	kNumeric
	kBool
	kText
	kUUID
	kDate
	kTimestamptz
	kTimestamp
	kJSON
	kJSONB
	kBytea
)

// cell is one converted field value, kept unboxed: no interface values and,
// for strings without escapes and for JSON, no copy of the backup's bytes
// (b aliases the reader's buffer until the next object is read).
type cell struct {
	null bool
	i    int64    // integers; bool (0/1); date (days since 2000-01-01); timestamps (µs since 2000-01-01)
	f    float64  // floats
	b    []byte   // text, json, bytea; numeric already in binary format
	u    [16]byte // uuid
	// nearLimit: a decimal close enough to its column's precision that
	// only PostgreSQL's rounding tells whether it fits (see pgChecks).
	nearLimit bool
}

// converter checks one dumpdata field value for a column and encodes it in
// PostgreSQL's binary COPY format. Types are checked here, before anything is
// written, so a bad value names its object and field.
type converter struct {
	kind    kind
	notNull bool
	maxLen  int
	numeric *pgtype.Map // lazily made, for numeric's binary encoding
	// name: the column is of type name (at most 63 bytes);
	// precision, scale: numeric(precision, scale), 0 without a typmod.
	name             bool
	precision, scale int
}

var isNull = []byte("null")

func converterFor(col pgcatalog.Column) (*converter, error) {
	cv := &converter{notNull: col.NotNull, maxLen: col.MaxLen, name: col.Type == "name"}
	switch col.Type {
	case "int2":
		cv.kind = kInt2
	case "int4":
		cv.kind = kInt4
	case "int8":
		cv.kind = kInt8
	case "float4":
		cv.kind = kFloat4
	case "float8":
		cv.kind = kFloat8
	case "numeric":
		cv.kind = kNumeric
		cv.precision, cv.scale = numericLimits(col.Display)
	case "bool":
		cv.kind = kBool
	case "text", "varchar", "bpchar", "citext", "name":
		cv.kind = kText
	case "uuid":
		cv.kind = kUUID
	case "date":
		cv.kind = kDate
	case "timestamptz":
		cv.kind = kTimestamptz
	case "timestamp":
		cv.kind = kTimestamp
	case "json":
		cv.kind = kJSON
	case "jsonb":
		cv.kind = kJSONB
	case "bytea":
		cv.kind = kBytea
	default:
		return nil, fmt.Errorf("column %q has type %s, which the restore engine cannot load yet", col.Name, col.Display)
	}
	return cv, nil
}

func describe(raw []byte) string {
	s := string(raw)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// convert checks raw (a JSON value) and stores it in c.
func (cv *converter) convert(raw []byte, c *cell) error {
	if !cv.notNull && bytes.Equal(raw, isNull) {
		c.null = true
		return nil
	}
	c.null = false
	switch cv.kind {
	case kInt2:
		return intConv(raw, c, math.MinInt16, math.MaxInt16)
	case kInt4:
		return intConv(raw, c, math.MinInt32, math.MaxInt32)
	case kInt8:
		return intConv(raw, c, math.MinInt64, math.MaxInt64)
	case kFloat4, kFloat8:
		f, err := strconv.ParseFloat(string(raw), 64)
		if err != nil {
			return fmt.Errorf("expected a number, got %s", describe(raw))
		}
		if cv.kind == kFloat4 && math.Abs(f) > math.MaxFloat32 {
			// float32(f) would be an infinity: PostgreSQL refuses the value
			// as text ("out of range for type real"), loaddata's save too.
			return fmt.Errorf("%s is out of range for a real (float4) column", describe(raw))
		}
		c.f = f
	case kNumeric:
		return cv.numericConv(raw, c)
	case kBool:
		switch string(raw) {
		case "true":
			c.i = 1
		case "false":
			c.i = 0
		default:
			return fmt.Errorf("expected true or false, got %s", describe(raw))
		}
	case kText:
		s, ok := jsonString(raw)
		if !ok {
			return fmt.Errorf("expected a string, got %s", describe(raw))
		}
		if problem := badEscape(raw, true); problem != "" {
			return fmt.Errorf("%s, which text cannot hold (Django's loaddata fails on it too)", problem)
		}
		if bytes.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("text contains a NUL character, which PostgreSQL cannot store")
		}
		if cv.maxLen > 0 && len(s) > cv.maxLen && utf8.RuneCount(s) > cv.maxLen {
			return fmt.Errorf("%d characters do not fit the column's limit of %d", utf8.RuneCount(s), cv.maxLen)
		}
		c.b = s
	case kUUID:
		s, ok := jsonString(raw)
		var u pgtype.UUID
		if !ok || u.Scan(string(s)) != nil {
			return fmt.Errorf("expected a UUID string, got %s", describe(raw))
		}
		c.u = u.Bytes
	case kDate:
		s, ok := jsonString(raw)
		if ok {
			if days, ok := fastDate(s); ok {
				c.i = days
				return nil
			}
			if t, err := time.Parse("2006-01-02", string(s)); err == nil {
				c.i = (time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Unix() - y2kUnix) / 86400
				return nil
			}
		}
		return fmt.Errorf("expected a date like \"2026-01-04\", got %s", describe(raw))
	case kTimestamptz, kTimestamp:
		return timeConv(raw, c, cv.kind == kTimestamptz)
	case kJSON:
		c.b = raw // the scanner already checked the syntax
	case kJSONB:
		if problem := badEscape(raw, false); problem != "" {
			return fmt.Errorf("%s, which jsonb cannot hold", problem)
		}
		c.b = raw
	case kBytea:
		s, ok := jsonString(raw)
		if !ok {
			return fmt.Errorf("expected base64 text, got %s", describe(raw))
		}
		b, err := base64.StdEncoding.DecodeString(string(s))
		if err != nil {
			return fmt.Errorf("expected base64 text: %v", err)
		}
		c.b = b
	}
	return nil
}

func intConv(raw []byte, c *cell, min, max int64) error {
	s := raw
	if len(s) > 1 && s[0] == '"' { // tolerate ids written as strings
		s = s[1 : len(s)-1]
	}
	i, ok := fastInt(s)
	if !ok {
		var err error
		if i, err = strconv.ParseInt(string(s), 10, 64); err != nil {
			return fmt.Errorf("expected an integer, got %s", describe(raw))
		}
	}
	if i < min || i > max {
		return fmt.Errorf("%d does not fit the column (range %d..%d)", i, min, max)
	}
	c.i = i
	return nil
}

// fastInt parses up to 18 decimal digits with an optional minus sign;
// anything else is left to strconv.
func fastInt(s []byte) (int64, bool) {
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var n int64
	for _, ch := range s {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int64(ch-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// maxNumericText bounds a numeric's text: PostgreSQL holds at most 131072
// digits before the point and 16383 after, and parsing a longer one would
// take minutes.
const maxNumericText = 131072 + 16383 + 2

func (cv *converter) numericConv(raw []byte, c *cell) error {
	s := string(raw)
	if len(s) > 1 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	if len(s) > maxNumericText {
		return fmt.Errorf("a number of %d characters does not fit a numeric column (at most 131072 digits before the point, 16383 after)", len(s))
	}
	var n pgtype.Numeric
	if _, err := strconv.ParseFloat(s, 64); err != nil || n.Scan(s) != nil {
		return fmt.Errorf("expected a decimal number, got %s", describe(raw))
	}
	if cv.numeric == nil {
		cv.numeric = pgtype.NewMap()
	}
	b, err := cv.numeric.Encode(pgtype.NumericOID, pgtype.BinaryFormatCode, n, nil)
	if err != nil {
		return fmt.Errorf("expected a decimal number, got %s: %v", describe(raw), err)
	}
	c.b = b
	c.nearLimit = cv.precision > 0 && nearPrecision(s, cv.precision, cv.scale)
	return nil
}

// badEscape describes a \u escape in raw (JSON the scanner has checked) that
// decodes to no character: half of a surrogate pair, or \u0000 unless nulOK.
// encoding/json would silently make U+FFFD of the first; PostgreSQL refuses
// both in jsonb.
func badEscape(raw []byte, nulOK bool) string {
	for i := bytes.IndexByte(raw, '\\'); i >= 0 && i+1 < len(raw); {
		if raw[i+1] != 'u' {
			i = nextBackslash(raw, i+2)
			continue
		}
		if i+6 > len(raw) {
			return ""
		}
		v, _ := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		switch {
		case v == 0 && !nulOK:
			return `the escape \u0000 (a NUL character)`
		case v >= 0xd800 && v < 0xdc00:
			if i+12 > len(raw) || raw[i+6] != '\\' || raw[i+7] != 'u' {
				return fmt.Sprintf(`the escape \u%04x is half of a surrogate pair`, v)
			}
			if low, _ := strconv.ParseUint(string(raw[i+8:i+12]), 16, 16); low < 0xdc00 || low > 0xdfff {
				return fmt.Sprintf(`the escape \u%04x is half of a surrogate pair`, v)
			}
			i = nextBackslash(raw, i+12)
			continue
		case v >= 0xdc00 && v <= 0xdfff:
			return fmt.Sprintf(`the escape \u%04x is half of a surrogate pair`, v)
		}
		i = nextBackslash(raw, i+6)
	}
	return ""
}

func nextBackslash(raw []byte, from int) int {
	if from >= len(raw) {
		return -1
	}
	if j := bytes.IndexByte(raw[from:], '\\'); j >= 0 {
		return from + j
	}
	return -1
}

// jsonString returns the text of a JSON string, unescaped.
func jsonString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	if bytes.IndexByte(raw, '\\') < 0 { // fast path: nothing to unescape
		return raw[1 : len(raw)-1], true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, false
	}
	return []byte(s), true
}

// Microseconds and seconds from the Unix epoch to PostgreSQL's (2000-01-01).
const (
	y2kUnix   = 946684800
	y2kMicros = y2kUnix * 1_000_000
)

func timeConv(raw []byte, c *cell, withTZ bool) error {
	s, ok := jsonString(raw)
	if ok {
		if us, ok := fastTimestamp(s, withTZ); ok {
			c.i = us
			return nil
		}
		layouts := []string{"2006-01-02T15:04:05.999999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999999"}
		if withTZ {
			layouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}
		}
		for _, l := range layouts {
			if t, err := time.Parse(l, string(s)); err == nil {
				if !withTZ && t.Location() != time.UTC {
					// timestamp without time zone keeps the wall clock
					t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
				}
				c.i = t.Unix()*1_000_000 + int64(t.Nanosecond())/1000 - y2kMicros
				return nil
			}
		}
	}
	if withTZ {
		return fmt.Errorf("expected a timestamp like \"2026-01-04T10:00:00Z\", got %s", describe(raw))
	}
	return fmt.Errorf("expected a timestamp like \"2026-01-04T10:00:00\", got %s", describe(raw))
}

func num2(s []byte) (int, bool) {
	a, b := s[0]-'0', s[1]-'0'
	if a > 9 || b > 9 {
		return 0, false
	}
	return int(a)*10 + int(b), true
}

// civil parses "YYYY-MM-DD" and returns days since the Unix epoch.
func civil(s []byte) (int64, bool) {
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	hi, ok1 := num2(s[0:2])
	lo, ok2 := num2(s[2:4])
	mo, ok3 := num2(s[5:7])
	d, ok4 := num2(s[8:10])
	if !ok1 || !ok2 || !ok3 || !ok4 || mo < 1 || mo > 12 || d < 1 {
		return 0, false
	}
	y := hi*100 + lo
	if d > daysIn(mo, y) {
		return 0, false
	}
	return daysFromCivil(y, mo, d), true
}

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is Howard Hinnant's algorithm: days since 1970-01-01.
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era)*146097 + int64(doe) - 719468
}

// fastDate parses exactly "YYYY-MM-DD" into days since 2000-01-01.
func fastDate(s []byte) (int64, bool) {
	if len(s) != 10 {
		return 0, false
	}
	days, ok := civil(s)
	return days - y2kUnix/86400, ok
}

// fastTimestamp parses the common forms "YYYY-MM-DDTHH:MM:SS[.f{1,9}][Z|±HH:MM]"
// (or with a space for the T) into µs since 2000-01-01, exactly as the
// time.Parse layouts of timeConv would. ok=false leaves the decision to them.
func fastTimestamp(s []byte, withTZ bool) (int64, bool) {
	if len(s) < 19 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':' || s[16] != ':' {
		return 0, false
	}
	days, ok := civil(s[:10])
	if !ok {
		return 0, false
	}
	h, ok1 := num2(s[11:13])
	mi, ok2 := num2(s[14:16])
	sec, ok3 := num2(s[17:19])
	if !ok1 || !ok2 || !ok3 || h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	rest := s[19:]
	var nsec int64
	if len(rest) > 0 && rest[0] == '.' {
		k := 1
		for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
			k++
		}
		digits := k - 1
		if digits < 1 || digits > 9 {
			return 0, false
		}
		for j := 1; j < k; j++ {
			nsec = nsec*10 + int64(rest[j]-'0')
		}
		for j := digits; j < 9; j++ {
			nsec *= 10
		}
		rest = rest[k:]
	}
	var off int64
	switch {
	case len(rest) == 0:
	case len(rest) == 1 && rest[0] == 'Z':
		if !withTZ && s[10] == ' ' {
			return 0, false
		}
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		if !withTZ && s[10] == ' ' {
			return 0, false
		}
		oh, ok1 := num2(rest[1:3])
		om, ok2 := num2(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, false
		}
		if withTZ {
			off = int64(oh*3600 + om*60)
			if rest[0] == '-' {
				off = -off
			}
		}
	default:
		return 0, false
	}
	secs := days*86400 + int64(h*3600+mi*60+sec) - off
	return secs*1_000_000 + nsec/1000 - y2kMicros, true
}

// encode appends c in binary COPY format: a 4-byte length, then the value.
func (cv *converter) encode(dst []byte, c *cell) []byte {
	if c.null {
		return append(dst, 0xff, 0xff, 0xff, 0xff)
	}
	switch cv.kind {
	case kInt2:
		dst = binary.BigEndian.AppendUint32(dst, 2)
		return binary.BigEndian.AppendUint16(dst, uint16(int16(c.i)))
	case kInt4, kDate:
		dst = binary.BigEndian.AppendUint32(dst, 4)
		return binary.BigEndian.AppendUint32(dst, uint32(int32(c.i)))
	case kInt8, kTimestamptz, kTimestamp:
		dst = binary.BigEndian.AppendUint32(dst, 8)
		return binary.BigEndian.AppendUint64(dst, uint64(c.i))
	case kFloat4:
		dst = binary.BigEndian.AppendUint32(dst, 4)
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(float32(c.f)))
	case kFloat8:
		dst = binary.BigEndian.AppendUint32(dst, 8)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(c.f))
	case kBool:
		return append(dst, 0, 0, 0, 1, byte(c.i))
	case kUUID:
		dst = binary.BigEndian.AppendUint32(dst, 16)
		return append(dst, c.u[:]...)
	case kJSONB:
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.b)+1))
		dst = append(dst, 1) // jsonb binary format version
		return append(dst, c.b...)
	default: // text, json, bytea, numeric (already binary)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.b)))
		return append(dst, c.b...)
	}
}

// key returns a converted key value in comparable form.
func (cv *converter) key(c *cell) key {
	switch cv.kind {
	case kInt2, kInt4, kInt8:
		return key{isInt: true, i: c.i}
	case kUUID:
		return key{s: hex.EncodeToString(c.u[:])}
	}
	return key{s: cv.text(c)}
}

// text renders a value as PostgreSQL's ::text would, for matching unique
// values against existing rows.
func (cv *converter) text(c *cell) string {
	switch cv.kind {
	case kInt2, kInt4, kInt8:
		return strconv.FormatInt(c.i, 10)
	case kBool:
		return strconv.FormatBool(c.i == 1)
	case kUUID:
		h := hex.EncodeToString(c.u[:])
		return strings.Join([]string{h[0:8], h[8:12], h[12:16], h[16:20], h[20:32]}, "-")
	case kDate:
		return time.Unix((c.i*86400)+y2kUnix, 0).UTC().Format("2006-01-02")
	case kFloat4, kFloat8:
		return strconv.FormatFloat(c.f, 'g', -1, 64)
	}
	return string(c.b)
}
