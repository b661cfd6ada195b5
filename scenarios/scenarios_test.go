package scenarios_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/internal/procowner"
	"github.com/rehearse-dev/rehearse/results"
)

// ran counts the shipped scenarios TestScenarios ran, and clustersDuring the
// throwaway clusters of this process while they ran.
var ran, clustersDuring int

// Every shipped scenario runs as a subtest: go test ./scenarios -run
// 'TestScenarios/seed-flow'. No TestMain: harness.Run closes the cluster it
// started with t.Cleanup.
func TestScenarios(t *testing.T) {
	harness.Run(t, harness.Params{Dir: ".", Done: func(rs []*results.Result) {
		ran, clustersDuring = len(rs), len(clustersOfThisProcess(t))
	}})
}

// TestScenarios left no cluster behind. Go test runs the top-level tests of
// a file in order, so this one runs after TestScenarios and its cleanup.
func TestNoClusterLeftBehind(t *testing.T) {
	if ran == 0 {
		t.Skip("TestScenarios did not run a scenario")
	}
	if os.Getenv("REHEARSE_PROVIDER") == "" && os.Getenv("REHEARSE_DSN") == "" && clustersDuring == 0 {
		t.Fatal("no throwaway cluster of this process was found while the scenarios ran: the check below would prove nothing")
	}
	if dirs := clustersOfThisProcess(t); len(dirs) > 0 {
		t.Errorf("clusters left behind after harness.Run: %s", strings.Join(dirs, ", "))
	}
}

// clustersOfThisProcess lists the throwaway clusters (package pglocal's
// rehearse-pg-* folders, each with an owner file) this process started.
func clustersOfThisProcess(t *testing.T) []string {
	var dirs []string
	for _, base := range []string{"/dev/shm", os.TempDir()} {
		matches, _ := filepath.Glob(filepath.Join(base, "rehearse-pg-*", "rehearse-owner"))
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				continue // removed meanwhile
			}
			if o, err := procowner.Parse(string(b)); err == nil && o.PID == os.Getpid() {
				dirs = append(dirs, filepath.Dir(m))
			}
		}
	}
	return dirs
}
