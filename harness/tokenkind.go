package harness

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms/server"
	"github.com/rehearse-dev/rehearse/results"
)

// Token kinds: how a token is obtained and sent. Probes and checks name a
// token and never its kind: what is sent follows from it.
const (
	KindJWT      = string(results.TokenJWT)
	KindSession  = string(results.TokenSession)
	KindDRFToken = string(results.TokenDRF)
)

// EmbeddedAuth chooses how the embedded system treats the credentials, as
// a Django app's settings and reinit do.
type EmbeddedAuth struct {
	Pos Pos `yaml:"-" json:"-"`
	// What the reinit does with django_session: keep (default; the rows stay) or
	// flush (it deletes them all).
	Sessions string `yaml:"sessions" json:"sessions,omitempty" enum:"keep,flush"`
	// Whether the system's backup holds authtoken.token (default true).
	DRFTokensInBackup *bool `yaml:"drf_tokens_in_backup" json:"drf_tokens_in_backup,omitempty"`
	// How access tokens are authenticated: stateful (default; simplejwt's
	// JWTAuthentication: the user is looked up, the reinit's revocation applies) or
	// stateless (JWTStatelessUserAuthentication: no database lookup at all).
	JWT string `yaml:"jwt" json:"jwt,omitempty" enum:"stateful,stateless"`
}

// Mode is the server's AuthMode (nil: the defaults); rehearse serve's
// flags make one too, so that both run the same system.
func (a *EmbeddedAuth) Mode() server.AuthMode {
	if a == nil {
		return server.AuthMode{}
	}
	return server.AuthMode{FlushSessions: a.Sessions == "flush", Stateless: a.JWT == "stateless",
		TokensNotBackedUp: a.DRFTokensInBackup != nil && !*a.DRFTokensInBackup}
}

// validateTokenKinds checks what each kind allows.
func validateTokenKinds(s *Scenario, bad func(Pos, string, ...any)) {
	if a := s.Auth; a != nil {
		if s.Target == TargetHTTP {
			bad(s.at("auth"), "auth: chooses how the embedded system behaves; a running system behaves as its settings say (remove auth:, or use target: embedded)")
		}
		oneOf(a.Sessions, []string{"keep", "flush"}, a.Pos, "auth.sessions", bad)
		oneOf(a.JWT, []string{"stateful", "stateless"}, a.Pos, "auth.jwt", bad)
	}
	for name, t := range s.Tokens {
		oneOf(t.Kind, []string{KindJWT, KindSession, KindDRFToken}, t.Pos, "token kind", bad)
		if t.Kind == KindSession && t.Mint {
			bad(t.Pos, "token %q: a session cannot be minted (Django signs its session data); log in instead (remove mint: true)", name)
		}
	}
	if c := s.Operation.RestoreFromFile; c != nil && c.As != "" {
		if t, ok := s.Tokens[c.As]; ok && t.Kind != "" && t.Kind != KindJWT {
			bad(c.Pos, "as: token %q is of kind %s; the restore call is authorised with a jwt token", c.As, t.Kind)
		}
	}
}

// credential is what a token of any kind sends.
type credential struct {
	kind   string
	secret string         // the access token, the DRF key, or the session key
	jar    http.CookieJar // a session's cookies, kept as a browser keeps them
}

// doAs sends req with what the credential's kind needs.
func (c *client) doAs(ctx context.Context, req *http.Request, cred *credential) reply {
	if cred == nil {
		return c.do(ctx, req)
	}
	switch cred.kind {
	case KindSession:
		hc := *c.http
		hc.Jar = cred.jar
		return c.doWith(ctx, &hc, req)
	case KindDRFToken:
		req.Header.Set("Authorization", c.routes.TokenScheme+" "+cred.secret)
	default:
		req.Header.Set("Authorization", c.routes.AuthScheme+" "+cred.secret)
	}
	return c.do(ctx, req)
}

// sessionLogin logs in through the session login and returns the jar with
// the session cookie: a JSON view (POST {username, password}), or with form
// Django's LoginView (GET for the csrftoken cookie, then POST the form with
// csrfmiddlewaretoken; its redirect is not followed).
func (c *client) sessionLogin(ctx context.Context, user, password string, form bool, csrfCookie string) (*credential, reply) {
	jar, _ := cookiejar.New(nil)
	hc := *c.http
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	target := c.base + c.routes.SessionLogin
	var rep reply
	if form {
		get, _ := http.NewRequest(http.MethodGet, target, nil)
		if rep = c.doWith(ctx, &hc, get); rep.Err != nil || rep.Status != 200 {
			return nil, rep
		}
		u, _ := url.Parse(target)
		var csrf string
		for _, ck := range jar.Cookies(u) {
			if ck.Name == csrfCookie {
				csrf = ck.Value
			}
		}
		vals := url.Values{c.routes.UsernameField: {user}, c.routes.PasswordField: {password}, "csrfmiddlewaretoken": {csrf}}
		post, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(vals.Encode()))
		post.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		post.Header.Set("Referer", target)
		rep = c.doWith(ctx, &hc, post)
	} else {
		body, _ := json.Marshal(map[string]string{c.routes.UsernameField: user, c.routes.PasswordField: password})
		post, _ := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
		post.Header.Set("Content-Type", "application/json")
		rep = c.doWith(ctx, &hc, post)
	}
	u, _ := url.Parse(c.base + "/")
	for _, ck := range jar.Cookies(u) {
		if ck.Name == c.routes.SessionCookie {
			return &credential{kind: KindSession, secret: ck.Value, jar: jar}, rep
		}
	}
	return nil, rep
}

