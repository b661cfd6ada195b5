package harness

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

var _ = registerCheck[ExpectLogin]("login", "After the operation, logging in returns this status.")

// ExpectLogin: login as user ("all" = every fixture user) with a password kind returns status.
type ExpectLogin struct {
	located
	User     string `yaml:"user" json:"user" required:"true"`
	Password string `yaml:"password" json:"password,omitempty" enum:"original,default"`
	Status   int    `yaml:"status" json:"status" required:"true"`
}

func (e *ExpectLogin) validate(sc *scope) {
	if e.User != "all" {
		sc.users(e.Pos, e.User)
	}
	sc.password(e.Pos, e.Password)
	sc.status(e.Pos, e.Status)
}

func (e *ExpectLogin) withDefaults() Check {
	c := *e
	c.Password = string(passwordKind(e.Password))
	return &c
}

func (e *ExpectLogin) users(p *Plan) []string {
	if e.User != "all" {
		return []string{e.User}
	}
	var all []string
	for _, a := range p.Accounts {
		all = append(all, a.Username)
	}
	return all
}

func (e *ExpectLogin) loginsAfter(p *Plan) []results.LoginCheck {
	var out []results.LoginCheck
	for _, u := range e.users(p) {
		out = append(out, results.LoginCheck{User: u, Password: passwordKind(e.Password)})
	}
	return out
}

func (e *ExpectLogin) judge(m *measured) results.Outcome {
	kind := passwordKind(e.Password)
	o := results.Outcome{Subject: fmt.Sprintf("login as %s with the %s password after the operation", e.User, kind), Expected: fmt.Sprint(e.Status), Pass: true}
	users := e.users(m.plan)
	var wrong []string
	for _, u := range users {
		status, ok := loginAfter(m.res, u, kind)
		switch {
		case !ok:
			o.Pass = false
			wrong = append(wrong, u+": not measured")
		case status != e.Status:
			o.Pass = false
			wrong = append(wrong, fmt.Sprintf("%s: %d", u, status))
		}
	}
	if o.Pass {
		o.Measured = fmt.Sprintf("%d for %d user(s)", e.Status, len(users))
	} else {
		o.Measured = strings.Join(wrong, ", ")
	}
	return o
}

// loginAfter finds the status of a login made after the operation.
func loginAfter(r *results.Result, user string, kind results.PasswordKind) (int, bool) {
	for _, l := range r.Facts.LoginsAfter {
		if l.User == user && l.Password == kind {
			return l.Status, true
		}
	}
	return 0, false
}
