// Package server is the reference system's HTTP API: the three calls of the
// seed's Django REST Framework + simplejwt document-management backend
// (login, profile, restore_from_file), with DRF's and simplejwt's status
// codes and response bodies, served on loopback for the harness.
//
// Request handling follows DRF's order: authentication and permission checks
// run before the method is looked at, so a GET on the restore endpoint
// without a token is a 401, and with a non-staff token a 403, exactly as DRF
// answers; only an authorised caller sees the 405.
//
// Secrets never reach the log: the per-request line has method, path (no
// query string), status and duration; tokens are referred to by
// results.Fingerprint, passwords never.
package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rehearse-dev/rehearse/edms/password"
	"github.com/rehearse-dev/rehearse/edms/token"
	"github.com/rehearse-dev/rehearse/restore"
)

// Hook phases the server adds to the restore engine's (restore.Phase*).
const (
	// PhaseCallReceived: a restore request passed authentication and the
	// staff check; its body has not been read yet.
	PhaseCallReceived = "call received"
	// PhaseResponseSent: the restore response is about to be written.
	PhaseResponseSent = "response sent"
)

// DefaultMaxUploadBytes bounds a restore request body.
const DefaultMaxUploadBytes int64 = 2 << 30

// Timeouts. A restore gets its own, longer deadlines.
const (
	readHeaderTimeout   = 10 * time.Second
	idleTimeout         = 2 * time.Minute
	requestTimeout      = time.Minute // login, profile, errors: read and write
	uploadTimeout       = time.Hour   // reading a restore body
	restoreWriteTimeout = 6 * time.Hour
	shutdownGrace       = 30 * time.Second
	maxFormBody         = 1 << 20 // login body
	maxFieldValue       = 64 << 10
)

// Config configures a Server.
type Config struct {
	// Pool is the system's database (NewPool opens one). The server does
	// not close it.
	Pool *pgxpool.Pool
	// SigningKey is the HS256 key (at least token.MinKeyLen bytes).
	SigningKey []byte
	// AccessLifetime and RefreshLifetime are the token lifetimes; 0 means
	// simplejwt's defaults (5 minutes, 1 day).
	AccessLifetime, RefreshLifetime time.Duration
	// Strategy is the engine strategy of restore_from_file (a server setting,
	// not a request field); "" means restore.TwoPhase, the seed's behaviour.
	Strategy restore.Strategy
	// DefaultAdminPassword is what the reinit sets for admin; "" = test123.
	DefaultAdminPassword string
	// Routes are the endpoint paths and field names; empty fields take
	// DefaultRoutes' values.
	Routes Routes
	// Defects break the system on purpose (harness self-tests only).
	Defects Defects
	// Auth is how sessions, DRF tokens and access tokens behave (AuthMode).
	Auth AuthMode
	// Hooks are optional callbacks for the in-process harness.
	Hooks Hooks
	// MaxUploadBytes bounds a restore request body; 0 means
	// DefaultMaxUploadBytes (2 GiB).
	MaxUploadBytes int64
	// TempDir is where uploads are spooled; "" means os.TempDir().
	TempDir string
	// Limits bound what restore_from_file's scanner accepts of an upload;
	// the zero value means the engine's defaults.
	Limits restore.Limits
	// Logf receives one line per request and server errors; nil discards.
	Logf func(format string, args ...any)
	// Now is the clock used to issue and check tokens; nil means time.Now.
	Now func() time.Time
}

// Routes are the endpoint paths and request/response field names.
type Routes struct {
	Login, Profile, Restore, Refresh  string // paths
	UsernameField, PasswordField      string // login request fields
	AccessField, RefreshField         string // login response fields
	BackupFileField, RestoreTypeField string // restore form fields
	WithReinitField, ConfirmField     string
	ConfirmPhrase                     string // what ConfirmField must hold when with_reinit is true
	AuthScheme                        string // Authorization header scheme, "Bearer"
	// SessionLogin (a JSON login view setting the SessionCookie) and
	// TokenLogin (DRF's obtain_auth_token, answering {TokenField}) are the
	// logins of the other kinds; TokenScheme is DRF's "Token".
	SessionLogin, TokenLogin               string
	SessionCookie, TokenField, TokenScheme string
}

// DefaultRoutes returns the DRF contract of the seed's system.
func DefaultRoutes() Routes {
	return Routes{
		Login:            "/api/v1/auth/login/",
		Profile:          "/api/v1/auth/profile/",
		Restore:          "/api/v1/backup/restores/restore_from_file/",
		Refresh:          "/api/v1/auth/refresh/",
		UsernameField:    "username",
		PasswordField:    "password",
		AccessField:      "access",
		RefreshField:     "refresh",
		BackupFileField:  "backup_file",
		RestoreTypeField: "restore_type",
		WithReinitField:  "with_reinit",
		ConfirmField:     "reinit_confirm",
		ConfirmPhrase:    "RESTORE CLEAN",
		AuthScheme:       "Bearer",
		SessionLogin:     "/api/v1/auth/session/",
		TokenLogin:       "/api/v1/auth/token/",
		SessionCookie:    "sessionid",
		TokenField:       "token",
		TokenScheme:      "Token",
	}
}

