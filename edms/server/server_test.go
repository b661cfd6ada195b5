package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/results"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/edms/token"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const testKey = "rehearse-test-signing-key-0123456789abcdef"

// Expected bodies, byte for byte (DRF renders compact JSON).
const (
	bodyNoAccount    = `{"detail":"No active account found with the given credentials"}`
	bodyNotProvided  = `{"detail":"Authentication credentials were not provided."}`
	bodyUserNotFound = `{"detail":"User not found","code":"user_not_found"}`
	bodyUserInactive = `{"detail":"User is inactive","code":"user_inactive"}`
	bodyRevoked      = `{"detail":"Token has been revoked","code":"token_not_valid"}`
	bodyForbidden    = `{"detail":"You do not have permission to perform this action."}`
	bodyNotFound     = `{"detail":"Not found."}`
)

func bodyInvalid(msg string) string {
	return `{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{"token_class":"AccessToken","token_type":"access","message":"` + msg + `"}]}`
}

// env is a running server on loopback over a real database.
type env struct {
	t      *testing.T
	url    string
	dsn    string
	srv    *Server
	client *http.Client
	logs   *logSink
}

type logSink struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	l.t.Log(line)
}

func (l *logSink) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func start(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	return startOn(t, pgtest.SeededDB(t), mutate)
}

func startOn(t *testing.T, dsn string, mutate func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	pool, err := NewPool(ctx, dsn, 4)
	if err != nil {
		t.Fatalf("NewPool: %v", err)
	}
	t.Cleanup(pool.Close)
	logs := &logSink{t: t}
	cfg := Config{Pool: pool, SigningKey: []byte(testKey), Logf: logs.logf}
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after cancel, want nil", err)
		}
	})
	return &env{t: t, url: "http://" + ln.Addr().String(), dsn: dsn, srv: srv, client: &http.Client{Timeout: 30 * time.Second}, logs: logs}
}

type resp struct {
	status int
	body   string
	header http.Header
}

func (e *env) do(method, path string, body io.Reader, header map[string]string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := res.Header.Get("Content-Type"); method != http.MethodHead && ct != "application/json" {
		e.t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return resp{res.StatusCode, string(b), res.Header}
}

func (e *env) postJSON(path string, v any) resp {
	e.t.Helper()
	b, _ := json.Marshal(v)
	return e.do(http.MethodPost, path, bytes.NewReader(b), map[string]string{"Content-Type": "application/json"})
}

func (e *env) login(username, password string) resp {
	e.t.Helper()
	return e.postJSON(DefaultRoutes().Login, map[string]string{"username": username, "password": password})
}

// tokens logs in and returns the access and refresh tokens.
func (e *env) tokens(username, password string) (access, refresh string) {
	e.t.Helper()
	r := e.login(username, password)
	if r.status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", username, r.status, r.body)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		e.t.Fatal(err)
	}
	if m["access"] == "" || m["refresh"] == "" {
		e.t.Fatalf("login %s: no tokens in %s", username, r.body)
	}
	return m["access"], m["refresh"]
}

func (e *env) profile(access string) resp {
	e.t.Helper()
	h := map[string]string{}
	if access != "" {
		h["Authorization"] = "Bearer " + access
	}
	return e.do(http.MethodGet, DefaultRoutes().Profile, nil, h)
}

