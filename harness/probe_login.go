package harness

import (
	"context"

	"github.com/rehearse-dev/rehearse/results"
)

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
