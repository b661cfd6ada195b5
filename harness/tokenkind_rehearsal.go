package harness

// kindsOfTarget adds to the built-in rehearsal a token of each other kind
// the target file declares (session_login:, drf_token:), followed like the
// access tokens: a probe in the window and the expectation that the old
// credential is refused afterwards, placed at the key that asked for it.
func kindsOfTarget(s *Scenario, tf *TargetFile) {
	for _, k := range []struct{ key, kind, name string }{
		{"session_login", KindSession, "author-session"},
		{"drf_token", KindDRFToken, "author-drf-token"},
	} {
		p, declared := tf.Keys[k.key]
		if !declared {
			continue
		}
		if s.Tokens == nil {
			s.Tokens = map[string]TokenSpec{}
		}
		s.Tokens[k.name] = TokenSpec{located: located{p}, User: "author01", Kind: k.kind}
		s.Probes = append(s.Probes, Probe{located: located{p}, Name: k.name, Kind: &ProfileProbe{located: located{p}, Token: k.name}})
		s.Expect = append(s.Expect, Expectation{located: located{p}, Check: &ExpectProfile{located: located{p}, Token: k.name, Status: 401}})
	}
}
