// Package results is the typed record of a run: what the harness measured,
// and the only input of reports. It imports nothing but the standard library,
// so a report can be rendered, and tested, without PostgreSQL, HTTP or Docker.
//
// Every verdict a report states is decided from the typed fields here (kinds,
// statuses, ids, numbers). Text fields (Subject, Expected, Measured, Excerpt,
// Evidence, Detail, Note) are for people; no code decides anything by reading
// them.
package results

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Version is the version of the JSON results format. Bump it when a field
// changes meaning or goes away. Version 2 made phases, kinds and facts typed.
const Version = 2

// Status of a scenario run.
type Status string

const (
	Passed  Status = "passed"
	Failed  Status = "failed" // an expectation failed: the system behaved wrongly
	Errored Status = "error"  // the harness could not run the scenario
)

// Valid reports whether s is one of the three statuses.
func (s Status) Valid() bool { return s == Passed || s == Failed || s == Errored }

// Strategy is how the restore engine ran, as configured or as observed.
type Strategy string

const (
	TwoPhase Strategy = "two-phase" // the reinit commits, then the restore: a window in between
	Atomic   Strategy = "atomic"    // reinit and restore commit in one transaction
	// StrategyNotObserved: a running system's engine, which nobody could see.
	StrategyNotObserved Strategy = "not observed"
)

// Operation is what the scenario ran.
type Operation string

const (
	RestoreFromFile Operation = "restore_from_file" // the API call
	Manual          Operation = "manual"            // create_backup, system_reinit, restore_backup
)

// Pos is where something was written in a scenario file.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
	Col  int    `json:"col"`
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// RunFile is the JSON that `rehearse run` writes: versioned, and the only
// input of reports.
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

// Result is everything measured in one scenario run.
type Result struct {
	Name        string `json:"name"`
	File        string `json:"file"`
	Description string `json:"description,omitempty"`
	Fixture     string `json:"fixture"`
	Target      string `json:"target"`
	// Provider says where the embedded target's database lived: local,
	// container or dsn.
	Provider  string    `json:"provider,omitempty"`
	Strategy  Strategy  `json:"strategy"`
	Operation Operation `json:"operation"`
	Defects   []string  `json:"defects,omitempty"`
	// AccountsFrom says whose accounts the scenario logged in as: "fixture
	// edms-small", "users: of FILE", or accounts rehearse created.
	AccountsFrom string `json:"accounts_from,omitempty"`
	// Accounts says, typed, where the accounts came from, how many there
	// were and, for accounts rehearse created, whether they were removed.
	Accounts *AccountsFacts `json:"accounts,omitempty"`
	// Backup describes the backup the operation restored, when rehearse
	// took it (the real size of the data).
	Backup   *BackupFacts  `json:"backup,omitempty"`
	Status   Status        `json:"status"`
	Error    string        `json:"error,omitempty"`
	Setup    time.Duration `json:"setup_ns"`
	Duration time.Duration `json:"duration_ns"`

	Expectations []Outcome        `json:"expectations"`
	Timeline     Timeline         `json:"timeline"`
	Probes       []ProbeSummary   `json:"probes"`
	Tokens       []TokenFate      `json:"tokens"`
	Invariants   []InvariantCheck `json:"invariants"`
	Facts        Facts            `json:"facts"`

	// Secrets are the plain passwords the run used (the fixture's users',
	// a target file's accounts), so that reports can replace them with
	// fingerprints wherever a message quotes one. Never written to a file.
	Secrets []string `json:"-"`
}

