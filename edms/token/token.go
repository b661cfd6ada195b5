// Package token issues and checks JWTs shaped like the ones
// djangorestframework-simplejwt issues with its default settings
// (ALGORITHM "HS256", USER_ID_CLAIM "user_id", TOKEN_TYPE_CLAIM
// "token_type", JTI_CLAIM "jti", LEEWAY 0).
//
// A token's header is {"alg":"HS256","typ":"JWT"} and its payload carries, in
// simplejwt's order:
//
//	{"token_type":"access","exp":<unix s>,"iat":<unix s>,"jti":"<uuid4 hex>","user_id":2}
//
// user_id is a JSON number by default, as simplejwt up to 5.5.0 writes it;
// Issuer.UserIDAsString makes it a string of digits, as simplejwt 5.5.1 and
// later write it. Parse accepts both.
//
// Parse performs the checks simplejwt performs, in its order: the algorithm
// must be exactly HS256 (so "none", HS384, HS512, RS256 ... are refused), the
// signature must verify, "exp" must be present and after now (no leeway),
// "iat", when present, must not be later than now plus a leeway for clock
// skew (PyJWT's "The token is not yet valid (iat)"), "jti" must be present,
// "token_type" must equal the wanted type, and "user_id" must be a positive
// integer. A "crit" header is refused (RFC 7515 §4.1.11: this verifier
// understands no extension). It does not look the user up: that is the
// caller's job, and it is exactly the step a restore can make pass again for
// an old token. Claims.RevokedBy is the revocation check.
//
// Errors carry simplejwt's user-facing messages so the HTTP layer can build
// simplejwt's response bodies; see Error and Message.
package token

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token types.
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"
	// TypeUntyped, given to Parse as wantType, skips the token_type check,
	// like simplejwt's UntypedToken (used by its TokenVerifyView). Issue
	// does not accept it.
	TypeUntyped = "untyped"
)

// Defaults, as in simplejwt's settings.DEFAULTS.
const (
	DefaultAccessLifetime  = 5 * time.Minute
	DefaultRefreshLifetime = 24 * time.Hour
)

// Algorithm is the only JWS algorithm this package signs with or accepts.
const Algorithm = "HS256"

// MinKeyLen is the shortest signing key Issue and Parse accept, in bytes.
//
// RFC 7518 §3.2 requires an HMAC key at least as long as the hash output:
// 256 bits for HS256. simplejwt itself accepts any SIGNING_KEY (it defaults
// to Django's SECRET_KEY, which startproject makes 50+ characters long), so
// a real deployment's key normally passes; a shorter key is refused here as a
// configuration error rather than silently used.
const MinKeyLen = 32

// DefaultIssuedAtLeeway is how far in the future a token's iat may be by
// default. simplejwt's LEEWAY defaults to 0, but the reference server dates a
// token issued in the second after a reinit at the revocation cutoff, up to a
// few seconds ahead of its clock (edms.IssueTime); Claims.RevokedBy holds
// such tokens to the server's clock exactly.
const DefaultIssuedAtLeeway = 30 * time.Second

// maxTokenLen bounds the input Parse decodes. simplejwt tokens are about 230
// bytes; 8 KiB leaves room for extra claims.
const maxTokenLen = 8 << 10

// Claim names (simplejwt defaults).
const (
	claimTokenType = "token_type"
	claimExp       = "exp"
	claimIat       = "iat"
	claimJTI       = "jti"
	claimUserID    = "user_id"
)

// Code is the "code" simplejwt puts in the body of every 401 caused by a
// token that does not validate (InvalidToken.default_code).
const Code = "token_not_valid"

// Error is the kind of a token validation failure. Its Error method returns
// simplejwt's user-facing message for that kind, word for word, so that
//
//	errors.Is(err, token.ErrWrongType)
//
// selects the case and token.Message(err) gives the text for the body.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

// Validation failures. simplejwt reports all of them with HTTP 401 and code
// "token_not_valid".
var (
	// ErrInvalid: not a JWT, wrong algorithm, bad signature, bad or
	// missing exp, claims of the wrong JSON type. simplejwt's TokenError
	// message for a token its backend cannot decode.
	ErrInvalid = &Error{"Token is invalid or expired"}
	// ErrExpired: signature fine, exp <= now. simplejwt >= 5.5.0 says
	// "Token is expired" (ExpiredTokenError); earlier versions report
	// expiry with ErrInvalid's message. Message returns the 5.5 text.
	ErrExpired = &Error{"Token is expired"}
	// ErrNoID: no "jti" claim (simplejwt Token.verify).
	ErrNoID = &Error{"Token has no id"}
	// ErrNoType: no "token_type" claim (simplejwt Token.verify_token_type).
	ErrNoType = &Error{"Token has no type"}
	// ErrWrongType: "token_type" is not the wanted type, for example a
	// refresh token presented as an access token.
	ErrWrongType = &Error{"Token has wrong type"}
	// ErrNoUserID: no usable "user_id" claim (missing, or not a positive
	// integer or string of digits). simplejwt raises InvalidToken with
	// this detail from JWTAuthentication.get_user.
	ErrNoUserID = &Error{"Token contained no recognizable user identification"}
)

