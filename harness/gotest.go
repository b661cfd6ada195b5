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

	"github.com/rehearse-dev/rehearse/results"
)

var (
	sharedOnce     sync.Once
	sharedProvider Provider
	sharedErr      error
)

// SharedProvider returns the process-wide provider, starting it on first use.
func SharedProvider(ctx context.Context) (Provider, error) {
	sharedOnce.Do(func() {
		sharedProvider, sharedErr = openProvider(ctx, "", nil)
	})
	return sharedProvider, sharedErr
}

// CloseShared stops the process-wide provider (TestMain, or the CLI on exit).
func CloseShared() {
	if sharedProvider != nil {
		sharedProvider.Close()
	}
}

// Run runs every scenario file under dir as a parallel subtest of t, named
// after the scenario, so `go test -run 'TestScenarios/seed'` selects
// scenarios. A failed expectation is reported at the scenario's file:line
// with the expected and measured values and the relevant timeline.
//
// The databases come from the process-wide provider: a local throwaway
// cluster, or what REHEARSE_PROVIDER / REHEARSE_DSN name.
func Run(t *testing.T, dir string) []*results.Result {
	t.Helper()
	prov, err := SharedProvider(context.Background())
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	return RunWith(t, dir, prov)
}

// RunWith is Run on a given provider.
func RunWith(t *testing.T, dir string, prov Provider) []*results.Result {
	t.Helper()
	scenarios, err := LoadPaths([]string{dir})
	if err != nil {
		t.Fatalf("load scenarios:\n%v", err)
	}
	runner := &Runner{Provider: prov}
	defer runner.Close()
	out := make([]*results.Result, len(scenarios))
	t.Run("scenario", func(t *testing.T) {
		for i, s := range scenarios {
			t.Run(s.Name, func(t *testing.T) {
				t.Parallel()
				out[i] = RunOne(t, runner, s)
			})
		}
	})
	return out
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