// Outcome is the verdict on one expectation.
type Outcome struct {
	Pos Pos `json:"pos"`
	// Kind is the check kind, as the scenario names it (profile, login,
	// window, ...; "operation" for the implicit check of the API call).
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

// Phase is a kind of moment on the timeline.
type Phase string

const (
	PhaseOperationStarted  Phase = "operation_started"
	PhaseOperationFinished Phase = "operation_finished"
	PhaseValidated         Phase = "validated"         // the backup was read and checked in full
	PhaseReinitCommitted   Phase = "reinit_committed"  // the reinit's transaction committed on its own
	PhaseRestoreCommitted  Phase = "restore_committed" // the restore's transaction committed
	// PhaseCommittedTogether: reinit and restore committed in one transaction.
	PhaseCommittedTogether Phase = "committed_together"
	PhaseCallReceived      Phase = "call_received" // the system accepted the API call's credentials
	PhaseResponseSent      Phase = "response_sent" // the system answered the API call
	// PhaseRestoreNotObserved: the watcher never saw the restore commit.
	PhaseRestoreNotObserved Phase = "restore_not_observed"
	PhaseWindowAction       Phase = "window_action" // one of the scenario's during: actions
	PhaseWatcher            Phase = "watcher"       // how the running system's database was watched
)

var phaseLabels = map[Phase]string{
	PhaseOperationStarted:   "operation started",
	PhaseOperationFinished:  "operation finished",
	PhaseValidated:          "validated",
	PhaseReinitCommitted:    "reinit committed",
	PhaseRestoreCommitted:   "restore committed",
	PhaseCommittedTogether:  "reinit and restore committed in one transaction",
	PhaseCallReceived:       "call received",
	PhaseResponseSent:       "response sent",
	PhaseRestoreNotObserved: "restore commit not observed by the watcher",
	PhaseWindowAction:       "action",
	PhaseWatcher:            "watcher",
}

// Valid reports whether p is a known phase.
func (p Phase) Valid() bool { _, ok := phaseLabels[p]; return ok }

// Label is the phase in words.
func (p Phase) Label() string {
	if l, ok := phaseLabels[p]; ok {
		return l
	}
	return string(p)
}

// PhaseMark is a moment of the operation.
type PhaseMark struct {
	Phase Phase   `json:"phase"`
	AtMS  float64 `json:"at_ms"`
	// SentMS, for a commit the engine made, is when its COMMIT was sent:
	// the commit became visible between SentMS and AtMS (its answer can be
	// late on a busy machine). Absent when not measured.
	SentMS *float64 `json:"sent_ms,omitempty"`
	// Note says more, for people: which action, why the watcher polls.
	Note string `json:"note,omitempty"`
}

// Text is the mark in words.
func (m PhaseMark) Text() string {
	if m.Note == "" {
		return m.Phase.Label()
	}
	if m.Phase == PhaseWindowAction {
		return m.Note
	}
	return m.Phase.Label() + ": " + m.Note
}

// ProbeKind is what a probe requests.
type ProbeKind string

const (
	ProbeLogin   ProbeKind = "login"   // log in as a user
	ProbeProfile ProbeKind = "profile" // call profile with a token
	ProbeRefresh ProbeKind = "refresh" // exchange a token's refresh token for a new access token
)

// PasswordKind says which password a login uses.
type PasswordKind string

const (
	PasswordOriginal PasswordKind = "original" // the user's own, as in the backup
	PasswordDefault  PasswordKind = "default"  // the reinit's default admin password
)

// Sample is one probe request.
type Sample struct {
	Probe  string  `json:"probe"`
	AtMS   float64 `json:"at_ms"`   // when the request was sent
	TookMS float64 `json:"took_ms"` // how long it took
	Status int     `json:"status"`  // 0 = no response
	OK     bool    `json:"ok"`
	// AuthAs is the username a profile call authenticated as (status 200).
	AuthAs string `json:"auth_as,omitempty"`
	// Detail is the response's detail or the request's error, for people.
	Detail string `json:"detail,omitempty"`
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
	Name       string       `json:"name"`
	Kind       ProbeKind    `json:"kind"`
	Target     string       `json:"target"` // user or token name (never a secret)
	Password   PasswordKind `json:"password,omitempty"`
	IntervalMS float64      `json:"interval_ms"`
	Samples    int          `json:"samples"`
	Failures   int          `json:"failures"`
	Windows    []Window     `json:"windows"`
	LongestMS  float64      `json:"longest_ms"`
	// InWindowOK and InWindowBad count the samples sent after the reinit
	// committed and answered before the restore committed; Straddling, those
	// sent before a commit and answered after it, which show neither state.
	InWindowOK  int `json:"in_window_ok"`
	InWindowBad int `json:"in_window_bad"`
	Straddling  int `json:"straddling,omitempty"`
	// MedianMS and MaxMS are how long one request took: the probe's
	// resolution. A window shorter than a request can go unseen.
	MedianMS float64 `json:"median_ms"`
	MaxMS    float64 `json:"max_ms"`
	// Latency of the requests sent before, during and after the operation:
	// a login that waits seconds for a lock is an outage to a user though
	// it answers 200.
	LatencyBefore Latency `json:"latency_before"`
	LatencyDuring Latency `json:"latency_during"`
	LatencyAfter  Latency `json:"latency_after"`
}

// Latency condenses how long requests took (nearest-rank percentiles).
type Latency struct {
	Samples  int     `json:"samples"`
	MedianMS float64 `json:"median_ms"`
	P99MS    float64 `json:"p99_ms"`
	MaxMS    float64 `json:"max_ms"`
}

// LatencyOf condenses request times in milliseconds.
func LatencyOf(took []float64) Latency {
	if len(took) == 0 {
		return Latency{}
	}
	s := append([]float64(nil), took...)
	sort.Float64s(s)
	rank := func(p float64) float64 { return s[max(0, int(math.Ceil(p*float64(len(s))))-1)] }
	return Latency{Samples: len(s), MedianMS: rank(0.5), P99MS: rank(0.99), MaxMS: s[len(s)-1]}
}

// Sampled reports whether any sample of the probe fell wholly inside the
// window between the reinit and restore commits.
func (p ProbeSummary) Sampled() bool { return p.InWindowOK+p.InWindowBad > 0 }

// Open reports whether the probe was still failing when sampling stopped.
func (p ProbeSummary) Open() bool {
	for _, w := range p.Windows {
		if w.Open {
			return true
		}
	}
	return false
}

// Longest is the probe's longest failing stretch (zero when none failed).
func (p ProbeSummary) Longest() Window {
	var best Window
	for _, w := range p.Windows {
		if w.LengthMS >= best.LengthMS {
			best = w
		}
	}
	return best
}

// TokenKind is how a credential is sent: a simplejwt access token
// (Authorization: Bearer), a Django session cookie, or a DRF token
// (Authorization: Token).
type TokenKind string

// Token kinds.
const (
	TokenJWT     TokenKind = "jwt"
	TokenSession TokenKind = "session"
	TokenDRF     TokenKind = "drf_token"
)

// TokenFate follows one token seeded before the operation.
type TokenFate struct {
	Name string `json:"name"`
	// Kind is the token's kind; "" in results written before kinds were
	// measured means a simplejwt access token.
	Kind        TokenKind `json:"kind,omitempty"`
	User        string    `json:"user"`
	Fingerprint string    `json:"fingerprint"`
	Before      int       `json:"before"`
	During      []int     `json:"during,omitempty"` // distinct statuses seen by profile probes in the window
	After       int       `json:"after"`
	AfterAs     string    `json:"after_as,omitempty"` // whom it authenticated as after, when 200
	// UserInWindow says whether the token's user existed between the reinit
	// and restore commits: "present", "deleted", or "" when not observed.
	// A token that works after the operation "works again" only if its user
	// was deleted; if the user was present throughout, it "kept working".
	UserInWindow UserPresence `json:"user_in_window,omitempty"`
	// Refresh is the fate of the refresh token obtained with it; nil when
	// there is none (a minted token, or a login response without one).
	Refresh *RefreshFate `json:"refresh,omitempty"`
}

// RefreshFate follows a token's refresh token: POST to the refresh
// endpoint, ok on 200.
type RefreshFate struct {
	Fingerprint string `json:"fingerprint"`
	Before      int    `json:"before"`
	During      []int  `json:"during,omitempty"` // distinct statuses seen by refresh probes in the window
	After       int    `json:"after"`
}

// BackupFacts is what the backup held and what it left out.
type BackupFacts struct {
	Objects int `json:"objects"`
	Models  int `json:"models"`
	// PerModel is the size of each model in the backup, by label.
	PerModel []ModelRows `json:"per_model,omitempty"`
	// LeftOut are the tables not written, each with why.
	LeftOut []LeftOut `json:"left_out,omitempty"`
}

// AccountsSource is where the accounts a scenario logged in as came from.
type AccountsSource string

const (
	AccountsFixture  AccountsSource = "fixture"  // the users of a fixture
	AccountsScenario AccountsSource = "scenario" // the scenario's users:
	AccountsCreated  AccountsSource = "created"  // created by rehearse in the target's database
)

// AccountsFacts are the accounts of a run.
type AccountsFacts struct {
	Source AccountsSource `json:"source"`
	// Fixture (source fixture) or File (source scenario) names them.
	Fixture string `json:"fixture,omitempty"`
	File    string `json:"file,omitempty"`
	Count   int    `json:"count"`
	// Names of the accounts created (their passwords are never written).
	Created []string `json:"created,omitempty"`
	// Staff is the created account that made the restore call, if any.
	Staff string `json:"staff,omitempty"`
	// Removal is what removing the created accounts did at the end; nil
	// when it was not attempted.
	Removal *AccountsRemoval `json:"removal,omitempty"`
}

// AccountsRemoval is the removal of the accounts rehearse created.
type AccountsRemoval struct {
	// Removed is how many of them were found and deleted.
	Removed int `json:"removed"`
	// Deleted and Nulled are the rows of other tables that referred to
	// them: deleted with them, or their reference set to NULL.
	Deleted []TableRows `json:"deleted,omitempty"`
	Nulled  []TableRows `json:"nulled,omitempty"`
	// Error says why they could not be removed ("" when they were).
	Error string `json:"error,omitempty"`
}

// ModelRows is the number of objects of one model in a backup.
type ModelRows struct {
	Model string `json:"model"`
	Rows  int    `json:"rows"`
}

// TableRows is a number of rows of a table.
type TableRows struct {
	Table string `json:"table"`
	Rows  int64  `json:"rows"`
}

// LeftOut is a table the backup did not write.
type LeftOut struct {
	Table  string `json:"table,omitempty"`
	Model  string `json:"model,omitempty"`
	Reason string `json:"reason"` // the engine's reason code
	Detail string `json:"detail,omitempty"`
}

// UserPresence is whether a user existed at some moment.
type UserPresence string

const (
	UserPresent UserPresence = "present"
	UserDeleted UserPresence = "deleted"
)

// Invariant names a database invariant.
type Invariant string

const (
	ForeignKeys       Invariant = "foreign_keys"
	Sequences         Invariant = "sequences"
	IDsUnchanged      Invariant = "ids_unchanged"
	CountsMatchBackup Invariant = "counts_match_backup"
	HashesMatchBackup Invariant = "hashes_match_backup"
)

// Invariants lists every invariant, in the order they are checked.
func Invariants() []Invariant {
	return []Invariant{ForeignKeys, Sequences, IDsUnchanged, CountsMatchBackup, HashesMatchBackup}
}

// InvariantCheck is a database invariant measured after the operation.
type InvariantCheck struct {
	Name     Invariant `json:"name"`
	OK       bool      `json:"ok"`
	Evidence string    `json:"evidence"`
}

// LoginCheck is one login made after the operation, as an expectation asked.
type LoginCheck struct {
	User     string       `json:"user"`
	Password PasswordKind `json:"password"`
	Status   int          `json:"status"` // 0 = no response
}

// PKReuseKind is how primary-key reuse showed itself.
type PKReuseKind string

const (
	// IDRecycled: a user created in the window got an id of the backup.
	IDRecycled PKReuseKind = "id_recycled"
	// TokenAsOther: an old token authenticated as another user.
	TokenAsOther PKReuseKind = "token_as_other"
	// RowOverwritten: the restore overwrote a row created in the window.
	RowOverwritten PKReuseKind = "row_overwritten"
	// RowDeleted: the restore deleted a row created in the window.
	RowDeleted PKReuseKind = "row_deleted"
)

// PKReuse is one observation of the primary-key reuse hazard.
type PKReuse struct {
	Kind PKReuseKind `json:"kind"`
	// User is the account concerned: the one created in the window, or the
	// owner of the old token.
	User string `json:"user"`
	// Other is the account it collided with (the backup's owner of the id,
	// or whom the token authenticated as).
	Other string `json:"other,omitempty"`
	ID    int64  `json:"id"`
	Token string `json:"token,omitempty"`
}

// Sample helpers.

// DoneMS is when the sample's answer arrived.
func (s Sample) DoneMS() float64 { return s.AtMS + s.TookMS }

// ServerFailed reports whether the request met a server error (5xx) or got
// no response.
func (s Sample) ServerFailed() bool { return s.Status == 0 || s.Status >= 500 }

// Lost reports whether an account created in the window was lost.
func (p PKReuse) Lost() bool { return p.Kind == RowOverwritten || p.Kind == RowDeleted }

// String says what was observed.
func (p PKReuse) String() string {
	switch p.Kind {
	case IDRecycled:
		return fmt.Sprintf("new user %s got id %d, which belonged to %s before the reinit (the sequence was reset)", p.User, p.ID, p.Other)
	case TokenAsOther:
		return fmt.Sprintf("in the window, %s's old token %q authenticated as %s (id %d): its user_id now names another user", p.User, p.Token, p.Other, p.ID)
	case RowOverwritten:
		return fmt.Sprintf("the restore overwrote %s's row (id %d) with %s's: the account created in the window is lost", p.User, p.ID, p.Other)
	case RowDeleted:
		return fmt.Sprintf("the restore deleted %s's row (id %d): the account created in the window is lost", p.User, p.ID)
	}
	return string(p.Kind)
}

// WindowState says whether the in-between state (reinit committed, restore
// not yet) was seen.
type WindowState string

const (
	// WindowObserved: the reinit committed on its own and the harness looked
	// into the system before the restore committed.
	WindowObserved WindowState = "observed"
	// WindowNone: reinit and restore committed together; there was nothing
	// in between to see.
	WindowNone WindowState = "none"
	// WindowNotObserved: nobody could look (a running system without its
	// database), so whether there was a window is unknown.
	WindowNotObserved WindowState = "not_observed"
)

// OperationOutcome says whether the operation really happened. Only a
// completed operation is judged; any other outcome makes the scenario an
// error, and reports say "not measured" (or, after a reinit that committed,
// what the system was left with).
type OperationOutcome string

const (
	// OperationCompleted: the call answered 2xx (or the manual steps ran)
	// and every commit that had to be seen was seen.
	OperationCompleted OperationOutcome = "completed"
	// OperationRefused: the call answered outside 2xx and no reinit was
	// seen to commit: the system was not changed, as far as was observed.
	OperationRefused OperationOutcome = "refused"
	// OperationNoResponse: the call got no HTTP response.
	OperationNoResponse OperationOutcome = "no_response"
	// OperationFailedAfterReinit: the reinit committed, then the operation
	// failed: the system is left without its data.
	OperationFailedAfterReinit OperationOutcome = "failed_after_reinit"
	// OperationCommitsNotObserved: the call answered 2xx, but a commit that
	// had to be seen (the reinit's, the restore's) was not.
	OperationCommitsNotObserved OperationOutcome = "commits_not_observed"
)

// ServerSource says which request met a server error.
type ServerSource string

const (
	SourceProbe        ServerSource = "probe"         // a probe's sample (Name is the probe)
	SourceOperation    ServerSource = "operation"     // the restore_from_file call
	SourceWindowAction ServerSource = "window_action" // a during: action
	SourceAfter        ServerSource = "after"         // a measurement after the operation
)

// ServerError is a request that got a 5xx status or no response at all:
// the server failed, which is a finding of its own, apart from 401s.
type ServerError struct {
	Source ServerSource `json:"source"`
	Name   string       `json:"name,omitempty"`
	AtMS   float64      `json:"at_ms"`
	Status int          `json:"status"` // 0 = no response
	// Body is the first line of the response, or the request's error.
	Body string `json:"body,omitempty"`
}

// Facts are measurements the seed's claims are judged on.
type Facts struct {
	// Outcome says whether the operation happened ("" in files of runs
	// that stopped before it).
	Outcome OperationOutcome `json:"outcome,omitempty"`
	// UsersAfter is the number of users after a failed operation, when the
	// database was seen.
	UsersAfter   *int          `json:"users_after,omitempty"`
	ServerErrors []ServerError `json:"server_errors,omitempty"`
	// Admin is the username of the account the reinit keeps.
	Admin              string `json:"admin"`
	AdminIDBefore      int64  `json:"admin_id_before"`
	AdminIDAfterReinit int64  `json:"admin_id_after_reinit"`
	AdminIDAfter       int64  `json:"admin_id_after"`
	UsersBefore        int    `json:"users_before"`
	// UsersInWindow is the number of users between the reinit and restore
	// commits; nil when nobody looked.
	UsersInWindow   *int        `json:"users_in_window,omitempty"`
	Window          WindowState `json:"window"`
	WindowMS        float64     `json:"window_ms"` // reinit committed → restore committed
	OperationStatus int         `json:"operation_status,omitempty"`
	OperationBody   string      `json:"operation_body,omitempty"`
	PKReuse         []PKReuse   `json:"pk_reuse,omitempty"`
	// WrittenByRehearsal are rows added after the backup, which it does not
	// hold: above a table's largest integer key at the backup (elsewhere,
	// written by transactions other than the operation's). Mostly the app
	// serving rehearse's own requests (simplejwt's outstanding tokens of its
	// logins); rows the operation itself adds beyond the backup (a reinit's
	// blacklist entries) too. Row counts are judged without them.
	WrittenByRehearsal []TableRows `json:"written_by_rehearsal,omitempty"`
	// LoginsAfter are the logins made after the operation for login
	// expectations.
	LoginsAfter []LoginCheck `json:"logins_after,omitempty"`
}

// Phase returns when the first mark of phase p happened.
func (r *Result) Phase(p Phase) (float64, bool) {
	for _, m := range r.Timeline.Phases {
		if m.Phase == p {
			return m.AtMS, true
		}
	}
	return 0, false
}

// PhaseSent is when phase p's COMMIT was sent, or, when that was not
// measured, when the phase was marked (Phase).
func (r *Result) PhaseSent(p Phase) (float64, bool) {
	for _, m := range r.Timeline.Phases {
		if m.Phase == p {
			if m.SentMS != nil {
				return *m.SentMS, true
			}
			return m.AtMS, true
		}
	}
	return 0, false
}

// Probe returns the summary of the named probe.
func (r *Result) Probe(name string) (ProbeSummary, bool) {
	for _, p := range r.Probes {
		if p.Name == name {
			return p, true
		}
	}
	return ProbeSummary{Name: name}, false
}

// Token returns the fate of the named token, if it was obtained.
func (r *Result) Token(name string) (TokenFate, bool) {
	for _, f := range r.Tokens {
		if f.Name == name {
			return f, true
		}
	}
	return TokenFate{Name: name}, false
}

// Invariant returns the check of invariant name, if it was measured.
func (r *Result) Invariant(name Invariant) (InvariantCheck, bool) {
	for _, c := range r.Invariants {
		if c.Name == name {
			return c, true
		}
	}
	return InvariantCheck{Name: name}, false
}

// LostAccount reports whether an account created in the window was lost.
func (f Facts) LostAccount() bool {
	for _, p := range f.PKReuse {
		if p.Lost() {
			return true
		}
	}
	return false
}