// ErrConfig is matched by errors caused by the caller rather than by the
// token: a signing key shorter than MinKeyLen, a negative lifetime, an
// unknown token type, a non-positive user id for Issue. The HTTP layer should
// treat it as a server error.
var ErrConfig = errors.New("token: invalid configuration or argument")

// ParseError is what Parse returns for a token that does not validate. Kind
// is one of the Err* sentinels above (errors.Is matches it); Reason says what
// was wrong, for logs. Neither contains the token nor the key.
type ParseError struct {
	Kind   *Error
	Reason string
}

func (e *ParseError) Error() string {
	if e.Reason == "" {
		return "token: " + e.Kind.msg
	}
	return "token: " + e.Kind.msg + ": " + e.Reason
}

func (e *ParseError) Unwrap() error { return e.Kind }

// Message returns simplejwt's user-facing message for a validation error
// returned by Parse ("Token has wrong type", ...), or "" if err is not one.
func Message(err error) string {
	var k *Error
	if errors.As(err, &k) {
		return k.msg
	}
	return ""
}

func fail(kind *Error, format string, args ...any) error {
	return &ParseError{Kind: kind, Reason: fmt.Sprintf(format, args...)}
}

// Issuer issues and parses tokens with one HS256 key.
type Issuer struct {
	// Key is the HS256 signing key (simplejwt's SIGNING_KEY, by default
	// Django's SECRET_KEY as bytes). At least MinKeyLen bytes.
	Key []byte
	// AccessLifetime is the lifetime of access tokens; 0 means
	// DefaultAccessLifetime (5 minutes). Negative is an error.
	AccessLifetime time.Duration
	// RefreshLifetime is the lifetime of refresh tokens; 0 means
	// DefaultRefreshLifetime (24 hours). Negative is an error.
	RefreshLifetime time.Duration
	// UserIDAsString emits user_id as a string of digits, as simplejwt
	// 5.5.1 and later do. Parse accepts both forms regardless.
	UserIDAsString bool
	// IssuedAtLeeway is how far iat may be later than now for Parse to
	// accept the token (clock skew); 0 means DefaultIssuedAtLeeway.
	// Negative is an error.
	IssuedAtLeeway time.Duration

	// newJTI replaces the random jti source in tests; nil means NewJTI.
	newJTI func() string
}

// Claims are the validated claims of a token.
type Claims struct {
	TokenType string // "access" or "refresh" ("" for an untyped parse of a token without one)
	UserID    int64
	JTI       string
	IssuedAt  time.Time // UTC; zero if the token has no iat (simplejwt < 5.0)
	ExpiresAt time.Time // UTC
}

// Validate reports whether the issuer's configuration is usable. Issue and
// Parse call it too.
func (i Issuer) Validate() error {
	if len(i.Key) < MinKeyLen {
		return fmt.Errorf("%w: signing key is %d bytes, HS256 needs at least %d", ErrConfig, len(i.Key), MinKeyLen)
	}
	if i.AccessLifetime < 0 {
		return fmt.Errorf("%w: negative access token lifetime %v", ErrConfig, i.AccessLifetime)
	}
	if i.RefreshLifetime < 0 {
		return fmt.Errorf("%w: negative refresh token lifetime %v", ErrConfig, i.RefreshLifetime)
	}
	if i.IssuedAtLeeway < 0 {
		return fmt.Errorf("%w: negative iat leeway %v", ErrConfig, i.IssuedAtLeeway)
	}
	return nil
}

func (i Issuer) leeway() time.Duration {
	if i.IssuedAtLeeway == 0 {
		return DefaultIssuedAtLeeway
	}
	return i.IssuedAtLeeway
}

// Lifetime returns the lifetime of tokens of the given type, defaults
// applied, or 0 for an unknown type.
func (i Issuer) Lifetime(tokenType string) time.Duration {
	switch tokenType {
	case TypeAccess:
		if i.AccessLifetime == 0 {
			return DefaultAccessLifetime
		}
		return i.AccessLifetime
	case TypeRefresh:
		if i.RefreshLifetime == 0 {
			return DefaultRefreshLifetime
		}
		return i.RefreshLifetime
	}
	return 0
}

// wireClaims is the payload as simplejwt serialises it, in its key order
// (PyJWT does not sort payload keys).
type wireClaims struct {
	TokenType string `json:"token_type"`
	Exp       int64  `json:"exp"`
	Iat       int64  `json:"iat"`
	JTI       string `json:"jti"`
	UserID    any    `json:"user_id"`
}

