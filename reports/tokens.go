package reports

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// What became of the seeded tokens, in words. A token accepted after the
// operation "works again" only if its user was deleted in the window and
// came back; one whose user was there throughout "kept working", a
// different finding (the admin the reinit keeps); one whose user nobody
// looked for says so.

// tokenNames names tokens and tells whether there is one: "old token a",
// "old tokens a, b".
func tokenNames(ts []results.TokenFate) (string, bool) {
	return pick(len(ts) == 1, "old token ", "old tokens ") + names(ts), len(ts) == 1
}

// names lists the tokens' names: "a, b".
func names(ts []results.TokenFate) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Name
	}
	return strings.Join(out, ", ")
}

// pick chooses the singular or the plural form.
func pick(one bool, singular, plural string) string {
	if one {
		return singular
	}
	return plural
}

// refused4xx reports whether a token got a 4xx answer: refused, not failed.
func refused4xx(status int) bool { return status >= 400 && status < 500 }

// tokenAnswer is the answer's clauses about the old access tokens.
func (m measures) tokenAnswer() []string {
	if len(m.r.Tokens) == 0 {
		return nil
	}
	var out []string
	if n, one := tokenNames(m.worksAgain); len(m.worksAgain) > 0 {
		out = append(out, n+pick(one, " works again afterwards (its user was deleted in the window and came back: no need to log in again)",
			" work again afterwards (their users were deleted in the window and came back: no need to log in again)"))
	}
	if n, one := tokenNames(m.evenDeleted); len(m.evenDeleted) > 0 {
		out = append(out, n+pick(one, " kept working throughout, even in the window while its user did not exist (no need to log in again)",
			" kept working throughout, even in the window while their users did not exist (no need to log in again)"))
	}
	if len(m.impostors) > 0 {
		out = append(out, "worse, an old token authenticated as another user")
	}
	if n, one := tokenNames(m.keptWorking); len(m.keptWorking) > 0 {
		out = append(out, n+pick(one, " kept working (its user was never deleted)", " kept working (their users were never deleted)"))
	}
	if n, one := tokenNames(m.workedUnseen); len(m.workedUnseen) > 0 {
		out = append(out, n+pick(one, " worked after the operation; whether its user was deleted in between was not observed",
			" worked after the operation; whether their users were deleted in between was not observed"))
	}
	var refused, other []results.TokenFate
	for _, t := range m.r.Tokens {
		switch {
		case refused4xx(t.After):
			refused = append(refused, t)
		case t.After != 200:
			other = append(other, t)
		}
	}
	switch n, one := tokenNames(refused); {
	case len(refused) == len(m.r.Tokens):
		out = append(out, "every old token is refused afterwards, so users must log in again")
	case len(refused) > 0:
		out = append(out, n+pick(one, " is refused afterwards, so its user must log in again", " are refused afterwards, so their users must log in again"))
	}
	for _, t := range other {
		out = append(out, fmt.Sprintf("old token %s got %s afterwards", t.Name, status(t.After)))
	}
	return out
}

// refreshAnswer is the answer's clause about the old refresh tokens, when
// any was followed.
func (m measures) refreshAnswer() string {
	if len(m.refreshAlive) == 0 {
		if len(m.refreshDead) == 0 {
			return ""
		}
		return "no old refresh token is accepted afterwards"
	}
	one := len(m.refreshAlive) == 1
	s := pick(one, "the refresh token of ", "the refresh tokens of ") + names(m.refreshAlive) + pick(one, " still mints", " still mint") + " access tokens afterwards"
	var evenDeleted []results.TokenFate
	for _, t := range m.refreshAlive {
		if t.UserInWindow == results.UserDeleted && slices.Contains(t.Refresh.During, 200) {
			evenDeleted = append(evenDeleted, t)
		}
	}
	if len(evenDeleted) > 0 {
		one := len(evenDeleted) == 1
		s += fmt.Sprintf(" (%s: accepted in the window, while %s did not exist)", names(evenDeleted), pick(one, "its user", "their users"))
	}
	return s
}

// acceptedEvidence lists the tokens accepted after the operation, each with
// what that means.
func (m measures) acceptedEvidence(f fmtr) string {
	var parts []string
	for _, t := range m.r.Tokens {
		if t.After != 200 {
			continue
		}
		s := fmt.Sprintf("%s (%s, %s) is accepted after the restore", t.Name, t.User, f.fingerprint(t.Fingerprint))
		if t.AfterAs != "" {
			s += " as " + t.AfterAs
		}
		parts = append(parts, s+" (200): "+tokenFateWords(t))
	}
	for _, t := range m.refreshAlive {
		parts = append(parts, fmt.Sprintf("the refresh token of %s (%s, %s) is accepted after the restore (200): %s",
			t.Name, t.User, f.fingerprint(t.Refresh.Fingerprint), refreshFateWords(t)))
	}
	return strings.Join(parts, "; ")
}

// tokenFateWords says what an access token's statuses mean.
func tokenFateWords(t results.TokenFate) string {
	switch {
	case t.After != 200 && refused4xx(t.After):
		return "refused after the operation"
	case t.After != 200:
		return "got " + status(t.After) + " after the operation"
	case t.AfterAs != "" && t.AfterAs != t.User:
		return "authenticates as another user, " + t.AfterAs
	case t.UserInWindow == results.UserDeleted && acceptedThroughout(t):
		return "kept working throughout, even in the window while its user did not exist"
	case t.UserInWindow == results.UserDeleted:
		return "the old token works again: its user was deleted in the window and came back"
	case t.UserInWindow == results.UserPresent:
		return "kept working: its user was never deleted"
	}
	return "works after the operation; whether its user was deleted in between was not observed"
}

// acceptedThroughout reports whether a token was accepted by every profile
// sample in the window (and at least one was taken there).
func acceptedThroughout(t results.TokenFate) bool {
	return len(t.During) > 0 && !slices.ContainsFunc(t.During, func(s int) bool { return s != 200 })
}

// refreshFateWords says what a refresh token's statuses mean.
func refreshFateWords(t results.TokenFate) string {
	rf := t.Refresh
	switch {
	case rf == nil:
		return "no refresh token: not measured"
	case rf.After == 200 && t.UserInWindow == results.UserDeleted && slices.Contains(rf.During, 200):
		return "still refreshes, and did even while its user did not exist"
	case rf.After == 200:
		return "still refreshes after the operation"
	case refused4xx(rf.After):
		return "refused after the operation"
	}
	return "got " + status(rf.After) + " after the operation"
}
