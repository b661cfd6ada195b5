package harness_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/results"
)

// Each token kind's shipped scenario passes on the mode it describes, and
// the same scenario on the opposite mode fails at the very expectations
// that the mode decides, each named by its file:line:col.
func TestTokenKindsOppositeModeFails(t *testing.T) {
	no := false
	cases := []struct {
		file     string
		opposite func(*harness.EmbeddedAuth)
		failing  []int  // indexes in expect: that the opposite mode fails
		measured string // what the profile expectation (the last) measured
	}{
		{"tokens-session.yaml", func(a *harness.EmbeddedAuth) { a.Sessions = "flush" }, []int{0, 1}, "401"},
		{"tokens-drf.yaml", func(a *harness.EmbeddedAuth) { a.DRFTokensInBackup = &no }, []int{0, 1}, "401"},
		{"tokens-stateless.yaml", func(a *harness.EmbeddedAuth) { a.JWT = "stateful" }, []int{0, 1}, "401"},
	}
	runner := &harness.Runner{Provider: sharedProvider(t)}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			t.Parallel()
			load := func() *harness.Scenario {
				s, err := harness.LoadFile("../scenarios/kinds/" + c.file)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			if res := runner.Run(context.Background(), load()); res.Status != results.Passed {
				t.Fatalf("as shipped: %s %s %+v", res.Status, res.Error, res.Expectations)
			}
			s := load()
			c.opposite(s.Auth)
			res := runner.Run(context.Background(), s)
			if res.Status != results.Failed {
				t.Fatalf("on the opposite mode: %s %s, want failed", res.Status, res.Error)
			}
			var failed []harness.Pos
			for _, o := range res.Expectations {
				if !o.Pass {
					failed = append(failed, o.Pos)
					msg := harness.FormatFailure(o)
					if !strings.Contains(msg, o.Pos.String()) {
						t.Errorf("failure message does not say where: %s", msg)
					}
					t.Logf("caught as expected:\n%s", msg)
				}
			}
			var want []harness.Pos
			for _, i := range c.failing {
				want = append(want, s.Expect[i].Pos)
			}
			if len(failed) != len(want) {
				t.Fatalf("failed at %v, want %v", failed, want)
			}
			for i := range want {
				if failed[i] != want[i] {
					t.Errorf("failed at %v, want %v", failed[i], want[i])
				}
			}
			for _, o := range res.Expectations {
				if !o.Pass && o.Pos == want[len(want)-1] && !strings.Contains(o.Measured, c.measured) {
					t.Errorf("measured %q, want %q in it", o.Measured, c.measured)
				}
			}
			for _, tf := range res.Tokens {
				if tf.Kind == "" {
					t.Errorf("token %s: no kind in the results", tf.Name)
				}
			}
		})
	}
}

// Kinds are checked where they are written.
func TestTokenKindsBadInput(t *testing.T) {
	base := "operation: {restore_from_file: {}}\nexpect: [{admin_id: {unchanged: true}}]\n"
	for _, c := range []struct{ yaml, want string }{
		{"tokens: {s: {user: author01, kind: session, mint: true}}\n", "t.yaml:1:13: token \"s\": a session cannot be minted"},
		{"tokens: {s: {user: author01, kind: cookie}}\n", "t.yaml:1:13: unknown token kind \"cookie\""},
		{"tokens: {s: {user: author01, kind: session}}\nprobes: [{name: r, refresh: s}]\n", "is of kind session, which has no refresh token"},
		{"target: http\nhttp: {base_url: 'http://127.0.0.1:1'}\nauth: {sessions: flush}\n", "t.yaml:3:7: auth: chooses how the embedded system behaves"},
		{"auth: {sessions: sometimes}\n", "t.yaml:1:7: unknown auth.sessions \"sometimes\""},
	} {
		_, err := harness.Parse("t.yaml", []byte(c.yaml+base))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.want)
		}
	}
}