// multipartBody builds a restore request body; file nil means no file part.
func multipartBody(t *testing.T, fileField string, file []byte, fields [][2]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		mw.WriteField(f[0], f[1])
	}
	if file != nil {
		fw, err := mw.CreateFormFile(fileField, "backup.json")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(file)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

var reinitFields = [][2]string{{"restore_type", "full"}, {"with_reinit", "true"}, {"reinit_confirm", "RESTORE CLEAN"}}

func (e *env) restore(access string, file []byte, fields [][2]string) resp {
	e.t.Helper()
	body, ct := multipartBody(e.t, "backup_file", file, fields)
	h := map[string]string{"Content-Type": ct}
	if access != "" {
		h["Authorization"] = "Bearer " + access
	}
	return e.do(http.MethodPost, DefaultRoutes().Restore, body, h)
}

func expect(t *testing.T, what string, got resp, status int, body string) {
	t.Helper()
	if got.status != status || got.body != body {
		t.Errorf("%s: got %d %s\nwant %d %s", what, got.status, got.body, status, body)
	}
}

func backupOf(t *testing.T, dsn string) []byte {
	t.Helper()
	conn := pgtest.Connect(t, dsn)
	var buf bytes.Buffer
	if _, err := restore.Backup(context.Background(), conn, &buf, restore.BackupOptions{Exclude: edms.Protected()}); err != nil {
		t.Fatalf("backup: %v", err)
	}
	return buf.Bytes()
}

// dbState fingerprints every table (row count and content) of the database.
func dbState(t *testing.T, conn *pgx.Conn) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, tb := range tables {
		var n int64
		var sum string
		q := fmt.Sprintf(`SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM %s t`, pgx.Identifier{tb}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		out[tb] = fmt.Sprintf("%d rows %s", n, sum)
	}
	return out
}

func sameState(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if !reflect.DeepEqual(before, after) {
		for k := range before {
			if before[k] != after[k] {
				t.Errorf("%s: table %s changed: %s -> %s", what, k, before[k], after[k])
			}
		}
		if len(before) != len(after) {
			t.Errorf("%s: tables changed: %v -> %v", what, before, after)
		}
	}
}

func userIDs(t *testing.T, conn *pgx.Conn) map[string]int64 {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT username, id FROM users_user`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for rows.Next() {
		var u string
		var id int64
		if err := rows.Scan(&u, &id); err != nil {
			t.Fatal(err)
		}
		out[u] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func smallUsers(t *testing.T) []fixtures.User {
	t.Helper()
	f, err := fixtures.Get("edms-small")
	if err != nil {
		t.Fatal(err)
	}
	return f.Users
}

func TestLogin(t *testing.T) {
	e := start(t, nil)
	conn := pgtest.Connect(t, e.dsn)
	before := dbState(t, conn)

	r := e.login("admin", "admin_secure_password_123")
	if r.status != http.StatusOK || !strings.HasPrefix(r.body, `{"refresh":"`) || !strings.Contains(r.body, `,"access":"`) {
		t.Fatalf("login admin: %d %s", r.status, r.body)
	}
	access, refresh := e.tokens("admin", "admin_secure_password_123")
	iss := token.Issuer{Key: []byte(testKey)}
	c, err := iss.Parse(access, token.TypeAccess, time.Now())
	if err != nil || c.UserID != 5 {
		t.Fatalf("access token: %+v %v", c, err)
	}
	if c, err := iss.Parse(refresh, token.TypeRefresh, time.Now()); err != nil || c.UserID != 5 {
		t.Fatalf("refresh token: %+v %v", c, err)
	}
	expect(t, "profile admin", e.profile(access), 200, `{"id":5,"username":"admin","email":"admin@edms.local","is_staff":true}`)
	a1, _ := e.tokens("author01", "author01_pw")
	expect(t, "profile author01", e.profile(a1), 200, `{"id":1,"username":"author01","email":"author01@edms.local","is_staff":false}`)
	if r := e.do(http.MethodHead, DefaultRoutes().Profile, nil, map[string]string{"Authorization": "Bearer " + access}); r.status != 200 || r.body != "" {
		t.Errorf("HEAD profile: %d %q", r.status, r.body)
	}

	r = e.login("admin", "wrong")
	expect(t, "wrong password", r, 401, bodyNoAccount)
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="api"` {
		t.Errorf("wrong password: WWW-Authenticate %q", got)
	}
	expect(t, "unknown user", e.login("nobody", "x"), 401, bodyNoAccount)
	expect(t, "reinit password before any reinit", e.login("admin", "test123"), 401, bodyNoAccount)
	expect(t, "username is case-sensitive", e.login("ADMIN", "admin_secure_password_123"), 401, bodyNoAccount)
	expect(t, "NUL in username", e.login("ad\x00min", "x"), 401, bodyNoAccount)

	expect(t, "missing password", e.postJSON("/api/v1/auth/login/", map[string]string{"username": "admin"}), 400, `{"password":["This field is required."]}`)
	expect(t, "missing both", e.postJSON("/api/v1/auth/login/", map[string]string{}), 400, `{"username":["This field is required."],"password":["This field is required."]}`)
	expect(t, "blank username", e.postJSON("/api/v1/auth/login/", map[string]any{"username": "  ", "password": "x"}), 400, `{"username":["This field may not be blank."]}`)
	expect(t, "null password", e.postJSON("/api/v1/auth/login/", map[string]any{"username": "admin", "password": nil}), 400, `{"password":["This field may not be null."]}`)
	expect(t, "list body", e.postJSON("/api/v1/auth/login/", []int{1}), 400, `{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}`)
	if r := e.do(http.MethodPost, "/api/v1/auth/login/", strings.NewReader("{"), map[string]string{"Content-Type": "application/json"}); r.status != 400 || !strings.HasPrefix(r.body, `{"detail":"JSON parse error - `) {
		t.Errorf("bad JSON: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPost, "/api/v1/auth/login/", strings.NewReader("username=author01&password=author01_pw"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); r.status != 200 {
		t.Errorf("form login: %d %s", r.status, r.body)
	}
	expect(t, "text body", e.do(http.MethodPost, "/api/v1/auth/login/", strings.NewReader("x"), map[string]string{"Content-Type": "text/plain"}), 415, `{"detail":"Unsupported media type \"text/plain\" in request."}`)

	r = e.do(http.MethodGet, "/api/v1/auth/login/", nil, nil)
	expect(t, "GET login", r, 405, `{"detail":"Method \"GET\" not allowed."}`)
	if got := r.header.Get("Allow"); got != "POST, OPTIONS" {
		t.Errorf("GET login: Allow %q", got)
	}
	expect(t, "unknown path", e.do(http.MethodGet, "/api/v1/nothing/", nil, nil), 404, bodyNotFound)
	expect(t, "path without slash", e.do(http.MethodPost, "/api/v1/auth/login", nil, nil), 404, bodyNotFound)

	// Logging in never writes (the harness checksums tables).
	sameState(t, "after logins", before, dbState(t, conn))

	// A stored hash that cannot be checked is a 401, logged without secrets.
	if _, err := conn.Exec(context.Background(), `UPDATE users_user SET password = 'garbage-not-a-hash' WHERE username = 'viewer01'`); err != nil {
		t.Fatal(err)
	}
	expect(t, "malformed stored hash", e.login("viewer01", "viewer01_pw"), 401, bodyNoAccount)
	logs := e.logs.all()
	if !strings.Contains(logs, "stored password cannot be checked") {
		t.Errorf("malformed hash not logged:\n%s", logs)
	}
	for _, secret := range []string{"admin_secure_password_123", "author01_pw", "viewer01_pw", "garbage-not-a-hash", access, refresh, a1} {
		if strings.Contains(logs, secret) {
			t.Errorf("a secret (%s) appears in the log", results.Fingerprint(secret))
		}
	}
	if !strings.Contains(logs, "POST /api/v1/auth/login/ 200 ") || !strings.Contains(logs, "GET /api/v1/auth/login/ 405 ") {
		t.Errorf("request lines missing:\n%s", logs)
	}
}

func TestProfileErrors(t *testing.T) {
	var offset atomic.Int64
	e := start(t, func(c *Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	conn := pgtest.Connect(t, e.dsn)
	ctx := context.Background()
	access, refresh := e.tokens("author01", "author01_pw")

	r := e.profile("")
	expect(t, "no header", r, 401, bodyNotProvided)
	if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="api"` {
		t.Errorf("no header: WWW-Authenticate %q", got)
	}
	prof := DefaultRoutes().Profile
	expect(t, "other scheme", e.do("GET", prof, nil, map[string]string{"Authorization": "Basic " + access}), 401, bodyNotProvided)
	expect(t, "scheme alone", e.do("GET", prof, nil, map[string]string{"Authorization": "Bearer"}), 401, `{"detail":"Authorization header must contain two space-delimited values","code":"bad_authorization_header"}`)
	expect(t, "garbage token", e.profile("not.a.jwt"), 401, bodyInvalid("Token is invalid or expired"))
	expect(t, "refresh as access", e.profile(refresh), 401, bodyInvalid("Token has wrong type"))
	other := token.Issuer{Key: []byte(strings.Repeat("k", 32))}
	forged, _, _ := other.Issue(token.TypeAccess, 1, time.Now())
	expect(t, "other key", e.profile(forged), 401, bodyInvalid("Token is invalid or expired"))

	expect(t, "valid token", e.profile(access), 200, `{"id":1,"username":"author01","email":"author01@edms.local","is_staff":false}`)
	expect(t, "POST profile", e.do("POST", prof, nil, map[string]string{"Authorization": "Bearer " + access}), 405, `{"detail":"Method \"POST\" not allowed."}`)
	expect(t, "POST profile without token (auth first, as DRF)", e.do("POST", prof, nil, nil), 401, bodyNotProvided)

	offset.Store(int64(6 * time.Minute))
	expect(t, "expired", e.profile(access), 401, bodyInvalid("Token is expired"))
	offset.Store(0)

	hash, err := edms.HashPassword("temp_pw")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"temp", "sleepy"} {
		if _, err := conn.Exec(ctx, `INSERT INTO users_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
VALUES ($1, false, $2, '', '', $3, false, true, now())`, hash, u, u+"@edms.local"); err != nil {
			t.Fatal(err)
		}
	}
	tempTok, _ := e.tokens("temp", "temp_pw")
	sleepyTok, _ := e.tokens("sleepy", "temp_pw")
	if r := e.profile(tempTok); r.status != 200 {
		t.Fatalf("temp profile: %d %s", r.status, r.body)
	}
	conn.Exec(ctx, `DELETE FROM users_user WHERE username = 'temp'`)
	expect(t, "deleted user", e.profile(tempTok), 401, bodyUserNotFound)
	conn.Exec(ctx, `UPDATE users_user SET is_active = false WHERE username = 'sleepy'`)
	expect(t, "inactive user", e.profile(sleepyTok), 401, bodyUserInactive)
	expect(t, "inactive user login", e.login("sleepy", "temp_pw"), 401, bodyNoAccount)

	// A token without iat (simplejwt < 5.0) is fine until a cutoff exists,
	// then it counts as revoked.
	noIat, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"token_type": "access", "exp": time.Now().Add(time.Minute).Unix(), "jti": token.NewJTI(), "user_id": 1,
	}).SignedString([]byte(testKey))
	if err != nil {
		t.Fatal(err)
	}
	if r := e.profile(noIat); r.status != 200 {
		t.Errorf("token without iat, no cutoff: %d %s", r.status, r.body)
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return edms.RevokeAll(ctx, tx, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	expect(t, "token without iat after a cutoff", e.profile(noIat), 401, bodyRevoked)
	expect(t, "token issued before the cutoff", e.profile(access), 401, bodyRevoked)
	// A token issued right after the cutoff, in the same second, works.
	fresh, _ := e.tokens("author01", "author01_pw")
	expect(t, "token issued after the cutoff", e.profile(fresh), 200, `{"id":1,"username":"author01","email":"author01@edms.local","is_staff":false}`)
	// A second reinit within the same second revokes that token too.
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return edms.RevokeAll(ctx, tx, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	expect(t, "token issued between two reinits in one second", e.profile(fresh), 401, bodyRevoked)
}

// badBackup refers to a user that does not exist.
const badBackup = `[{"model":"documents.document","pk":900,"fields":{"document_number":"DOC-900","title":"t","status":"draft","author":999,"created_at":"2025-01-01T00:00:00Z","updated_at":"2025-01-01T00:00:00Z"}}]`

func TestRestoreRefusals(t *testing.T) {
	e := start(t, nil)
	conn := pgtest.Connect(t, e.dsn)
	good := backupOf(t, e.dsn)
	before := dbState(t, conn)
	admin, _ := e.tokens("admin", "admin_secure_password_123")
	author, _ := e.tokens("author01", "author01_pw")
	path := DefaultRoutes().Restore

	expect(t, "non-staff", e.restore(author, good, reinitFields), 403, bodyForbidden)
	expect(t, "no token", e.restore("", good, reinitFields), 401, bodyNotProvided)
	expect(t, "GET without token (auth first, as DRF)", e.do("GET", path, nil, nil), 401, bodyNotProvided)
	expect(t, "GET as non-staff", e.do("GET", path, nil, map[string]string{"Authorization": "Bearer " + author}), 403, bodyForbidden)
	expect(t, "GET as staff", e.do("GET", path, nil, map[string]string{"Authorization": "Bearer " + admin}), 405, `{"detail":"Method \"GET\" not allowed."}`)

	expect(t, "missing confirmation", e.restore(admin, good, [][2]string{{"restore_type", "full"}, {"with_reinit", "true"}}), 400, `{"status":"error","detail":"reinit_confirm must be 'RESTORE CLEAN'"}`)
	expect(t, "wrong confirmation", e.restore(admin, good, [][2]string{{"with_reinit", "true"}, {"reinit_confirm", "restore clean"}}), 400, `{"status":"error","detail":"reinit_confirm must be 'RESTORE CLEAN'"}`)
	expect(t, "no file", e.restore(admin, nil, reinitFields), 400, `{"status":"error","detail":"backup_file is required"}`)
	expect(t, "JSON body", e.do("POST", path, strings.NewReader(`{"with_reinit":"true"}`), map[string]string{"Authorization": "Bearer " + admin, "Content-Type": "application/json"}), 400, `{"status":"error","detail":"backup_file is required"}`)
	expect(t, "restore_type", e.restore(admin, good, [][2]string{{"restore_type", "partial"}}), 400, `{"status":"error","detail":"restore_type must be 'full'"}`)
	expect(t, "with_reinit", e.restore(admin, good, [][2]string{{"with_reinit", "yes"}}), 400, `{"status":"error","detail":"with_reinit must be 'true' or 'false'"}`)

	r := e.restore(admin, []byte(badBackup), reinitFields)
	if r.status != 400 || !strings.HasPrefix(r.body, `{"status":"error","detail":"backup refused: `) || !strings.Contains(r.body, "documents.document pk=900") {
		t.Errorf("bad file: %d %s", r.status, r.body)
	}
	r = e.restore(admin, []byte("this is not json"), reinitFields)
	if r.status != 400 || !strings.Contains(r.body, "backup refused") {
		t.Errorf("not JSON: %d %s", r.status, r.body)
	}
	r = e.restore(admin, []byte{}, reinitFields)
	if r.status != 400 || !strings.Contains(r.body, "empty") {
		t.Errorf("empty file: %d %s", r.status, r.body)
	}

	// Nothing was touched, and admin's token was not revoked.
	sameState(t, "after refused restores", before, dbState(t, conn))
	if r := e.profile(admin); r.status != 200 {
		t.Errorf("admin token after refusals: %d %s", r.status, r.body)
	}

	// Without reinit the backup is loaded over the data (loaddata's upsert)
	// and no token is revoked.
	r = e.restore(admin, good, [][2]string{{"restore_type", "full"}, {"with_reinit", "false"}})
	if r.status != 200 || !strings.Contains(r.body, `"with_reinit":false`) {
		t.Errorf("restore without reinit: %d %s", r.status, r.body)
	}
	if r := e.profile(author); r.status != 200 {
		t.Errorf("author01 token after a restore without reinit: %d %s", r.status, r.body)
	}

	// A body over the limit is refused before anything runs.
	small := startOn(t, e.dsn, func(c *Config) { c.MaxUploadBytes = 4096 })
	r = small.restore(admin, good, reinitFields)
	if r.status != 413 || !strings.Contains(r.body, "limit of 4096 bytes") {
		t.Errorf("too large: %d %s", r.status, r.body)
	}
	sameState(t, "after a too-large upload", before, dbState(t, conn))
}

// phaseRecorder records hook events, except per-table ones.
type phaseRecorder struct {
	mu     sync.Mutex
	phases []string
}

func (p *phaseRecorder) on(e restore.Event) {
	if e.Phase == restore.PhaseTableLoaded {
		return
	}
	p.mu.Lock()
	p.phases = append(p.phases, e.Phase)
	p.mu.Unlock()
}

func (p *phaseRecorder) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.phases...)
}

func TestRestoreWithReinit(t *testing.T) {
	for _, strategy := range []restore.Strategy{restore.TwoPhase, restore.Atomic} {
		t.Run(string(strategy), func(t *testing.T) {
			rec := &phaseRecorder{}
			e := start(t, func(c *Config) {
				c.Strategy = strategy
				c.Hooks.OnPhase = rec.on
			})
			conn := pgtest.Connect(t, e.dsn)
			idsBefore := userIDs(t, conn)
			oldAdmin, _ := e.tokens("admin", "admin_secure_password_123")
			oldAuthor, _ := e.tokens("author01", "author01_pw")
			backup := backupOf(t, e.dsn)

			r := e.restore(oldAdmin, backup, reinitFields)
			if r.status != 200 {
				t.Fatalf("restore: %d %s", r.status, r.body)
			}
			var out struct {
				Status     string           `json:"status"`
				Strategy   string           `json:"strategy"`
				WithReinit bool             `json:"with_reinit"`
				Objects    int              `json:"objects"`
				Rows       map[string]int64 `json:"rows"`
				ReinitMS   *float64         `json:"reinit_ms"`
				RestoreMS  *float64         `json:"restore_ms"`
			}
			if err := json.Unmarshal([]byte(r.body), &out); err != nil {
				t.Fatal(err)
			}
			if out.Status != "success" || out.Strategy != string(strategy) || !out.WithReinit || out.Objects == 0 ||
				out.Rows["users_user"] != int64(len(idsBefore)) || out.ReinitMS == nil || out.RestoreMS == nil {
				t.Errorf("restore response: %s", r.body)
			}
			want := []string{PhaseCallReceived, restore.PhaseValidated, restore.PhaseReinitCommitted, restore.PhaseRestoreCommitted, PhaseResponseSent}
			if got := rec.get(); !reflect.DeepEqual(got, want) {
				t.Errorf("hook phases:\n got %q\nwant %q", got, want)
			}

			// No resurrection: the tokens issued before the restore are refused.
			expect(t, "old admin token", e.profile(oldAdmin), 401, bodyRevoked)
			expect(t, "old author01 token", e.profile(oldAuthor), 401, bodyRevoked)
			// Everyone logs in with the original password, and the new token works.
			for _, u := range smallUsers(t) {
				access, _ := e.tokens(u.Username, u.Password)
				if r := e.profile(access); r.status != 200 || !strings.HasPrefix(r.body, fmt.Sprintf(`{"id":%d,"username":%q`, u.ID, u.Username)) {
					t.Errorf("%s after restore: %d %s", u.Username, r.status, r.body)
				}
			}
			expect(t, "reinit default password", e.login("admin", "test123"), 401, bodyNoAccount)
			if got := userIDs(t, conn); !reflect.DeepEqual(got, idsBefore) {
				t.Errorf("user ids changed: %v -> %v", idsBefore, got)
			}
			if logs := e.logs.all(); strings.Contains(logs, oldAdmin) || strings.Contains(logs, "admin_secure_password_123") {
				t.Error("a secret appears in the log")
			}
		})
	}
}

// TestNoRevocationDefect shows that the revocation check is what stops the
// resurrection: without it (plain simplejwt), old tokens work again.
func TestNoRevocationDefect(t *testing.T) {
	e := start(t, func(c *Config) { c.Defects.NoRevocation = true })
	oldAdmin, _ := e.tokens("admin", "admin_secure_password_123")
	oldAuthor, _ := e.tokens("author01", "author01_pw")
	r := e.restore(oldAdmin, backupOf(t, e.dsn), reinitFields)
	if r.status != 200 {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	expect(t, "old author01 token (resurrected)", e.profile(oldAuthor), 200, `{"id":1,"username":"author01","email":"author01@edms.local","is_staff":false}`)
	expect(t, "old admin token (resurrected)", e.profile(oldAdmin), 200, `{"id":5,"username":"admin","email":"admin@edms.local","is_staff":true}`)
	if !strings.Contains(e.logs.all(), "DEFECTS ENABLED") {
		t.Error("enabled defects are not logged")
	}
}

// TestPasswordFromDefect: the engine defects reach the restore.
func TestPasswordFromDefect(t *testing.T) {
	e := start(t, func(c *Config) { c.Defects.PasswordFrom = "last_name" })
	admin, _ := e.tokens("admin", "admin_secure_password_123")
	if r := e.restore(admin, backupOf(t, e.dsn), reinitFields); r.status != 200 {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	expect(t, "author01 after a restore that lost the hashes", e.login("author01", "author01_pw"), 401, bodyNoAccount)
}

func TestRestoresRunOneAtATime(t *testing.T) {
	rec := &phaseRecorder{}
	inWindow := make(chan struct{})
	release := make(chan struct{})
	var calls atomic.Int32
	e := start(t, func(c *Config) {
		c.Hooks.OnPhase = rec.on
		c.Hooks.BetweenPhases = func(ctx context.Context) error {
			if calls.Add(1) == 1 {
				close(inWindow)
				<-release
			}
			return nil
		}
	})
	admin, _ := e.tokens("admin", "admin_secure_password_123")
	backup := backupOf(t, e.dsn)
	results := make(chan resp, 2)
	go func() { results <- e.restore(admin, backup, reinitFields) }()
	<-inWindow
	// In the window, admin's password is the reinit default: the seed's
	// second caller logs in with it.
	second, _ := e.tokens("admin", "test123")
	go func() { results <- e.restore(second, backup, reinitFields) }()
	deadline := time.Now().Add(5 * time.Second)
	for count(rec.get(), PhaseCallReceived) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if n := count(rec.get(), restore.PhaseValidated); n != 1 {
		t.Errorf("a second restore started while the first was running (%d validated events): %q", n, rec.get())
	}
	close(release)
	for i := 0; i < 2; i++ {
		if r := <-results; r.status != 200 {
			t.Errorf("restore %d: %d %s", i, r.status, r.body)
		}
	}
	got := rec.get()
	firstDone, secondValidated := -1, -1
	seen := 0
	for i, p := range got {
		if p == PhaseResponseSent && firstDone < 0 {
			firstDone = i
		}
		if p == restore.PhaseValidated {
			if seen++; seen == 2 {
				secondValidated = i
			}
		}
	}
	if firstDone < 0 || secondValidated < firstDone {
		t.Errorf("restores overlapped: %q", got)
	}
	if r := e.login("author01", "author01_pw"); r.status != 200 {
		t.Errorf("author01 after two restores: %d %s", r.status, r.body)
	}
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func TestCustomRoutes(t *testing.T) {
	routes := Routes{
		Login: "/auth/token/", Profile: "/auth/me/", Restore: "/admin/restore/",
		UsernameField: "login", PasswordField: "secret", AccessField: "token", RefreshField: "refresh_token",
		ConfirmField: "confirm", ConfirmPhrase: "YES", AuthScheme: "JWT",
	}
	e := start(t, func(c *Config) { c.Routes = routes })
	if got := e.srv.Routes(); got.BackupFileField != "backup_file" || got.Login != "/auth/token/" {
		t.Errorf("effective routes: %+v", got)
	}
	r := e.postJSON("/auth/token/", map[string]string{"login": "admin", "secret": "admin_secure_password_123"})
	var m map[string]string
	json.Unmarshal([]byte(r.body), &m)
	if r.status != 200 || m["token"] == "" || m["refresh_token"] == "" || !strings.HasPrefix(r.body, `{"refresh_token":`) {
		t.Fatalf("custom login: %d %s", r.status, r.body)
	}
	expect(t, "custom profile", e.do("GET", "/auth/me/", nil, map[string]string{"Authorization": "JWT " + m["token"]}), 200, `{"id":5,"username":"admin","email":"admin@edms.local","is_staff":true}`)
	r = e.do("GET", "/auth/me/", nil, map[string]string{"Authorization": "Bearer " + m["token"]})
	expect(t, "default scheme on custom server", r, 401, bodyNotProvided)
	if got := r.header.Get("WWW-Authenticate"); got != `JWT realm="api"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	expect(t, "custom missing field", e.postJSON("/auth/token/", map[string]string{"login": "admin"}), 400, `{"secret":["This field is required."]}`)
	body, ct := multipartBody(t, "backup_file", []byte("[]"), [][2]string{{"with_reinit", "true"}, {"confirm", "RESTORE CLEAN"}})
	expect(t, "custom confirmation", e.do("POST", "/admin/restore/", body, map[string]string{"Authorization": "JWT " + m["token"], "Content-Type": ct}), 400, `{"status":"error","detail":"confirm must be 'YES'"}`)
	for _, p := range []string{DefaultRoutes().Login, DefaultRoutes().Profile, DefaultRoutes().Restore} {
		expect(t, "default path "+p, e.do("POST", p, nil, nil), 404, bodyNotFound)
	}
}

func TestParseDefects(t *testing.T) {
	d, err := ParseDefects([]string{"no-revocation", " skip-sequences ", "", "skip-table=audit_auditevent", "skip-table=users_user_groups", "dangling-fk", "password-from=last_name"})
	if err != nil {
		t.Fatal(err)
	}
	want := Defects{NoRevocation: true, SkipSequences: true, SkipTables: []string{"audit_auditevent", "users_user_groups"}, DanglingFK: true, PasswordFrom: "last_name"}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("ParseDefects: %+v, want %+v", d, want)
	}
	if back, err := ParseDefects(d.Names()); err != nil || !reflect.DeepEqual(back, d) {
		t.Errorf("Names round trip: %v %+v", err, back)
	}
	eng := d.Engine()
	if !eng.SkipFKCheck || !eng.SkipSequences || !reflect.DeepEqual(eng.SkipTables, []string{"audit_auditevent", "users_user_groups", "documents_document"}) ||
		eng.ColumnFrom["users_user.password"] != "last_name" {
		t.Errorf("engine defects: %+v", eng)
	}
	if d, err := ParseDefects(nil); err != nil || d.Any() {
		t.Errorf("no defects: %+v %v", d, err)
	}
	for _, bad := range []string{"bogus", "skip-table", "skip-table=", "no-revocation=1", "password-from=a;b", "Skip-Sequences"} {
		_, err := ParseDefects([]string{bad})
		if err == nil {
			t.Errorf("ParseDefects(%q): no error", bad)
			continue
		}
		if bad == "bogus" {
			for _, name := range []string{"no-revocation", "skip-sequences", "skip-table=<table>", "dangling-fk", "password-from=<field>"} {
				if !strings.Contains(err.Error(), name) {
					t.Errorf("error for an unknown name does not list %q: %v", name, err)
				}
			}
		}
	}
}

func TestNewValidates(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "host=/nonexistent") // never connects: New only checks the configuration
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	key := []byte(testKey)
	cases := map[string]Config{
		"no pool":        {SigningKey: key},
		"short key":      {Pool: pool, SigningKey: []byte("short")},
		"bad strategy":   {Pool: pool, SigningKey: key, Strategy: "sideways"},
		"same paths":     {Pool: pool, SigningKey: key, Routes: Routes{Profile: DefaultRoutes().Login}},
		"relative path":  {Pool: pool, SigningKey: key, Routes: Routes{Login: "login/"}},
		"same fields":    {Pool: pool, SigningKey: key, Routes: Routes{UsernameField: "password"}},
		"scheme":         {Pool: pool, SigningKey: key, Routes: Routes{AuthScheme: "Bear er"}},
		"negative limit": {Pool: pool, SigningKey: key, MaxUploadBytes: -1},
		"bad defect":     {Pool: pool, SigningKey: key, Defects: Defects{PasswordFrom: "x; DROP"}},
		"neg lifetime":   {Pool: pool, SigningKey: key, AccessLifetime: -time.Second},
	}
	for name, cfg := range cases {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted the configuration", name)
		}
	}
	s, err := New(Config{Pool: pool, SigningKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if s.Strategy() != restore.TwoPhase || s.Routes() != DefaultRoutes() {
		t.Errorf("defaults: %s %+v", s.Strategy(), s.Routes())
	}
}

// The pool behaves as the server relies on: at most maxConns connections,
// a backend killed while idle replaced before a request sees it, and a
// connection released inside a transaction never reused.
func TestPool(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SeededDB(t)
	if _, err := NewPool(ctx, "host=/nonexistent/socket/dir dbname=x connect_timeout=2", 2); err == nil {
		t.Error("NewPool accepted a database it cannot reach")
	}
	old := pingAfter
	pingAfter = 0
	defer func() { pingAfter = old }()
	p, err := NewPool(ctx, dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	a, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if c, err := p.Acquire(short); err == nil {
		c.Release()
		t.Error("Acquire beyond the limit did not wait")
	}
	cancel()
	pids := []uint32{a.Conn().PgConn().PID(), b.Conn().PgConn().PID()}
	a.Release()
	b.Release()

	// A backend killed while idle is replaced transparently.
	admin := pgtest.Connect(t, dsn)
	for _, pid := range pids {
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend($1)`, int64(pid)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		var one int
		if err := p.QueryRow(ctx, `SELECT 1`).Scan(&one); err != nil || one != 1 {
			t.Fatalf("query after a killed backend: %v", err)
		}
	}
	// A connection released inside a transaction is not reused.
	c, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.Conn()
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	inTx := conn.PgConn().PID()
	c.Release()
	for deadline := time.Now().Add(5 * time.Second); !conn.IsClosed(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("a connection released inside a transaction was kept")
		}
	}
	var held []*pgxpool.Conn
	for range 2 {
		c, err := p.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if c.Conn().PgConn().PID() == inTx {
			t.Error("the connection released inside a transaction was handed out again")
		}
	}
	for _, c := range held {
		c.Release()
	}
	p.Close()
	if _, err := p.Acquire(ctx); err == nil {
		t.Error("Acquire after Close succeeded")
	}
}

func (e *env) refresh(refresh string) resp {
	e.t.Helper()
	return e.postJSON(DefaultRoutes().Refresh, map[string]string{"refresh": refresh})
}

// The refresh endpoint mints an access token from a refresh token; the
// reinit's revocation kills refresh tokens too, and without it (plain
// simplejwt) an old refresh token works again once its user is back.
func TestRefresh(t *testing.T) {
	for _, noRevocation := range []bool{false, true} {
		t.Run(fmt.Sprintf("no-revocation=%t", noRevocation), func(t *testing.T) {
			e := start(t, func(c *Config) { c.Defects.NoRevocation = noRevocation })
			admin, _ := e.tokens("admin", "admin_secure_password_123")
			oldAccess, oldRefresh := e.tokens("author01", "author01_pw")
			r := e.refresh(oldRefresh)
			var m map[string]string
			if r.status != 200 || json.Unmarshal([]byte(r.body), &m) != nil || m["access"] == "" {
				t.Fatalf("refresh: %d %s", r.status, r.body)
			}
			if p := e.profile(m["access"]); p.status != 200 {
				t.Fatalf("the refreshed access token: %d %s", p.status, p.body)
			}
			expect(t, "an access token given as refresh token", e.refresh(oldAccess), 401, `{"detail":"Token is invalid or expired","code":"token_not_valid"}`)
			expect(t, "no refresh field", e.postJSON(DefaultRoutes().Refresh, map[string]string{}), 400, `{"refresh":["This field is required."]}`)
			if r := e.do(http.MethodGet, DefaultRoutes().Refresh, nil, nil); r.status != 405 {
				t.Errorf("GET refresh: %d", r.status)
			}
			if r := e.restore(admin, backupOf(t, e.dsn), reinitFields); r.status != 200 {
				t.Fatalf("restore: %d %s", r.status, r.body)
			}
			want := 401
			if noRevocation {
				want = 200
			}
			if r := e.refresh(oldRefresh); r.status != want {
				t.Errorf("old refresh token after the restore: %d %s, want %d", r.status, r.body, want)
			}
		})
	}
}

// A token dated in the future (forged with the key, or from a wrong clock)
// does not outlive the reinit's revocation: within the leeway the parser
// accepts it, and the revocation check refuses it.
func TestFutureTokenDoesNotSurviveRevocation(t *testing.T) {
	e := start(t, nil)
	admin, _ := e.tokens("admin", "admin_secure_password_123")
	forged, _, err := token.Issuer{Key: []byte(testKey)}.Issue(token.TypeAccess, 1, time.Now().Add(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r := e.profile(forged); r.status != 200 {
		t.Fatalf("before any reinit the forged token is a token like any other: %d %s", r.status, r.body)
	}
	if r := e.restore(admin, backupOf(t, e.dsn), reinitFields); r.status != 200 {
		t.Fatalf("restore: %d %s", r.status, r.body)
	}
	if r := e.profile(forged); r.status != 401 {
		t.Errorf("a token dated 10 s ahead survived the revocation: %d %s", r.status, r.body)
	}
}
