package harness_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/results"
)

const helperEnv = "REHEARSE_RUN_HELPER"

// TestRunHelper is the go test that the tests below run in a child process:
// harness.Run on testdata/gotest (good.yaml and the malformed broken.yaml),
// with the Params the environment gives. It is skipped in a normal run.
func TestRunHelper(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestRunMalformedFileFailsOnlyItsOwnSubtest")
	}
	p := harness.Params{Dir: dir, SkipWithoutPostgreSQL: os.Getenv(helperEnv+"_SKIP") == "1"}
	if os.Getenv(helperEnv+"_SERIAL") == "1" {
		p.Parallel = 1
	}
	harness.Run(t, p)
}

// child runs TestRunHelper (or the subtests run selects) in a new process
// and returns its exit code and its output.
func child(t *testing.T, run string, env ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", run, "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=testdata/gotest"}, env...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, string(out)
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

// A malformed file fails its own subtest, named after the file, and no
// other; -run that picks a good scenario passes. The subtests are
// TestX/<scenario>.
func TestRunMalformedFileFailsOnlyItsOwnSubtest(t *testing.T) {
	code, out := child(t, "^TestRunHelper$")
	if code != 1 {
		t.Errorf("exit %d, want 1 (broken.yaml fails)", code)
	}
	wantLines(t, out, "--- FAIL: TestRunHelper/broken ", `testdata/gotest/broken.yaml:6:5: unknown key "windw"`,
		"--- PASS: TestRunHelper/good ", "=== PAUSE TestRunHelper/good")

	// Without PostgreSQL, so that good is skipped: the run passes.
	code, out = child(t, "^TestRunHelper$/^good$", "REHEARSE_PG_BIN="+t.TempDir(), "REHEARSE_PROVIDER=local", helperEnv+"_SKIP=1")
	if code != 0 {
		t.Errorf("-run TestRunHelper/good: exit %d, want 0 (the malformed file is not selected):\n%s", code, out)
	}
	wantLines(t, out, "--- SKIP: TestRunHelper/good ")
}

// Without PostgreSQL a scenario fails saying so, or is skipped when
// SkipWithoutPostgreSQL asks; a malformed file fails either way. Parallel 1
// runs the scenarios one after another.
func TestRunWithoutPostgreSQL(t *testing.T) {
	nowhere := "REHEARSE_PG_BIN=" + t.TempDir()
	code, out := child(t, "^TestRunHelper$", nowhere, "REHEARSE_PROVIDER=local", helperEnv+"_SKIP=1")
	if code != 1 {
		t.Errorf("exit %d, want 1 (broken.yaml fails)", code)
	}
	wantLines(t, out, "--- SKIP: TestRunHelper/good ", "no PostgreSQL (provider local)", "--- FAIL: TestRunHelper/broken ")

	code, out = child(t, "^TestRunHelper$", nowhere, "REHEARSE_PROVIDER=local", helperEnv+"_SERIAL=1")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantLines(t, out, "--- FAIL: TestRunHelper/good ", "start PostgreSQL (provider local)", "REHEARSE_PG_BIN")
	if strings.Contains(out, "=== PAUSE") {
		t.Errorf("Parallel: 1 paused a subtest (t.Parallel):\n%s", out)
	}
}

// REHEARSE_SHARD=K/N runs the Kth of N shards: together exactly the
// scenarios, each once, the shards differing in size by one at most.
func TestRunShards(t *testing.T) {
	all, err := harness.LoadPaths([]string{"../scenarios"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	var got [][]string
	for _, sh := range []string{"1/2", "2/2"} {
		t.Run(sh, func(t *testing.T) {
			t.Setenv(harness.ShardEnv, sh)
			harness.Run(t, harness.Params{Dir: "../scenarios", Done: func(rs []*results.Result) {
				var ran []string
				for _, r := range rs {
					ran = append(ran, r.Name)
				}
				got = append(got, ran)
			}})
		})
	}
	if len(got) != 2 {
		t.Fatalf("%d shards ran, want 2", len(got))
	}
	if d := len(got[0]) - len(got[1]); d < -1 || d > 1 || len(got[1]) == 0 {
		t.Errorf("shards of %d and %d scenarios", len(got[0]), len(got[1]))
	}
	union := slices.Sorted(slices.Values(append(slices.Clone(got[0]), got[1]...)))
	if !slices.Equal(union, slices.Sorted(slices.Values(names))) {
		t.Errorf("shards %v + %v are not the suite %v", got[0], got[1], names)
	}
}

func TestParseShard(t *testing.T) {
	for in, want := range map[string]harness.Shard{"": {}, "1/1": {K: 1, N: 1}, "2/3": {K: 2, N: 3}, " 3 / 3 ": {K: 3, N: 3}} {
		if got, err := harness.ParseShard(in); err != nil || got != want {
			t.Errorf("ParseShard(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0/2", "3/2", "1/0", "2", "a/b", "1/2/3"} {
		if _, err := harness.ParseShard(in); err == nil || !strings.Contains(err.Error(), "want K/N") {
			t.Errorf("ParseShard(%q): %v, want an error saying K/N", in, err)
		}
	}
}
