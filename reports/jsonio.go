package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/rehearse-dev/rehearse/results"
)

// maxResultsSize bounds what ReadJSON reads: a results file of a large run
// is a few megabytes; anything far bigger is not one.
const maxResultsSize = 256 << 20

// ReadJSON reads a results file (rehearse run --out). It is strict: the
// version must be one this package reads, and an unknown field is an error,
// so a file from a newer or older rehearse is refused instead of silently
// rendered with missing data.
func ReadJSON(r io.Reader) (*results.RunFile, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxResultsSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxResultsSize {
		return nil, fmt.Errorf("not a results file: larger than %d MiB", maxResultsSize>>20)
	}
	if err := checkVersion(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var rf results.RunFile
	if err := dec.Decode(&rf); err != nil {
		return nil, fmt.Errorf("invalid results file: %s", describeJSONError(data, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("invalid results file: %s: data after the results object", position(data, dec.InputOffset()))
	}
	for i, r := range rf.Results {
		if r == nil {
			return nil, fmt.Errorf("invalid results file: results[%d] is null", i)
		}
		if err := checkEnums(reflect.ValueOf(r).Elem(), ""); err != nil {
			return nil, fmt.Errorf("invalid results file: results[%d] (%s): %w", i, r.Name, err)
		}
	}
	return &rf, nil
}

// checkVersion looks at "version" alone first, so that a file of another
// version gets a message about the version, not about some field it renamed.
func checkVersion(data []byte) error {
	var head struct {
		Version json.RawMessage `json:"version"`
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] != '{' {
		return errors.New("not a results file: it is not a JSON object (write one with: rehearse run --out results.json)")
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("not a results file (a JSON object from rehearse run --out): %s", describeJSONError(data, err))
	}
	if head.Version == nil {
		return errors.New(`not a results file: no "version" field (write one with: rehearse run --out results.json)`)
	}
	var v int
	if err := json.Unmarshal(head.Version, &v); err != nil {
		return fmt.Errorf("not a results file: \"version\" is %s, want the number %d", head.Version, results.Version)
	}
	if v != results.Version {
		return fmt.Errorf("results format version %d is not supported: this rehearse reads version %d; render it with the rehearse that wrote it, or run the scenarios again", v, results.Version)
	}
	return nil
}

// describeJSONError adds line:col to the decoder's errors.
func describeJSONError(data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s: %v", position(data, syn.Offset), err)
	case errors.As(err, &typ):
		return fmt.Sprintf("%s: field %q: %s where %s was expected", position(data, typ.Offset), typ.Field, typ.Value, typ.Type)
	case errors.Is(err, io.EOF):
		return "empty input"
	}
	return err.Error()
}

func position(data []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(data)))
	line, col := 1, 1
	for _, b := range data[:offset] {
		if b == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}

// enum is the set of values one typed string of the results may take.
type enum struct {
	values []string
	empty  bool // "" is allowed: not recorded (e.g. the engine of a scenario that could not run)
}

func enumOf[T ~string](values []T, empty bool) enum {
	e := enum{empty: empty}
	for _, v := range values {
		e.values = append(e.values, string(v))
	}
	return e
}

// enums are the typed strings of the results file: ReadJSON refuses any
// other value, and the JSON Schema lists them.
var enums = map[reflect.Type]enum{
	reflect.TypeFor[results.Status]():       enumOf(results.Statuses(), false),
	reflect.TypeFor[results.Strategy]():     enumOf(results.Strategies(), true),
	reflect.TypeFor[results.Operation]():    enumOf(results.Operations(), true),
	reflect.TypeFor[results.Phase]():        enumOf(results.Phases(), false),
	reflect.TypeFor[results.ProbeKind]():    enumOf(results.ProbeKinds(), false),
	reflect.TypeFor[results.PasswordKind](): enumOf(results.PasswordKinds(), true),
	reflect.TypeFor[results.Invariant]():    enumOf(results.Invariants(), false),
	reflect.TypeFor[results.PKReuseKind]():  enumOf(results.PKReuseKinds(), false),
	reflect.TypeFor[results.WindowState]():  enumOf(results.WindowStates(), true),
	// The outcome is empty in files of runs that stopped before the operation.
	reflect.TypeFor[results.OperationOutcome](): enumOf(results.OperationOutcomes(), true),
	reflect.TypeFor[results.ServerSource]():     enumOf(results.ServerSources(), false),
	reflect.TypeFor[results.UserPresence]():     enumOf(results.UserPresences(), true),
	reflect.TypeFor[results.AccountsSource]():   enumOf(results.AccountsSources(), false),
	// Files written before kinds were measured hold access tokens without one.
	reflect.TypeFor[results.TokenKind](): enumOf(results.TokenKinds(), true),
}

// want lists the values for a message: "a", "b" or "c".
func (e enum) want() string {
	q := make([]string, len(e.values))
	for i, v := range e.values {
		q[i] = fmt.Sprintf("%q", v)
	}
	s := strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
	if e.empty {
		s += " (or empty)"
	}
	return s
}

// checkEnums finds the first typed string below v whose value its type
// does not know; path names v by its JSON keys ("timeline.phases[2].phase").
func checkEnums(v reflect.Value, path string) error {
	if e, ok := enums[v.Type()]; ok {
		if s := v.String(); !(s == "" && e.empty) && !slices.Contains(e.values, s) {
			return fmt.Errorf("%s %q, want %s", path, s, e.want())
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			return checkEnums(v.Elem(), path)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			if !v.Type().Field(i).IsExported() || name == "-" {
				continue
			}
			if path != "" {
				name = path + "." + name
			}
			if err := checkEnums(v.Field(i), name); err != nil {
				return err
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			if err := checkEnums(v.Index(i), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeJSON writes the results in the current version. Normalized, it zeroes
// what varies between runs (timestamps, durations, times, counts) and drops
// the raw samples, so the file stays valid against the schema.
func writeJSON(w io.Writer, rf *results.RunFile, f fmtr) error {
	out := *rf
	out.Version = results.Version
	if out.Results == nil {
		out.Results = []*results.Result{}
	}
	if f.normalize {
		out = normalizedRun(out, f)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func normalizedRun(rf results.RunFile, f fmtr) results.RunFile {
	rf.Started, rf.Duration = time.Time{}, 0
	normalized := make([]*results.Result, len(rf.Results))
	for i, r := range rf.Results {
		c := *r
		c.Setup, c.Duration = 0, 0
		c.Timeline = results.Timeline{Start: time.Time{}, Phases: make([]results.PhaseMark, len(r.Timeline.Phases))}
		for j, p := range r.Timeline.Phases {
			c.Timeline.Phases[j] = results.PhaseMark{Phase: p.Phase, Note: f.text(p.Note)}
		}
		c.Probes = make([]results.ProbeSummary, len(r.Probes))
		for j, p := range r.Probes {
			c.Probes[j] = results.ProbeSummary{Name: p.Name, Kind: p.Kind, Target: p.Target, Password: p.Password, IntervalMS: p.IntervalMS}
		}
		c.Expectations = make([]results.Outcome, len(r.Expectations))
		for j, o := range r.Expectations {
			o.Measured, o.Excerpt = f.text(o.Measured), f.text(o.Excerpt)
			c.Expectations[j] = o
		}
		c.Tokens = make([]results.TokenFate, len(r.Tokens))
		for j, t := range r.Tokens {
			t.During = nil // which statuses a probe caught in the window depends on timing
			if t.Refresh != nil {
				rf := *t.Refresh
				rf.During, t.Refresh = nil, &rf
			}
			c.Tokens[j] = t
		}
		c.Facts.WindowMS = 0
		c.Facts.ServerErrors = make([]results.ServerError, len(r.Facts.ServerErrors))
		for j, e := range r.Facts.ServerErrors {
			e.AtMS, e.Body = 0, f.text(e.Body)
			c.Facts.ServerErrors[j] = e
		}
		if len(r.Facts.ServerErrors) == 0 {
			c.Facts.ServerErrors = nil
		}
		normalized[i] = &c
	}
	rf.Results = normalized
	return rf
}
