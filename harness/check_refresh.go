package harness

import (
	"fmt"

	"github.com/rehearse-dev/rehearse/results"
)

var _ = registerCheck[ExpectRefresh]("refresh", "After the operation, refreshing with a named token's refresh token returns this status.")

// ExpectRefresh: the token's refresh token, used after the operation,
// returns status.
type ExpectRefresh struct {
	located
	Token  string `yaml:"token" json:"token" required:"true"`
	Status int    `yaml:"status" json:"status" required:"true"`
}

func (e *ExpectRefresh) validate(sc *scope) {
	sc.refreshToken(e.Pos, e.Token)
	sc.status(e.Pos, e.Status)
}

func (e *ExpectRefresh) judge(m *measured) results.Outcome {
	o := results.Outcome{Subject: "refresh token of " + e.Token + " after the operation", Expected: fmt.Sprint(e.Status), Measured: "not measured"}
	if f, ok := m.res.Token(e.Token); ok && f.Refresh != nil {
		r := f.Refresh
		o.Measured, o.Pass = fmt.Sprint(r.After), r.After == e.Status
		o.Excerpt = fmt.Sprintf("refresh token of %s (%s, %s): before %d, during %v, after %d", f.Name, f.User, r.Fingerprint, r.Before, r.During, r.After)
	}
	return o
}
