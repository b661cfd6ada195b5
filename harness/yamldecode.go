package harness

import (
	"fmt"
	suggestpkg "github.com/rehearse-dev/rehearse/internal/suggest"
	"github.com/rehearse-dev/rehearse/results"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

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
	oneOf, kinds := oneOfField(t)
	seen := map[string]bool{}
	unknown := false // an unknown key may be the kind, mistyped: one error is enough
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, ok := fields[k.Value]
		if !ok && oneOf >= 0 && kinds.has(k.Value) {
			if !v.Field(oneOf).IsNil() {
				d.errorf(n, "%s is exactly one of %s; found %q as a second one", kinds.what, strings.Join(kinds.names(), ", "), k.Value)
				continue
			}
			d.decodeKind(k, val, v.Field(oneOf), kinds)
			continue
		}
		if !ok {
			d.errorf(k, "unknown key %q%s; expected one of: %s", k.Value, suggest(k.Value, keysOf(t)), strings.Join(keysOf(t), ", "))
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
		d.decode(val, v.Field(idx))
	}
	for name, i := range fields {
		if t.Field(i).Tag.Get("required") == "true" && !seen[name] {
			d.errorf(n, "missing required key %q", name)
		}
	}
	if oneOf >= 0 && v.Field(oneOf).IsNil() && !unknown {
		d.errorf(n, "%s is exactly one of %s; found none", kinds.what, strings.Join(kinds.names(), ", "))
	}
}

// registry is a set of kinds one struct field can hold (check kinds, probe
// kinds): the YAML key names the kind, its value decodes into the kind's
// struct.
type registry struct {
	what  string // what the kinds are kinds of, for errors: "an expectation"
	names func() []string
	new   func(name string) (reflect.Value, bool)
}

func (r registry) has(name string) bool { _, ok := r.new(name); return ok }

var registries = map[string]registry{
	"check": {what: "an expectation", names: CheckKinds, new: func(name string) (reflect.Value, bool) {
		k, ok := checkKinds[name]
		if !ok {
			return reflect.Value{}, false
		}
		return reflect.ValueOf(k.new()), true
	}},
	"probe": {what: "a probe", names: ProbeKinds, new: func(name string) (reflect.Value, bool) {
		k, ok := probeKinds[name]
		if !ok {
			return reflect.Value{}, false
		}
		return reflect.ValueOf(k.new()), true
	}},
}

// oneOfField finds the field of t tagged oneof:"REGISTRY": -1 when none.
func oneOfField(t reflect.Type) (int, registry) {
	for i := 0; i < t.NumField(); i++ {
		if name := t.Field(i).Tag.Get("oneof"); name != "" {
			return i, registries[name]
		}
	}
	return -1, registry{}
}

// decodeKind decodes the value of key k into a new value of the kind it
// names and stores it in field.
func (d *decoder) decodeKind(k, val *yaml.Node, field reflect.Value, kinds registry) {
	p, _ := kinds.new(k.Value)
	d.decode(val, p.Elem())
	field.Set(p)
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if name := f.Tag.Get("oneof"); name != "" {
			keys = append(keys, registries[name].names()...)
		}
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
	if best := suggestpkg.Closest(got, options); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

func reflectValue(p any) reflect.Value { return reflect.ValueOf(p).Elem() }
