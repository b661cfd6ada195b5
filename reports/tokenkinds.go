package reports

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// Whether users must log in again is a question per kind of credential: a
// session cookie, a DRF token and an access token each fare differently
// across a reinit and a restore. Only kinds that were followed are answered;
// an old results file without kinds holds access tokens only.

// kindOf is a token's kind ("" in old results: an access token).
func kindOf(t results.TokenFate) results.TokenKind {
	if t.Kind == "" {
		return results.TokenJWT
	}
	return t.Kind
}

// kindLabel names a kind for people.
func kindLabel(k results.TokenKind) string {
	switch k {
	case results.TokenSession:
		return "session cookie"
	case results.TokenDRF:
		return "DRF token"
	}
	return "access token"
}

// kindsFollowed lists the kinds of r's tokens in the order of
// results.TokenKinds, and whether any is other than an access token.
func kindsFollowed(ts []results.TokenFate) (kinds []results.TokenKind, other bool) {
	for _, k := range results.TokenKinds() {
		for _, t := range ts {
			if kindOf(t) == k {
				kinds = append(kinds, k)
				other = other || k != results.TokenJWT
				break
			}
		}
	}
	return kinds, other
}

// relogin is whether users must log in again.
type relogin int

const (
	reloginNotMeasured relogin = iota
	reloginYes
	reloginNo
)

// logInAgain says, for the tokens of one kind, whether their users must log
// in again, from their statuses after the operation, and in words.
func logInAgain(ts []results.TokenFate) (relogin, string) {
	var accepted, refused, other []string
	for _, t := range ts {
		switch {
		case t.After == 200:
			accepted = append(accepted, t.Name)
		case refused4xx(t.After):
			refused = append(refused, t.Name)
		default:
			other = append(other, fmt.Sprintf("%s got %s", t.Name, status(t.After)))
		}
	}
	switch {
	case len(ts) == 0:
		return reloginNotMeasured, "not probed"
	case len(accepted) > 0:
		return reloginNo, "no (" + strings.Join(accepted, ", ") + " accepted afterwards)"
	case len(other) > 0:
		return reloginNotMeasured, "not measured (" + strings.Join(other, ", ") + ")"
	}
	return reloginYes, "yes (" + strings.Join(refused, ", ") + " refused afterwards)"
}

// kindAnswer is the answer's clause per kind, when a kind other than access
// tokens was followed.
func kindAnswer(r *results.Result) string {
	kinds, other := kindsFollowed(r.Tokens)
	if !other {
		return ""
	}
	var parts []string
	for _, k := range kinds {
		var ts []results.TokenFate
		for _, t := range r.Tokens {
			if kindOf(t) == k {
				ts = append(ts, t)
			}
		}
		_, words := logInAgain(ts)
		parts = append(parts, kindLabel(k)+"s: "+words)
	}
	return "must users log in again, per kind: " + strings.Join(parts, ", ")
}

// kindsVerdict is the overall answer's sentence per kind, when a scenario
// followed a kind other than access tokens: the scenarios where that
// kind's old credentials were accepted afterwards, and where refused.
func kindsVerdict(rs []*results.Result) string {
	var any bool
	for _, r := range rs {
		_, other := kindsFollowed(r.Tokens)
		any = any || other
	}
	if !any {
		return ""
	}
	var parts []string
	for _, k := range results.TokenKinds() {
		// Each kind, over the scenarios that followed it.
		var accepted, refused []string
		for _, r := range rs {
			var ts []results.TokenFate
			for _, t := range r.Tokens {
				if kindOf(t) == k {
					ts = append(ts, t)
				}
			}
			switch v, _ := logInAgain(ts); v {
			case reloginNo:
				accepted = append(accepted, r.Name)
			case reloginYes:
				refused = append(refused, r.Name)
			}
		}
		var p []string
		if len(refused) > 0 {
			p = append(p, "refused afterwards in "+strings.Join(refused, ", ")+" (log in again)")
		}
		if len(accepted) > 0 {
			p = append(p, "accepted afterwards in "+strings.Join(accepted, ", ")+" (no need to log in again)")
		}
		if len(p) > 0 {
			parts = append(parts, "old "+kindLabel(k)+"s are "+strings.Join(p, " but "))
		}
	}
	return " Per kind: " + strings.Join(parts, "; ") + "."
}
