package harness

import (
	"context"
	"fmt"

	"github.com/rehearse-dev/rehearse/results"
)

// ProbeKind is one kind of probe: what it requests and when that counts as
// a success. Each kind is one type that registers itself with
// registerProbe; they all stand at the end of this file (login, profile,
// refresh), and a new one goes beside them.
type ProbeKind interface {
	validate(sc *scope)
	// describe says what the probe does, for the results.
	describe() (kind results.ProbeKind, target string, password results.PasswordKind)
	// sample makes one request.
	sample(ctx context.Context, ru *run) results.Sample
}

// registerProbe adds probe kind K under name, as registerCheck does.
func registerProbe[K any, P interface {
	*K
	ProbeKind
}](name, doc string) bool {
	return probeKinds.add(name, doc, func() ProbeKind { return P(new(K)) })
}

// sampleOf turns a reply into a sample: ok on 200, the detail for people.
func sampleOf(rep reply) results.Sample {
	s := results.Sample{Status: rep.Status, OK: rep.Status == 200}
	switch {
	case rep.Err != nil:
		s.Detail = rep.Err.Error()
	case rep.Status != 200:
		s.Detail = rep.field("detail")
		if s.Detail == "" && rep.Status >= 500 {
			s.Detail = rep.Line
		}
	}
	return s
}

var _ = registerProbe[LoginProbe]("login", "Log in as a user; it succeeds on 200.")

// LoginProbe logs in; it succeeds on 200.
type LoginProbe struct {
	located
	// A user of the fixture.
	User string `yaml:"user" json:"user" shorthand:"true"`
	// "original" (the fixture's password, default) or "default" (the reinit's, test123).
	Password string `yaml:"password" json:"password,omitempty" enum:"original,default"`
}

func (p *LoginProbe) validate(sc *scope) {
	sc.users(p.Pos, p.User)
	sc.password(p.Pos, p.Password)
}

func (p *LoginProbe) describe() (results.ProbeKind, string, results.PasswordKind) {
	return results.ProbeLogin, p.User, passwordKind(p.Password)
}

func (p *LoginProbe) sample(ctx context.Context, ru *run) results.Sample {
	return sampleOf(ru.cl.login(ctx, p.User, ru.plan.password(p.User, passwordKind(p.Password))))
}

var _ = registerProbe[ProfileProbe]("profile", "Call profile with a named token; it succeeds on 200.")

// ProfileProbe calls profile with a token; it succeeds on 200.
type ProfileProbe struct {
	located
	// A token name from tokens:.
	Token string `yaml:"token" json:"token" shorthand:"true"`
}

func (p *ProfileProbe) validate(sc *scope) { sc.token(p.Pos, p.Token) }

func (p *ProfileProbe) describe() (results.ProbeKind, string, results.PasswordKind) {
	return results.ProbeProfile, p.Token, ""
}

func (p *ProfileProbe) sample(ctx context.Context, ru *run) results.Sample {
	rep := ru.cl.profile(ctx, ru.tokens[p.Token])
	s := sampleOf(rep)
	if rep.Status == 200 {
		sys := ru.plan.System
		s.AuthAs = rep.field(sys.ProfileUserField)
		s.Detail = fmt.Sprintf("id=%s username=%s", rep.field(sys.ProfileIDField), s.AuthAs)
	}
	return s
}

var _ = registerProbe[RefreshProbe]("refresh", "Exchange a named token's refresh token for a new access token (POST to the refresh path); it succeeds on 200.")

// RefreshProbe uses a token's refresh token, as a frontend does when its
// access token expires.
type RefreshProbe struct {
	located
	// A token name from tokens: obtained by logging in (a minted token has no refresh token).
	Token string `yaml:"token" json:"token" shorthand:"true"`
}

func (p *RefreshProbe) validate(sc *scope) { sc.refreshToken(p.Pos, p.Token) }

func (p *RefreshProbe) describe() (results.ProbeKind, string, results.PasswordKind) {
	return results.ProbeRefresh, p.Token, ""
}

func (p *RefreshProbe) sample(ctx context.Context, ru *run) results.Sample {
	return sampleOf(ru.cl.refresh(ctx, ru.refresh[p.Token]))
}
