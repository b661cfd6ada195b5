package harness

import (
	"bytes"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	suggestpkg "github.com/rehearse-dev/rehearse/internal/suggest"
	"github.com/rehearse-dev/rehearse/results"
	"go.yaml.in/yaml/v3"
)

// Pos is where something was written in a scenario file.
type Pos = results.Pos

// InputError is a problem in a scenario file, with where and what to do.
type InputError struct {
	Pos     Pos
	Message string
}

func (e *InputError) Error() string { return e.Pos.String() + ": " + e.Message }

// InputErrors collects every problem found in one file.
type InputErrors []*InputError

func (es InputErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Duration is a Go duration string in YAML ("10ms", "30s").
type Duration time.Duration

func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Limits on what a scenario or target file may hold: input beyond them is
// an error that says so, never unbounded memory or time.
const (
	maxFileBytes = 1 << 20 // a scenario or target file
	maxKeyBytes  = 64 << 10
	// maxEntries bounds a list or mapping whose field has no max:"N" tag.
	maxEntries = 1000
	maxErrors  = 50 // problems reported for one file
	// maxQuoted is how much of a value a message quotes; maxMessage, how
	// long a message gets.
	maxQuoted  = 80
	maxMessage = 1000
)

// decoder turns a yaml.Node tree into Go values strictly: every key must be a
// field, every scalar must fit its type, and each error carries file:line:col.
// yaml.v3's own decoder ignores unknown keys inside custom unmarshalers and
// reports no columns, hence this small reflective walker.
type decoder struct {
	file string
	errs InputErrors
	root *yaml.Node // the document's value: never quoted (it may be a file that is not YAML)
	// durations are the durations decoded, for bounding them by the timeout.
	durations []timed
}

// timed is a duration as written, with its key.
type timed struct {
	pos Pos
	key string
	d   time.Duration
}

var (
	posType      = reflect.TypeOf(Pos{})
	keysType     = reflect.TypeOf(map[string]Pos{})
	durationType = reflect.TypeOf(Duration(0))
)

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	if !d.full() {
		d.errs = append(d.errs, &InputError{Pos: d.pos(n), Message: fmt.Sprintf(format, args...)})
	}
}

// full reports that there are more errors than are shown: decoding stops.
func (d *decoder) full() bool { return len(d.errs) > maxErrors }

// parseYAML parses data, which must hold one YAML document of at most
// maxFileBytes, into its root node (nil for an empty document); what the
// file is ("scenario") is for its errors.
func parseYAML(file string, data []byte, what string) (*yaml.Node, error) {
	at := Pos{File: file, Line: 1, Col: 1}
	if len(data) > maxFileBytes {
		return nil, &InputError{Pos: at, Message: fmt.Sprintf("the file is %d bytes; it may be at most %d (1 MiB)", len(data), maxFileBytes)}
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && err != io.EOF {
		return nil, yamlError(file, err)
	}
	if len(root.Content) == 0 {
		return nil, nil
	}
	var second yaml.Node
	switch err := dec.Decode(&second); {
	case err == nil:
		return nil, &InputError{Pos: Pos{File: file, Line: max(second.Line, 1), Col: 1}, Message: "a " + what + " file holds one YAML document; move this one to a file of its own"}
	case err != io.EOF:
		// A broken document after the first one (after --- or ...).
		return nil, yamlError(file, err)
	}
	return &root, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError places an error of the YAML parser at its line.
func yamlError(file string, err error) *InputError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pos := Pos{File: file, Line: 1, Col: 1} // when the parser names no line
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	return &InputError{Pos: pos, Message: "not valid YAML: " + clip(msg, maxMessage)}
}

// result returns the problems found, in file order, each message bounded,
// at most maxErrors of them; nil when there are none.
func (d *decoder) result() error {
	if len(d.errs) == 0 {
		return nil
	}
	errs := d.errs
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Pos, errs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	if len(errs) > maxErrors {
		errs = append(slices.Clip(errs[:maxErrors]), &InputError{Pos: errs[maxErrors].Pos, Message: fmt.Sprintf("... and more problems: only the first %d are shown; fix these first", maxErrors)})
	}
	for _, e := range errs {
		e.Message = clip(clipQuotes(e.Message), maxMessage)
	}
	return errs
}

// clip shortens s to n characters, marking the cut with "…".
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	count := 0
	for i := range s {
		if count == n-1 {
			return s[:i] + "…"
		}
		count++
	}
	return s
}

