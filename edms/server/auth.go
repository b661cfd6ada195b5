package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/edms/password"
	"github.com/rehearse-dev/rehearse/edms/token"
)

// Bodies of simplejwt and DRF, word for word.
var (
	noActiveAccount  = obj{{"detail", "No active account found with the given credentials"}}
	notProvided      = obj{{"detail", "Authentication credentials were not provided."}}
	badAuthHeader    = obj{{"detail", "Authorization header must contain two space-delimited values"}, {"code", "bad_authorization_header"}}
	userNotFound     = obj{{"detail", "User not found"}, {"code", "user_not_found"}}
	userInactive     = obj{{"detail", "User is inactive"}, {"code", "user_inactive"}}
	tokenRevoked     = obj{{"detail", "Token has been revoked"}, {"code", token.Code}}
	permissionDenied = obj{{"detail", "You do not have permission to perform this action."}}
	tooLarge         = obj{{"detail", "Request body too large."}}
	refreshInvalid   = obj{{"detail", "Token is invalid or expired"}, {"code", token.Code}}
)

func invalidToken(err error) obj {
	return obj{
		{"detail", "Given token not valid for any token type"},
		{"code", token.Code},
		{"messages", []obj{{
			{"token_class", "AccessToken"},
			{"token_type", "access"},
			{"message", token.Message(err)},
		}}},
	}
}

// login is simplejwt's TokenObtainPairView: no authentication, POST only.
// It never writes to the database (UPDATE_LAST_LOGIN is off by default, and
// Django's re-hash on login is not reproduced): the harness checksums tables.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, "Token Obtain Pair", http.MethodPost)
		return
	}
	id, ok := s.credentials(w, r, func(w http.ResponseWriter) {
		w.Header().Set("WWW-Authenticate", s.routes.AuthScheme+` realm="api"`)
		writeJSON(w, http.StatusUnauthorized, noActiveAccount)
	})
	if !ok {
		return
	}
	cutoff, err := edms.RevokedBefore(r.Context(), s.pool)
	if err != nil {
		s.internalError(w, "login: read token cutoff", err)
		return
	}
	access, refresh, err := s.issuer.Pair(id, edms.IssueTime(s.now(), cutoff))
	if err != nil {
		s.internalError(w, "login: issue tokens", err)
		return
	}
	// simplejwt's TokenObtainPairSerializer puts refresh first.
	writeJSON(w, http.StatusOK, obj{{s.routes.RefreshField, refresh}, {s.routes.AccessField, access}})
}

// credentials reads a login body (username and password fields) and
// checks it as Django's ModelBackend does; it returns the user's id, or
// writes the 400, the refusal (fail) or the 500 and returns false.
func (s *Server) credentials(w http.ResponseWriter, r *http.Request, fail func(http.ResponseWriter)) (int64, bool) {
	data, ok := s.body(w, r)
	if !ok {
		return 0, false
	}
	username, uerr := charField(data, s.routes.UsernameField)
	plain, perr := charField(data, s.routes.PasswordField)
	if uerr != "" || perr != "" {
		var errs obj
		if uerr != "" {
			errs = append(errs, kv{s.routes.UsernameField, []string{uerr}})
		}
		if perr != "" {
			errs = append(errs, kv{s.routes.PasswordField, []string{perr}})
		}
		writeJSON(w, http.StatusBadRequest, errs)
		return 0, false
	}
	var (
		id     int64
		hash   string
		active bool
	)
	err := pgx.ErrNoRows
	// A username PostgreSQL cannot hold (NUL, invalid UTF-8) names nobody.
	if utf8.ValidString(username) && !strings.ContainsRune(username, 0) {
		err = s.pool.QueryRow(r.Context(), `SELECT id, password, is_active FROM `+edms.UserTable+` WHERE username = $1`, username).Scan(&id, &hash, &active)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		// Django's ModelBackend hashes once for an unknown user too, so
		// response times do not tell which usernames exist.
		password.Verify(plain, s.dummyHash)
		fail(w)
		return 0, false
	}
	if err != nil {
		s.internalError(w, "login: look up user", err)
		return 0, false
	}
	ok, err = password.Verify(plain, hash)
	if err != nil {
		// The error names what is wrong with the stored hash, never the
		// hash or the password.
		s.logf("login: user id %d: stored password cannot be checked: %v", id, err)
	}
	if !ok || err != nil || !active {
		fail(w)
		return 0, false
	}
	return id, true
}

// body is readData that writes its error answer itself.
func (s *Server) body(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	data, status, body := readData(w, r)
	if body != nil {
		writeJSON(w, status, body)
		return nil, false
	}
	return data, true
}

