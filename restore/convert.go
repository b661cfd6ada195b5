package restore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/rehearse-dev/rehearse/pgcatalog"
)

// converter turns one dumpdata field value into a Go value that pgx's binary
// COPY can send for the column, or explains what was expected. Types are checked
// here, before anything is written, so a bad value names its object and field.
type converter func(raw json.RawMessage) (any, error)

var isNull = []byte("null")

func converterFor(col pgcatalog.Column) (converter, error) {
	var conv converter
	switch col.Type {
	case "int2":
		conv = intConv(math.MinInt16, math.MaxInt16)
	case "int4":
		conv = intConv(math.MinInt32, math.MaxInt32)
	case "int8":
		conv = intConv(math.MinInt64, math.MaxInt64)
	case "float4", "float8":
		conv = floatConv
	case "numeric":
		conv = numericConv
	case "bool":
		conv = boolConv
	case "text", "varchar", "bpchar", "citext", "name":
		conv = textConv(col.MaxLen)
	case "uuid":
		conv = uuidConv
	case "date":
		conv = timeConv("a date like \"2026-01-04\"", "2006-01-02")
	case "timestamptz":
		conv = timeConv("a timestamp like \"2026-01-04T10:00:00Z\"", time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999")
	case "timestamp":
		conv = timeConv("a timestamp like \"2026-01-04T10:00:00\"", "2006-01-02T15:04:05.999999999", time.RFC3339Nano, "2006-01-02 15:04:05.999999999")
	case "json", "jsonb":
		conv = jsonConv
	case "bytea":
		conv = byteaConv
	default:
		return nil, fmt.Errorf("column %q has type %s, which the restore engine cannot load yet", col.Name, col.Display)
	}
	if col.NotNull {
		return conv, nil
	}
	return func(raw json.RawMessage) (any, error) {
		if bytes.Equal(raw, isNull) {
			return nil, nil
		}
		return conv(raw)
	}, nil
}

func describe(raw json.RawMessage) string {
	s := string(raw)
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

func intConv(min, max int64) converter {
	return func(raw json.RawMessage) (any, error) {
		s := string(raw)
		if len(s) > 1 && s[0] == '"' { // tolerate ids written as strings
			s = s[1 : len(s)-1]
		}
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("expected an integer, got %s", describe(raw))
		}
		if i < min || i > max {
			return nil, fmt.Errorf("%d does not fit the column (range %d..%d)", i, min, max)
		}
		return i, nil
	}
}

func floatConv(raw json.RawMessage) (any, error) {
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return nil, fmt.Errorf("expected a number, got %s", describe(raw))
	}
	return f, nil
}

func numericConv(raw json.RawMessage) (any, error) {
	s := string(raw)
	if len(s) > 1 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	var n pgtype.Numeric
	if _, err := strconv.ParseFloat(s, 64); err != nil || n.Scan(s) != nil {
		return nil, fmt.Errorf("expected a decimal number, got %s", describe(raw))
	}
	return n, nil
}

func boolConv(raw json.RawMessage) (any, error) {
	switch string(raw) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return nil, fmt.Errorf("expected true or false, got %s", describe(raw))
}

func jsonString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 { // fast path: nothing to unescape
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func textConv(maxLen int) converter {
	return func(raw json.RawMessage) (any, error) {
		s, ok := jsonString(raw)
		if !ok {
			return nil, fmt.Errorf("expected a string, got %s", describe(raw))
		}
		if strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("text contains a NUL character, which PostgreSQL cannot store")
		}
		if maxLen > 0 && len(s) > maxLen && utf8.RuneCountInString(s) > maxLen {
			return nil, fmt.Errorf("%d characters do not fit the column's limit of %d", utf8.RuneCountInString(s), maxLen)
		}
		return s, nil
	}
}

func uuidConv(raw json.RawMessage) (any, error) {
	s, ok := jsonString(raw)
	var u pgtype.UUID
	if !ok || u.Scan(s) != nil {
		return nil, fmt.Errorf("expected a UUID string, got %s", describe(raw))
	}
	return u, nil
}

func timeConv(want string, layouts ...string) converter {
	return func(raw json.RawMessage) (any, error) {
		s, ok := jsonString(raw)
		if ok {
			for _, l := range layouts {
				if t, err := time.Parse(l, s); err == nil {
					return t, nil
				}
			}
		}
		return nil, fmt.Errorf("expected %s, got %s", want, describe(raw))
	}
}

func jsonConv(raw json.RawMessage) (any, error) {
	// The decoder already checked the syntax; copy, since raw aliases its buffer.
	return json.RawMessage(append([]byte(nil), raw...)), nil
}

func byteaConv(raw json.RawMessage) (any, error) {
	s, ok := jsonString(raw)
	if !ok {
		return nil, fmt.Errorf("expected base64 text, got %s", describe(raw))
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("expected base64 text: %v", err)
	}
	return b, nil
}

// keyOf turns a converted key value into its comparable form.
func keyOf(v any) key {
	switch x := v.(type) {
	case int64:
		return key{isInt: true, i: x}
	case string:
		return key{s: x}
	case pgtype.UUID:
		return key{s: fmt.Sprintf("%x", x.Bytes)}
	default:
		return key{s: fmt.Sprint(x)}
	}
}
