package server

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/reinit"
)

// AuthMode is how the reference system treats the credentials other than
// simplejwt's stateful access tokens, chosen at start: the same choices a
// Django app makes in its settings and its reinit.
type AuthMode struct {
	// FlushSessions: the reinit deletes every django_session row, as an app
	// whose reinit flushes sessions does. Without it the rows stay, and a
	// session whose user comes back with the same id and password hash is
	// valid again.
	FlushSessions bool
	// TokensNotBackedUp: the system's backup leaves authtoken.token out, so
	// the restore does not bring DRF tokens back.
	TokensNotBackedUp bool
	// Stateless: profile authenticates access tokens as simplejwt's
	// JWTStatelessUserAuthentication does, without a database lookup (and so
	// without the revocation cutoff). The restore endpoint still looks its
	// caller up: its staff check needs the user.
	Stateless bool
}

// Tables of Django's sessions and DRF's authtoken apps.
const (
	SessionTable = "django_session"
	TokenTable   = "authtoken_token"
)

// authTables are the two tables as Django's migrations create them.
const authTables = `
CREATE TABLE IF NOT EXISTS django_session (
    session_key  varchar(40) PRIMARY KEY,
    session_data text NOT NULL,
    expire_date  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS django_session_expire_date_idx ON django_session (expire_date);
CREATE TABLE IF NOT EXISTS authtoken_token (
    key     varchar(40) PRIMARY KEY,
    created timestamptz NOT NULL,
    user_id bigint NOT NULL UNIQUE REFERENCES users_user (id) DEFERRABLE INITIALLY DEFERRED
);`

// InstallAuthTables adds django_session and authtoken_token to a database
// with the reference schema (idempotent). The reinit deletes a user's
// tokens with it (the foreign key) and leaves sessions alone (they name
// their user inside session_data), as in Django.
func InstallAuthTables(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, authTables); err != nil {
		return fmt.Errorf("create the session and token tables: %w", err)
	}
	return nil
}

// Reinit is cfg with what the mode adds to the reinit.
func (m AuthMode) Reinit(cfg reinit.Config) reinit.Config {
	if !m.FlushSessions {
		return cfg
	}
	after := cfg.AfterApply
	cfg.AfterApply = func(ctx context.Context, tx pgx.Tx) error {
		if after != nil {
			if err := after(ctx, tx); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `DELETE FROM `+SessionTable)
		return err
	}
	return cfg
}

// BackupModels and BackupExclude shape the system's backup: django_session
// is sessions.session, left out as Django's docs advise; authtoken.token
// is left out in TokensNotBackedUp.
func (m AuthMode) BackupModels() map[string]string {
	return map[string]string{SessionTable: "sessions.session", TokenTable: "authtoken.token"}
}

// BackupExclude lists the models the system's backup leaves out.
func (m AuthMode) BackupExclude() []string {
	out := []string{"sessions.session"}
	if m.TokensNotBackedUp {
		out = append(out, "authtoken.token")
	}
	return out
}

// Django's names and defaults.
const (
	sessionAge        = 14 * 24 * time.Hour // SESSION_COOKIE_AGE
	sessionHashSalt   = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
	sessionBackend    = "django.contrib.auth.backends.ModelBackend"
	sessionKeyChars   = "abcdefghijklmnopqrstuvwxyz0123456789"
	sessionKeyLen     = 32
	drfTokenKeyLen    = 20 // bytes; hex-encoded to 40 characters
	noCredentialsSent = "Invalid token header. No credentials provided."
)

// sessionData is what django.contrib.auth.login stores in the session. The
// reference system stores it as plain JSON; Django signs and compresses it.
type sessionData struct {
	UserID  string `json:"_auth_user_id"`
	Backend string `json:"_auth_user_backend"`
	Hash    string `json:"_auth_user_hash"`
}

// sessionAuthHash is AbstractBaseUser.get_session_auth_hash: Django's
// salted_hmac of the password hash with the secret key, sha256.
func (s *Server) sessionAuthHash(passwordHash string) string {
	k := sha256.Sum256([]byte(sessionHashSalt + string(s.issuer.Key)))
	mac := hmac.New(sha256.New, k[:])
	mac.Write([]byte(passwordHash))
	return hex.EncodeToString(mac.Sum(nil))
}

// sessionLogin is a JSON login view calling django.contrib.auth.login: it
// stores a session and sets its cookie.
func (s *Server) sessionLogin(w http.ResponseWriter, r *http.Request) {
	id, ok := s.postedCredentials(w, r, "Session Login")
	if !ok {
		return
	}
	ctx := r.Context()
	var username, hash string
	if err := s.pool.QueryRow(ctx, `SELECT username, password FROM `+edms.UserTable+` WHERE id = $1`, id).Scan(&username, &hash); err != nil {
		s.internalError(w, "session login: read user", err)
		return
	}
	key := randomKey(sessionKeyChars, sessionKeyLen)
	data, _ := json.Marshal(sessionData{UserID: strconv.FormatInt(id, 10), Backend: sessionBackend, Hash: s.sessionAuthHash(hash)})
	expires := s.now().Add(sessionAge)
	if _, err := s.pool.Exec(ctx, `INSERT INTO `+SessionTable+` (session_key, session_data, expire_date) VALUES ($1, $2, $3)`, key, string(data), expires); err != nil {
		s.internalError(w, "session login: store session", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.routes.SessionCookie, Value: key, Path: "/", Expires: expires,
		MaxAge: int(sessionAge.Seconds()), HttpOnly: true, SameSite: http.SameSiteLaxMode})
	writeJSON(w, http.StatusOK, obj{{"id", id}, {"username", username}})
}

