package harness

import (
	"fmt"

	"github.com/rehearse-dev/rehearse/results"
)

var _ = registerCheck[ExpectProfile]("profile", "After the operation, profile with a named token returns this status.")

// ExpectProfile: profile with token returns status.
type ExpectProfile struct {
	located
	Token  string `yaml:"token" json:"token" required:"true"`
	Status int    `yaml:"status" json:"status" required:"true"`
}

func (e *ExpectProfile) validate(sc *scope) {
	sc.token(e.Pos, e.Token)
	sc.status(e.Pos, e.Status)
}

func (e *ExpectProfile) judge(m *measured) results.Outcome {
	o := results.Outcome{Subject: "token " + e.Token + " on profile after the operation", Expected: fmt.Sprint(e.Status), Measured: "not measured"}
	if f, ok := m.res.Token(e.Token); ok {
		o.Measured = fmt.Sprint(f.After)
		if f.AfterAs != "" {
			o.Measured += " (authenticated as " + f.AfterAs + ")"
		}
		o.Pass = f.After == e.Status
		o.Excerpt = fmt.Sprintf("token %s (%s, %s): before %d, during %v, after %d", f.Name, f.User, f.Fingerprint, f.Before, f.During, f.After)
	}
	return o
}
