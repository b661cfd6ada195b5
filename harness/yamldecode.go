package harness

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Pos is where something was written in a scenario file.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

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

// decoder turns a yaml.Node tree into Go values strictly: every key must be a
// field, every scalar must fit its type, and each error carries file:line:col.
// yaml.v3's own decoder ignores unknown keys inside custom unmarshalers and
// reports no columns, hence this small reflective walker.
type decoder struct {
	file string
	errs InputErrors
}

var (
	posType      = reflect.TypeOf(Pos{})
	keysType     = reflect.TypeOf(map[string]Pos{})
	durationType = reflect.TypeOf(Duration(0))
)

func (d *decoder) pos(n *yaml.Node) Pos { return Pos{File: d.file, Line: n.Line, Col: n.Column} }

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.errs = append(d.errs, &InputError{Pos: d.pos(n), Message: fmt.Sprintf(format, args...)})
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
	return fmt.Sprintf("%q", n.Value)
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
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, "expected a duration such as 10ms or 30s, got %s", kindName(n))
			return
		}
		dur, err := time.ParseDuration(n.Value)
		if err != nil || dur < 0 {
			d.errorf(n, "expected a duration such as 10ms, 1.5s or 2m, got %q", n.Value)
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
		for i, c := range n.Content {
			d.decode(c, s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, "expected a mapping of names, got %s", kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if m.MapIndex(reflect.ValueOf(k.Value)).IsValid() {
				d.errorf(k, "%q is defined twice", k.Value)
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
			for i := 0; i < t.NumField(); i++ {
				if t.Field(i).Tag.Get("shorthand") == "true" {
					if f := v.FieldByName("Pos"); f.IsValid() && f.Type() == posType {
						f.Set(reflect.ValueOf(d.pos(n)))
					}
					d.decode(n, v.Field(i))
					return
				}
			}
		}
		d.errorf(n, "expected a mapping with keys %s, got %s", strings.Join(keysOf(t), ", "), kindName(n))
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
	fields := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		if t.Field(i).Type == posType || !t.Field(i).IsExported() || t.Field(i).Tag.Get("yaml") == "-" {
			continue
		}
		fields[fieldName(t.Field(i))] = i
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok {
			d.errorf(k, "unknown key %q%s; expected one of: %s", k.Value, suggest(k.Value, keysOf(t)), strings.Join(keysOf(t), ", "))
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
		d.decode(val, v.Field(idx))
	}
	for name, i := range fields {
		if t.Field(i).Tag.Get("required") == "true" && !seen[name] {
			d.errorf(n, "missing required key %q", name)
		}
	}
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type == posType || !f.IsExported() || f.Tag.Get("yaml") == "-" {
			continue
		}
		keys = append(keys, fieldName(f))
	}
	sort.Strings(keys)
	return keys
}

// suggest returns ` (did you mean "x"?)` for a near miss.
func suggest(got string, options []string) string {
	best, bestD := "", 3
	for _, o := range options {
		if d := editDistance(got, o); d < bestD {
			best, bestD = o, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev = cur
	}
	return prev[len(b)]
}

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
