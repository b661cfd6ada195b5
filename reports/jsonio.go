package reports

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rehearse-dev/rehearse/harness"
)

// maxResultsSize bounds what ReadJSON reads: a results file of a large run
// is a few megabytes; anything far bigger is not one.
const maxResultsSize = 256 << 20

// ReadJSON reads a results file (rehearse run --out). It is strict: the
// version must be one this package reads, and an unknown field is an error,
// so a file from a newer or older rehearse is refused instead of silently
// rendered with missing data.
func ReadJSON(r io.Reader) (*harness.RunFile, error) {
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
	var rf harness.RunFile
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
		switch r.Status {
		case harness.Passed, harness.Failed, harness.Errored:
		default:
			return nil, fmt.Errorf("invalid results file: results[%d] (%s): status %q, want %q, %q or %q", i, r.Name, r.Status, harness.Passed, harness.Failed, harness.Errored)
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
		return fmt.Errorf("not a results file: \"version\" is %s, want the number %d", head.Version, harness.ResultsVersion)
	}
	if v != harness.ResultsVersion {
		return fmt.Errorf("results format version %d is not supported: this rehearse reads version %d; render it with the rehearse that wrote it, or run the scenarios again", v, harness.ResultsVersion)
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

// writeJSON writes the results in the current version. Normalized, it zeroes
// what varies between runs (timestamps, durations, times, counts) and drops
// the raw samples, so the file stays valid against the schema.
func writeJSON(w io.Writer, rf *harness.RunFile, f fmtr) error {
	out := *rf
	out.Version = harness.ResultsVersion
	if out.Results == nil {
		out.Results = []*harness.Result{}
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

func normalizedRun(rf harness.RunFile, f fmtr) harness.RunFile {
	rf.Started, rf.Duration = time.Time{}, 0
	results := make([]*harness.Result, len(rf.Results))
	for i, r := range rf.Results {
		c := *r
		c.Setup, c.Duration = 0, 0
		c.Timeline = harness.Timeline{Start: time.Time{}, Phases: make([]harness.PhaseMark, len(r.Timeline.Phases))}
		for j, p := range r.Timeline.Phases {
			c.Timeline.Phases[j] = harness.PhaseMark{Name: p.Name}
		}
		c.Probes = make([]harness.ProbeSummary, len(r.Probes))
		for j, p := range r.Probes {
			c.Probes[j] = harness.ProbeSummary{Name: p.Name, Kind: p.Kind, Target: p.Target, Password: p.Password, IntervalMS: p.IntervalMS}
		}
		c.Expectations = make([]harness.Outcome, len(r.Expectations))
		for j, o := range r.Expectations {
			o.Measured, o.Excerpt = f.text(o.Measured), f.text(o.Excerpt)
			c.Expectations[j] = o
		}
		c.Tokens = make([]harness.TokenFate, len(r.Tokens))
		for j, t := range r.Tokens {
			t.During = nil // which statuses a probe caught in the window depends on timing
			c.Tokens[j] = t
		}
		c.Facts.WindowMS = 0
		results[i] = &c
	}
	rf.Results = results
	return rf
}
