package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/results"
)

// outputs collects everything rehearse showed anyone: stdout and stderr of
// each command, the files it wrote, the server's log.
type outputs struct {
	t     *testing.T
	texts map[string]string
}

func (o *outputs) add(label, text string) { o.texts[label] += text }

// cli runs a command in-process and keeps what it printed; it returns the
// exit code so that a test can see the path was the one it meant.
func (o *outputs) cli(label string, args ...string) int {
	code, out, errs := rehearse(o.t, args...)
	o.add(label+" stdout", out)
	o.add(label+" stderr", errs)
	return code
}

// dir keeps every file under dir (reports, results, JUnit).
func (o *outputs) dir(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			o.add(p, string(b))
		}
		return nil
	})
}

// jwtShape is a whole JWT: header, payload and signature, base64url.
var jwtShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}`)

// check fails for every secret found in any output.
func (o *outputs) check(secrets []string) {
	o.t.Helper()
	for label, text := range o.texts {
		for _, s := range secrets {
			if i := strings.Index(text, s); i >= 0 {
				o.t.Errorf("%s shows a secret (%.4s…) after: …%s", label, s, text[max(0, i-120):i])
			}
		}
		if m := jwtShape.FindString(text); m != "" {
			o.t.Errorf("%s shows a whole token (%.12s…)", label, m)
		}
	}
}

// No plain password, password hash, signing key or whole token appears in
// any message, log or report, on every error path the CLI has: failing
// expectations of each kind (in-process and over HTTP), refused and failed
// restores, a DSN with a password, wrong credentials, a wrong signing key,
// the random passwords of the accounts a rehearsal with --dsn creates, and
// the request log of rehearse serve.
func TestNoSecretInAnyOutput(t *testing.T) {
	o := &outputs{t: t, texts: map[string]string{}}
	f, err := fixtures.Get("edms-small")
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile("testdata/http/signing.key")
	if err != nil {
		t.Fatal(err)
	}
	const (
		dsnPW      = "DsnSecret9f3x"
		adminPW    = "ReinitSecret7q2z"
		wrongPW    = "WrongAdminPw77k"
		otherKey   = "another-key-0123456789abcdef-0123456789"
		targetPW   = "rehearse-default-pw" // testdata/http/target.yaml's admin.default_password
		hashPrefix = "pbkdf2_sha256$"
	)
	secrets := []string{dsnPW, adminPW, wrongPW, otherKey, targetPW, hashPrefix, strings.TrimSpace(string(key))}
	for _, u := range f.Users {
		secrets = append(secrets, u.Password)
	}
	dir := t.TempDir()

	t.Run("scenario with each kind of failing expectation", func(t *testing.T) {
		o.t = t
		sc, err := os.ReadFile("../../scenarios/seed-flow-two-phase.yaml")
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(sc), "strategy: two-phase", "strategy: two-phase\ndefects: [no-revocation, skip-sequences, dangling-fk, password-from=last_name]", 1)
		s = strings.Replace(s, "min: 1ms, max: 30s", "min: 30s", 1)
		s = strings.Replace(s, "succeeded: true", "succeeded: false", 1)
		os.MkdirAll(filepath.Join(dir, "sc"), 0o755)
		os.WriteFile(filepath.Join(dir, "sc", "failing.yaml"), []byte(s), 0o644)
		pk, _ := os.ReadFile("../../scenarios/pk-reuse.yaml")
		os.WriteFile(filepath.Join(dir, "sc", "pk.yaml"), pk, 0o644)
		reports := filepath.Join(dir, "run-reports")
		os.MkdirAll(reports, 0o755)
		if code := o.cli("run", "run", filepath.Join(dir, "sc"), "--report-dir", reports, "--out", filepath.Join(reports, "out.json"), "-v"); code != exitFailed {
			t.Errorf("run: exit %d, want 1\n%s\n%s", code, o.texts["run stdout"], o.texts["run stderr"])
		}
		o.dir(reports)
	})

	t.Run("restores", func(t *testing.T) {
		o.t = t
		dsn := pgtest.SeededDB(t)
		raw, _ := os.ReadFile("../../fixtures/edms-small.json")
		hash := regexp.MustCompile(`"password": "(pbkdf2_sha256\$[^"]+)"`).FindSubmatch(raw)[1]
		// A users.user row whose password key appears twice.
		dupKey := bytes.Replace(raw, []byte(`"fields": {"password": `), []byte(`"fields": {"password": "`+string(hash)+`", "password": `), 1)
		// Two users.user objects with one pk.
		first := regexp.MustCompile(`\{"model": "users.user", "pk": 1, [^\n]*\},?\n`).Find(raw)
		dupPK := bytes.Replace(raw, first, append(append([]byte{}, first...), first...), 1)
		// (A key given twice in one object is taken as JSON parsers do, the
		// last wins; a pk given twice is refused.)
		for name, b := range map[string][]byte{"dupkey.json": dupKey, "duppk.json": dupPK} {
			p := filepath.Join(dir, name)
			os.WriteFile(p, b, 0o644)
			if code := o.cli("restore "+name, "restore", "--dsn", dsn, "--from-file", p, "--with-reinit", "--admin-password", adminPW); code != exitError && name == "duppk.json" {
				t.Errorf("restore %s: exit %d, want 2 (refused)\n%s", name, code, o.texts["restore "+name+" stderr"])
			}
		}
		// A trigger that refuses the restore's rows of auth_group: a restore
		// that fails while loading.
		dsn = pgtest.SeededDB(t)
		if _, err := pgtest.Connect(t, dsn).Exec(context.Background(), `CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON auth_group FOR EACH ROW EXECUTE FUNCTION refuse();
ALTER TABLE auth_group ENABLE ALWAYS TRIGGER refuse`); err != nil {
			t.Fatal(err)
		}
		code := o.cli("restore failing in load", "restore", "--dsn", dsn, "--from-file", "../../fixtures/edms-small.json", "--with-reinit", "--strategy", "two-phase", "--admin-password", adminPW)
		if code == exitOK || !strings.Contains(o.texts["restore failing in load stderr"], "refused by the test") {
			t.Errorf("restore failing in its load: exit %d\n%s\n%s", code, o.texts["restore failing in load stdout"], o.texts["restore failing in load stderr"])
		}
		// A DSN with a password, nothing listening.
		bad := "postgres://u:" + dsnPW + "@127.0.0.1:1/db"
		for _, args := range [][]string{
			{"restore", "--dsn", bad, "--from-file", "../../fixtures/edms-small.json"},
			{"backup", "--dsn", bad, "--output", filepath.Join(dir, "b.json")},
			{"reinit", "--dsn", bad, "--dry-run"},
			{"mark", "--dsn", bad},
			{"init", "--dsn", bad},
			{"serve", "--dsn", bad, "--addr", "127.0.0.1:0"},
			{"rehearse", "--target", "http://127.0.0.1:1", "--dsn", bad, "--report-dir", filepath.Join(dir, "bad-dsn")},
			{"restore", "--dsn", "postgres://u:" + dsnPW + "@db.example.com/db", "--from-file", "../../fixtures/edms-small.json"},
		} {
			if code := o.cli("bad dsn "+args[0], args...); code == exitOK {
				t.Errorf("%v: exit 0", args)
			}
		}
		o.dir(filepath.Join(dir, "bad-dsn"))
	})

	t.Run("over HTTP", func(t *testing.T) {
		o.t = t
		bin := buildRehearse(t)
		target := []string{"--routes", "testdata/http/target.yaml"}
		good := startServeDSN(t, bin, pgtest.SeededDB(t), target...)
		broken := startServeDSN(t, bin, pgtest.SeededDB(t), append(target, "--defect", "no-revocation", "--defect", "password-from=last_name")...)
		// The shape check would see these tokens if they were shown.
		resp, err := http.Post(good.url+"/auth/v2/session/", "application/json", strings.NewReader(`{"login": "author01", "secret": "author01_pw"}`))
		if err != nil {
			t.Fatal(err)
		}
		var tok struct{ JWT, Renew string }
		json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if !jwtShape.MatchString(tok.JWT) || !jwtShape.MatchString(tok.Renew) {
			t.Errorf("login: %d, tokens the check would not recognise: %.12s… %.12s…", resp.StatusCode, tok.JWT, tok.Renew)
		}
		defer func() {
			o.add("serve log", good.logs())
			o.add("serve log (defects)", broken.logs())
		}()
		for _, c := range []struct {
			name string
			srv  *serveProc
			want int
		}{{"rehearse", good, exitOK}, {"rehearse defects", broken, exitFailed}} {
			reports := filepath.Join(dir, c.name)
			os.MkdirAll(reports, 0o755)
			code := o.cli(c.name, "rehearse", "--target", c.srv.url, "--dsn", c.srv.dsnArg, "--scenario", "testdata/http/rehearsal.yaml", "-v", "--report-dir", reports, "--out", filepath.Join(reports, "out.json"))
			if code != c.want {
				t.Errorf("%s: exit %d, want %d\n%s\n%s", c.name, code, c.want, o.texts[c.name+" stdout"], o.texts[c.name+" stderr"])
			}
			o.dir(reports)
		}
		// Wrong credentials, and a signing key that is not the system's.
		t.Setenv("REHEARSE_TEST_ADMIN_PASSWORD", wrongPW)
		if code := o.cli("wrong password", "rehearse", "--target", good.url, "--dsn", good.dsnArg, "--scenario", "testdata/http/own-users.yaml", "--report-dir", filepath.Join(dir, "wrong-pw")); code == exitOK {
			t.Errorf("wrong admin password: exit 0")
		}
		o.dir(filepath.Join(dir, "wrong-pw"))
		other := t.TempDir()
		tf, _ := os.ReadFile("testdata/http/target.yaml")
		os.WriteFile(filepath.Join(other, "target.yaml"), tf, 0o644)
		os.WriteFile(filepath.Join(other, "signing.key"), []byte(otherKey), 0o600)
		if code := o.cli("wrong key", "rehearse", "--target", good.url, "--dsn", good.dsnArg, "--scenario", "testdata/http/rehearsal.yaml", "--target-file", filepath.Join(other, "target.yaml"), "--report-dir", filepath.Join(dir, "wrong-key")); code != exitError {
			t.Errorf("wrong signing key: exit %d, want 2", code)
		}
		o.dir(filepath.Join(dir, "wrong-key"))

		// The built-in rehearsal with --dsn creates its accounts, with random
		// passwords: the plan hands them over here, and none may show.
		created := startServeDSN(t, bin, pgtest.SeededDB(t))
		defer func() { o.add("serve log (created accounts)", created.logs()) }()
		var passwords []string
		planned = func(p *harness.Plan) {
			for _, a := range p.Accounts {
				passwords = append(passwords, a.Password())
			}
		}
		reports := filepath.Join(dir, "created")
		code := o.cli("created accounts", "rehearse", "--target", created.url, "--dsn", created.dsnArg, "-v", "--report-dir", reports)
		planned = nil
		o.dir(reports)
		r := readResults(t, filepath.Join(reports, "results.json")).Results[0]
		if code == exitError || r.Accounts == nil || r.Accounts.Source != results.AccountsCreated || r.Accounts.Removal == nil || r.Accounts.Removal.Removed != 2 {
			t.Errorf("built-in rehearsal creating accounts: exit %d, accounts %+v\n%s", code, r.Accounts, o.texts["created accounts stdout"])
		}
		if len(passwords) != 2 || slices.ContainsFunc(passwords, func(pw string) bool { return len(pw) < 20 }) {
			t.Fatalf("the plan's passwords of its created accounts: %d, want 2 random ones", len(passwords))
		}
		secrets = append(secrets, passwords...)
	})

	o.t = t
	if len(o.texts) < 30 {
		t.Fatalf("only %d outputs collected", len(o.texts))
	}
	o.check(secrets)
}