// withDefaults fills every empty field from DefaultRoutes.
func (r Routes) withDefaults() Routes {
	d := DefaultRoutes()
	r.Login = cmp.Or(r.Login, d.Login)
	r.Profile = cmp.Or(r.Profile, d.Profile)
	r.Restore = cmp.Or(r.Restore, d.Restore)
	r.Refresh = cmp.Or(r.Refresh, d.Refresh)
	r.UsernameField = cmp.Or(r.UsernameField, d.UsernameField)
	r.PasswordField = cmp.Or(r.PasswordField, d.PasswordField)
	r.AccessField = cmp.Or(r.AccessField, d.AccessField)
	r.RefreshField = cmp.Or(r.RefreshField, d.RefreshField)
	r.BackupFileField = cmp.Or(r.BackupFileField, d.BackupFileField)
	r.RestoreTypeField = cmp.Or(r.RestoreTypeField, d.RestoreTypeField)
	r.WithReinitField = cmp.Or(r.WithReinitField, d.WithReinitField)
	r.ConfirmField = cmp.Or(r.ConfirmField, d.ConfirmField)
	r.ConfirmPhrase = cmp.Or(r.ConfirmPhrase, d.ConfirmPhrase)
	r.AuthScheme = cmp.Or(r.AuthScheme, d.AuthScheme)
	r.SessionLogin = cmp.Or(r.SessionLogin, d.SessionLogin)
	r.TokenLogin = cmp.Or(r.TokenLogin, d.TokenLogin)
	r.SessionCookie = cmp.Or(r.SessionCookie, d.SessionCookie)
	r.TokenField = cmp.Or(r.TokenField, d.TokenField)
	r.TokenScheme = cmp.Or(r.TokenScheme, d.TokenScheme)
	return r
}

func (r Routes) validate() error {
	paths := map[string]string{}
	for _, p := range []struct{ name, path string }{{"Login", r.Login}, {"Profile", r.Profile}, {"Restore", r.Restore}, {"Refresh", r.Refresh},
		{"SessionLogin", r.SessionLogin}, {"TokenLogin", r.TokenLogin}} {
		if !strings.HasPrefix(p.path, "/") || strings.ContainsAny(p.path, "?# \t\r\n") {
			return fmt.Errorf("Routes.%s: %q is not an absolute URL path (it must start with '/' and hold no query)", p.name, p.path)
		}
		if other, dup := paths[p.path]; dup {
			return fmt.Errorf("Routes.%s and Routes.%s are both %q; give each endpoint its own path", other, p.name, p.path)
		}
		paths[p.path] = p.name
	}
	pairs := [][2]string{{r.UsernameField, r.PasswordField}, {r.AccessField, r.RefreshField}}
	for _, p := range pairs {
		if p[0] == p[1] {
			return fmt.Errorf("Routes: field name %q is used twice", p[0])
		}
	}
	form := map[string]bool{}
	for _, f := range []string{r.BackupFileField, r.RestoreTypeField, r.WithReinitField, r.ConfirmField} {
		if form[f] {
			return fmt.Errorf("Routes: restore form field %q is used twice", f)
		}
		form[f] = true
	}
	if strings.ContainsAny(r.AuthScheme, " \t\r\n\"") {
		return fmt.Errorf("Routes.AuthScheme: %q must be one word, like Bearer or JWT", r.AuthScheme)
	}
	if strings.ContainsAny(r.TokenScheme, " \t\r\n\"") || r.TokenScheme == r.AuthScheme {
		return fmt.Errorf("Routes.TokenScheme: %q must be one word other than AuthScheme, like Token", r.TokenScheme)
	}
	return nil
}

// Hooks let the in-process harness watch and act inside a restore call.
type Hooks struct {
	// OnPhase receives every restore progress event (restore.Phase*), plus
	// PhaseCallReceived and PhaseResponseSent. Restores run one at a time,
	// but a "call received" of a waiting call may come concurrently with
	// another call's events: make it safe for concurrent use.
	OnPhase func(restore.Event)
	// BetweenPhases is passed to restore.Options.BetweenPhases: it runs
	// after the reinit committed and before the restore starts (two-phase).
	BetweenPhases func(ctx context.Context) error
}

// Server is the reference system's HTTP API.
type Server struct {
	pool      *pgxpool.Pool
	issuer    token.Issuer
	strategy  restore.Strategy
	adminPW   string
	routes    Routes
	defects   Defects
	auth      AuthMode
	hooks     Hooks
	maxUpload int64
	limits    restore.Limits
	tempDir   string
	logf      func(string, ...any)
	now       func() time.Time
	dummyHash string // verified for unknown users, so they take as long as known ones

	restoreSlot chan struct{} // restores run one at a time
	stopOnce    sync.Once
	stopCtx     context.Context // cancelled when Serve gives up waiting for handlers
	stop        context.CancelFunc
}