// clipQuotes shortens every Go-quoted value in msg to maxQuoted characters:
// a message never repeats a long value whole.
func clipQuotes(msg string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(msg, '"')
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		b.WriteString(msg[:i])
		q, err := strconv.QuotedPrefix(msg[i:])
		if err != nil {
			q = `"`
		} else if s, err := strconv.Unquote(q); err == nil && utf8.RuneCountInString(s) > maxQuoted {
			b.WriteString(strconv.Quote(clip(s, maxQuoted)))
			msg = msg[i+len(q):]
			continue
		}
		b.WriteString(q)
		msg = msg[i+len(q):]
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "nothing (null)"
	}
	return fmt.Sprintf("%q", clip(n.Value, maxQuoted))
}

// fieldName is the YAML key of a struct field.
func fieldName(f reflect.StructField) string {
	tag := f.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

func (d *decoder) decode(n *yaml.Node, v reflect.Value) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
		d.root = n
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if d.full() {
		return
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, "expected a duration such as 10ms or 30s, got %s", kindName(n))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil || dur < 0 {
			d.errorf(n, "expected a duration such as 10ms, 1.5s or 2m, got %q", clip(n.Value, maxQuoted))
			return
		}
		v.SetInt(int64(dur))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return
		}
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem())
		v.Set(p)
	case reflect.Struct:
		d.decodeStruct(n, v)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, "expected a list, got %s", kindName(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i := 0; i < len(n.Content) && !d.full(); i++ {
			d.decode(n.Content[i], s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "expected a mapping of names, got %s", kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content) && !d.full(); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.errorf(k, "%q is defined twice", clip(k.Value, maxQuoted))
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			d.decode(val, e)
			m.SetMapIndex(reflect.ValueOf(k.Value), e)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			d.errorf(n, "expected text, got %s", kindName(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if n.Kind != yaml.ScalarNode || err != nil || n.Tag != "!!bool" {
			d.errorf(n, "expected true or false, got %s", kindName(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 10, 64)
		if n.Kind != yaml.ScalarNode || err != nil {
			d.errorf(n, "expected a whole number, got %s", kindName(n))
			return
		}
		v.SetInt(i)
	default:
		d.errorf(n, "internal: cannot decode into %s", v.Type())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		// A scalar may stand for the struct's "shorthand" field.
		if n.Kind == yaml.ScalarNode {
			for _, f := range yamlFields(t) {
				if f.Tag.Get("shorthand") == "true" {
					if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
						f.Set(reflect.ValueOf(d.pos(n)))
					}
					d.decode(n, v.FieldByIndex(f.Index))
					return
				}
			}
		}
		got := kindName(n)
		if n == d.root {
			got = "something else (not shown: is it the right file?)" // it may be a key or a password file
		}
		d.errorf(n, "expected a mapping with keys %s, got %s", strings.Join(keysOf(t), ", "), got)
		return
	}
	if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
		f.Set(reflect.ValueOf(d.pos(n)))
	}
	keys := v.FieldByName("Keys")
	if keys.IsValid() && keys.Type() == keysType {
		keys.Set(reflect.MakeMap(keysType))
	} else {
		keys = reflect.Value{}
	}
	fields := map[string]reflect.StructField{}
	for _, f := range yamlFields(t) {
		fields[fieldName(f)] = f
	}
	oneOf, kinds := oneOfField(t)
	seen := map[string]bool{}
	unknown := false // an unknown key may be the kind, mistyped: one error is enough
	for i := 0; i+1 < len(n.Content) && !d.full(); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		f, ok := fields[k.Value]
		if !ok && oneOf >= 0 && kinds.has(k.Value) {
			if !v.Field(oneOf).IsNil() {
				d.errorf(n, "%s is exactly one of %s; found %q as a second one", kinds.kindsOf(), strings.Join(kinds.names(), ", "), k.Value)
				continue
			}
			d.decodeKind(k, val, v.Field(oneOf), kinds)
			continue
		}
		if !ok {
			d.errorf(k, "unknown key %q%s; expected one of: %s", clip(k.Value, maxQuoted), suggest(k.Value, keysOf(t)), strings.Join(keysOf(t), ", "))
			unknown = true
			continue
		}
		if seen[k.Value] {
			d.errorf(k, "key %q is given twice", k.Value)
			continue
		}
		seen[k.Value] = true
		if keys.IsValid() {
			keys.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(d.pos(val)))
		}
		d.decodeField(k.Value, val, v.FieldByIndex(f.Index), f)
	}
	for name, f := range fields {
		if f.Tag.Get("required") == "true" && !seen[name] {
			d.errorf(n, "missing required key %q", name)
		}
	}
	if oneOf >= 0 && v.Field(oneOf).IsNil() && !unknown {
		d.errorf(n, "%s is exactly one of %s; found none", kinds.kindsOf(), strings.Join(kinds.names(), ", "))
	}
}

