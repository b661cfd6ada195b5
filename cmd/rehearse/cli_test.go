package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/reports"
	"github.com/rehearse-dev/rehearse/scenarios"
	"go.yaml.in/yaml/v3"
)

// --version names the module and, in a binary built from a git checkout,
// the revision it was built from.
func TestVersion(t *testing.T) {
	if code, out, _ := rehearse(t, "--version"); code != exitOK || !strings.HasPrefix(out, "rehearse ") || !strings.Contains(out, "(module github.com/rehearse-dev/rehearse)") {
		t.Errorf("--version: exit %d: %q", code, out)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not in a git checkout (%v): no revision to compare with", err)
	}
	out, err := exec.Command(buildRehearse(t), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "revision " + strings.TrimSpace(string(head)); !strings.Contains(string(out), want) {
		t.Errorf("--version of a binary built here: %q, want it to say %q", out, want)
	}
}

// help CMD prints the page CMD -h prints (on standard output, -h on
// standard error); help alone is the usage, help of an unknown command an
// error.
func TestHelpCommandIsDashH(t *testing.T) {
	for name := range commands {
		code, page, _ := rehearse(t, "help", name)
		_, _, dashH := rehearse(t, name, "-h")
		if code != exitOK || page != dashH || !strings.HasPrefix(page, "Usage: rehearse "+name) {
			t.Errorf("help %s: exit %d\n%s\nwant what %s -h prints:\n%s", name, code, page, name, dashH)
		}
	}
	if code, out, _ := rehearse(t, "help"); code != exitOK || !strings.Contains(out, "Commands:") {
		t.Errorf("help: exit %d\n%s", code, out)
	}
	if code, out, errs := rehearse(t, "help", "frobnicate"); code != exitError || out != "" || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("help frobnicate: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// From a directory without scenarios/, run takes the shipped scenarios
// built into the binary (the same as scenarios/ in the source). -q prints
// one line per scenario and the summary; --shard 1/2 and REHEARSE_SHARD=2/2
// run halves that together are the suite, each scenario once.
func TestBuiltinScenariosQuietInShards(t *testing.T) {
	source, err := harness.LoadPaths([]string{"../../scenarios"})
	if err != nil {
		t.Fatal(err)
	}
	builtin, err := loadBuiltin(scenarios.FS)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, s := range source {
		want = append(want, s.Name)
		if i >= len(builtin) || builtin[i].Name != s.Name || len(builtin[i].Expect) != len(s.Expect) {
			t.Fatalf("the built-in scenarios are not those of scenarios/ (%d built in, %d there)", len(builtin), len(source))
		}
	}
	t.Chdir(t.TempDir())
	line := regexp.MustCompile(`^PASS  (\S+) \(\S+, setup \S+\)$`)
	var got []string
	for _, shard := range []string{"--shard=1/2", "env 2/2"} {
		args := []string{"run", "-q", "--report-dir", ""}
		if shard == "env 2/2" {
			t.Setenv(harness.ShardEnv, "2/2")
		} else {
			args = append(args, shard)
		}
		code, stdout, stderr := rehearse(t, args...)
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s\n%s", shard, code, stdout, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		n := len(lines) - 1
		if !strings.HasPrefix(lines[n], "3 passed, 0 failed, 0 errors in ") {
			t.Errorf("%s: last line %q, want the summary of 3 scenarios", shard, lines[n])
		}
		for _, l := range lines[:n] {
			m := line.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("%s: with -q, a line that is not a scenario's: %q", shard, l)
				continue
			}
			got = append(got, m[1])
		}
	}
	slices.Sort(want)
	if slices.Sort(got); !slices.Equal(got, want) {
		t.Errorf("the two shards ran %v, want the suite %v, each once", got, want)
	}
	if code, stdout, _ := rehearse(t, "validate"); code != exitOK || strings.Count(stdout, "ok  scenarios/") != len(want) {
		t.Errorf("validate with no path: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := rehearse(t, "run", "--shard", "3/2"); code != exitError || !strings.Contains(stderr, "want K/N") {
		t.Errorf("--shard 3/2: exit %d: %s", code, stderr)
	}
}

// While scenarios run, rehearse says so whenever it printed nothing for a
// while.
func TestHeartbeatOnLongWaits(t *testing.T) {
	was := heartbeatEvery
	heartbeatEvery = 50 * time.Millisecond
	t.Cleanup(func() { heartbeatEvery = was })
	dir := t.TempDir()
	b, err := os.ReadFile("../../scenarios/seed-manual-3-step.yaml") // pauses 200ms in its window
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "slow.yaml"), b, 0o644)
	code, stdout, stderr := rehearse(t, "run", "--report-dir", "", dir)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`(?m)^  … still running: seed-manual-3-step \(\d+s\)$`).MatchString(stdout) {
		t.Errorf("no heartbeat while the scenario ran:\n%s", stdout)
	}
}

// schema prints the shipped JSON Schemas, draft-07; anything else is an
// error that lists what it knows.
func TestSchemaCommand(t *testing.T) {
	for name, want := range map[string][]byte{"scenario": harness.JSONSchema(), "target": harness.TargetJSONSchema(), "results": reports.Schema()} {
		code, out, errs := rehearse(t, "schema", name)
		if code != exitOK || out != string(want) || !strings.Contains(out, `"$schema": "http://json-schema.org/draft-07/schema#"`) {
			t.Errorf("schema %s: exit %d, %d bytes (want the shipped draft-07 schema, %d bytes): %s", name, code, len(out), len(want), errs)
		}
	}
	if code, _, errs := rehearse(t, "schema", "scenarios"); code != exitError || !strings.Contains(errs, "give one of results, scenario, target") {
		t.Errorf("schema scenarios: exit %d: %s", code, errs)
	}
}

// The example CI workflow is valid YAML and its command runs: each shard's
// rehearse run line, as the matrix fills it in, passes and writes the
// reports where the workflow's later steps pick them up.
func TestCIWorkflowCommandRuns(t *testing.T) {
	data, err := os.ReadFile("../../docs/ci/github-actions.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Run  string            `yaml:"run"`
				With map[string]string `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatalf("docs/ci/github-actions.yml: %v", err)
	}
	var cmdline string
	var paths []string
	for _, job := range wf.Jobs {
		for _, st := range job.Steps {
			if strings.HasPrefix(st.Run, "rehearse run ") {
				cmdline = st.Run
			}
			for _, k := range []string{"path", "report_paths"} {
				if v := st.With[k]; v != "" {
					paths = append(paths, v)
				}
			}
		}
	}
	if cmdline == "" || len(paths) != 2 {
		t.Fatalf("no rehearse run step, or not both the artifact and the JUnit step (%q, %v)", cmdline, paths)
	}
	t.Chdir(t.TempDir())
	args := strings.Fields(strings.ReplaceAll(cmdline, "${{ matrix.shard }}", "1"))[1:]
	if code, stdout, stderr := rehearse(t, append(args, "-q")...); code != exitOK {
		t.Fatalf("%s: exit %d\n%s\n%s", cmdline, code, stdout, stderr)
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the workflow publishes %s, which the run did not write: %v", p, err)
		}
	}
}