// tokenLogin is DRF's obtain_auth_token.
func (c *client) tokenLogin(ctx context.Context, user, password string) reply {
	body, _ := json.Marshal(map[string]string{c.routes.UsernameField: user, c.routes.PasswordField: password})
	req, _ := http.NewRequest(http.MethodPost, c.base+c.routes.TokenLogin, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return c.do(ctx, req)
}

// obtainOther obtains a token of kind session or drf_token.
func (ru *run) obtainOther(ctx context.Context, spec PlannedToken) (*credential, error) {
	routes := ru.plan.System.Routes
	pw := ru.plan.password(spec.User, results.PasswordOriginal)
	if spec.Kind == KindDRFToken {
		if spec.Mint {
			return ru.createDRFToken(ctx, spec)
		}
		rep := ru.cl.tokenLogin(ctx, spec.User, pw)
		if err := loginFailed(spec, rep, routes.TokenLogin, "drf_token.path"); err != nil {
			return nil, err
		}
		key := rep.field(routes.TokenField)
		if key == "" {
			return nil, fmt.Errorf("%s: token %q: the answer of POST %s has no %q field; set drf_token.token_field in the target", spec.Pos, spec.Name, routes.TokenLogin, routes.TokenField)
		}
		return &credential{kind: KindDRFToken, secret: key}, nil
	}
	var form bool
	csrf := "csrftoken"
	if t := ru.plan.System.target; t != nil {
		form, csrf = t.SessionLogin.Form, cmp.Or(t.SessionLogin.CSRFCookie, csrf)
	}
	cred, rep := ru.cl.sessionLogin(ctx, spec.User, pw, form, csrf)
	if cred == nil {
		if err := loginFailed(spec, rep, routes.SessionLogin, "session_login.path"); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: token %q: the session login as %s answered %d but set no %q cookie; set session_login.cookie (SESSION_COOKIE_NAME) in the target, or session_login.form if it is Django's LoginView", spec.Pos, spec.Name, spec.User, rep.Status, routes.SessionCookie)
	}
	return cred, nil
}

// loginFailed says why a login of another kind did not give a token.
func loginFailed(spec PlannedToken, rep reply, path, key string) error {
	switch {
	case rep.Err != nil:
		return fmt.Errorf("%s: token %q: log in as %s before the operation: %v", spec.Pos, spec.Name, spec.User, rep.Err)
	case rep.Status == 404 || rep.Status == 405:
		return fmt.Errorf("%s: token %q: %s answered %d: is that the login endpoint of kind %s? (set %s in the target file)", spec.Pos, spec.Name, path, rep.Status, spec.Kind, key)
	case rep.Status >= 400:
		return fmt.Errorf("%s: token %q: login as %s at %s before the operation failed with status %d; is the user present with its password?", spec.Pos, spec.Name, spec.User, path, rep.Status)
	}
	return nil
}

// createDRFToken creates the user's authtoken row in the system's
// database, as Token.objects.get_or_create does.
func (ru *run) createDRFToken(ctx context.Context, spec PlannedToken) (*credential, error) {
	if ru.conn == nil {
		return nil, fmt.Errorf("%s: token %q: mint: true creates the token in the target's database: give dsn in the target file or pass --dsn", spec.Pos, spec.Name)
	}
	id := ru.before.ids[spec.User]
	table := pgx.Identifier{server.TokenTable}.Sanitize()
	if t := ru.plan.System.target; t != nil && t.DRFToken.Table != "" {
		table = pgx.Identifier{t.DRFToken.Table}.Sanitize()
	}
	var key string
	ru.mu.Lock()
	err := ru.conn.QueryRow(ctx, `INSERT INTO `+table+` (key, created, user_id) VALUES ($1, now(), $2)
ON CONFLICT (user_id) DO UPDATE SET key = `+table+`.key RETURNING key`, server.NewTokenKey(), id).Scan(&key)
	ru.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("%s: token %q: create the DRF token of %s: %w", spec.Pos, spec.Name, spec.User, err)
	}
	return &credential{kind: KindDRFToken, secret: key}, nil
}

// needsAuthTables reports whether the embedded system needs the session
// and DRF token tables.
func (p *Plan) needsAuthTables() bool {
	for _, t := range p.Tokens {
		if t.Kind != KindJWT {
			return true
		}
	}
	return p.auth != (server.AuthMode{})
}

// SessionLoginEndpoint is how a session is obtained.
type SessionLoginEndpoint struct {
	Pos Pos `yaml:"-" json:"-"`
	// A JSON login view calling django.contrib.auth.login (default /api/v1/auth/session/);
	// with form: true, Django's LoginView (e.g. /accounts/login/).
	Path string `yaml:"path" json:"path,omitempty"`
	// The login is Django's form LoginView: GET it for the CSRF cookie, POST the form.
	Form bool `yaml:"form" json:"form,omitempty"`
	// SESSION_COOKIE_NAME (default sessionid).
	Cookie string `yaml:"cookie" json:"cookie,omitempty"`
	// CSRF_COOKIE_NAME, for form: true (default csrftoken).
	CSRFCookie string `yaml:"csrf_cookie" json:"csrf_cookie,omitempty"`
}

// DRFTokenEndpoint is DRF's TokenAuthentication: POST {username, password}
// → {token}, then "Authorization: Token KEY".
type DRFTokenEndpoint struct {
	Pos Pos `yaml:"-" json:"-"`
	// obtain_auth_token's path (default /api/v1/auth/token/).
	Path string `yaml:"path" json:"path,omitempty"`
	// Where the answer gives the key (default token).
	TokenField string `yaml:"token_field" json:"token_field,omitempty"`
	// The header's keyword (default Token).
	AuthScheme string `yaml:"auth_scheme" json:"auth_scheme,omitempty"`
	// The token table, for tokens with mint: true (default authtoken_token).
	Table string `yaml:"table" json:"table,omitempty"`
}