// sessionUser is SessionAuthentication with django.contrib.auth.get_user:
// the session's user, nil for none. A session whose user does not exist is
// kept (Django returns AnonymousUser); one whose hash no longer matches the
// user's password hash is flushed.
func (s *Server) sessionUser(ctx context.Context, key string) (*principal, error) {
	var raw string
	err := s.pool.QueryRow(ctx, `SELECT session_data FROM `+SessionTable+` WHERE session_key = $1 AND expire_date > $2`, key, s.now()).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var d sessionData
	if json.Unmarshal([]byte(raw), &d) != nil || d.Backend != sessionBackend {
		return nil, nil
	}
	id, perr := strconv.ParseInt(d.UserID, 10, 64)
	if perr != nil {
		return nil, nil
	}
	var hash string
	var u principal
	var active bool
	err = s.pool.QueryRow(ctx, `SELECT id, username, email, is_staff, is_active, password FROM `+edms.UserTable+` WHERE id = $1`, id).
		Scan(&u.id, &u.username, &u.email, &u.staff, &active, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !active { // ModelBackend.get_user: an inactive user is no user, and nothing is verified
		return nil, nil
	}
	if !hmac.Equal([]byte(d.Hash), []byte(s.sessionAuthHash(hash))) {
		_, err := s.pool.Exec(ctx, `DELETE FROM `+SessionTable+` WHERE session_key = $1`, key)
		return nil, err
	}
	return &u, nil
}

// postedCredentials starts a login view that refuses as DRF's
// AuthTokenSerializer does: POST only, then the user the credentials name
// (false when the answer is written).
func (s *Server) postedCredentials(w http.ResponseWriter, r *http.Request, view string) (int64, bool) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, view, http.MethodPost)
		return 0, false
	}
	return s.credentials(w, r, unableToLogIn)
}

// unableToLogIn is DRF's AuthTokenSerializer's refusal.
func unableToLogIn(w http.ResponseWriter) {
	writeJSON(w, http.StatusBadRequest, obj{{"non_field_errors", []string{"Unable to log in with provided credentials."}}})
}

// tokenLogin is DRF's ObtainAuthToken: the user's token, created on first use.
func (s *Server) tokenLogin(w http.ResponseWriter, r *http.Request) {
	id, ok := s.postedCredentials(w, r, "Obtain Auth Token")
	if !ok {
		return
	}
	var key string
	err := s.pool.QueryRow(r.Context(), `INSERT INTO `+TokenTable+` (key, created, user_id) VALUES ($1, now(), $2)
ON CONFLICT (user_id) DO UPDATE SET key = `+TokenTable+`.key RETURNING key`, NewTokenKey(), id).Scan(&key)
	if err != nil {
		s.internalError(w, "token login: get or create token", err)
		return
	}
	writeJSON(w, http.StatusOK, obj{{s.routes.TokenField, key}})
}

// drfTokenUser is DRF's TokenAuthentication.
func (s *Server) drfTokenUser(w http.ResponseWriter, r *http.Request, rest []string, unauthorized func(obj) (*principal, bool)) (*principal, bool) {
	switch {
	case len(rest) == 0:
		return unauthorized(obj{{"detail", noCredentialsSent}})
	case len(rest) > 1:
		return unauthorized(obj{{"detail", "Invalid token header. Token string should not contain spaces."}})
	}
	var id int64
	err := s.pool.QueryRow(r.Context(), `SELECT user_id FROM `+TokenTable+` WHERE key = $1`, rest[0]).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return unauthorized(obj{{"detail", "Invalid token."}})
	}
	if err != nil {
		s.internalError(w, "authenticate: look up token", err)
		return nil, false
	}
	u, active, err := s.user(r.Context(), id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		s.internalError(w, "authenticate: look up user", err)
		return nil, false
	}
	if err != nil || !active {
		return unauthorized(obj{{"detail", "User inactive or deleted."}})
	}
	return u, true
}

// NewTokenKey is a DRF token key: 20 random bytes, hex.
func NewTokenKey() string {
	b := make([]byte, drfTokenKeyLen)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomKey is Django's get_random_string.
func randomKey(chars string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[randIndex(len(chars))]
	}
	return string(b)
}

func randIndex(n int) int {
	var b [1]byte
	for {
		rand.Read(b[:])
		if int(b[0]) < 256-256%n { // no modulo bias
			return int(b[0]) % n
		}
	}
}
