package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var (
	testKey  = []byte("0123456789abcdef0123456789abcdef-test-signing-key")
	otherKey = []byte("ffffffffffffffffffffffffffffffff-other-signing-key")
	t0       = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
)

func issuer() Issuer { return Issuer{Key: testKey} }

// segment decodes one part of a compact JWS.
func segment(t *testing.T, raw string, i int) string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// mint signs arbitrary claims, in the map's key order as Go sorts them.
func mint(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// simplejwtClaims is a simplejwt 5.2.2 access-token payload for user 2,
// issued at t0.
func simplejwtClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"token_type": "access",
		"exp":        t0.Add(5 * time.Minute).Unix(),
		"iat":        t0.Unix(),
		"jti":        "d3f3c0a1b2c34d5e8f9a0b1c2d3e4f50",
		"user_id":    2,
	}
}

func wantKind(t *testing.T, err error, kind *Error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("err = %v; want %q", err, kind.msg)
	}
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Kind != kind {
		t.Fatalf("err %v is not a *ParseError of kind %q", err, kind.msg)
	}
	if Message(err) != kind.msg {
		t.Fatalf("Message = %q; want %q", Message(err), kind.msg)
	}
}

func TestPairRoundTrip(t *testing.T) {
	iss := issuer()
	access, refresh, err := iss.Pair(7, t0.Add(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if access == refresh {
		t.Fatal("access == refresh")
	}
	now := t0.Add(time.Minute)
	ac, err := iss.Parse(access, TypeAccess, now)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := iss.Parse(refresh, TypeRefresh, now)
	if err != nil {
		t.Fatal(err)
	}
	if ac.TokenType != TypeAccess || rc.TokenType != TypeRefresh {
		t.Fatalf("types %q %q", ac.TokenType, rc.TokenType)
	}
	if ac.UserID != 7 || rc.UserID != 7 {
		t.Fatalf("user ids %d %d", ac.UserID, rc.UserID)
	}
	// iat is truncated to whole seconds, like simplejwt's datetime_to_epoch.
	if !ac.IssuedAt.Equal(t0) || !rc.IssuedAt.Equal(t0) {
		t.Fatalf("iat %v %v", ac.IssuedAt, rc.IssuedAt)
	}
	if !ac.ExpiresAt.Equal(t0.Add(DefaultAccessLifetime)) || !rc.ExpiresAt.Equal(t0.Add(DefaultRefreshLifetime)) {
		t.Fatalf("exp %v %v", ac.ExpiresAt, rc.ExpiresAt)
	}
	if ac.JTI == rc.JTI {
		t.Fatal("same jti for both tokens")
	}
	jtiRE := regexp.MustCompile(`^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$`)
	for _, j := range []string{ac.JTI, rc.JTI} {
		if !jtiRE.MatchString(j) {
			t.Fatalf("jti %q is not a uuid4 hex", j)
		}
	}
	// The refresh token outlives the access token.
	later := t0.Add(time.Hour)
	if _, err := iss.Parse(access, TypeAccess, later); !errors.Is(err, ErrExpired) {
		t.Fatalf("access after 1h: %v", err)
	}
	if _, err := iss.Parse(refresh, TypeRefresh, later); err != nil {
		t.Fatalf("refresh after 1h: %v", err)
	}
}

func TestIssueClaimsAndWireFormat(t *testing.T) {
	iss := Issuer{Key: testKey, AccessLifetime: 90 * time.Second}
	raw, c, err := iss.Issue(TypeAccess, 42, t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.TokenType != TypeAccess || c.UserID != 42 || !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(90*time.Second)) || len(c.JTI) != 32 {
		t.Fatalf("claims %+v", c)
	}
	if h := segment(t, raw, 0); h != `{"alg":"HS256","typ":"JWT"}` {
		t.Fatalf("header %s", h)
	}
	want := `{"token_type":"access","exp":` + jsonInt(t0.Unix()+90) + `,"iat":` + jsonInt(t0.Unix()) + `,"jti":"` + c.JTI + `","user_id":42}`
	if p := segment(t, raw, 1); p != want {
		t.Fatalf("payload\n got %s\nwant %s", p, want)
	}
	got, err := iss.Parse(raw, TypeAccess, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got != c {
		t.Fatalf("Parse = %+v; Issue said %+v", got, c)
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// Golden tokens minted independently with Python's standard library exactly
// as PyJWT 2.x + simplejwt serialise them (header keys sorted, payload in
// simplejwt's order, compact JSON, HMAC-SHA256, unpadded base64url).
const (
	goldenKey      = "django-insecure-rehearse-golden-vector-key-0123456789abcdef"
	goldenJTI      = "d3f3c0a1b2c34d5e8f9a0b1c2d3e4f50"
	goldenIat      = 1700000000
	goldenIntUser  = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzAwMDAwMzAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6ImQzZjNjMGExYjJjMzRkNWU4ZjlhMGIxYzJkM2U0ZjUwIiwidXNlcl9pZCI6Mn0.cj58x8dCWKwfNQWFvDkFb7yajyxtBQcsu8cKLZo7Ugw"
	goldenStrUser  = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzAwMDAwMzAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6ImQzZjNjMGExYjJjMzRkNWU4ZjlhMGIxYzJkM2U0ZjUwIiwidXNlcl9pZCI6IjIifQ.K8yizAOCQYfMDXP0JATLv8pOoW1e9wfMtDZ70fDHrjw"
	goldenDuration = 300 * time.Second
)

func TestGoldenSimplejwtTokens(t *testing.T) {
	iat := time.Unix(goldenIat, 0)
	for _, c := range []struct {
		name     string
		asString bool
		golden   string
	}{
		{"simplejwt<=5.5.0 numeric user_id", false, goldenIntUser},
		{"simplejwt>=5.5.1 string user_id", true, goldenStrUser},
	} {
		t.Run(c.name, func(t *testing.T) {
			iss := Issuer{Key: []byte(goldenKey), UserIDAsString: c.asString, newJTI: func() string { return goldenJTI }}
			// Byte for byte what simplejwt would send.
			raw, _, err := iss.Issue(TypeAccess, 2, iat)
			if err != nil {
				t.Fatal(err)
			}
			if raw != c.golden {
				t.Fatalf("Issue\n got %s\nwant %s", raw, c.golden)
			}
			got, err := iss.Parse(c.golden, TypeAccess, iat.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			want := Claims{TokenType: TypeAccess, UserID: 2, JTI: goldenJTI, IssuedAt: iat.UTC(), ExpiresAt: iat.Add(goldenDuration).UTC()}
			if got != want {
				t.Fatalf("Parse = %+v; want %+v", got, want)
			}
		})
	}
}

func TestUserIDNumberAndStringParseAlike(t *testing.T) {
	numIss := issuer()
	strIss := Issuer{Key: testKey, UserIDAsString: true}
	a, _, err := numIss.Issue(TypeAccess, 123456789012, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := strIss.Issue(TypeAccess, 123456789012, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(segment(t, a, 1), `"user_id":123456789012}`) || !strings.Contains(segment(t, b, 1), `"user_id":"123456789012"}`) {
		t.Fatalf("payloads %s / %s", segment(t, a, 1), segment(t, b, 1))
	}
	ca, err := numIss.Parse(b, TypeAccess, t0) // either issuer parses either form
	if err != nil {
		t.Fatal(err)
	}
	cb, err := strIss.Parse(a, TypeAccess, t0)
	if err != nil {
		t.Fatal(err)
	}
	if ca.UserID != 123456789012 || cb.UserID != 123456789012 {
		t.Fatalf("%d %d", ca.UserID, cb.UserID)
	}
}

func TestHandMintedSimplejwt522Payload(t *testing.T) {
	raw := mint(t, jwt.SigningMethodHS256, testKey, simplejwtClaims())
	c, err := issuer().Parse(raw, TypeAccess, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if c.UserID != 2 || c.JTI != "d3f3c0a1b2c34d5e8f9a0b1c2d3e4f50" || !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("%+v", c)
	}
	// Without iat (simplejwt < 5.0): accepted, IssuedAt zero.
	mc := simplejwtClaims()
	delete(mc, "iat")
	c, err = issuer().Parse(mint(t, jwt.SigningMethodHS256, testKey, mc), TypeAccess, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IssuedAt.IsZero() {
		t.Fatalf("IssuedAt = %v; want zero", c.IssuedAt)
	}
	// Extra claims (hash_password from CHECK_REVOKE_TOKEN, aud, ...) are ignored.
	mc = simplejwtClaims()
	mc["hash_password"] = "BE12846FF8A19E39129CA371A823E7FD"
	if _, err := issuer().Parse(mint(t, jwt.SigningMethodHS256, testKey, mc), TypeAccess, t0); err != nil {
		t.Fatal(err)
	}
}

func TestOtherKeyIsInvalid(t *testing.T) {
	raw, _, err := Issuer{Key: otherKey}.Issue(TypeAccess, 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = issuer().Parse(raw, TypeAccess, t0)
	wantKind(t, err, ErrInvalid)
	// Signed with another key AND expired: the signature is checked first.
	_, err = issuer().Parse(raw, TypeAccess, t0.Add(time.Hour))
	wantKind(t, err, ErrInvalid)
}

func TestExpiry(t *testing.T) {
	iss := issuer()
	raw, c, err := iss.Issue(TypeAccess, 1, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.Parse(raw, TypeAccess, c.ExpiresAt.Add(-time.Nanosecond)); err != nil {
		t.Fatalf("1ns before exp: %v", err)
	}
	// simplejwt: invalid when exp <= now; no leeway.
	_, err = iss.Parse(raw, TypeAccess, c.ExpiresAt)
	wantKind(t, err, ErrExpired)
	_, err = iss.Parse(raw, TypeAccess, c.ExpiresAt.Add(24*time.Hour))
	wantKind(t, err, ErrExpired)
	// A token parsed before its iat is fine within the leeway for clock
	// skew, and not yet valid beyond it (current PyJWT refuses iat > now +
	// leeway too).
	if _, err := iss.Parse(raw, TypeAccess, t0.Add(-DefaultIssuedAtLeeway)); err != nil {
		t.Fatalf("iat within the leeway: %v", err)
	}
	_, err = iss.Parse(raw, TypeAccess, t0.Add(-time.Hour))
	wantKind(t, err, ErrInvalid)
}

func TestWrongType(t *testing.T) {
	iss := issuer()
	access, refresh, err := iss.Pair(3, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = iss.Parse(refresh, TypeAccess, t0)
	wantKind(t, err, ErrWrongType)
	if err.Error() == "" || !strings.Contains(err.Error(), "Token has wrong type") {
		t.Fatalf("message %q", err.Error())
	}
	_, err = iss.Parse(access, TypeRefresh, t0)
	wantKind(t, err, ErrWrongType)
	// Untyped accepts both and reports the type.
	for raw, typ := range map[string]string{access: TypeAccess, refresh: TypeRefresh} {
		c, err := iss.Parse(raw, TypeUntyped, t0)
		if err != nil || c.TokenType != typ {
			t.Fatalf("untyped: %+v, %v", c, err)
		}
	}
	// token_type missing, or not a string.
	mc := simplejwtClaims()
	delete(mc, "token_type")
	_, err = iss.Parse(mint(t, jwt.SigningMethodHS256, testKey, mc), TypeAccess, t0)
	wantKind(t, err, ErrNoType)
	mc["token_type"] = 1
	_, err = iss.Parse(mint(t, jwt.SigningMethodHS256, testKey, mc), TypeAccess, t0)
	wantKind(t, err, ErrWrongType)
	mc["token_type"] = "sliding"
	_, err = iss.Parse(mint(t, jwt.SigningMethodHS256, testKey, mc), TypeAccess, t0)
	wantKind(t, err, ErrWrongType)
}

func TestAlgorithmsRefused(t *testing.T) {
	iss := issuer()
	claims := simplejwtClaims()
	payload := strings.Split(mint(t, jwt.SigningMethodHS256, testKey, claims), ".")[1]
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

	noneTok := mint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims)
	hs384 := mint(t, jwt.SigningMethodHS384, testKey, claims)
	hs512 := mint(t, jwt.SigningMethodHS512, testKey, claims)

	// Forged headers over a payload, with a valid HS256 MAC computed over
	// the forged header: a verifier that trusted the header's alg with an
	// HMAC key (the RS256/HS256 confusion) would accept these.
	forge := func(header string) string {
		si := b64(header) + "." + payload
		sig, err := jwt.SigningMethodHS256.Sign(si, testKey)
		if err != nil {
			t.Fatal(err)
		}
		return si + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	cases := map[string]string{
		"none":                 noneTok,
		"none no signature":    b64(`{"alg":"none","typ":"JWT"}`) + "." + payload + ".",
		"None capitalised":     forge(`{"alg":"None","typ":"JWT"}`),
		"HS384":                hs384,
		"HS512":                hs512,
		"RS256 header":         forge(`{"alg":"RS256","typ":"JWT"}`),
		"ES256 header":         forge(`{"alg":"ES256","typ":"JWT"}`),
		"lowercase hs256":      forge(`{"alg":"hs256","typ":"JWT"}`),
		"no alg":               forge(`{"typ":"JWT"}`),
		"alg not a string":     forge(`{"alg":256,"typ":"JWT"}`),
		"HS256 sig truncated":  forge(`{"alg":"HS256","typ":"JWT"}`)[:60],
		"HS256 sig stripped":   b64(`{"alg":"HS256","typ":"JWT"}`) + "." + payload + ".",
		"HS256 sig of another": b64(`{"alg":"HS256","typ":"JWT"}`) + "." + payload + "." + strings.Split(hs512, ".")[2],
	}
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := iss.Parse(raw, TypeAccess, t0)
			wantKind(t, err, ErrInvalid)
		})
	}
	// Control: the forged-header machinery itself yields a valid token
	// when the header is the honest one.
	if _, err := iss.Parse(forge(`{"alg":"HS256","typ":"JWT"}`), TypeAccess, t0); err != nil {
		t.Fatalf("control: %v", err)
	}
}

func TestMissingOrBadClaims(t *testing.T) {
	iss := issuer()
	cases := []struct {
		name   string
		mutate func(jwt.MapClaims)
		want   *Error
	}{
		{"no jti", func(m jwt.MapClaims) { delete(m, "jti") }, ErrNoID},
		{"jti number", func(m jwt.MapClaims) { m["jti"] = 5 }, ErrInvalid},
		{"jti empty", func(m jwt.MapClaims) { m["jti"] = "" }, ErrInvalid},
		{"jti null", func(m jwt.MapClaims) { m["jti"] = nil }, ErrInvalid},
		{"no exp", func(m jwt.MapClaims) { delete(m, "exp") }, ErrInvalid},
		{"exp string", func(m jwt.MapClaims) { m["exp"] = "1900000000" }, ErrInvalid},
		{"exp null", func(m jwt.MapClaims) { m["exp"] = nil }, ErrInvalid},
		{"iat string", func(m jwt.MapClaims) { m["iat"] = "yesterday" }, ErrInvalid},
		{"nbf in future", func(m jwt.MapClaims) { m["nbf"] = t0.Add(time.Hour).Unix() }, ErrInvalid},
		{"no user_id", func(m jwt.MapClaims) { delete(m, "user_id") }, ErrNoUserID},
		{"user_id abc", func(m jwt.MapClaims) { m["user_id"] = "abc" }, ErrNoUserID},
		{"user_id -1", func(m jwt.MapClaims) { m["user_id"] = -1 }, ErrNoUserID},
		{"user_id \"-1\"", func(m jwt.MapClaims) { m["user_id"] = "-1" }, ErrNoUserID},
		{"user_id 0", func(m jwt.MapClaims) { m["user_id"] = 0 }, ErrNoUserID},
		{"user_id 1.5", func(m jwt.MapClaims) { m["user_id"] = 1.5 }, ErrNoUserID},
		{"user_id \"1.5\"", func(m jwt.MapClaims) { m["user_id"] = "1.5" }, ErrNoUserID},
		{"user_id \"2.0\"", func(m jwt.MapClaims) { m["user_id"] = "2.0" }, ErrNoUserID},
		{"user_id \" 2\"", func(m jwt.MapClaims) { m["user_id"] = " 2" }, ErrNoUserID},
		{"user_id \"+2\"", func(m jwt.MapClaims) { m["user_id"] = "+2" }, ErrNoUserID},
		{"user_id empty", func(m jwt.MapClaims) { m["user_id"] = "" }, ErrNoUserID},
		{"user_id true", func(m jwt.MapClaims) { m["user_id"] = true }, ErrNoUserID},
		{"user_id null", func(m jwt.MapClaims) { m["user_id"] = nil }, ErrNoUserID},
		{"user_id object", func(m jwt.MapClaims) { m["user_id"] = map[string]any{"id": 2} }, ErrNoUserID},
		{"user_id array", func(m jwt.MapClaims) { m["user_id"] = []int{2} }, ErrNoUserID},
		{"user_id 1e30", func(m jwt.MapClaims) { m["user_id"] = 1e30 }, ErrNoUserID},
		{"user_id overflow string", func(m jwt.MapClaims) { m["user_id"] = "99999999999999999999" }, ErrNoUserID},
		{"user_id overflow number", func(m jwt.MapClaims) { m["user_id"] = json.Number("99999999999999999999") }, ErrNoUserID},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mc := simplejwtClaims()
			c.mutate(mc)
			_, err := iss.Parse(mint(t, jwt.SigningMethodHS256, testKey, mc), TypeAccess, t0)
			wantKind(t, err, c.want)
		})
	}
}

func TestUserIDAcceptedForms(t *testing.T) {
	iss := issuer()
	for name, v := range map[string]any{
		"int":                2,
		"digit string":       "2",
		"integral float 2.0": json.Number("2.0"),
		"exponent 2e0":       json.Number("2e0"),
		"leading zero str":   "02", // Python int("02") == 2
		"max int64 string":   "9223372036854775807",
	} {
		t.Run(name, func(t *testing.T) {
			mc := simplejwtClaims()
			mc["user_id"] = v
			c, err := iss.Parse(mint(t, jwt.SigningMethodHS256, testKey, mc), TypeAccess, t0)
			if err != nil {
				t.Fatal(err)
			}
			if c.UserID != 2 && c.UserID != 9223372036854775807 {
				t.Fatalf("UserID = %d", c.UserID)
			}
		})
	}
}

func TestGarbage(t *testing.T) {
	iss := issuer()
	for _, raw := range []string{"", "abc", "a.b.c", "..", "Bearer x.y.z", strings.Repeat("A", maxTokenLen+1),
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.bm90IGpzb24.c2ln"} {
		_, err := iss.Parse(raw, TypeAccess, t0)
		wantKind(t, err, ErrInvalid)
	}
}

func TestErrorsDoNotLeak(t *testing.T) {
	iss := issuer()
	access, refresh, _ := iss.Pair(5, t0)
	for _, c := range []struct {
		raw  string
		want string
		now  time.Time
	}{
		{refresh, TypeAccess, t0},
		{access, TypeAccess, t0.Add(time.Hour)},
		{access[:len(access)-4] + "AAAA", TypeAccess, t0},
	} {
		_, err := iss.Parse(c.raw, c.want, c.now)
		if err == nil {
			t.Fatal("no error")
		}
		for _, part := range strings.Split(c.raw, ".") {
			if len(part) > 6 && strings.Contains(err.Error(), part) {
				t.Fatalf("error %q contains part of the token", err)
			}
		}
		if strings.Contains(err.Error(), string(testKey)) {
			t.Fatal("error contains the key")
		}
	}
}

func TestConfigErrors(t *testing.T) {
	short := Issuer{Key: []byte("too-short")}
	if _, _, err := short.Issue(TypeAccess, 1, t0); !errors.Is(err, ErrConfig) {
		t.Fatalf("short key Issue: %v", err)
	}
	raw, _, _ := issuer().Issue(TypeAccess, 1, t0)
	if _, err := short.Parse(raw, TypeAccess, t0); !errors.Is(err, ErrConfig) || Message(err) != "" {
		t.Fatalf("short key Parse: %v", err)
	}
	for _, iss := range []Issuer{
		{Key: testKey, AccessLifetime: -time.Second},
		{Key: testKey, RefreshLifetime: -time.Second},
	} {
		if err := iss.Validate(); !errors.Is(err, ErrConfig) {
			t.Fatalf("Validate(%+v) = %v", iss.AccessLifetime, err)
		}
	}
	iss := issuer()
	for _, typ := range []string{"sliding", "", TypeUntyped} {
		if _, _, err := iss.Issue(typ, 1, t0); !errors.Is(err, ErrConfig) {
			t.Fatalf("Issue(%q): %v", typ, err)
		}
	}
	for _, uid := range []int64{0, -1} {
		if _, _, err := iss.Issue(TypeAccess, uid, t0); !errors.Is(err, ErrConfig) {
			t.Fatalf("Issue(uid %d): %v", uid, err)
		}
	}
	if _, _, err := iss.Issue(TypeAccess, 1, time.Time{}); !errors.Is(err, ErrConfig) {
		t.Fatalf("Issue at zero time: %v", err)
	}
	if _, err := iss.Parse(raw, "", t0); !errors.Is(err, ErrConfig) {
		t.Fatalf("Parse with empty wantType: %v", err)
	}
	if _, _, err := short.Pair(1, t0); !errors.Is(err, ErrConfig) {
		t.Fatalf("Pair: %v", err)
	}
	if iss.Lifetime("sliding") != 0 {
		t.Fatal("Lifetime of unknown type")
	}
}

func TestNewJTIUnique(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		j := NewJTI()
		if len(j) != 32 || seen[j] {
			t.Fatalf("jti %q (len %d, seen %v)", j, len(j), seen[j])
		}
		seen[j] = true
	}
}

// FuzzParse checks that Parse never panics and that its results are
// consistent. Without -fuzz it runs only the seeds.
func FuzzParse(f *testing.F) {
	iss := issuer()
	access, refresh, _ := iss.Pair(2, t0)
	f.Add(access)
	f.Add(refresh)
	f.Add(goldenIntUser)
	f.Add(goldenStrUser)
	for _, s := range []string{"", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.", access[:len(access)/2]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, want := range []string{TypeAccess, TypeRefresh, TypeUntyped} {
			c, err := iss.Parse(raw, want, t0.Add(time.Minute))
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || Message(err) == "" {
					t.Fatalf("error of unexpected shape: %v", err)
				}
				continue
			}
			if c.UserID <= 0 || c.JTI == "" || !c.ExpiresAt.After(t0.Add(time.Minute)) {
				t.Fatalf("accepted bad claims %+v", c)
			}
			if want != TypeUntyped && c.TokenType != want {
				t.Fatalf("type %q accepted as %q", c.TokenType, want)
			}
		}
	})
}

// FuzzParsePayload signs arbitrary payload bytes with the right key, so the
// fuzzer reaches the claim checks behind the signature. Parse must never
// panic and must only accept well-formed claims.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{
		`{"token_type":"access","exp":1748779500,"iat":1748779200,"jti":"d3f3c0a1b2c34d5e8f9a0b1c2d3e4f50","user_id":2}`,
		`{"token_type":"access","exp":1748779500,"iat":1748779200,"jti":"d3f3c0a1b2c34d5e8f9a0b1c2d3e4f50","user_id":"2"}`,
		`{"token_type":"refresh","exp":1e10,"jti":"x","user_id":2.0}`,
		`{"token_type":"access","exp":1e400,"iat":-1e400,"jti":"x","user_id":1}`,
		`{"token_type":"access","exp":9223372036854775807,"nbf":"x","jti":"x","user_id":99999999999999999999}`,
		`{"exp":null,"user_id":{}}`, `[]`, `null`, `"x"`, `{}`, `{"a":`,
	} {
		f.Add(s)
	}
	iss := issuer()
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	now := t0.Add(time.Minute)
	f.Fuzz(func(t *testing.T, payload string) {
		si := header + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		sig, err := jwt.SigningMethodHS256.Sign(si, testKey)
		if err != nil {
			t.Fatal(err)
		}
		raw := si + "." + base64.RawURLEncoding.EncodeToString(sig)
		for _, want := range []string{TypeAccess, TypeRefresh, TypeUntyped} {
			c, err := iss.Parse(raw, want, now)
			if err != nil {
				if Message(err) == "" {
					t.Fatalf("error of unexpected shape: %v", err)
				}
				continue
			}
			if c.UserID <= 0 || c.JTI == "" || !c.ExpiresAt.After(now) {
				t.Fatalf("accepted bad claims %+v from %s", c, payload)
			}
			if want != TypeUntyped && c.TokenType != want {
				t.Fatalf("type %q accepted as %q", c.TokenType, want)
			}
		}
	})
}
