package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/results"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func rehearse(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageAndUnknownCommand(t *testing.T) {
	if code, out, _ := rehearse(t, "help"); code != exitOK || !strings.Contains(out, "restore") || !strings.Contains(out, "run") {
		t.Errorf("help: %d %s", code, out)
	}
	if code, _, errs := rehearse(t, "frobnicate"); code != exitError || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %s", code, errs)
	}
	if code, _, errs := rehearse(t, "restore", "--strategy", "fast", "--dsn", "x", "--from-file", "y"); code != exitError || !strings.Contains(errs, `unknown strategy "fast"`) {
		t.Errorf("bad strategy: %d %s", code, errs)
	}
	if code, _, errs := rehearse(t, "reinit", "--dsn", "x"); code != exitError || !strings.Contains(errs, "--dry-run") {
		t.Errorf("reinit without --dry-run/--confirm: %d %s", code, errs)
	}
	if code, _, errs := rehearse(t, "serve", "--addr", "10.1.2.3:80"); code != exitError || !strings.Contains(errs, "not a loopback address") {
		t.Errorf("serve on a non-loopback address: %d %s", code, errs)
	}
	if code, _, errs := rehearse(t, "serve", "--addr", "127.0.0.1:99999"); code != exitError || !strings.Contains(errs, "the port must be a number from 0 to 65535") {
		t.Errorf("serve on a bad port: %d %s", code, errs)
	}
}

// A malformed scenario: exit 2, file:line:col, nothing run, no panic.
func TestMalformedScenarioExits2(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("operation:\n  restore_from_file: {as: nobody}\nexpect:\n  - invariant: sequences\n  - windw: {probe: p}\n"), 0o644)
	for _, cmd := range []string{"validate", "run"} {
		code, _, errs := rehearse(t, cmd, bad)
		if code != exitError {
			t.Errorf("%s: exit %d, want 2", cmd, code)
		}
		if !strings.Contains(errs, "bad.yaml:5:5: unknown key \"windw\" (did you mean \"window\"?)") {
			t.Errorf("%s: stderr lacks the positioned error:\n%s", cmd, errs)
		}
	}
	if code, _, errs := rehearse(t, "run", filepath.Join(dir, "missing.yaml")); code != exitError || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: %d %s", code, errs)
	}
}

// Pass → 0 with a summary and JSON results; a failed expectation → 1.
// With no arguments, run takes scenarios/ and writes into results/.
func TestRunExitCodesAndResults(t *testing.T) {
	good, err := os.ReadFile("../../scenarios/seed-flow-atomic.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	dir := "scenarios"
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "good.yaml"), good, 0o644)
	out := filepath.Join("results", "results.json")
	code, stdout, stderr := rehearse(t, "run")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "1 passed, 0 failed, 0 errors") || !strings.Contains(stdout, "PASS  seed-flow-atomic") {
		t.Errorf("no summary:\n%s", stdout)
	}
	var rf results.RunFile
	b, err := os.ReadFile(out)
	if err != nil || json.Unmarshal(b, &rf) != nil || rf.Version != results.Version || len(rf.Results) != 1 {
		t.Fatalf("results file: %v %s", err, b)
	}

	broken := strings.Replace(string(good), "strategy: atomic", "strategy: atomic\ndefects: [no-revocation]", 1)
	os.WriteFile(filepath.Join(dir, "good.yaml"), []byte(broken), 0o644)
	for _, f := range []string{"report.md", "report.html", "junit.xml"} {
		if _, err := os.Stat(filepath.Join("results", f)); err != nil {
			t.Errorf("default report dir: %v", err)
		}
	}
	code, stdout, _ = rehearse(t, "run", dir, "--report-dir", "", "--out", "other.json")
	if _, err := os.Stat("other.json"); err != nil {
		t.Errorf("--out: %v", err)
	}
	if code != exitFailed {
		t.Fatalf("exit %d, want 1\n%s", code, stdout)
	}
	if !strings.Contains(stdout, "good.yaml:") || !strings.Contains(stdout, "measured: 200") {
		t.Errorf("failure output lacks position or measured value:\n%s", stdout)
	}
}

