package harness

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// The check kinds on calls made after the operation: a login (login), a
// token on profile (profile), a token's refresh token (refresh). Check
// kinds live in the check_*.go of what they look at (check.go).

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
