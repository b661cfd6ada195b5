package harness

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

var _ = registerCheck[ExpectServerErrors]("server_errors", "How many requests may meet a server error (a 5xx status, or no response at all): probe samples before, during and after the operation, window actions, the operation call and the measurements after it.")

// ExpectServerErrors bounds the server errors of the whole run.
type ExpectServerErrors struct {
	located
	// At most this many (default 0).
	Max int `yaml:"max" json:"max,omitempty"`
}

func (e *ExpectServerErrors) validate(sc *scope) {
	if e.Max < 0 {
		sc.bad(e.Pos, "max must be 0 or more, got %d", e.Max)
	}
}

func (e *ExpectServerErrors) judge(m *measured) results.Outcome {
	errs := m.res.Facts.ServerErrors
	o := results.Outcome{Subject: "server errors (5xx or no response) in any request", Expected: fmt.Sprintf("at most %d", e.Max),
		Measured: fmt.Sprintf("%d", len(errs)), Pass: len(errs) <= e.Max}
	var lines []string
	for i, s := range errs {
		if i == 10 {
			lines = append(lines, fmt.Sprintf("... and %d more", len(errs)-10))
			break
		}
		lines = append(lines, fmt.Sprintf("T%+.1fms %s %s: %d %s", s.AtMS, s.Source, s.Name, s.Status, s.Body))
	}
	if len(errs) > 0 {
		o.Measured += ": first at T" + fmt.Sprintf("%+.1fms", errs[0].AtMS)
		o.Excerpt = strings.Join(lines, "\n")
	}
	return o
}
