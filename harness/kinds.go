package harness

import (
	"reflect"
	"sort"
)

// kinds is a registry of the kinds one field of the language can hold:
// check kinds (Expectation.Check) and probe kinds (Probe.Kind). Each kind is
// a struct type that adds itself once, where it is defined (a check_*.go
// file, probe.go); in a scenario the key that names the kind selects it,
// and its value decodes into a new one. Decoder, plan and JSON Schema go
// through the registry, so adding a kind touches one file.
type kinds[I any] struct {
	noun   string // "check", for the build mistake of a name added twice
	what   string // what a kind is the kind of, for errors: "an expectation"
	byName map[string]kind[I]
}

type kind[I any] struct {
	doc string // the language reference for the kind
	new func() I
}

func newKinds[I any](noun, what string) *kinds[I] {
	return &kinds[I]{noun: noun, what: what, byName: map[string]kind[I]{}}
}

// add registers a kind under name. It returns true so that a kind file can
// call it in a package-level var.
func (r *kinds[I]) add(name, doc string, new func() I) bool {
	if _, dup := r.byName[name]; dup {
		panic("harness: " + r.noun + " kind registered twice: " + name)
	}
	r.byName[name] = kind[I]{doc: doc, new: new}
	return true
}

// names lists the registered kinds, sorted.
func (r *kinds[I]) names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r *kinds[I]) has(name string) bool { _, ok := r.byName[name]; return ok }

func (r *kinds[I]) kindsOf() string { return r.what }

func (r *kinds[I]) doc(name string) string { return r.byName[name].doc }

// newValue is a new value of the kind name (a pointer to its struct), for
// the decoder to fill.
func (r *kinds[I]) newValue(name string) (reflect.Value, bool) {
	k, ok := r.byName[name]
	if !ok {
		return reflect.Value{}, false
	}
	return reflect.ValueOf(k.new()), true
}

// nameOf names the registered kind of v, else its Go type.
func (r *kinds[I]) nameOf(v I) string {
	t := reflect.TypeOf(v)
	for name, k := range r.byName {
		if reflect.TypeOf(k.new()) == t {
			return name
		}
	}
	return t.String()
}

// kindSet is a registry as the decoder and the schema see it, whatever
// the kinds' interface.
type kindSet interface {
	kindsOf() string
	names() []string
	has(name string) bool
	doc(name string) string
	newValue(name string) (reflect.Value, bool)
}

// The registries of the language; a field names one in its oneof:"NAME" tag.
var (
	checkKinds = newKinds[Check]("check", "an expectation")
	probeKinds = newKinds[ProbeKind]("probe", "a probe")
	registries = map[string]kindSet{"check": checkKinds, "probe": probeKinds}
)

// CheckKinds lists the registered check kinds, sorted.
func CheckKinds() []string { return checkKinds.names() }

// ProbeKinds lists the registered probe kinds, sorted.
func ProbeKinds() []string { return probeKinds.names() }
