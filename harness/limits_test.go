package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/results"
)

// Scenarios the hostile-input cases start from.
const (
	embeddedBase = "operation:\n  restore_from_file: {}\nexpect:\n  - invariant: sequences\n"
	httpBase     = "target: http\ntarget_file: t.yaml\noperation:\n  restore_from_file: {}\nexpect:\n  - invariant: sequences\n"
	// testKey is a signing key: no message may show it.
	testKey = "rehearse-test-signing-key-0123456789abcdef"
	passwd  = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
)

// returnsWithin runs f and fails the test if it has not returned after d: bad
// input must never hang the loader.
func returnsWithin(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %s", d)
	}
}

// Bad input named by a scenario or in it gets an error that says where and
// what to do, within a second, quoting little of it and nothing of a file
// that is not YAML.
func TestLoaderRefusesHostileInput(t *testing.T) {
	t.Setenv("REHEARSE_UNSET_PASSWORD", "")
	many := func(n int, entry string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, entry, i)
		}
		return b.String()
	}
	cases := []struct {
		name  string
		files map[string]string // besides s.yaml: names starting with | are FIFOs, with @ symlinks (to the content)
		yaml  string
		want  string
	}{
		{"target file is a FIFO", map[string]string{"|t.yaml": ""}, httpBase, `s.yaml:2:14: target_file: t.yaml: cannot read target file: it is a named pipe (FIFO); only a regular file is read`},
		{"target file outside the folder", nil, strings.Replace(httpBase, "t.yaml", "/dev/zero", 1), `s.yaml:2:14: target_file: /dev/zero: cannot read target file: it is outside the scenario's folder`},
		{"target file is a symlink out of the folder", map[string]string{"@t.yaml": "/etc/passwd"}, httpBase, `it is outside the scenario's folder`},
		{"target file is a key", map[string]string{"t.yaml": testKey + "\n"}, httpBase, `t.yaml:1:1: expected a mapping with keys admin, backup, base_url`},
		{"target file is a passwd file", map[string]string{"t.yaml": passwd}, httpBase, `t.yaml:1:1: expected a mapping with keys`},
		{"target file too large", map[string]string{"t.yaml": "login: {path: /x}\n" + strings.Repeat("#", maxFileBytes)}, httpBase, `target_file: t.yaml: cannot read target file: it is larger than 1024 KiB`},
		{"signing key file is a FIFO", map[string]string{"t.yaml": "signing_key_file: k\n", "|k": ""}, httpBase, `t.yaml:1:19: signing_key_file: k: it is a named pipe (FIFO)`},
		{"signing key file too large", map[string]string{"t.yaml": "signing_key_file: k\n", "k": strings.Repeat("k", maxKeyBytes+1)}, httpBase, `t.yaml:1:19: signing_key_file: k: it is larger than 64 KiB`},
		{"signing key file outside the folder", map[string]string{"t.yaml": "signing_key_file: ../k\n"}, httpBase, `t.yaml:1:19: signing_key_file: ../k: it is outside the scenario's folder`},
		{"inline signing key file outside the folder", nil, "target: http\nhttp: {signing_key_file: /etc/passwd}\n" + strings.Replace(embeddedBase, "invariant: sequences", "login: {user: author01, status: 200}", 1), `s.yaml:2:26: signing_key_file: /etc/passwd: it is outside`},
		{"backup file outside the folder", nil, strings.Replace(embeddedBase, "{}", "{backup_file: ../../../../etc/shadow}", 1), `s.yaml:2:22: backup_file: ../../../../etc/shadow: it is outside the scenario's folder`},
		{"backup file by absolute path outside", nil, strings.Replace(embeddedBase, "{}", "{backup_file: /etc/passwd}", 1), `backup_file: /etc/passwd: it is outside`},
		{"backup file is a symlink out of the folder", map[string]string{"@b.json": "/etc/passwd"}, strings.Replace(embeddedBase, "{}", "{backup_file: b.json}", 1), `backup_file: b.json: it is outside`},
		{"backup file is a FIFO", map[string]string{"|b.json": ""}, strings.Replace(embeddedBase, "{}", "{backup_file: b.json}", 1), `backup_file: b.json: it is a named pipe (FIFO)`},
		{"backup file is a folder", map[string]string{"b/x": "x"}, strings.Replace(embeddedBase, "{}", "{backup_file: b}", 1), `backup_file: b: it is a folder`},
		{"a long value is quoted short", nil, "fixture: " + strings.Repeat("a", 900_000) + "\n" + embeddedBase, `s.yaml:1:10: unknown fixture "` + strings.Repeat("a", maxQuoted-1) + `…"; known fixtures:`},
		{"a long key is quoted short", nil, "? " + strings.Repeat("k", 500_000) + "\n: 1\n" + embeddedBase, `s.yaml:1:3: unknown key "` + strings.Repeat("k", maxQuoted-1) + `…"; expected one of:`},
		{"a long name in a list", nil, "target: http\nhttp: {}\nusers: [{username: " + strings.Repeat("u", 500_000) + ", password: p}]\n" + embeddedBase + "  - login: {user: x, status: 200}\n", `unknown user "x": users: lists uuuu`},
		{"a broken second document", nil, embeddedBase + "---\nname: [\n", `s.yaml:6:1: not valid YAML: did not find expected node content`},
		{"junk after the end of the document", nil, embeddedBase + "...\njunk: [\n", `s.yaml:5:1: not valid YAML: did not find expected <document start>`},
		{"timeout too short", nil, "timeout: 1ns\n" + embeddedBase, `s.yaml:1:10: timeout 1ns is out of range: give between 1s`},
		{"timeout too long", nil, "timeout: 2562047h\n" + embeddedBase, `s.yaml:1:10: timeout 2562047h0m0s is out of range`},
		{"an interval longer than the timeout", nil, embeddedBase + "probes: [{name: p, every: 2562047h, login: {user: author01}}]\n", `s.yaml:5:27: every: 2562047h0m0s is longer than the scenario's timeout (1m0s)`},
		{"a pause longer than the timeout", nil, "timeout: 30s\noperation: {manual: {pause: 2562047h}}\nexpect: [{invariant: sequences}]\n", `s.yaml:2:29: pause: 2562047h0m0s is longer than the scenario's timeout (30s)`},
		{"a sleep longer than the timeout", nil, embeddedBase + "during: [{sleep: 61s}]\n", `s.yaml:5:18: sleep: 1m1s is longer than the scenario's timeout (1m0s)`},
		{"a window bound longer than the timeout", nil, embeddedBase + "  - window: {probe: p, min: 2562047h}\nprobes: [{name: p, login: {user: author01}}]\n", `s.yaml:5:29: min: 2562047h0m0s is longer than the scenario's timeout`},
		{"waits that add up to the timeout", nil, "timeout: 10s\n" + embeddedBase + "probes: [{name: p, every: 1s, login: {user: author01}}]\nduring: [{sleep: 2s}, {sleep: 2s}]\n", `s.yaml:1:10: the scenario waits 10s on its own`},
		{"too many probes", nil, embeddedBase + "probes:\n" + many(20_000, "  - {name: p%d, login: author01}\n"), `s.yaml:6:3: probes: 20000 entries; at most 100 are allowed`},
		{"too many tokens", nil, embeddedBase + "tokens:\n" + many(20_000, "  t%d: author01\n"), `s.yaml:6:3: tokens: 20000 entries; at most 100 are allowed`},
		{"too many checks", nil, embeddedBase + many(20_000, "  - invariant: sequences # %d\n"), `s.yaml:4:3: expect: 20001 entries; at most 1000 are allowed`},
		{"too many actions", nil, embeddedBase + "during:\n" + many(20_000, "  - sleep: %dns\n"), `s.yaml:6:3: during: 20000 entries; at most 1000 are allowed`},
		{"too many users", nil, "target: http\nhttp: {}\n" + embeddedBase + "users:\n" + many(20_000, "  - {username: u%d, password: p}\n"), `s.yaml:8:3: users: 20000 entries; at most 1000 are allowed`},
		{"a password_env that is not set", nil, "target: http\nhttp: {}\nusers: [{username: author01, password_env: REHEARSE_UNSET_PASSWORD}]\n" + embeddedBase, `s.yaml:3:9: user author01: password_env names REHEARSE_UNSET_PASSWORD, which is not set`},
		{"many problems", nil, embeddedBase + many(20_000, "k%d: 1\n"), `s.yaml:55:1: ... and more problems: only the first 50 are shown; fix these first`},
		{"many problems through an alias", nil, "x: &x {" + many(20_000, "k%d: 1, ") + "}\n" + embeddedBase + many(999, "  - *x # %d\n"), `... and more problems`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range c.files {
				writeInput(t, dir, name, content)
			}
			writeInput(t, dir, "s.yaml", c.yaml)
			var err error
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			returnsWithin(t, time.Second, func() { _, err = LoadFile(filepath.Join(dir, "s.yaml")) })
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
			if !strings.Contains(msg, c.want) {
				t.Errorf("error:\n%.2000s\nwant it to contain:\n%s", msg, c.want)
			}
			if !IsInputError(err) {
				t.Errorf("error %T is not an input error", err)
			}
			if len(msg) > (maxErrors+1)*(maxMessage+200) {
				t.Errorf("a message of %d bytes", len(msg))
			}
			for _, secret := range []string{testKey, "root:x:0:0"} {
				if strings.Contains(msg, secret) {
					t.Errorf("the message shows a file that is not YAML:\n%s", msg)
				}
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 200<<20 {
				t.Errorf("loading took %d MB", alloc>>20)
			}
		})
	}
}

