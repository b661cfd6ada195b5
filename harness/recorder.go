package harness

import (
	"sort"
	"sync"
	"time"

	"github.com/rehearse-dev/rehearse/results"
)

// recorder collects phases and samples on the monotonic clock; the timeline
// expresses them relative to the start of the operation.
type recorder struct {
	mu      sync.Mutex
	phases  []stamped[results.PhaseMark]
	samples []stamped[results.Sample]
}

type stamped[T any] struct {
	v          T
	sent, done time.Time
}

func newRecorder() *recorder { return &recorder{} }

// since is t on the timeline's clock (the operation starts at 0), for
// stamps taken after the operation started.
func (r *recorder) since(t time.Time) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.phases {
		if p.v.Phase == results.PhaseOperationStarted {
			return float64(t.Sub(p.sent).Microseconds()) / 1000
		}
	}
	return 0
}

func (r *recorder) phase(p results.Phase, note string, at time.Time) {
	r.commit(p, note, time.Time{}, at)
}

// commit marks phase p at at, a commit whose COMMIT was sent at sent (zero:
// not measured).
func (r *recorder) commit(p results.Phase, note string, sent, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.phases = append(r.phases, stamped[results.PhaseMark]{v: results.PhaseMark{Phase: p, Note: note}, sent: at, done: sent})
}

func (r *recorder) sample(s results.Sample, sent, done time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples = append(r.samples, stamped[results.Sample]{v: s, sent: sent, done: done})
}

func (r *recorder) timeline() results.Timeline {
	r.mu.Lock()
	defer r.mu.Unlock()
	var origin time.Time
	for _, p := range r.phases {
		if p.v.Phase == results.PhaseOperationStarted {
			origin = p.sent
		}
	}
	ms := func(t time.Time) float64 { return float64(t.Sub(origin).Microseconds()) / 1000 }
	t := results.Timeline{Start: origin}
	for _, p := range r.phases {
		m := p.v
		m.AtMS = ms(p.sent)
		if !p.done.IsZero() { // a phase's done holds its COMMIT's sending
			sent := ms(p.done)
			m.SentMS = &sent
		}
		t.Phases = append(t.Phases, m)
		if m.Phase == results.PhaseOperationFinished {
			t.EndMS = m.AtMS
		}
	}
	for _, s := range r.samples {
		smp := s.v
		smp.AtMS = ms(s.sent)
		smp.TookMS = float64(s.done.Sub(s.sent).Microseconds()) / 1000
		t.Samples = append(t.Samples, smp)
	}
	sort.SliceStable(t.Phases, func(i, j int) bool { return t.Phases[i].AtMS < t.Phases[j].AtMS })
	sort.SliceStable(t.Samples, func(i, j int) bool { return t.Samples[i].AtMS < t.Samples[j].AtMS })
	return t
}
