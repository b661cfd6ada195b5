package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rehearse-dev/rehearse/pg/provider"
	"github.com/rehearse-dev/rehearse/results"
)

// Run runs the scenarios p names as subtests of t, named after each
// scenario, so `go test -run 'TestScenarios/seed-flow'` selects scenarios.
// A failed expectation is reported at the scenario's file:line:col with the
// expected and measured values and the relevant timeline. A malformed file
// fails its own subtest (named after the file) and no other.
//
// The databases come from a provider shared by the tests of the process
// that ask for the same one (Params.Provider, else $REHEARSE_PROVIDER /
// $REHEARSE_DSN, else a local throwaway cluster); it starts with the first
// scenario that needs it, and t.Cleanup closes it when the last test using
// it is done, so no TestMain is needed and nothing is left running.
// $REHEARSE_SHARD=K/N runs the Kth of N shards of the scenarios (see Shard).
func Run(t *testing.T, p Params) {
	t.Helper()
	entries, err := p.entries()
	if err != nil {
		t.Fatal(err)
	}
	sh, err := ShardFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	picked := pick(sh, entries, func(e entry) string { return e.name })
	if !sh.All() {
		t.Logf("%s=%s: %d of %d scenarios", ShardEnv, sh, len(picked), len(entries))
	}
	s := &suite{params: p, out: make([]*results.Result, len(picked))}
	if s.cfg, err = p.config(); err != nil {
		t.Fatal(err)
	}
	if p.Parallel > 1 {
		s.sem = make(chan struct{}, p.Parallel)
	}
	s.http = &Runner{BaseURL: p.BaseURL, DSN: p.DSN}
	t.Cleanup(func() { s.close(t) })
	for i, e := range picked {
		t.Run(e.name, func(t *testing.T) { s.run(t, i, e) })
	}
}

// entry is one subtest of Run: a scenario, or a file that did not load.
type entry struct {
	name string
	s    *Scenario
	err  InputErrors
}

// entries loads the scenarios; the files that do not load become entries
// of their own, named after the file. A path that names nothing is an
// error of the whole test.
func (p Params) entries() ([]entry, error) {
	paths, err := p.paths()
	if err != nil {
		return nil, err
	}
	scenarios, err := LoadPaths(paths)
	var bad InputErrors
	if err != nil && !errors.As(err, &bad) {
		return nil, err
	}
	var out []entry
	for _, s := range scenarios {
		out = append(out, entry{name: s.Name, s: s})
	}
	byFile := map[string]int{}
	for _, ie := range bad {
		i, ok := byFile[ie.Pos.File]
		if !ok {
			i = len(out)
			byFile[ie.Pos.File] = i
			out = append(out, entry{name: strings.TrimSuffix(filepath.Base(ie.Pos.File), filepath.Ext(ie.Pos.File))})
		}
		out[i].err = append(out[i].err, ie)
	}
	return out, nil
}

// suite is one call of Run.
type suite struct {
	params Params
	cfg    provider.Config
	sem    chan struct{}
	out    []*results.Result
	http   *Runner // for target: http, which needs no provider

	once    sync.Once
	db      *Runner // for the embedded target, on the shared provider
	dbErr   error
	release func() error
}

func (s *suite) run(t *testing.T, i int, e entry) {
	if e.err != nil {
		t.Fatalf("invalid scenario file:\n%v", e.err)
	}
	if s.params.Parallel != 1 {
		t.Parallel()
	}
	if s.sem != nil {
		s.sem <- struct{}{}
		defer func() { <-s.sem }()
	}
	runner := s.http
	if e.s.Target != TargetHTTP {
		var err error
		if runner, err = s.dbRunner(); err != nil {
			if s.params.SkipWithoutPostgreSQL {
				t.Skipf("no PostgreSQL (provider %s): %v", s.cfg.ResolvedKind(), err)
			}
			t.Fatalf("start PostgreSQL (provider %s): %v", s.cfg.ResolvedKind(), err)
		}
	}
	s.out[i] = RunOne(t, runner, e.s)
}

// dbRunner starts the shared provider on first use.
func (s *suite) dbRunner() (*Runner, error) {
	s.once.Do(func() {
		var prov Provider
		prov, s.release, s.dbErr = acquire(context.Background(), s.cfg)
		if s.dbErr == nil {
			s.db = &Runner{Provider: prov, BaseURL: s.params.BaseURL, DSN: s.params.DSN}
		}
	})
	return s.db, s.dbErr
}

// close runs once every subtest is done: Done, then the runners and the
// provider.
func (s *suite) close(t *testing.T) {
	if s.params.Done != nil {
		var ran []*results.Result
		for _, r := range s.out {
			if r != nil {
				ran = append(ran, r)
			}
		}
		s.params.Done(ran)
	}
	s.http.Close()
	if s.db != nil {
		if err := errors.Join(s.db.Close(), s.release()); err != nil {
			t.Errorf("close the provider: %v", err)
		}
	}
}

// RunOne runs one loaded scenario under t and reports its outcome.
func RunOne(t *testing.T, runner *Runner, s *Scenario) *results.Result {
	t.Helper()
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	res := runner.Run(ctx, s)
	Report(t, res)
	return res
}

// TB is what Report needs from a test: testing.T, or the CLI's adapter.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// Report turns a result into test failures: an error for a harness problem,
// one failure per failed expectation.
func Report(t TB, res *results.Result) {
	t.Helper()
	if res.Status == results.Errored {
		t.Errorf("ERROR (the harness could not run the scenario): %s", res.Error)
		return
	}
	for _, o := range res.Expectations {
		if o.Pass {
			continue
		}
		t.Errorf("%s", FormatFailure(o))
	}
	t.Logf("%s: %s in %s (setup %s)", res.Name, res.Status, res.Duration.Round(1e6), res.Setup.Round(1e6))
}

// FormatFailure renders a failed expectation for people: where, what was
// expected, what was measured, and the timeline around it.
func FormatFailure(o results.Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: expectation failed: %s\n    expected: %s\n    measured: %s", rel(o.Pos), o.Subject, o.Expected, o.Measured)
	if o.Excerpt != "" {
		b.WriteString("\n    timeline:\n")
		for _, line := range strings.Split(o.Excerpt, "\n") {
			b.WriteString("      " + line + "\n")
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

func rel(p Pos) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, p.File); err == nil && !strings.HasPrefix(r, "..") {
			p.File = r
		}
	}
	return p.String()
}

// IsInputError reports whether err is a problem in scenario files.
func IsInputError(err error) bool {
	var one *InputError
	var many InputErrors
	return errors.As(err, &one) || errors.As(err, &many)
}
