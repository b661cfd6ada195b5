package reports

import (
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/results"
)

// The answer says per kind whether users must log in again, from the
// statuses measured after the operation, and nothing of a kind not followed.
func TestKindAnswer(t *testing.T) {
	r := &results.Result{Name: "s", Tokens: []results.TokenFate{
		{Name: "a", Kind: results.TokenJWT, After: 401},
		{Name: "c", Kind: results.TokenSession, After: 200},
		{Name: "d", Kind: results.TokenDRF, After: 500},
	}}
	got := kindAnswer(r)
	for _, want := range []string{"access tokens: yes (a refused afterwards)", "session cookies: no (c accepted afterwards)", "DRF tokens: not measured (d got"} {
		if !strings.Contains(got, want) {
			t.Errorf("kindAnswer = %q, lacks %q", got, want)
		}
	}
	r.Tokens = r.Tokens[:2]
	if got := kindAnswer(r); strings.Contains(got, "DRF") {
		t.Errorf("kindAnswer speaks of a kind not followed: %q", got)
	}
	r.Tokens = []results.TokenFate{{Name: "a", After: 401}} // an old file: no kinds
	if got := kindAnswer(r); got != "" {
		t.Errorf("kindAnswer for access tokens only = %q, want none (the token answer says it)", got)
	}
	m := measure(&results.Result{Tokens: []results.TokenFate{{Name: "j", User: "u", After: 200, During: []int{200}, UserInWindow: results.UserDeleted}}})
	if got := strings.Join(m.tokenAnswer(), "; "); !strings.Contains(got, "old token j kept working throughout, even in the window while its user did not exist") {
		t.Errorf("a token accepted while its user did not exist: %q", got)
	}
	v := kindsVerdict([]*results.Result{
		{Name: "x", Tokens: []results.TokenFate{{Name: "s", Kind: results.TokenSession, After: 401}}},
		{Name: "y", Tokens: []results.TokenFate{{Name: "s", Kind: results.TokenSession, After: 200}}},
	})
	if want := "old session cookies are refused afterwards in x (log in again) but accepted afterwards in y (no need to log in again)"; !strings.Contains(v, want) || strings.Contains(v, "access") {
		t.Errorf("kindsVerdict = %q, want %q and nothing of access tokens", v, want)
	}
}