// wireClaims is only ever signed, never parsed or validated, but jwt's
// signing API wants a jwt.Claims.
func (w wireClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(w.Exp, 0)), nil
}
func (w wireClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(w.Iat, 0)), nil
}
func (w wireClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }
func (w wireClaims) GetIssuer() (string, error)              { return "", nil }
func (w wireClaims) GetSubject() (string, error)             { return "", nil }
func (w wireClaims) GetAudience() (jwt.ClaimStrings, error)  { return nil, nil }

// Issue signs a token of the given type ("access" or "refresh") for userID
// (> 0), issued at iat (not the zero time; there is no implicit clock). Like simplejwt, iat and exp are whole Unix seconds:
// iat = floor(iat), exp = floor(iat + lifetime of that type).
func (i Issuer) Issue(tokenType string, userID int64, iat time.Time) (string, Claims, error) {
	if err := i.Validate(); err != nil {
		return "", Claims{}, err
	}
	if tokenType != TypeAccess && tokenType != TypeRefresh {
		return "", Claims{}, fmt.Errorf("%w: cannot issue token type %q (want %q or %q)", ErrConfig, tokenType, TypeAccess, TypeRefresh)
	}
	if userID <= 0 {
		return "", Claims{}, fmt.Errorf("%w: user id must be positive, got %d", ErrConfig, userID)
	}
	if iat.IsZero() {
		return "", Claims{}, fmt.Errorf("%w: issue time is the zero time", ErrConfig)
	}
	jti := NewJTI()
	if i.newJTI != nil {
		jti = i.newJTI()
	}
	w := wireClaims{
		TokenType: tokenType,
		Exp:       iat.Add(i.Lifetime(tokenType)).Unix(),
		Iat:       iat.Unix(),
		JTI:       jti,
		UserID:    userID,
	}
	if i.UserIDAsString {
		w.UserID = strconv.FormatInt(userID, 10)
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, w).SignedString(i.Key)
	if err != nil {
		return "", Claims{}, fmt.Errorf("token: signing: %w", err)
	}
	return signed, Claims{
		TokenType: tokenType,
		UserID:    userID,
		JTI:       jti,
		IssuedAt:  time.Unix(w.Iat, 0).UTC(),
		ExpiresAt: time.Unix(w.Exp, 0).UTC(),
	}, nil
}

// Pair issues an access and a refresh token for userID, both issued at iat,
// as simplejwt's TokenObtainPairView does.
func (i Issuer) Pair(userID int64, iat time.Time) (access, refresh string, err error) {
	refresh, _, err = i.Issue(TypeRefresh, userID, iat)
	if err != nil {
		return "", "", err
	}
	access, _, err = i.Issue(TypeAccess, userID, iat)
	if err != nil {
		return "", "", err
	}
	return access, refresh, nil
}