// refresh is simplejwt's TokenRefreshView: POST {refresh} → {access}.
// Plain simplejwt does not look the user up here, so an old refresh token
// keeps minting access tokens while its user does not exist; the reference
// system refuses a refresh token the reinit revoked (the cutoff) and one
// whose user is gone or inactive.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, "Token Refresh", http.MethodPost)
		return
	}
	data, ok := s.body(w, r)
	if !ok {
		return
	}
	raw, ferr := charField(data, s.routes.RefreshField)
	if ferr != "" {
		writeJSON(w, http.StatusBadRequest, obj{{s.routes.RefreshField, []string{ferr}}})
		return
	}
	unauthorized := func() {
		w.Header().Set("WWW-Authenticate", s.routes.AuthScheme+` realm="api"`)
		writeJSON(w, http.StatusUnauthorized, refreshInvalid)
	}
	claims, err := s.issuer.Parse(raw, token.TypeRefresh, s.now())
	if errors.Is(err, token.ErrConfig) {
		s.internalError(w, "refresh: parse token", err)
		return
	}
	if err != nil {
		unauthorized()
		return
	}
	ctx := r.Context()
	var active bool
	err = s.pool.QueryRow(ctx, `SELECT is_active FROM `+edms.UserTable+` WHERE id = $1`, claims.UserID).Scan(&active)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !active) {
		unauthorized()
		return
	}
	if err != nil {
		s.internalError(w, "refresh: look up user", err)
		return
	}
	cutoff, err := edms.RevokedBefore(ctx, s.pool)
	if err != nil {
		s.internalError(w, "refresh: read token cutoff", err)
		return
	}
	if !s.defects.NoRevocation && claims.RevokedBy(cutoff, s.now()) {
		unauthorized()
		return
	}
	access, _, err := s.issuer.Issue(token.TypeAccess, claims.UserID, edms.IssueTime(s.now(), cutoff))
	if err != nil {
		s.internalError(w, "refresh: issue token", err)
		return
	}
	writeJSON(w, http.StatusOK, obj{{s.routes.AccessField, access}})
}

// profile returns the authenticated user.
func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	u, ok := s.authenticate(w, r, s.auth.Stateless)
	if !ok {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "Profile", http.MethodGet, http.MethodHead)
		return
	}
	writeJSON(w, http.StatusOK, obj{{"id", u.id}, {"username", u.username}, {"email", u.email}, {"is_staff", u.staff}})
}

// principal is an authenticated caller.
type principal struct {
	id              int64
	username, email string
	staff           bool
}

// authenticate is DRF's authentication (simplejwt's JWTAuthentication, then
// TokenAuthentication, then SessionAuthentication, each passing when its
// credentials are absent) followed by IsAuthenticated, plus the reference
// system's revocation check of JWTs. On failure it writes the 401 (or 500)
// and returns false. Stateless is JWTStatelessUserAuthentication: an
// access token's user is not looked up.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, stateless bool) (*principal, bool) {
	unauthorized := func(body obj) (*principal, bool) {
		w.Header().Set("WWW-Authenticate", s.routes.AuthScheme+` realm="api"`)
		writeJSON(w, http.StatusUnauthorized, body)
		return nil, false
	}
	// simplejwt and DRF: header.split(); no header or another scheme means
	// "no credentials"; the right scheme with other than one value is an error.
	parts := strings.Fields(r.Header.Get("Authorization"))
	switch {
	case len(parts) > 0 && parts[0] == s.routes.AuthScheme:
		if len(parts) != 2 {
			return unauthorized(badAuthHeader)
		}
		return s.jwtUser(w, r, parts[1], stateless, unauthorized)
	case len(parts) > 0 && parts[0] == s.routes.TokenScheme:
		return s.drfTokenUser(w, r, parts[1:], unauthorized)
	}
	if c, err := r.Cookie(s.routes.SessionCookie); err == nil {
		u, err := s.sessionUser(r.Context(), c.Value)
		if err != nil {
			s.internalError(w, "authenticate: read session", err)
			return nil, false
		}
		if u != nil {
			return u, true
		}
	}
	return unauthorized(notProvided)
}