// New checks cfg and returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Pool == nil {
		return nil, errors.New("server: Config.Pool is nil; open the system's database with NewPool")
	}
	iss := token.Issuer{Key: bytes.Clone(cfg.SigningKey), AccessLifetime: cfg.AccessLifetime, RefreshLifetime: cfg.RefreshLifetime}
	if err := iss.Validate(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	strategy, err := restore.ParseStrategy(string(cfg.Strategy))
	if err != nil {
		return nil, fmt.Errorf("server: Config.Strategy: %w", err)
	}
	routes := cfg.Routes.withDefaults()
	if err := routes.validate(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := cfg.Defects.validate(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if cfg.MaxUploadBytes < 0 {
		return nil, fmt.Errorf("server: Config.MaxUploadBytes is negative (%d); use 0 for the default of %d", cfg.MaxUploadBytes, DefaultMaxUploadBytes)
	}
	dummy, err := password.Make("rehearse-unknown-user", password.NewSalt(), password.DefaultIterations)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{
		pool:        cfg.Pool,
		issuer:      iss,
		strategy:    strategy,
		adminPW:     cfg.DefaultAdminPassword,
		routes:      routes,
		defects:     cfg.Defects,
		auth:        cfg.Auth,
		hooks:       cfg.Hooks,
		maxUpload:   cmp.Or(cfg.MaxUploadBytes, DefaultMaxUploadBytes),
		limits:      cfg.Limits,
		tempDir:     cfg.TempDir,
		logf:        cfg.Logf,
		now:         cfg.Now,
		dummyHash:   dummy,
		restoreSlot: make(chan struct{}, 1),
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	if cfg.Defects.Any() {
		s.logf("server: DEFECTS ENABLED (for harness self-tests only): %s", strings.Join(cfg.Defects.Names(), ", "))
	}
	return s, nil
}

// Routes returns the effective routes (defaults filled in).
func (s *Server) Routes() Routes { return s.routes }

// Strategy returns the restore strategy in effect.
func (s *Server) Strategy() restore.Strategy { return s.strategy }

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve serves the API on ln until ctx is cancelled, then shuts down
// gracefully (in-flight requests, including a running restore, get 30 s to
// finish; after that a restore still running is cancelled) and returns nil.
// It returns the error if the listener fails.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          log.New(logWriter(s.logf), "server: http: ", 0),
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.logf("server: graceful shutdown gave up after %v (%v); cancelling what still runs", shutdownGrace, err)
		s.stopOnce.Do(s.stop)
		srv.Close()
	}
	<-done
	return nil
}

type logWriter func(string, ...any)

func (l logWriter) Write(p []byte) (int, error) {
	l("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// recorder remembers the status for the request log.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logf("server: panic serving %s %s: %v", r.Method, r.URL.Path, v)
			if rec.status == 0 {
				writeJSON(rec, http.StatusInternalServerError, serverError)
			}
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		s.logf("%s %s %d %s", r.Method, r.URL.Path, status, time.Since(start).Round(time.Microsecond))
	}()
	rc := http.NewResponseController(rec)
	if r.URL.Path == s.routes.Restore {
		rc.SetReadDeadline(start.Add(uploadTimeout))
		rc.SetWriteDeadline(start.Add(restoreWriteTimeout))
	} else {
		rc.SetReadDeadline(start.Add(requestTimeout))
		rc.SetWriteDeadline(start.Add(requestTimeout))
	}
	for _, route := range []struct {
		path  string
		serve http.HandlerFunc
	}{
		{s.routes.Login, s.login}, {s.routes.Profile, s.profile}, {s.routes.Restore, s.restore},
		{s.routes.Refresh, s.refresh}, {s.routes.SessionLogin, s.sessionLogin}, {s.routes.TokenLogin, s.tokenLogin},
	} {
		if r.URL.Path == route.path {
			route.serve(rec, r)
			return
		}
	}
	writeJSON(rec, http.StatusNotFound, obj{{"detail", "Not found."}})
}

// obj is a JSON object that keeps its key order (DRF's bodies are ordered).
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := marshal(f.k)
		if err != nil {
			return nil, err
		}
		v, err := marshal(f.v)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping and without the trailing
// newline, like DRF's JSONRenderer.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

var serverError = obj{{"detail", "A server error occurred."}}

func writeJSON(w http.ResponseWriter, status int, body any) {
	b, err := marshal(body)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = marshal(serverError)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Vary", "Accept")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}

// methodNotAllowed answers DRF's 405, or its OPTIONS metadata.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, name string, allow ...string) {
	allow = append(allow, http.MethodOptions)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	if r.Method == http.MethodOptions {
		writeJSON(w, http.StatusOK, obj{
			{"name", name},
			{"description", ""},
			{"renders", []string{"application/json"}},
			{"parses", []string{"application/json", "application/x-www-form-urlencoded", "multipart/form-data"}},
		})
		return
	}
	writeJSON(w, http.StatusMethodNotAllowed, obj{{"detail", "Method \"" + r.Method + "\" not allowed."}})
}
