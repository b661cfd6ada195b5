package token

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// mintWithHeader signs claims with HS256 and the test key, with extra
// header parameters.
func mintWithHeader(t *testing.T, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(testKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A token issued later than now (plus the leeway for clock skew) was not
// issued by a clock anyone trusts: refused, like PyJWT's "The token is not
// yet valid (iat)". Within the leeway it is accepted.
func TestIssuedInTheFutureIsRefused(t *testing.T) {
	iss := issuer()
	for _, ahead := range []time.Duration{DefaultIssuedAtLeeway + time.Second, time.Hour, 10 * 365 * 24 * time.Hour} {
		c := simplejwtClaims()
		c["iat"] = t0.Add(ahead).Unix()
		c["exp"] = t0.Add(ahead + 5*time.Minute).Unix()
		_, err := iss.Parse(mint(t, jwt.SigningMethodHS256, testKey, c), TypeAccess, t0)
		wantKind(t, err, ErrInvalid)
	}
	// Numbers beyond int64 must not wrap around into the past, nor be
	// taken for a time at all.
	for _, huge := range []any{1e300, 9.3e18, "9300000000000000000", -1e300, -9.3e18} {
		c := simplejwtClaims()
		c["iat"] = huge
		_, err := iss.Parse(mint(t, jwt.SigningMethodHS256, testKey, c), TypeAccess, t0)
		wantKind(t, err, ErrInvalid)
	}
	c := simplejwtClaims()
	c["iat"] = t0.Add(DefaultIssuedAtLeeway).Unix()
	if _, err := iss.Parse(mint(t, jwt.SigningMethodHS256, testKey, c), TypeAccess, t0); err != nil {
		t.Fatalf("iat at now + leeway: %v", err)
	}
	// The leeway is configurable.
	strict := Issuer{Key: testKey, IssuedAtLeeway: time.Second}
	c["iat"] = t0.Add(2 * time.Second).Unix()
	_, err := strict.Parse(mint(t, jwt.SigningMethodHS256, testKey, c), TypeAccess, t0)
	wantKind(t, err, ErrInvalid)
	if _, err := strict.Parse(mint(t, jwt.SigningMethodHS256, testKey, c), TypeAccess, t0.Add(time.Second)); err != nil {
		t.Fatalf("within a 1 s leeway: %v", err)
	}
	if err := (Issuer{Key: testKey, IssuedAtLeeway: -time.Second}).Validate(); err == nil {
		t.Fatal("negative leeway accepted")
	}
}

// RFC 7515 §4.1.11: a recipient must refuse a JWS whose "crit" header lists
// extensions it does not understand; this one understands none.
func TestCriticalHeadersAreRefused(t *testing.T) {
	for _, crit := range []any{[]string{"exp"}, []string{"b64"}, []string{"http://example.com/ext"}, []string{}, "b64", nil} {
		raw := mintWithHeader(t, map[string]any{"crit": crit, "b64": false}, simplejwtClaims())
		_, err := issuer().Parse(raw, TypeAccess, t0)
		wantKind(t, err, ErrInvalid)
	}
	// Other unknown, non-critical header parameters are ignored, as the RFC asks.
	raw := mintWithHeader(t, map[string]any{"kid": "key-1", "x-note": "hello"}, simplejwtClaims())
	if _, err := issuer().Parse(raw, TypeAccess, t0); err != nil {
		t.Fatalf("non-critical header parameters: %v", err)
	}
}

// Revocation holds against a token that claims to be issued after the
// cutoff but is from the future as the server's clock sees it: a forged
// token with a far iat must not outlive every reinit.
func TestRevokedBy(t *testing.T) {
	now := t0
	reinit := now.Unix() + 1 // what edms.RevokeAll writes at now
	at := func(d time.Duration) Claims { return Claims{IssuedAt: now.Add(d)} }
	cases := []struct {
		name    string
		c       Claims
		cutoff  int64
		revoked bool
	}{
		{"no revocation yet", at(-time.Hour), 0, false},
		{"issued before the cutoff", at(-time.Minute), reinit, true},
		{"issued in the second of the reinit, before it", at(0), reinit, true},
		{"issued right after the reinit (iat = cutoff, a second ahead of now)", Claims{IssuedAt: time.Unix(reinit, 0)}, reinit, false},
		{"issued after an earlier cutoff", at(0), reinit - 60, false},
		{"no iat: cannot prove it is recent", Claims{}, reinit, true},
		{"forged: iat after the cutoff and in the future", at(time.Hour), reinit, true},
		{"forged: iat a few seconds ahead", at(5 * time.Second), reinit, true},
		{"cutoff pushed ahead by quick reinits; token dated at it", Claims{IssuedAt: time.Unix(reinit+5, 0)}, reinit + 5, false},
	}
	for _, c := range cases {
		if got := c.c.RevokedBy(c.cutoff, now); got != c.revoked {
			t.Errorf("%s: RevokedBy = %v, want %v", c.name, got, c.revoked)
		}
	}
	// End to end: a token the issuer parses, forged a little ahead (within
	// the parse leeway), survives Parse but not the revocation check.
	c := simplejwtClaims()
	c["iat"] = t0.Add(10 * time.Second).Unix()
	claims, err := issuer().Parse(mint(t, jwt.SigningMethodHS256, testKey, c), TypeAccess, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !claims.RevokedBy(t0.Unix()+1, t0) {
		t.Fatal("a token from 10 s in the future survived a revocation")
	}
}