// backup → reinit --dry-run → restore --with-reinit through the CLI.
func TestEngineCommands(t *testing.T) {
	dsn := pgtest.SeededDB(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.json.gz")
	code, out, errs := rehearse(t, "backup", "--dsn", dsn, "--output", file)
	if code != exitOK || !strings.Contains(out, "wrote "+file+": 40 objects") {
		t.Fatalf("backup: %d %s %s", code, out, errs)
	}
	f, _ := os.Open(file)
	if _, err := gzip.NewReader(f); err != nil {
		t.Errorf("backup is not gzipped: %v", err)
	}
	f.Close()
	code, out, _ = rehearse(t, "reinit", "--dsn", dsn, "--dry-run")
	if code != exitOK || !strings.Contains(out, "dry run: nothing was changed") || !strings.Contains(out, "users_user") {
		t.Fatalf("dry run: %d %s", code, out)
	}
	code, out, errs = rehearse(t, "restore", "--dsn", dsn, "--from-file", file, "--with-reinit", "--strategy", "atomic")
	if code != exitOK || !strings.Contains(out, "restored 40 objects (atomic)") {
		t.Fatalf("restore: %d %s %s", code, out, errs)
	}
	// A damaged backup is refused with the object named, and exit 2.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`[{"model": "users.user", "pk": 1, "fields": {"username": 5}}]`), 0o644)
	code, _, errs = rehearse(t, "restore", "--dsn", dsn, "--from-file", bad, "--with-reinit")
	if code != exitError || !strings.Contains(errs, "object #0 (users.user pk=1)") {
		t.Errorf("bad backup: %d %s", code, errs)
	}
	conn := pgtest.Connect(t, dsn)
	var users int
	conn.QueryRow(context.Background(), "SELECT count(*) FROM users_user").Scan(&users)
	if users != 7 {
		t.Errorf("users after a refused restore = %d, want 7", users)
	}
}

// Destructive commands refuse a database that is not marked as a rehearsal
// target, and change nothing in it; once marked, they work.
func TestGuardRefusesUnmarkedDatabase(t *testing.T) {
	dsn := pgtest.SeededDB(t)
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(context.Background(), "DROP TABLE rehearse_target"); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		var s string
		conn.QueryRow(context.Background(), `SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM (
			SELECT u::text AS t FROM users_user u UNION ALL SELECT d::text FROM documents_document d
			UNION ALL SELECT a::text FROM audit_auditevent a UNION ALL SELECT last_value::text FROM users_user_id_seq) x`).Scan(&s)
		return s
	}
	before := state()
	file := filepath.Join(t.TempDir(), "b.json")
	if code, _, errs := rehearse(t, "backup", "--dsn", dsn, "--output", file); code != exitOK {
		t.Fatal(errs)
	}
	for _, args := range [][]string{
		{"reinit", "--dsn", dsn, "--confirm"},
		{"restore", "--dsn", dsn, "--from-file", file, "--with-reinit"},
		{"serve", "--dsn", dsn, "--addr", "127.0.0.1:0"},
		// Port 9 (discard) on loopback: the guard refuses before any request.
		{"rehearse", "--target", "http://127.0.0.1:9", "--dsn", dsn, "--report-dir", ""},
	} {
		code, _, errs := rehearse(t, args...)
		if code != exitError || !strings.Contains(errs, "is not marked as a rehearsal target") || !strings.Contains(errs, "rehearse mark") {
			t.Errorf("%s: exit %d, stderr %s", args[0], code, errs)
		}
	}
	if after := state(); after != before {
		t.Fatal("a refused command changed the database")
	}
	// A dry run only reads: allowed.
	if code, _, errs := rehearse(t, "reinit", "--dsn", dsn, "--dry-run"); code != exitOK {
		t.Errorf("dry run refused: %s", errs)
	}
	if code, _, errs := rehearse(t, "restore", "--dsn", dsn, "--from-file", file, "--with-reinit", "--allow-unmarked"); code != exitOK {
		t.Errorf("--allow-unmarked: %s", errs)
	}
	if code, _, errs := rehearse(t, "mark", "--dsn", dsn); code != exitOK {
		t.Fatal(errs)
	}
	if code, _, errs := rehearse(t, "reinit", "--dsn", dsn, "--confirm"); code != exitOK {
		t.Errorf("reinit on a marked database: %s", errs)
	}
}

