package reports

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/results"
)

var update = flag.Bool("update", false, "rewrite the golden files and results.schema.json")

func TestMain(m *testing.M) {
	code := m.Run()
	harness.CloseShared()
	os.Exit(code)
}

var (
	runOnce sync.Once
	runFile *results.RunFile
	runErr  error
	runLog  []string
)

// maxAttempts bounds runs of the shipped scenarios. It is 1: the harness
// samples every probe as a window opens, so a window shorter than a probe's
// interval is not missed; a failure here is a real one, not to be retried.
const maxAttempts = 1

// realRun runs the shipped scenarios once per test binary, against a real
// PostgreSQL, and returns a deep copy of the results for the caller to change.
func realRun(t *testing.T) *results.RunFile {
	t.Helper()
	runOnce.Do(func() {
		for attempt := 1; attempt <= maxAttempts; attempt++ {
			runFile, runErr = runScenarios()
			if runErr != nil || allPassed(runFile) {
				return
			}
			for _, r := range runFile.Results {
				if r.Status != results.Passed {
					runLog = append(runLog, fmt.Sprintf("%s %s in attempt %d: %s", r.Name, r.Status, attempt, firstProblem(r)))
				}
			}
		}
	})
	for _, l := range runLog {
		t.Logf("re-ran the scenarios: %s", l)
	}
	if runErr != nil {
		t.Fatalf("run the shipped scenarios: %v", runErr)
	}
	return clone(t, runFile)
}

// passingRun is realRun for tests whose expectations assume every scenario
// passed (golden files, answers).
func passingRun(t *testing.T) *results.RunFile {
	t.Helper()
	rf := realRun(t)
	if !allPassed(rf) {
		for _, r := range rf.Results {
			if r.Status != results.Passed {
				t.Errorf("%s: %s: %s", r.Name, r.Status, firstProblem(r))
			}
		}
		t.Fatalf("the shipped scenarios did not all pass in %d attempts (see go test ./harness)", maxAttempts)
	}
	return rf
}

func runScenarios() (*results.RunFile, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	scenarios, err := harness.LoadPaths([]string{filepath.Join("..", "scenarios")})
	if err != nil {
		return nil, err
	}
	prov, err := harness.SharedProvider(ctx)
	if err != nil {
		return nil, err
	}
	runner := &harness.Runner{Provider: prov}
	started := time.Now()
	rs := make([]*results.Result, len(scenarios))
	var wg sync.WaitGroup
	for i, s := range scenarios {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs[i] = runner.Run(ctx, s)
		}()
	}
	wg.Wait()
	return &results.RunFile{Version: results.Version, Started: started, Duration: time.Since(started), Results: rs}, nil
}

func allPassed(rf *results.RunFile) bool {
	for _, r := range rf.Results {
		if r.Status != results.Passed {
			return false
		}
	}
	return true
}

func firstProblem(r *results.Result) string {
	if r.Error != "" {
		return r.Error
	}
	for _, o := range r.Expectations {
		if !o.Pass {
			return harness.FormatFailure(o)
		}
	}
	return ""
}

// clone is a deep copy, Secrets included (JSON does not carry them).
func clone(t *testing.T, rf *results.RunFile) *results.RunFile {
	t.Helper()
	b, err := json.Marshal(rf)
	if err != nil {
		t.Fatal(err)
	}
	var cp results.RunFile
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	for i, r := range rf.Results {
		if r != nil {
			cp.Results[i].Secrets = slices.Clone(r.Secrets)
		}
	}
	return &cp
}

func result(t *testing.T, rf *results.RunFile, name string) *results.Result {
	t.Helper()
	for _, r := range rf.Results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no scenario %q in the run", name)
	return nil
}

func render(t *testing.T, format string, rf *results.RunFile, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, format, rf, opts); err != nil {
		t.Fatalf("render %s: %v", format, err)
	}
	return buf.Bytes()
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with: go test ./reports -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./reports -update accepts the new output)\n%s", path, firstDifference(want, got))
	}
}

// firstDifference shows the first line where two texts differ.
func firstDifference(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, wl, gl)
		}
	}
	return ""
}
