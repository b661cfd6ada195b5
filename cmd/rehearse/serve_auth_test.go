package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/internal/pgtest"
)

// rehearse serve in the session modes of a scenario's auth: block: a
// session login and a DRF token login answer 200 (serve creates their
// tables), and a session cookie from before restore_from_file with a reinit
// is accepted afterwards when the reinit keeps sessions (its user came back
// with its id and hash) and refused when it flushes them.
func TestServeAuthModes(t *testing.T) {
	bin := buildRehearse(t)
	backup, err := os.ReadFile("../../fixtures/edms-small.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sessions string
		after    int // the old cookie on profile after the restore
		banner   string
	}{
		{"keep", 200, "auth: sessions kept by the reinit, access tokens stateful"},
		{"flush", 401, "auth: sessions flushed by the reinit, access tokens stateful"},
	} {
		t.Run(c.sessions, func(t *testing.T) {
			srv := startServeDSN(t, bin, pgtest.SeededDB(t), "--sessions", c.sessions, "--quiet")
			cookie := sessionLogin(t, srv.url, "author01", "author01_pw")
			if s := profileWith(t, srv.url, func(r *http.Request) { r.AddCookie(cookie) }); s != 200 {
				t.Fatalf("profile with the session cookie before the restore: %d\n%s", s, srv.logs())
			}
			drfToken(t, srv.url, "author01", "author01_pw")

			code, admin := loginAs(t, srv.url, "admin", "admin_secure_password_123")
			if code != 200 {
				t.Fatalf("admin login: %d", code)
			}
			if code, body := uploadStream(t, srv.url, admin, "edms-small.json", func(w io.Writer) error { _, err := w.Write(backup); return err }); code != 200 {
				t.Fatalf("restore_from_file: %d %s\n%s", code, body, srv.logs())
			}
			if s := profileWith(t, srv.url, func(r *http.Request) { r.AddCookie(cookie) }); s != c.after {
				t.Errorf("the session cookie from before the restore with --sessions %s: profile %d, want %d", c.sessions, s, c.after)
			}
			if !strings.Contains(srv.logs(), c.banner) {
				t.Errorf("serve does not say %q:\n%s", c.banner, srv.logs())
			}
		})
	}
	// The backup: block serve prints makes rehearse's backup the system's:
	// with --drf-tokens-in-backup=false the restore does not bring back a
	// DRF token, and rehearse measures what the system answers.
	for _, c := range []struct {
		inBackup string
		after    int
	}{{"true", 200}, {"false", 401}} {
		t.Run("drf tokens in backup "+c.inBackup, func(t *testing.T) {
			srv := startServeDSN(t, bin, pgtest.SeededDB(t), "--drf-tokens-in-backup="+c.inBackup, "--quiet")
			// serve prints it right after the address startServeDSN waits for.
			var backupKey string
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !strings.HasSuffix(backupKey, "]}"); time.Sleep(10 * time.Millisecond) {
				_, backupKey, _ = strings.Cut(srv.logs(), "this system's backup (target file): ")
				backupKey, _, _ = strings.Cut(backupKey, "\n")
			}
			if !strings.HasPrefix(backupKey, "backup: ") || !strings.HasSuffix(backupKey, "]}") {
				t.Fatalf("serve prints no backup: for its target file:\n%s", srv.logs())
			}
			tf := filepath.Join(t.TempDir(), "target.yaml")
			drf := "drf_token: {path: /api/v1/auth/token/, token_field: token, auth_scheme: Token}\n"
			if err := os.WriteFile(tf, []byte(drf+backupKey+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			key := drfToken(t, srv.url, "author01", "author01_pw")
			out := filepath.Join(t.TempDir(), "results.json")
			code, stdout, stderr := rehearse(t, "rehearse", "--target", srv.url, "--dsn", srv.dsnArg, "--target-file", tf, "--out", out, "--report-dir", "")
			if code == exitError {
				t.Fatalf("rehearse: exit 2\n%s\n%s", stdout, stderr)
			}
			truth := profileWith(t, srv.url, func(r *http.Request) { r.Header.Set("Authorization", "Token "+key) })
			if truth != c.after {
				t.Errorf("a DRF token from before the run on a serve with --drf-tokens-in-backup=%s: %d after, want %d", c.inBackup, truth, c.after)
			}
			measured := -1
			for _, tok := range readResults(t, out).Results[0].Tokens {
				if tok.Name == "author-drf-token" {
					measured = tok.After
				}
			}
			if measured != truth {
				t.Errorf("rehearse measured %d for its DRF token afterwards (-1: none); the system answers %d", measured, truth)
			}
		})
	}
	t.Run("bad flag", func(t *testing.T) {
		for _, args := range [][]string{{"--sessions", "drop"}, {"--jwt", "none"}} {
			if code, _, stderr := rehearse(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...); code != exitError || !strings.Contains(stderr, args[0]+` "`+args[1]+`": use `) {
				t.Errorf("serve %v: exit %d %s", args, code, stderr)
			}
		}
	})
}

// sessionLogin posts to the reference system's JSON session login and
// returns its sessionid cookie.
func sessionLogin(t *testing.T, url, user, password string) *http.Cookie {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := http.Post(url+"/api/v1/auth/session/", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("session login: %d, want 200", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "sessionid" {
			return ck
		}
	}
	t.Fatal("the session login set no sessionid cookie")
	return nil
}

// profileWith calls profile with what set adds to the request.
func profileWith(t *testing.T, url string, set func(*http.Request)) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/api/v1/auth/profile/", nil)
	set(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// drfToken obtains a DRF token from the reference system.
func drfToken(t *testing.T, url, user, password string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"username": user, "password": password})
	resp, err := http.Post(url+"/api/v1/auth/token/", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	if resp.StatusCode != 200 || tok.Token == "" {
		t.Fatalf("DRF token login: %d", resp.StatusCode)
	}
	return tok.Token
}
