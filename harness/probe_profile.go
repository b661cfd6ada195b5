package harness

import (
	"context"
	"fmt"

	"github.com/rehearse-dev/rehearse/results"
)

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