// Parse validates raw as a token of type wantType ("access", "refresh", or
// TypeUntyped to skip the type check) at time now, and returns its claims.
//
// Failures are *ParseError values matching one of ErrInvalid, ErrExpired,
// ErrNoID, ErrNoType, ErrWrongType, ErrNoUserID, checked in simplejwt's
// order (decode and signature, exp, jti, token_type, then user_id). A bad
// key or wantType gives an error matching ErrConfig instead.
//
// The time is never read from the clock: pass time.Now() in production and a
// fixed time in tests. A token is expired when exp <= now, and not yet valid
// when iat > now + IssuedAtLeeway.
func (i Issuer) Parse(raw string, wantType string, now time.Time) (Claims, error) {
	if err := i.Validate(); err != nil {
		return Claims{}, err
	}
	if wantType != TypeAccess && wantType != TypeRefresh && wantType != TypeUntyped {
		return Claims{}, fmt.Errorf("%w: cannot parse for token type %q", ErrConfig, wantType)
	}
	if len(raw) > maxTokenLen {
		return Claims{}, fail(ErrInvalid, "token is %d bytes, limit is %d", len(raw), maxTokenLen)
	}

	mc := jwt.MapClaims{}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{Algorithm}),
		jwt.WithJSONNumber(),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	_, err := parser.ParseWithClaims(raw, mc, func(t *jwt.Token) (any, error) {
		// Belt and braces: WithValidMethods already refused anything
		// but HS256; make sure the key is only ever used as an HMAC key.
		if m, ok := t.Method.(*jwt.SigningMethodHMAC); !ok || m.Alg() != Algorithm {
			return nil, errors.New("unexpected signing method")
		}
		// RFC 7515 §4.1.11: extensions listed in "crit" must be understood
		// or the JWS refused; this verifier understands none.
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New(`the "crit" header names extensions this verifier does not implement`)
		}
		return i.Key, nil
	})
	if err != nil {
		// jwt verifies the signature before it looks at exp, so a forged
		// expired token is reported invalid, not expired.
		if errors.Is(err, jwt.ErrTokenExpired) {
			return Claims{}, fail(ErrExpired, "exp is not after %s", now.UTC().Format(time.RFC3339))
		}
		return Claims{}, fail(ErrInvalid, "%v", err)
	}

	var c Claims
	exp, err := mc.GetExpirationTime()
	if err != nil || exp == nil {
		return Claims{}, fail(ErrInvalid, "exp claim unreadable")
	}
	c.ExpiresAt = exp.Time.UTC()

	jtiRaw, ok := mc[claimJTI]
	if !ok {
		return Claims{}, fail(ErrNoID, "no jti claim")
	}
	// simplejwt only checks presence; a jti that is not a non-empty
	// string is refused here because callers key blacklists on it.
	if c.JTI, ok = jtiRaw.(string); !ok || c.JTI == "" {
		return Claims{}, fail(ErrInvalid, "jti claim is not a non-empty string")
	}

	ttRaw, hasType := mc[claimTokenType]
	tt, isString := ttRaw.(string)
	if wantType != TypeUntyped {
		if !hasType {
			return Claims{}, fail(ErrNoType, "no token_type claim")
		}
		if !isString || tt != wantType {
			return Claims{}, fail(ErrWrongType, "want a %s token", wantType)
		}
	}
	c.TokenType = tt

	if raw, ok := mc[claimIat]; ok {
		iat, err := i.issuedAt(raw, now)
		if err != nil {
			return Claims{}, err
		}
		c.IssuedAt = iat
	}

	uidRaw, ok := mc[claimUserID]
	if !ok {
		return Claims{}, fail(ErrNoUserID, "no user_id claim")
	}
	uid, ok := parseUserID(uidRaw)
	if !ok {
		return Claims{}, fail(ErrNoUserID, "user_id claim is not a positive integer or string of digits")
	}
	c.UserID = uid
	return c, nil
}

// issuedAt reads the iat claim, refusing one later than now plus the
// leeway. It compares numbers, not times: a value beyond int64 must not wrap
// around into the past.
func (i Issuer) issuedAt(raw any, now time.Time) (time.Time, error) {
	n, ok := raw.(json.Number)
	if !ok {
		return time.Time{}, fail(ErrInvalid, "iat claim is not a number")
	}
	secs, err := strconv.ParseFloat(string(n), 64)
	if err != nil || math.Abs(secs) >= 1<<53 { // beyond that, seconds are not exact
		return time.Time{}, fail(ErrInvalid, "iat claim is not a number of seconds in range")
	}
	if secs > float64(now.UnixNano())/1e9+i.leeway().Seconds() {
		return time.Time{}, fail(ErrInvalid, "iat is later than %s plus the leeway of %v: the token is not yet valid", now.UTC().Format(time.RFC3339), i.leeway())
	}
	whole, frac := math.Modf(secs)
	return time.Unix(int64(whole), int64(frac*1e9)).UTC(), nil
}

// RevokedBy reports whether the revocation cutoff (Unix seconds: tokens
// issued before it are revoked; 0 or less: nothing revoked yet) revokes a
// token with these claims, as the server that issued it sees it at now. A
// token without iat cannot prove it is recent. Nor can one whose iat is later
// than both now and the cutoff: a token the server issued is dated at the
// latest at the cutoff (edms.IssueTime), so such a token is forged or from a
// wrong clock, and would otherwise outlive every revocation.
func (c Claims) RevokedBy(cutoff int64, now time.Time) bool {
	if cutoff <= 0 {
		return false
	}
	if c.IssuedAt.IsZero() {
		return true
	}
	iat := c.IssuedAt.Unix()
	return iat < cutoff || iat > max(now.Unix(), cutoff)
}

// parseUserID accepts what simplejwt writes (an integer, or since 5.5.1 a
// string of digits) and what Python would treat as the same primary key (an
// integral JSON number such as 2.0). It refuses fractions, signs, zero,
// negatives, values beyond int64, booleans, null, arrays and objects.
func parseUserID(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if allDigits(s) {
			n, err := strconv.ParseInt(s, 10, 64)
			return n, err == nil && n > 0
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f != math.Trunc(f) || f < 1 || f > 1<<53 {
			return 0, false
		}
		return int64(f), true
	case string:
		if !allDigits(x) {
			return 0, false
		}
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil && n > 0
	}
	return 0, false
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// NewJTI returns a random version-4 UUID as 32 lowercase hex digits, the
// form of simplejwt's uuid4().hex, from crypto/rand.
func NewJTI() string {
	var b [16]byte
	rand.Read(b[:])         // never returns an error (crypto/rand, Go >= 1.24)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:])
}
