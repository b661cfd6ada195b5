package harness

import (
	"context"

	"github.com/rehearse-dev/rehearse/results"
)

// ProbeKind is one kind of probe: what it requests and when that counts as
// a success. Each kind is one type in a file of its own (probe_*.go) that
// registers itself with registerProbe.
type ProbeKind interface {
	validate(sc *scope)
	// describe says what the probe does, for the results.
	describe() (kind results.ProbeKind, target string, password results.PasswordKind)
	// sample makes one request.
	sample(ctx context.Context, ru *run) results.Sample
}

// registerProbe adds probe kind K under name, as registerCheck does.
func registerProbe[K any, P interface {
	*K
	ProbeKind
}](name, doc string) bool {
	return probeKinds.add(name, doc, func() ProbeKind { return P(new(K)) })
}

// sampleOf turns a reply into a sample: ok on 200, the detail for people.
func sampleOf(rep reply) results.Sample {
	s := results.Sample{Status: rep.Status, OK: rep.Status == 200}
	switch {
	case rep.Err != nil:
		s.Detail = rep.Err.Error()
	case rep.Status != 200:
		s.Detail = rep.field("detail")
		if s.Detail == "" && rep.Status >= 500 {
			s.Detail = rep.Line
		}
	}
	return s
}
