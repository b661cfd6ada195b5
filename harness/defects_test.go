package harness_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/results"
)

// Every check the harness makes must be able to fail. Each case starts from a
// shipped scenario, breaks the system (a named defect of the reference
// system) or the expectation, and shows that exactly the matching
// expectation fails, with a message that says what was measured.
func TestChecksFailWhenTheSystemIsBroken(t *testing.T) {
	cases := []struct {
		name     string
		file     string
		mutate   func(t *testing.T, file string) *harness.Scenario
		kind     string // the expectation that must fail
		subject  string // ... its subject contains this
		measured string // ... its measured value contains this
	}{
		{"tokens not revoked", "seed-flow-two-phase.yaml", defect("no-revocation"),
			"profile", "author_old", "200 (authenticated as author01)"},
		{"refresh tokens not revoked", "seed-flow-two-phase.yaml", defect("no-revocation"),
			"refresh", "author_old", "200"},
		{"sequences not moved", "seed-flow-two-phase.yaml", defect("skip-sequences"),
			"invariant", "sequences", "users_user.id: next 6 ≤ max 7"},
		{"one table not restored", "seed-flow-two-phase.yaml", defect("skip-table=workflows_workflowassignment"),
			"invariant", "counts_match_backup", "workflows_workflowassignment"},
		{"foreign key left dangling", "seed-flow-two-phase.yaml", defect("dangling-fk"),
			"invariant", "foreign_keys", "orphan rows"},
		{"passwords from the wrong field: logins", "seed-flow-two-phase.yaml", defect("password-from=last_name"),
			"login", "with the original password", "author01: 401"},
		{"passwords from the wrong field: hashes", "seed-flow-two-phase.yaml", defect("password-from=last_name"),
			"invariant", "hashes_match_backup", "author01"},
		// The engine refuses a restore that would leave orphans, so users can
		// only go missing when its FK checks are off too.
		{"users not restored: ids", "seed-flow-two-phase.yaml", defect("dangling-fk", "skip-table=users_user"),
			"invariant", "ids_unchanged", "author01 missing"},
		// Logins that never come back: a bounded window must not pass.
		{"an outage that never ends", "seed-flow-two-phase.yaml", defect("dangling-fk", "skip-table=users_user"),
			"window", "author01-login", "still failing when sampling stopped"},
		// The expectation is the thing broken: the system did what it does.
		{"an outage where none is allowed", "seed-flow-two-phase.yaml", expect("window: {probe: author01-login, max: 0s}"),
			"window", "author01-login", "samples failed"},
		{"no outage where one is expected", "seed-flow-atomic.yaml", expect("window: {probe: author01-login, min: 1ms, max: 30s}"),
			"window", "author01-login", "(0 of"},
		{"a probe that never failed", "seed-flow-atomic.yaml", expect("probe: {name: author01-login, ever_failed: true}"),
			"probe", "author01-login", "ever_failed: false"},
		{"test123 during the window", "seed-flow-two-phase.yaml", expect("during_window: {probe: admin-test123, succeeded: false}"),
			"during_window", "admin-test123", "succeeded: true"},
		{"admin id claim", "seed-flow-atomic.yaml", expect("admin_id: {unchanged: false}"),
			"admin_id", "admin", "id 5 before, 5 after"},
		{"a login slower than the bound", "seed-flow-atomic.yaml", expect("latency: {probe: author01-login, max: 1us}"),
			"latency", "author01-login", "max"},
		{"pk reuse flagged", "pk-reuse.yaml", expect("pk_reuse: {detected: false}"),
			"pk_reuse", "primary-key", "authenticated as mallory"},
	}
	runner := &harness.Runner{Provider: sharedProvider(t)}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := c.mutate(t, "../scenarios/"+c.file)
			res := runner.Run(context.Background(), s)
			if res.Status == results.Errored {
				t.Fatalf("harness error: %s", res.Error)
			}
			var hit *results.Outcome
			for i, o := range res.Expectations {
				if !o.Pass && o.Kind == c.kind && strings.Contains(o.Subject, c.subject) {
					hit = &res.Expectations[i]
				}
			}
			if hit == nil {
				t.Fatalf("no failed %s expectation about %q; outcomes: %+v", c.kind, c.subject, res.Expectations)
			}
			if !strings.Contains(hit.Measured, c.measured) {
				t.Errorf("measured %q does not contain %q", hit.Measured, c.measured)
			}
			msg := harness.FormatFailure(*hit)
			if !strings.Contains(msg, c.file+":") || !strings.Contains(msg, "expected:") {
				t.Errorf("failure message lacks file:line or expected/measured:\n%s", msg)
			}
			t.Logf("caught as expected:\n%s", msg)
		})
	}
}

// defect loads a shipped scenario and starts its system with a defect.
func defect(names ...string) func(*testing.T, string) *harness.Scenario {
	return func(t *testing.T, file string) *harness.Scenario {
		s, err := harness.LoadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s.Defects = append(s.Defects, names...)
		return s
	}
}

// expect appends one expectation (YAML) to a copy of a shipped scenario, so
// that it keeps a file:line like any other.
func expect(yamlLine string) func(*testing.T, string) *harness.Scenario {
	return func(t *testing.T, file string) *harness.Scenario {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), filepath.Base(file))
		data = append(bytes.TrimRight(data, "\n"), []byte("\n  - "+yamlLine+"\n")...)
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := harness.LoadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

func sharedProvider(t *testing.T) harness.Provider {
	p, err := harness.SharedProvider(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// An operation that did not happen is never measured: a refused call makes
// the scenario an error that leads with the call's answer, and no check is
// judged. Without the wrong phrase the same scenario passes.
func TestRefusedCallIsNotMeasured(t *testing.T) {
	runner := &harness.Runner{Provider: sharedProvider(t)}
	s, err := harness.LoadFile("../scenarios/seed-flow-two-phase.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s.Operation.RestoreFromFile.Confirm = "RESTORE DIRTY"
	res := runner.Run(context.Background(), s)
	if res.Status != results.Errored || !strings.HasPrefix(res.Error, "not measured: the restore call was refused: 400") {
		t.Fatalf("status %s, error %q: want an error that says the call was refused", res.Status, res.Error)
	}
	if len(res.Expectations) != 0 || res.Facts.Outcome != results.OperationRefused || res.Facts.Window != results.WindowNotObserved {
		t.Errorf("a refused call was judged: outcome %s, window %s, %d outcomes", res.Facts.Outcome, res.Facts.Window, len(res.Expectations))
	}
	if res.Facts.UsersAfter == nil || *res.Facts.UsersAfter != res.Facts.UsersBefore {
		t.Errorf("users after a refused call: %v of %d", res.Facts.UsersAfter, res.Facts.UsersBefore)
	}
	s.Operation.RestoreFromFile.Confirm = ""
	if res := runner.Run(context.Background(), s); res.Status != results.Passed || res.Facts.Outcome != results.OperationCompleted {
		t.Errorf("with the right phrase: %s %s %s", res.Status, res.Facts.Outcome, res.Error)
	}
}
