package server

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// startAuth serves a seeded database with the session and token tables.
func startAuth(t *testing.T, mode AuthMode) *env {
	t.Helper()
	e := start(t, func(c *Config) { c.Auth = mode })
	conn, err := pgx.Connect(context.Background(), e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := InstallAuthTables(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dsn)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatal(err)
	}
}

// The session hash is Django's: the value below is what Django 3.2's
// salted_hmac gives for this key and password hash.
func TestSessionAuthHashIsDjangos(t *testing.T) {
	s := &Server{}
	s.issuer.Key = []byte(testKey)
	got := s.sessionAuthHash("pbkdf2_sha256$1000$salt$hash=")
	if want := "3ff4ec0df722c8bf6cf449eb8bfa0614b068a8c8373ff437a9e9af00a7ca7b29"; got != want {
		t.Errorf("sessionAuthHash = %s, want %s", got, want)
	}
}

// A session authenticates until its user's password hash changes; then
// Django's session verification refuses and flushes it. A user that is
// gone leaves the session in place.
func TestSessionVerification(t *testing.T) {
	e := startAuth(t, AuthMode{})
	r := e.postJSON(DefaultRoutes().SessionLogin, map[string]string{"username": "author01", "password": "author01_pw"})
	var cookie string
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "sessionid" {
			cookie = c.Value
		}
	}
	if r.status != 200 || len(cookie) != 32 {
		t.Fatalf("session login: %d %s, cookie %q", r.status, r.body, cookie)
	}
	profile := func() resp {
		return e.do(http.MethodGet, DefaultRoutes().Profile, nil, map[string]string{"Cookie": "sessionid=" + cookie})
	}
	if p := profile(); p.status != 200 || !strings.Contains(p.body, `"username":"author01"`) {
		t.Fatalf("profile with the session: %d %s", p.status, p.body)
	}
	if bad := e.postJSON(DefaultRoutes().SessionLogin, map[string]string{"username": "author01", "password": "wrong"}); bad.status != 400 {
		t.Errorf("session login with a wrong password: %d %s", bad.status, bad.body)
	}
	e.exec(`UPDATE users_user SET password = password || 'x' WHERE username = 'author01'`)
	if p := profile(); p.status != 401 {
		t.Errorf("profile after the password hash changed: %d %s, want 401", p.status, p.body)
	}
	e.exec(`UPDATE users_user SET password = left(password, -1) WHERE username = 'author01'`)
	if p := profile(); p.status != 401 {
		t.Errorf("profile with a flushed session after the hash is back: %d %s, want 401 (the session was flushed)", p.status, p.body)
	}
}

// A DRF token authenticates with "Token KEY", is the same on every login,
// and goes when its row goes.
func TestDRFToken(t *testing.T) {
	e := startAuth(t, AuthMode{})
	key := func() string {
		r := e.postJSON(DefaultRoutes().TokenLogin, map[string]string{"username": "author01", "password": "author01_pw"})
		if r.status != 200 {
			t.Fatalf("token login: %d %s", r.status, r.body)
		}
		_, k, _ := strings.Cut(r.body, `"token":"`)
		return strings.TrimSuffix(k, `"}`)
	}
	k := key()
	if len(k) != 40 || key() != k {
		t.Fatalf("token %d characters, or not the same on the second login", len(k))
	}
	auth := func(h string) resp {
		return e.do(http.MethodGet, DefaultRoutes().Profile, nil, map[string]string{"Authorization": h})
	}
	if p := auth("Token " + k); p.status != 200 {
		t.Fatalf("profile with the token: %d %s", p.status, p.body)
	}
	if p := auth("Token " + k + "x"); p.status != 401 || !strings.Contains(p.body, "Invalid token.") {
		t.Errorf("profile with another key: %d %s", p.status, p.body)
	}
	e.exec(`DELETE FROM authtoken_token`)
	if p := auth("Token " + k); p.status != 401 {
		t.Errorf("profile after the token row went: %d %s, want 401", p.status, p.body)
	}
}

// Stateless: an access token works while its user does not exist.
func TestStatelessJWT(t *testing.T) {
	for _, stateless := range []bool{false, true} {
		e := startAuth(t, AuthMode{Stateless: stateless})
		access, _ := e.tokens("author01", "author01_pw")
		e.exec(`DELETE FROM documents_documentversion; DELETE FROM workflows_workflowassignment; DELETE FROM documents_document; DELETE FROM audit_auditevent; DELETE FROM users_user_groups; DELETE FROM users_user WHERE username = 'author01'`)
		want := map[bool]int{false: 401, true: 200}[stateless]
		if p := e.profile(access); p.status != want {
			t.Errorf("stateless %v: profile with a deleted user's token: %d %s, want %d", stateless, p.status, p.body, want)
		}
	}
}
