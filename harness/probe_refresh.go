package harness

import (
	"context"

	"github.com/rehearse-dev/rehearse/results"
)

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
