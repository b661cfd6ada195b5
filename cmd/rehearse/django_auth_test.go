package main

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/reports"
	"github.com/rehearse-dev/rehearse/results"
)

// The README's rehearsal of a Django app, once per way the test app
// authenticates (REHEARSE_DJANGO_AUTH): the target file is the documented
// one plus the keys of the kind, the command is the README's. What rehearse
// measured of the old credential after the restore must be what the app
// answers a credential of that kind obtained here, outside rehearse.
func TestRehearseDjangoAuthKinds(t *testing.T) {
	doc, err := os.ReadFile("../../docs/targets/drf-simplejwt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const sessionKey = "session_login: {path: /api/v1/auth/session/, cookie: sessionid}\n"
	const tokenKey = "drf_token: {path: /api/v1/auth/token/, token_field: token, auth_scheme: Token}\n"
	for _, c := range []struct {
		name, auth, target string
		kind               results.TokenKind
		token              string // rehearse's token of that kind
		after              int    // what the app really does afterwards
	}{
		{"session", "session", sessionKey, results.TokenSession, "author-session", 200},
		{"session_flush", "session_flush", sessionKey, results.TokenSession, "author-session", 401},
		// Django's own LoginView: GET for the CSRF cookie, POST the form.
		{"session_form", "session", "session_login: {path: /accounts/login/, form: true}\n", results.TokenSession, "author-session", 200},
		{"drf_token", "drf_token", tokenKey, results.TokenDRF, "author-drf-token", 200},
		{"drf_token_nobackup", "drf_token", tokenKey + "backup: {exclude: [authtoken.token]}\n", results.TokenDRF, "author-drf-token", 401},
		{"stateless", "stateless", "", results.TokenJWT, "author-before", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := newDjangoApp(t, "plain")
			a.env = append(a.env, "REHEARSE_DJANGO_AUTH="+c.auth)
			a.mustManage("migrate", "-v0") // the kind's apps: sessions, authtoken
			a.seedUsers()
			if code, _, stderr := rehearse(t, "mark", "--dsn", a.dsn); code != exitOK {
				t.Fatal(stderr)
			}
			a.start()
			own := a.credential(c.kind)
			if p := own(); p != 200 {
				t.Fatalf("a %s credential before the run: profile %d", c.kind, p)
			}
			work := t.TempDir()
			file := filepath.Join(work, "docs", "targets", "drf-simplejwt.yaml")
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, append(append([]byte{}, doc...), c.target...), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Chdir(work)
			code, stdout, stderr := rehearse(t, "rehearse", "--target-file", "docs/targets/drf-simplejwt.yaml", "--target", a.base, "--dsn", a.dsn)
			t.Logf("rehearse exit %d\n%s\n%s", code, stdout, stderr)
			if code == exitError {
				t.Fatalf("the rehearsal did not measure the operation (exit 2)\nserver:\n%s", a.log())
			}
			truth := own()
			if truth != c.after {
				t.Errorf("the app answers a %s credential from before the run with %d afterwards; this test expects %d", c.kind, truth, c.after)
			}
			data, err := os.ReadFile(filepath.Join(work, "results", "results.json"))
			if err != nil {
				t.Fatal(err)
			}
			rf, err := reports.ReadJSON(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			var fate *results.TokenFate
			for i, tf := range rf.Results[0].Tokens {
				if tf.Name == c.token {
					fate = &rf.Results[0].Tokens[i]
				}
			}
			if fate == nil || fate.Kind != c.kind {
				t.Fatalf("results have no %s token %s: %+v", c.kind, c.token, rf.Results[0].Tokens)
			}
			if fate.After != truth {
				t.Errorf("rehearse measured %d for its %s token afterwards; the app answers %d", fate.After, c.kind, truth)
			}
			// Stateless: accepted even while its user did not exist.
			if c.name == "stateless" && (len(fate.During) == 0 || slices.ContainsFunc(fate.During, func(s int) bool { return s != 200 })) {
				t.Errorf("stateless JWT in the window: %v, want 200 only (no user lookup)", fate.During)
			}
			// The built-in rehearsal expects every old credential refused.
			failed := strings.Contains(stdout, "expectation failed: token "+c.token+" on profile after the operation")
			if failed != (truth == 200) {
				t.Errorf("expectation on %s failed: %v, but the app answers %d afterwards:\n%s", c.token, failed, truth, stdout)
			}
			if md, err := os.ReadFile(filepath.Join(work, "results", "report.md")); err == nil {
				if i := strings.Index(string(md), "**Answer:**"); i >= 0 {
					answer, _, _ := strings.Cut(string(md[i:]), "\n\n")
					t.Logf("report.md: %s", answer)
				}
			}
		})
	}
}

// credential obtains a credential of kind as author01 and returns a probe
// of it: the profile status it gets.
func (a *djangoApp) credential(kind results.TokenKind) func() int {
	a.t.Helper()
	creds := map[string]string{"username": "author01", "password": "author01_pw"}
	switch kind {
	case results.TokenSession:
		req, _ := http.NewRequest("POST", a.base+"/api/v1/auth/session/", strings.NewReader(`{"username":"author01","password":"author01_pw"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			a.t.Fatalf("session login: %v %v\n%s", err, resp, a.log())
		}
		resp.Body.Close()
		var cookie *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "sessionid" {
				cookie = ck
			}
		}
		if cookie == nil {
			a.t.Fatal("the session login set no sessionid cookie")
		}
		return func() int { return a.send(func(r *http.Request) { r.AddCookie(cookie) }) }
	case results.TokenDRF:
		r := a.call("POST", "/api/v1/auth/token/", "", creds)
		key, _ := r.body["token"].(string)
		if r.status != 200 || key == "" {
			a.t.Fatalf("obtain_auth_token: %d %v\n%s", r.status, r.body, a.log())
		}
		return func() int { return a.send(func(r *http.Request) { r.Header.Set("Authorization", "Token "+key) }) }
	}
	access, _ := a.login("author01")
	return func() int { return a.profile(access).status }
}

// send calls profile with what set adds to the request.
func (a *djangoApp) send(set func(*http.Request)) int {
	req, _ := http.NewRequest("GET", a.base+"/api/v1/auth/profile/", nil)
	set(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
