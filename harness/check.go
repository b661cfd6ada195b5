package harness

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// Check is one kind of expectation. Each kind is one type that registers
// itself with registerCheck, in the file of what it looks at:
// check_during.go (what the run's requests met), check_after.go (calls
// made after the operation) or check_database.go (the system's database);
// a kind that fits none takes a check_*.go of its own. It decodes from YAML
// through its struct fields, validates itself against the scenario, and
// judges itself from the plan and the measurements alone. Loader,
// evaluator, HTTP-target filtering and the JSON Schema iterate over the
// registry, so adding a kind touches one file.
type Check interface {
	// validate reports what the types cannot say: unknown names, ranges,
	// combinations the scenario rules out.
	validate(sc *scope)
	// judge decides the expectation from what was measured. It must not do
	// I/O: everything it needs is in m.
	judge(m *measured) results.Outcome
}

// Optional abilities of a check kind.
type (
	// databaseCheck is measured in the system's database; needsDatabase
	// says what needs it, for the error when there is no database.
	databaseCheck interface{ needsDatabase() string }
	// backupCheck compares with the backup the harness takes itself, so it
	// cannot be judged when another backup is uploaded.
	backupCheck interface{ backupRelative() bool }
	// loginsAfterCheck asks the runner to log in after the operation.
	loginsAfterCheck interface {
		loginsAfter(p *Plan) []results.LoginCheck
	}
	// defaultsCheck returns a copy with its defaults filled, for the plan.
	defaultsCheck interface{ withDefaults() Check }
)

// registerCheck adds kind K under name: the loader decodes into a new K.
// Each kind file calls it once: var _ = registerCheck[ExpectX]("x", "doc").
func registerCheck[K any, P interface {
	*K
	Check
}](name, doc string) bool {
	return checkKinds.add(name, doc, func() Check { return P(new(K)) })
}

// probeRef is embedded in a check about one probe of the scenario: the
// probe's name, and where the check was written.
type probeRef struct {
	located
	Probe string `yaml:"probe" json:"probe" required:"true"`
}

// scope is what a check validates against: the scenario and lookups of the
// names it may refer to.
type scope struct {
	s      *Scenario
	bad    func(Pos, string, ...any)
	users  func(p Pos, user string) // reports an unknown user
	probes map[string]*Probe
}

func (sc *scope) token(p Pos, name string) {
	if _, ok := sc.s.Tokens[name]; !ok {
		sc.bad(p, "unknown token %q; define it under tokens: (known: %s)", name, strings.Join(sortedKeys(sc.s.Tokens), ", "))
	}
}

// refreshToken checks a token whose refresh token is used: it must be
// obtained by logging in.
func (sc *scope) refreshToken(p Pos, name string) {
	sc.token(p, name)
	if t, ok := sc.s.Tokens[name]; ok && t.Mint {
		sc.bad(p, "token %q is minted, so it has no refresh token; obtain it by logging in (remove mint: true)", name)
	} else if ok && t.Kind != "" && t.Kind != KindJWT {
		sc.bad(p, "token %q is of kind %s, which has no refresh token; refresh works on jwt tokens", name, t.Kind)
	}
}

func (sc *scope) probe(p Pos, name string) {
	if sc.probes[name] == nil {
		sc.bad(p, "unknown probe %q (known: %s)", name, strings.Join(sortedKeys(sc.probes), ", "))
	}
}

func (sc *scope) status(p Pos, status int) {
	if status < 100 || status > 599 {
		sc.bad(p, "status must be an HTTP status code such as 200 or 401, got %d", status)
	}
}

func (sc *scope) password(p Pos, kind string) {
	switch kind {
	case "", string(results.PasswordOriginal), string(results.PasswordDefault):
	default:
		sc.bad(p, "password must be \"original\" (the fixture's) or \"default\" (the reinit's test123), got %q", kind)
	}
}

// atomicCall reports whether the scenario's API call runs the atomic
// strategy, which has no window.
func (sc *scope) atomicCall() bool {
	return sc.s.Strategy == string(results.Atomic) && sc.s.Operation.RestoreFromFile != nil
}

// passwordKind is kind with its default.
func passwordKind(kind string) results.PasswordKind {
	if kind == "" {
		return results.PasswordOriginal
	}
	return results.PasswordKind(kind)
}

// measured is what checks are judged on: the plan and the measurements
// (timeline, probe summaries, token fates, invariants, facts).
type measured struct {
	plan *Plan
	res  *results.Result
}

func (m *measured) probe(name string) results.ProbeSummary {
	ps, _ := m.res.Probe(name)
	return ps
}

func (m *measured) window() bool { return m.res.Facts.Window == results.WindowObserved }

// Judge decides every check of the plan from the measurements in res, in
// the plan's order, after the implicit check of the API call. It is a pure
// function: no database, no HTTP.
func Judge(p *Plan, res *results.Result) []results.Outcome {
	m := &measured{plan: p, res: res}
	var out []results.Outcome
	if c := p.Call; c != nil {
		// The call itself must succeed, or every other verdict is moot.
		f := res.Facts
		o := results.Outcome{Pos: c.Pos, Kind: "operation", Subject: "restore_from_file response", Expected: "200", Measured: fmt.Sprint(f.OperationStatus), Pass: f.OperationStatus == 200}
		if !o.Pass {
			o.Measured += ": " + f.OperationBody
		}
		out = append(out, o)
	}
	for _, pc := range p.Checks {
		o := pc.Check.judge(m)
		o.Pos, o.Kind = pc.Pos, pc.Kind
		out = append(out, o)
	}
	return out
}