// jwtUser authenticates a simplejwt access token.
func (s *Server) jwtUser(w http.ResponseWriter, r *http.Request, raw string, stateless bool, unauthorized func(obj) (*principal, bool)) (*principal, bool) {
	claims, err := s.issuer.Parse(raw, token.TypeAccess, s.now())
	if err != nil {
		if errors.Is(err, token.ErrConfig) {
			s.internalError(w, "authenticate: parse token", err)
			return nil, false
		}
		return unauthorized(invalidToken(err))
	}
	if stateless {
		// simplejwt's TokenUser: the id from the token, no username claim.
		return &principal{id: claims.UserID}, true
	}
	ctx := r.Context()
	// The user is read before the cutoff: reads move forward in time, so a
	// restore that commits users and cutoff together (atomic) can never be
	// seen as "user back, cutoff not yet moved".
	u, active, err := s.user(ctx, claims.UserID)
	if errors.Is(err, pgx.ErrNoRows) {
		return unauthorized(userNotFound)
	}
	if err != nil {
		s.internalError(w, "authenticate: look up user", err)
		return nil, false
	}
	if !active {
		return unauthorized(userInactive)
	}
	if !s.defects.NoRevocation {
		cutoff, err := edms.RevokedBefore(ctx, s.pool)
		if err != nil {
			s.internalError(w, "authenticate: read token cutoff", err)
			return nil, false
		}
		// A token without iat (simplejwt < 5.0) cannot prove it is recent,
		// nor one dated later than the server could have issued it.
		if claims.RevokedBy(cutoff, s.now()) {
			return unauthorized(tokenRevoked)
		}
	}
	return u, true
}

// user reads a user by id.
func (s *Server) user(ctx context.Context, id int64) (*principal, bool, error) {
	var u principal
	var active bool
	err := s.pool.QueryRow(ctx, `SELECT id, username, email, is_staff, is_active FROM `+edms.UserTable+` WHERE id = $1`, id).
		Scan(&u.id, &u.username, &u.email, &u.staff, &active)
	return &u, active, err
}

func (s *Server) internalError(w http.ResponseWriter, what string, err error) {
	s.logf("server: %s: %v", what, err)
	writeJSON(w, http.StatusInternalServerError, serverError)
}

// readData parses a small request body as DRF's JSON, form and multipart
// parsers do. A missing Content-Type is read as JSON (DRF would answer 415).
// On failure it returns the status and body to answer with.
func readData(w http.ResponseWriter, r *http.Request) (map[string]any, int, any) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
	ct := r.Header.Get("Content-Type")
	mt := ""
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, http.StatusUnsupportedMediaType, obj{{"detail", "Unsupported media type \"" + ct + "\" in request."}}
		}
	}
	tooBig := func(err error) bool {
		var mbe *http.MaxBytesError
		return errors.As(err, &mbe)
	}
	switch mt {
	case "", "application/json":
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			if tooBig(err) {
				return nil, http.StatusRequestEntityTooLarge, tooLarge
			}
			return nil, http.StatusBadRequest, obj{{"detail", "JSON parse error - " + err.Error()}}
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			return map[string]any{}, 0, nil
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, http.StatusBadRequest, obj{{"detail", "JSON parse error - " + err.Error()}}
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, http.StatusBadRequest, obj{{"detail", "JSON parse error - extra data after the JSON value"}}
		}
		switch x := v.(type) {
		case map[string]any:
			return x, 0, nil
		case nil:
			return nil, http.StatusBadRequest, obj{{"non_field_errors", []string{"No data provided"}}}
		default:
			return nil, http.StatusBadRequest, obj{{"non_field_errors", []string{"Invalid data. Expected a dictionary, but got " + pyType(v) + "."}}}
		}
	case "application/x-www-form-urlencoded", "multipart/form-data":
		var err error
		if mt == "multipart/form-data" {
			err = r.ParseMultipartForm(maxFormBody)
			if r.MultipartForm != nil {
				defer r.MultipartForm.RemoveAll()
			}
		} else {
			err = r.ParseForm()
		}
		if err != nil {
			if tooBig(err) {
				return nil, http.StatusRequestEntityTooLarge, tooLarge
			}
			return nil, http.StatusBadRequest, obj{{"detail", "Form parse error - " + err.Error()}}
		}
		out := map[string]any{}
		for k, vs := range r.PostForm {
			if len(vs) > 0 {
				out[k] = vs[len(vs)-1] // Django's QueryDict returns the last value
			}
		}
		return out, 0, nil
	}
	return nil, http.StatusUnsupportedMediaType, obj{{"detail", "Unsupported media type \"" + ct + "\" in request."}}
}

// charField validates a value as DRF's CharField (trim_whitespace, no blank,
// no null) and returns it or the error message.
func charField(data map[string]any, name string) (string, string) {
	v, ok := data[name]
	if !ok {
		return "", "This field is required."
	}
	var s string
	switch x := v.(type) {
	case nil:
		return "", "This field may not be null."
	case string:
		s = x
	case json.Number:
		s = x.String()
	default:
		return "", "Not a valid string."
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", "This field may not be blank."
	}
	return s, ""
}

// pyType names a decoded JSON value's Python type, as DRF's messages do.
func pyType(v any) string {
	switch x := v.(type) {
	case []any:
		return "list"
	case string:
		return "str"
	case bool:
		return "bool"
	case json.Number:
		if strings.ContainsAny(x.String(), ".eE") {
			return "float"
		}
		return "int"
	}
	return "object"
}
