package harness

import "time"

// ResultsVersion is the version of the JSON results format. Bump it when a
// field changes meaning or goes away.
const ResultsVersion = 1

// Status of a scenario run.
const (
	Passed  = "passed"
	Failed  = "failed" // an expectation failed: the system behaved wrongly
	Errored = "error"  // the harness could not run the scenario
)

// RunFile is the JSON that `rehearse run --out` writes: versioned, and the
// only input of reports.
type RunFile struct {
	Version  int           `json:"version"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Results  []*Result     `json:"results"`
}

// Counts tallies the results by status.
func (rf *RunFile) Counts() (passed, failed, errored int) {
	for _, r := range rf.Results {
		switch r.Status {
		case Passed:
			passed++
		case Failed:
			failed++
		default:
			errored++
		}
	}
	return passed, failed, errored
}

// Result is everything measured in one scenario run; reports are made from it.
type Result struct {
	Name        string        `json:"name"`
	File        string        `json:"file"`
	Description string        `json:"description,omitempty"`
	Fixture     string        `json:"fixture"`
	Target      string        `json:"target"`
	Provider    string        `json:"provider,omitempty"` // where the database lived: local, container, dsn (embedded target)
	Strategy    string        `json:"strategy"`
	Operation   string        `json:"operation"` // "restore_from_file" or "manual"
	Defects     []string      `json:"defects,omitempty"`
	Status      string        `json:"status"`
	Error       string        `json:"error,omitempty"`
	Setup       time.Duration `json:"setup_ns"`
	Duration    time.Duration `json:"duration_ns"`

	Expectations []Outcome        `json:"expectations"`
	Timeline     Timeline         `json:"timeline"`
	Probes       []ProbeSummary   `json:"probes"`
	Tokens       []TokenFate      `json:"tokens"`
	Invariants   []InvariantCheck `json:"invariants"`
	Facts        Facts            `json:"facts"`
}

// Outcome is the verdict on one expectation.
type Outcome struct {
	Pos      Pos    `json:"pos"`
	Kind     string `json:"kind"`
	Subject  string `json:"subject"`
	Pass     bool   `json:"pass"`
	Expected string `json:"expected"`
	Measured string `json:"measured"`
	// Excerpt is the part of the timeline that explains the verdict.
	Excerpt string `json:"excerpt,omitempty"`
}

// Timeline holds what happened when, in milliseconds relative to the start
// of the operation (monotonic clock).
type Timeline struct {
	Start   time.Time   `json:"start"`
	EndMS   float64     `json:"end_ms"`
	Phases  []PhaseMark `json:"phases"`
	Samples []Sample    `json:"samples"`
}

// PhaseMark is a phase of the operation.
type PhaseMark struct {
	Name string  `json:"name"`
	AtMS float64 `json:"at_ms"`
}

// Sample is one probe request.
type Sample struct {
	Probe  string  `json:"probe"`
	AtMS   float64 `json:"at_ms"`   // when the request was sent
	TookMS float64 `json:"took_ms"` // how long it took
	Status int     `json:"status"`  // 0 = no response
	OK     bool    `json:"ok"`
	Detail string  `json:"detail,omitempty"` // e.g. "id=6 username=mallory", or an error
}

// Window is one stretch in which a probe failed.
type Window struct {
	StartMS  float64 `json:"start_ms"`
	EndMS    float64 `json:"end_ms"`
	LengthMS float64 `json:"length_ms"`
	Failures int     `json:"failures"`
	Statuses []int   `json:"statuses"`
	// Open: the probe never succeeded again while it was watched, so the
	// outage lasted at least LengthMS, and how much longer is unknown.
	Open bool `json:"open,omitempty"`
}

// ProbeSummary condenses a probe's samples taken during the operation.
type ProbeSummary struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`   // "login" or "profile"
	Target      string   `json:"target"` // user or token name (never a secret)
	Password    string   `json:"password,omitempty"`
	IntervalMS  float64  `json:"interval_ms"`
	Samples     int      `json:"samples"`
	Failures    int      `json:"failures"`
	Windows     []Window `json:"windows"`
	LongestMS   float64  `json:"longest_ms"`
	InWindowOK  int      `json:"in_window_ok"`  // successes between reinit and restore commits
	InWindowBad int      `json:"in_window_bad"` // failures between reinit and restore commits
}

// TokenFate follows one token seeded before the operation.
type TokenFate struct {
	Name        string `json:"name"`
	User        string `json:"user"`
	Fingerprint string `json:"fingerprint"`
	Before      int    `json:"before"`
	During      []int  `json:"during,omitempty"` // distinct statuses seen by profile probes in the window
	After       int    `json:"after"`
	AfterAs     string `json:"after_as,omitempty"` // whom it authenticated as after, when 200
}

// InvariantCheck is a database invariant measured after the operation.
type InvariantCheck struct {
	Name     string `json:"name"`
	OK       bool   `json:"ok"`
	Evidence string `json:"evidence"`
}

// Facts are measurements the seed's claims are judged on.
type Facts struct {
	AdminIDBefore      int64    `json:"admin_id_before"`
	AdminIDAfterReinit int64    `json:"admin_id_after_reinit"`
	AdminIDAfter       int64    `json:"admin_id_after"`
	UsersBefore        int      `json:"users_before"`
	UsersInWindow      int      `json:"users_in_window"` // -1 when there was no window to look into
	OperationStatus    int      `json:"operation_status,omitempty"`
	OperationBody      string   `json:"operation_body,omitempty"`
	PKReuse            []string `json:"pk_reuse,omitempty"`
	WindowMS           float64  `json:"window_ms"` // reinit committed → restore committed
}
