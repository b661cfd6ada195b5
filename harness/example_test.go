package harness_test

import (
	"flag"
	"fmt"
	"testing"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/results"
)

// In a _test.go file of your own, one line runs every scenario of a folder
// as a subtest (go test -run 'TestScenarios/seed-flow' picks some), on a
// throwaway PostgreSQL cluster that t.Cleanup removes:
//
//	func TestScenarios(t *testing.T) {
//		harness.Run(t, harness.Params{Dir: "scenarios", SkipWithoutPostgreSQL: true})
//	}
//
// Here that test runs through testing.RunTests, so the example can show
// what Done receives.
func ExampleRun() {
	testScenarios := func(t *testing.T) {
		harness.Run(t, harness.Params{
			Files: []string{"../scenarios/seed-flow-atomic.yaml", "../scenarios/seed-flow-two-phase.yaml"},
			Done: func(rs []*results.Result) {
				for _, r := range rs {
					fmt.Printf("%s: %s\n", r.Name, r.Status)
				}
			},
		})
	}
	defer quiet()()
	ok := testing.RunTests(func(_, _ string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "TestScenarios", F: testScenarios}})
	fmt.Println("ok:", ok)
	// Output:
	// seed-flow-atomic: passed
	// seed-flow-two-phase: passed
	// ok: true
}

// quiet turns go test -v off while the example's own test runs (its
// "=== RUN" lines would be part of the example's output), and returns what
// turns it back.
func quiet() func() {
	v := flag.Lookup("test.v")
	old := v.Value.String()
	v.Value.Set("false")
	return func() { v.Value.Set(old) }
}