// decodeField decodes the value of one key into its field: a list or a
// mapping holds at most the field's max:"N" entries (maxEntries without
// one), and a duration is kept for bounding by the scenario's timeout
// (unless the field is tagged unbounded:"true").
func (d *decoder) decodeField(key string, n *yaml.Node, v reflect.Value, f reflect.StructField) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if k := f.Type.Kind(); k == reflect.Slice || k == reflect.Map {
		limit := maxEntries
		if m, err := strconv.Atoi(f.Tag.Get("max")); err == nil {
			limit = m
		}
		entries := len(n.Content)
		if n.Kind == yaml.MappingNode {
			entries /= 2
		}
		if entries > limit {
			d.errorf(n, "%s: %d entries; at most %d are allowed", key, entries, limit)
			return
		}
	}
	d.decode(n, v)
	if f.Type == durationType && f.Tag.Get("unbounded") != "true" && v.Int() > 0 {
		d.durations = append(d.durations, timed{pos: d.pos(n), key: key, d: time.Duration(v.Int())})
	}
}

// oneOfField finds the field of t tagged oneof:"REGISTRY": -1 when none.
func oneOfField(t reflect.Type) (int, kindSet) {
	for i := 0; i < t.NumField(); i++ {
		if name := t.Field(i).Tag.Get("oneof"); name != "" {
			return i, registries[name]
		}
	}
	return -1, nil
}

// decodeKind decodes the value of key k into a new value of the kind it
// names and stores it in field.
func (d *decoder) decodeKind(k, val *yaml.Node, field reflect.Value, kinds kindSet) {
	p, _ := kinds.newValue(k.Value)
	d.decode(val, p.Elem())
	field.Set(p)
}

func keysOf(t reflect.Type) []string {
	var keys []string
	if _, kinds := oneOfField(t); kinds != nil {
		keys = append(keys, kinds.names()...)
	}
	for _, f := range yamlFields(t) {
		keys = append(keys, fieldName(f))
	}
	sort.Strings(keys)
	return keys
}

// yamlFields are the fields of struct t that YAML keys set, in order: its
// own and those of the structs it embeds (probeRef, say), not Pos.
func yamlFields(t reflect.Type) []reflect.StructField {
	var fields []reflect.StructField
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous || f.Type == posType || !f.IsExported() || f.Tag.Get("yaml") == "-" {
			continue
		}
		fields = append(fields, f)
	}
	return fields
}

// suggest returns ` (did you mean "x"?)` for a near miss.
func suggest(got string, options []string) string {
	if len(got) > maxQuoted {
		return "" // far from every name, and costly to compare
	}
	if best := suggestpkg.Closest(got, options); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