// writeInput writes a file of a case: "|name" makes a FIFO, "@name" a
// symlink to content.
func writeInput(t *testing.T, dir, name, content string) {
	t.Helper()
	var err error
	switch {
	case strings.HasPrefix(name, "|"):
		err = syscall.Mkfifo(filepath.Join(dir, name[1:]), 0o600)
	case strings.HasPrefix(name, "@"):
		err = os.Symlink(content, filepath.Join(dir, name[1:]))
	default:
		path := filepath.Join(dir, name)
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = os.WriteFile(path, []byte(content), 0o600)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// Files named on the command line may be anywhere, but are still read only
// if they are regular files of bounded size; a scenario is read the same way.
func TestCommandLineFilesAreBounded(t *testing.T) {
	dir := t.TempDir()
	writeInput(t, dir, "|fifo.yaml", "")
	writeInput(t, dir, "big.yaml", strings.Repeat("#", maxFileBytes+1))
	for _, c := range []struct {
		name string
		load func() error
		want string
	}{
		{"target file is a device", func() error { _, err := LoadTargetFile("/dev/zero"); return err }, "/dev/zero: cannot read target file: it is a device; only a regular file is read"},
		{"target file is a FIFO", func() error { _, err := LoadTargetFile(filepath.Join(dir, "fifo.yaml")); return err }, "fifo.yaml: cannot read target file: it is a named pipe (FIFO)"},
		{"scenario is a FIFO", func() error { _, err := LoadFile(filepath.Join(dir, "fifo.yaml")); return err }, "fifo.yaml: cannot read scenario: it is a named pipe (FIFO)"},
		{"a folder holding a FIFO", func() error { _, err := LoadPaths([]string{dir}); return err }, "fifo.yaml: cannot read scenario: it is a named pipe (FIFO)"},
		{"scenario too large", func() error { _, err := LoadFile(filepath.Join(dir, "big.yaml")); return err }, "big.yaml: cannot read scenario: it is larger than 1024 KiB"},
		{"data too large", func() error { _, err := Parse("s.yaml", make([]byte, 20<<20)); return err }, "s.yaml:1:1: the file is 20971520 bytes; it may be at most 1048576 (1 MiB)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var err error
			returnsWithin(t, time.Second, func() { err = c.load() })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
		})
	}
	// A target file named on the command line names its key anywhere.
	key := filepath.Join(t.TempDir(), "signing.key")
	os.WriteFile(key, []byte(testKey+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "t.yaml"), []byte("signing_key_file: "+key+"\n"), 0o600)
	tf, err := LoadTargetFile(filepath.Join(dir, "t.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if k, err := tf.SigningKey(); err != nil || string(k) != testKey {
		t.Errorf("key %q, %v", k, err)
	}
}

// A backup command that outlives its scenario is stopped with everything it
// started, and the wait for it ends.
func TestBackupCommandEndsWithTheScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := runBackupCommand(ctx, BackupSpec{Command: "sleep 30; true"}, t.TempDir(), filepath.Join(t.TempDir(), "b.json"))
	if err == nil {
		t.Fatal("a command stopped by its context succeeded")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the command was waited for %s after its scenario ended", took)
	}
}

// Every wait of a run ends with the scenario's context (its timeout, or
// SIGINT/SIGTERM in the CLI), and the backup the harness took is removed.
func TestWaitsEndWithTheScenario(t *testing.T) {
	prov, err := SharedProvider(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, yaml string
		inWindow   bool // the wait is between reinit and restore
	}{
		{"a sleep in the window", "timeout: 50s\n" + embeddedBase + "during: [{sleep: 45s}]\n", true},
		{"a manual pause", "timeout: 50s\noperation: {manual: {pause: 45s}}\nexpect: [{invariant: sequences}]\n", true},
		{"a probe's interval", "timeout: 50s\n" + embeddedBase + "probes: [{name: p, every: 5s, login: {user: author01}}]\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(filepath.Join(t.TempDir(), "s.yaml"), []byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			runner := &Runner{Provider: prov, tempDir: tmp}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cancelled := make(chan time.Time, 1)
			go func() { // cancel once the operation is well under way
				for len(backups(tmp)) == 0 && ctx.Err() == nil {
					time.Sleep(5 * time.Millisecond)
				}
				time.Sleep(time.Second)
				cancelled <- time.Now()
				cancel()
			}()
			var res *results.Result
			returnsWithin(t, 20*time.Second, func() { res = runner.Run(ctx, s) })
			if res.Status != results.Errored {
				t.Errorf("status %s: %s", res.Status, res.Error)
			}
			if _, reinit := res.Phase(results.PhaseReinitCommitted); reinit != c.inWindow {
				t.Errorf("cancelled elsewhere than meant (reinit committed: %v): %s", reinit, res.Error)
			}
			select {
			case at := <-cancelled:
				if late := time.Since(at); late > 2*time.Second {
					t.Errorf("the run ended %s after its context", late)
				}
			default:
				t.Errorf("the run ended by itself (%s) before it was cancelled", res.Error)
			}
			if left := backups(tmp); len(left) > 0 {
				t.Errorf("backups left behind: %v", left)
			}
		})
	}
}

func backups(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "rehearse-backup-*"))
	return m
}