// init refuses a database that already holds relations, so that it never
// marks (and so exposes to reinit) something that is not a rehearsal copy;
// --allow-nonempty overrides.
func TestInitRefusesNonEmptyDatabase(t *testing.T) {
	dsn := pgtest.NewDB(t)
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(context.Background(), `CREATE TABLE customers (id int PRIMARY KEY); INSERT INTO customers VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	code, _, errs := rehearse(t, "init", "--dsn", dsn, "--fixture", "none")
	if code != exitError || !strings.Contains(errs, "not empty (public.customers (table))") || !strings.Contains(errs, "--allow-nonempty") {
		t.Fatalf("init of a non-empty database: exit %d, %s", code, errs)
	}
	var marked bool
	conn.QueryRow(context.Background(), `SELECT to_regclass('public.rehearse_target') IS NOT NULL OR to_regclass('public.users_user') IS NOT NULL`).Scan(&marked)
	if marked {
		t.Fatal("the refused database was changed")
	}
	if code, out, errs := rehearse(t, "init", "--dsn", dsn, "--fixture", "none", "--allow-nonempty"); code != exitOK || !strings.Contains(out, "schema created") {
		t.Fatalf("init --allow-nonempty: exit %d, %s %s", code, out, errs)
	}
	// An empty database needs no flag.
	if code, out, errs := rehearse(t, "init", "--dsn", pgtest.NewDB(t), "--fixture", "none"); code != exitOK {
		t.Fatalf("init of an empty database: exit %d, %s %s", code, out, errs)
	}
}

// run --report-dir writes the four reports; report re-renders any format
// from the results file and refuses a bad one with exit 2.
func TestReportDirAndReportCommand(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"seed-flow-atomic.yaml", "seed-flow-two-phase.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../scenarios", name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
	}
	out := filepath.Join(t.TempDir(), "reports")
	code, stdout, stderr := rehearse(t, "run", dir, "--report-dir", out)
	if code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, name := range []string{"report.md", "report.html", "junit.xml", "results.json"} {
		path := filepath.Join(out, name)
		if !strings.Contains(stdout, "report written to "+path+"\n") {
			t.Errorf("stdout does not name %s:\n%s", path, stdout)
		}
		if info, err := os.Stat(path); err != nil || info.Size() == 0 {
			t.Errorf("%s: %v", path, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	for _, want := range []string{"**Question:** Will \"Restore into clean system (reinit first)\" break auth?", "## Strategies side by side", "## Scenario seed-flow-atomic", "## Scenario seed-flow-two-phase"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}

	results := filepath.Join(out, "results.json")
	code, stdout, stderr = rehearse(t, "report", results, "--format", "junit")
	if code != exitOK || !strings.HasPrefix(stdout, "<?xml") || !strings.Contains(stdout, `<testcase name="seed-flow-atomic"`) {
		t.Errorf("report --format junit: exit %d\n%s\n%s", code, stdout, stderr)
	}
	html := filepath.Join(t.TempDir(), "r.html")
	if code, _, stderr = rehearse(t, "report", results, "--out", html); code != exitOK {
		t.Errorf("report --out r.html: exit %d: %s", code, stderr)
	} else if b, _ := os.ReadFile(html); !strings.Contains(string(b), `<svg class="timeline"`) {
		t.Error("report --out r.html did not write HTML with a timeline")
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	for content, want := range map[string]string{
		`{"version": 99, "results": []}`:           "results format version 99 is not supported",
		`{"version": 1, "results": []}`:            "results format version 1 is not supported",
		`{"version": 2, "results": [], "x": 1}`:    `unknown field "x"`,
		"not json":                                 "not a results file",
		`{"version": 2, "results": [{"name": 3}]}`: "line 1, column",
	} {
		os.WriteFile(bad, []byte(content), 0o644)
		code, stdout, stderr := rehearse(t, "report", bad)
		if code != exitError || !strings.Contains(stderr, "rehearse report: "+bad+": ") || !strings.Contains(stderr, want) || stdout != "" {
			t.Errorf("report of %s: exit %d, stderr %q; want exit 2 naming the file and saying %q", content, code, stderr, want)
		}
	}
	if code, _, stderr := rehearse(t, "report", results, "--format", "pdf"); code != exitError || !strings.Contains(stderr, `unknown format "pdf"`) {
		t.Errorf("unknown format: exit %d %s", code, stderr)
	}
}

// Where rehearse cannot create its accounts, the rehearsal stops before it
// touches anything, naming the target-file key to set.
func TestRehearseAccountsNeedTheirColumns(t *testing.T) {
	dsn := pgtest.SeededDB(t)
	conn := pgtest.Connect(t, dsn)
	defer conn.Close(context.Background())
	users := func() (n int) {
		conn.QueryRow(context.Background(), `SELECT count(*) FROM users_user`).Scan(&n)
		return n
	}
	before := users()
	for key, value := range map[string]string{"users_table": "no_users", "login_column": "login_name", "password_column": "pw_hash", "staff_column": "is_boss"} {
		t.Run(key, func(t *testing.T) {
			tf := filepath.Join(t.TempDir(), "target.yaml")
			if err := os.WriteFile(tf, []byte(key+": "+value+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := rehearse(t, "rehearse", "--target", "http://127.0.0.1:9", "--dsn", dsn, "--target-file", tf, "--report-dir", "")
			if want := "set " + key + " in the target file"; code != exitError || !strings.Contains(stdout+stderr, want) || !strings.Contains(stdout+stderr, value) {
				t.Errorf("exit %d, want 2 and %q:\n%s\n%s", code, want, stdout, stderr)
			}
		})
	}
	if after := users(); after != before {
		t.Errorf("users: %d before, %d after a refused rehearsal", before, after)
	}
}

// Nothing leaves the machine: DSNs and URLs off loopback are refused before
// any connection, and errors never show the DSN's password.
func TestNothingLeavesLoopback(t *testing.T) {
	remote := "postgres://u:SECRETPW@192.0.2.1:5432/db"
	for _, args := range [][]string{
		{"rehearse", "--target", "http://127.0.0.1:9", "--dsn", remote, "--report-dir", ""},
		{"rehearse", "--target", "http://192.0.2.1:8000", "--allow-unmarked", "--report-dir", ""},
		{"run", "--dsn", remote, "--report-dir", "", "../../scenarios/seed-flow-atomic.yaml"},
		{"restore", "--dsn", remote, "--from-file", "../../fixtures/edms-small.json"},
		{"reinit", "--dsn", "host=db.example.com dbname=x", "--dry-run"},
		{"backup", "--dsn", remote, "--output", filepath.Join(t.TempDir(), "b.json")},
		{"serve", "--dsn", remote, "--addr", "127.0.0.1:0"},
	} {
		code, stdout, stderr := rehearse(t, args...)
		all := stdout + stderr
		if code != exitError || !strings.Contains(all, "loopback") {
			t.Errorf("%v: exit %d, want 2 with a loopback refusal:\n%s", args, code, all)
		}
		if strings.Contains(all, "SECRETPW") {
			t.Errorf("%v printed the DSN's password:\n%s", args, all)
		}
	}
}

// An empty backup after a reinit would wipe the system: refused for both
// strategies, nothing changed, unless --allow-empty says it is meant.
func TestEmptyBackupWithReinitIsRefused(t *testing.T) {
	dsn := pgtest.SeededDB(t)
	conn := pgtest.Connect(t, dsn)
	count := func() int {
		var n int
		conn.QueryRow(context.Background(), "SELECT count(*) FROM users_user").Scan(&n)
		return n
	}
	empty := filepath.Join(t.TempDir(), "empty.json")
	os.WriteFile(empty, []byte("[]"), 0o644)
	for _, st := range []string{"atomic", "two-phase"} {
		code, _, stderr := rehearse(t, "restore", "--dsn", dsn, "--from-file", empty, "--with-reinit", "--strategy", st)
		if code != exitError || !strings.Contains(stderr, "the backup holds no objects") {
			t.Errorf("%s: exit %d: %s", st, code, stderr)
		}
		if n := count(); n != 7 {
			t.Fatalf("%s: %d users left after a refused empty restore", st, n)
		}
	}
	if code, _, stderr := rehearse(t, "restore", "--dsn", dsn, "--from-file", empty, "--with-reinit", "--allow-empty"); code != exitOK {
		t.Fatalf("--allow-empty: %d %s", code, stderr)
	}
	if n := count(); n != 1 {
		t.Errorf("--allow-empty: %d users, want admin alone", n)
	}
}

// paddedFixture is edms-small as a dumpdata list whose object #index holds
// pad bytes of white space after its opening brace.
func paddedFixture(t *testing.T, index, pad int) []byte {
	t.Helper()
	raw, err := os.ReadFile("../../fixtures/edms-small.json")
	if err != nil {
		t.Fatal(err)
	}
	var objs []json.RawMessage
	if err := json.Unmarshal(raw, &objs); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, o := range objs {
		if i > 0 {
			b.WriteByte(',')
		}
		if i == index {
			b.WriteByte('{')
			b.Write(bytes.Repeat([]byte{' '}, pad))
			o = o[1:]
		}
		b.Write(o)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func countUsers(t *testing.T, dsn string) int {
	t.Helper()
	var n int
	if err := pgtest.Connect(t, dsn).QueryRow(context.Background(), `SELECT count(*) FROM users_user`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The scanner's limits on the command line: a backup beyond one is refused
// with the object (or the stream) named, before the reinit touches anything;
// the same backup passes with the limit raised.
func TestRestoreLimitFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fat := write("fat.json", paddedFixture(t, 5, 3000))
	// 80 MiB of white space between the objects: past ExpansionGrace, and
	// gzip shrinks it some 1000 fold.
	plain := paddedFixture(t, 0, 0)
	bomb := write("bomb.json.gz", gzipped(t, append(append([]byte{'['}, bytes.Repeat([]byte{' '}, 80<<20)...), plain[1:]...)))
	small := write("small.json.gz", gzipped(t, plain))
	cases := []struct {
		name, file string
		refused    []string // flags that make the restore refuse it
		want       string   // in the refusal
		passes     []string // flags that let it through
	}{
		{"object size", fat, []string{"--max-object-size", "2KiB"}, "backup refused: object #5: the object is larger than 2.0 KiB", []string{"--max-object-size", "4KB"}},
		{"expansion", bomb, []string{"--max-expansion", "100"}, "expands more than 100 fold", []string{"--max-expansion", "0"}},
		{"decompressed size", small, []string{"--max-decompressed-size", "4KiB"}, "decompresses to more than 4.0 KiB, the limit", []string{"--max-decompressed-size", "1MiB"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dsn := pgtest.SeededDB(t)
			conn := pgtest.Connect(t, dsn)
			if _, err := conn.Exec(context.Background(), `INSERT INTO users_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
VALUES ('!', false, 'not_in_backup', '', '', '', false, true, now())`); err != nil {
				t.Fatal(err)
			}
			args := []string{"restore", "--dsn", dsn, "--from-file", c.file, "--with-reinit", "--strategy", "two-phase"}
			code, out, errs := rehearse(t, append(args, c.refused...)...)
			if code != exitError || !strings.Contains(errs, c.want) {
				t.Fatalf("%v: exit %d, want 2 and %q\n%s\n%s", c.refused, code, c.want, out, errs)
			}
			if strings.Contains(out, "reinit committed") {
				t.Errorf("the reinit ran before the refusal:\n%s", out)
			}
			if n := countUsers(t, dsn); n != 8 {
				t.Errorf("users after the refused restore: %d, want the 8 before it", n)
			}
			code, out, errs = rehearse(t, append(args, c.passes...)...)
			if code != exitOK || !strings.Contains(out, "restored 40 objects") {
				t.Fatalf("%v: exit %d\n%s\n%s", c.passes, code, out, errs)
			}
			if n := countUsers(t, dsn); n != 7 {
				t.Errorf("users after the restore: %d, want 7", n)
			}
		})
	}
}

// Bad limit values are refused before anything is opened, saying what to give.
func TestRestoreLimitFlagsBadValues(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-object-size", "12 parsecs"}, `invalid value "12 parsecs" for flag -max-object-size: "12 parsecs" is not a size: give a number of bytes with or without a unit, e.g. 64MiB`},
		{[]string{"--max-object-size", "-5MiB"}, `is not a size`},
		{[]string{"--max-object-size", "0"}, "--max-object-size must be more than 0 bytes (the default is 64 MiB)"},
		{[]string{"--max-decompressed-size", "lots"}, `invalid value "lots" for flag -max-decompressed-size`},
		{[]string{"--max-expansion", "-3"}, "--max-expansion -3 is negative: give a ratio such as 500, or 0 for no limit"},
		{[]string{"--max-expansion", "ten"}, `invalid value "ten" for flag -max-expansion`},
	} {
		for _, cmd := range []string{"restore", "serve"} {
			args := append([]string{cmd, "--dsn", "host=/nonexistent dbname=x", "--from-file", "../../fixtures/edms-small.json"}, c.args...)
			if cmd == "serve" {
				args = append([]string{cmd, "--dsn", "host=/nonexistent dbname=x"}, c.args...)
			}
			code, _, errs := rehearse(t, args...)
			if code != exitError || !strings.Contains(errs, c.want) {
				t.Errorf("%s %v: exit %d, want 2 and %q:\n%s", cmd, c.args, code, c.want, errs)
			}
		}
	}
	if code, _, errs := rehearse(t, "serve", "--dsn", "host=/nonexistent dbname=x", "--max-upload-size", "0"); code != exitError || !strings.Contains(errs, "--max-upload-size must be more than 0 bytes") {
		t.Errorf("serve --max-upload-size 0: exit %d %s", code, errs)
	}
}

// Every command has a help page: -h prints its synopsis and flags.
func TestEveryCommandHasHelp(t *testing.T) {
	for name := range commands {
		code, _, errs := rehearse(t, name, "-h")
		if code != exitOK || !strings.Contains(errs, "Usage: rehearse "+name) || !strings.Contains(errs, "Flags:") {
			t.Errorf("%s -h: exit %d\n%s", name, code, errs)
		}
	}
}

// Placeholders in help pages are filled in.
func TestHelpPlaceholders(t *testing.T) {
	_, _, errs := rehearse(t, "mark", "-h")
	if !strings.Contains(errs, "Creates the table public.rehearse_target") || strings.Contains(errs, "{") {
		t.Errorf("mark -h:\n%s", errs)
	}
	_, _, errs = rehearse(t, "init", "-h")
	if !strings.Contains(errs, "edms-small") || strings.Contains(errs, "{fixtures}") {
		t.Errorf("init -h:\n%s", errs)
	}
}
