package harness

import (
	"cmp"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/edms/server"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/results"
)

// Plan is a scenario with every default resolved: what the runner does,
// step by step, and what the checks are judged against. It is a plain value:
// it can be printed (rehearse validate --plan) and tested without a
// database. Secrets (passwords, the DSN) are kept out of its JSON.
type Plan struct {
	Name        string            `json:"name"`
	File        string            `json:"file"`
	Description string            `json:"description,omitempty"`
	Fixture     string            `json:"fixture"`
	Target      string            `json:"target"`
	Provider    string            `json:"provider,omitempty"`
	Operation   results.Operation `json:"operation"`
	// Strategy is the embedded system's engine; a running system's is its
	// own and only observed ("").
	Strategy results.Strategy `json:"strategy,omitempty"`
	Defects  []string         `json:"defects,omitempty"`
	Timeout  Duration         `json:"timeout"`
	// Lead is how long probes sample before the operation starts and after
	// it ends.
	Lead   Duration `json:"lead"`
	System System   `json:"system"`
	// Seed (running systems): "present" or "restore".
	Seed string `json:"seed,omitempty"`
	// AccountsFrom says where the accounts come from.
	AccountsFrom   string                 `json:"accounts_from"`
	AccountsSource results.AccountsSource `json:"accounts_source"`
	// CreateAccounts: rehearse creates the accounts in the system's
	// database before the backup and removes them at the end.
	CreateAccounts bool             `json:"create_accounts,omitempty"`
	Accounts       []PlannedAccount `json:"accounts"`
	Tokens         []PlannedToken   `json:"tokens,omitempty"`
	Call           *PlannedCall     `json:"restore_from_file,omitempty"`
	Manual         *PlannedManual   `json:"manual,omitempty"`
	During         []Action         `json:"during,omitempty"`
	Probes         []PlannedProbe   `json:"probes,omitempty"`
	Checks         []PlannedCheck   `json:"checks"`

	fx      *fixtures.Fixture
	defects server.Defects
	// auth is the embedded system's AuthMode (Auth in the plan's JSON).
	auth server.AuthMode
	Auth *EmbeddedAuth `json:"auth,omitempty"`
}

// System is how the system under test is addressed.
type System struct {
	BaseURL string `json:"base_url,omitempty"`
	// HasDSN: the runner sees the system's database (the DSN itself is
	// not printed: it may hold a password).
	HasDSN           bool   `json:"has_dsn"`
	Admin            string `json:"admin"`
	ProfileUserField string `json:"profile_username_field"`
	ProfileIDField   string `json:"profile_id_field"`
	UsersTable       string `json:"users_table"`
	// LoginColumn and PasswordColumn are the users table's columns that a
	// login matches (USERNAME_FIELD) and that holds the hash.
	LoginColumn    string `json:"login_column"`
	PasswordColumn string `json:"password_column"`
	// StaffColumn is the flag the account rehearse creates for the
	// restore call has set.
	StaffColumn string        `json:"staff_column"`
	Routes      server.Routes `json:"routes"`

	dsn          string
	adminDefault string
	target       *TargetFile // a running system's file: its signing key, how to take its backup
}

// usersTable is the users table, quoted for SQL.
func (s System) usersTable() string { return pgx.Identifier{s.UsersTable}.Sanitize() }

// loginColumn is the column a login names a user by, quoted for SQL.
func (s System) loginColumn() string { return pgx.Identifier{s.LoginColumn}.Sanitize() }

// passwordColumn is the column of the password hash, quoted for SQL.
func (s System) passwordColumn() string { return pgx.Identifier{s.PasswordColumn}.Sanitize() }

// PlannedAccount is a user the scenario may log in as.
type PlannedAccount struct {
	Username string `json:"username"`
	ID       int64  `json:"id,omitempty"` // the fixture's id, when known
	password string
}

// Password is the account's plain password, for a caller that logs in as
// it (a test checking the system's own answer); the plan's JSON never
// holds it.
func (a PlannedAccount) Password() string { return a.password }

// PlannedToken is obtained before the operation.
type PlannedToken struct {
	Pos  Pos    `json:"-"`
	Name string `json:"name"`
	User string `json:"user"`
	Mint bool   `json:"mint,omitempty"`
	Kind string `json:"kind"`
}

// PlannedCall is the restore_from_file API call.
type PlannedCall struct {
	Pos Pos `json:"-"`
	// As names the token that authorises the call; "" logs in as the admin.
	As string `json:"as,omitempty"`
	// User, without As, is the account that logs in to make the call ("":
	// the admin).
	User       string `json:"user,omitempty"`
	WithReinit bool   `json:"with_reinit"`
	Confirm    string `json:"confirm"`
	// BackupFile is uploaded instead of a backup taken just before.
	BackupFile string `json:"backup_file,omitempty"`
}

// user is the account that logs in to make the call ("" for none).
func (c *PlannedCall) user() string {
	if c == nil {
		return ""
	}
	return c.User
}

// PlannedManual is the 3-step path.
type PlannedManual struct {
	Pos      Pos              `json:"-"`
	Pause    Duration         `json:"pause"`
	Strategy results.Strategy `json:"strategy"`
}

// PlannedProbe samples while the operation runs.
type PlannedProbe struct {
	Pos   Pos       `json:"-"`
	Name  string    `json:"name"`
	Kind  string    `json:"kind"`
	Every Duration  `json:"every"`
	Probe ProbeKind `json:"probe"`
}

// PlannedCheck is one expectation, at its place in the file.
type PlannedCheck struct {
	Pos   Pos    `json:"pos"`
	Kind  string `json:"kind"`
	Check Check  `json:"check"`
}

// Overrides are what the command line says about a running system; they
// win over its target file.
type Overrides struct {
	BaseURL, DSN string
}

// NewPlan resolves a validated scenario into a plan.
func NewPlan(s *Scenario, o Overrides) (*Plan, error) {
	p := &Plan{Name: s.Name, File: s.Pos.File, Description: s.Description, Fixture: cmp.Or(s.Fixture, defaultFixture),
		Target: cmp.Or(s.Target, TargetEmbedded), Provider: s.Provider, Defects: s.Defects,
		Timeout: cmp.Or(s.Timeout, Duration(DefaultTimeout)), During: s.During}
	if err := p.resolveSystem(s, o); err != nil {
		return nil, err
	}
	if err := p.resolveAccounts(s); err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(s.Tokens) {
		t := s.Tokens[name]
		p.Tokens = append(p.Tokens, PlannedToken{Pos: t.Pos, Name: name, User: t.User, Mint: t.Mint, Kind: cmp.Or(t.Kind, KindJWT)})
	}
	p.resolveOperation(s)
	for _, pr := range s.Probes {
		every := cmp.Or(pr.Every, Duration(DefaultProbeInterval))
		p.Probes = append(p.Probes, PlannedProbe{Pos: pr.Pos, Name: pr.Name, Kind: probeKindName(pr.Kind), Every: every, Probe: pr.Kind})
	}
	p.Lead = Duration(probeLead(s.Probes))
	for _, e := range s.Expect {
		c := e.Check
		if d, ok := c.(defaultsCheck); ok {
			c = d.withDefaults()
		}
		p.Checks = append(p.Checks, PlannedCheck{Pos: e.Pos, Kind: checkKinds.nameOf(c), Check: c})
	}
	return p, nil
}

const defaultFixture = "edms-small"

// probeLead is how long probes sample before the operation starts and
// after it ends: three intervals of the slowest.
func probeLead(probes []Probe) time.Duration {
	lead := DefaultProbeInterval
	for _, pr := range probes {
		lead = max(lead, pr.Every.D())
	}
	return 3 * lead
}

func (p *Plan) resolveSystem(s *Scenario, o Overrides) error {
	sys := System{Admin: "admin", adminDefault: edms.DefaultAdminPassword, ProfileUserField: "username", ProfileIDField: "id",
		UsersTable: "users_user", LoginColumn: "username", PasswordColumn: "password", StaffColumn: "is_staff", Routes: server.DefaultRoutes()}
	if p.Target == TargetHTTP {
		tf := *s.HTTP
		tf.BaseURL = cmp.Or(o.BaseURL, tf.BaseURL)
		tf.DSN = cmp.Or(o.DSN, tf.DSN)
		sys = System{BaseURL: tf.BaseURL, HasDSN: tf.DSN != "", dsn: tf.DSN, Routes: tf.Routes(), target: &tf,
			Admin: cmp.Or(tf.Admin.Username, sys.Admin), adminDefault: cmp.Or(tf.Admin.DefaultPassword, sys.adminDefault),
			ProfileUserField: cmp.Or(tf.Profile.UsernameField, sys.ProfileUserField), ProfileIDField: cmp.Or(tf.Profile.IDField, sys.ProfileIDField),
			UsersTable: cmp.Or(tf.UsersTable, sys.UsersTable), LoginColumn: cmp.Or(tf.LoginColumn, sys.LoginColumn),
			PasswordColumn: cmp.Or(tf.PasswordColumn, sys.PasswordColumn), StaffColumn: cmp.Or(tf.StaffColumn, sys.StaffColumn)}
		p.Seed = cmp.Or(s.Seed, "present")
	} else {
		p.Strategy = results.Strategy(cmp.Or(s.Strategy, string(results.TwoPhase)))
		d, err := server.ParseDefects(s.Defects)
		if err != nil {
			return &InputError{Pos: s.at("defects"), Message: "defects: " + err.Error()}
		}
		p.defects = d
		p.Auth, p.auth = s.Auth, s.Auth.Mode()
	}
	p.System = sys
	return nil
}

func (p *Plan) resolveAccounts(s *Scenario) error {
	fx, err := fixtures.Get(p.Fixture)
	if err != nil {
		return &InputError{Pos: s.at("fixture"), Message: err.Error()}
	}
	p.AccountsFrom, p.AccountsSource = "fixture "+fx.Name, results.AccountsFixture
	if len(s.Users) > 0 {
		for _, a := range s.Users {
			if err := a.passwordSet(); err != nil {
				return &InputError{Pos: a.Pos, Message: err.Error()}
			}
		}
		fx = s.accountsFixture()
		p.AccountsFrom, p.AccountsSource = "users: of "+s.Pos.File, results.AccountsScenario
	}
	p.fx = fx
	for _, u := range fx.Users {
		p.Accounts = append(p.Accounts, PlannedAccount{Username: u.Username, ID: u.ID, password: u.Password})
	}
	return nil
}

func (p *Plan) resolveOperation(s *Scenario) {
	if m := s.Operation.Manual; m != nil {
		p.Operation = results.Manual
		p.Manual = &PlannedManual{Pos: m.Pos, Pause: m.Pause, Strategy: results.Strategy(cmp.Or(m.Strategy, string(results.TwoPhase)))}
		p.Strategy = p.Manual.Strategy
		return
	}
	c := s.Operation.RestoreFromFile
	p.Operation = results.RestoreFromFile
	p.Call = &PlannedCall{Pos: c.Pos, As: c.As, WithReinit: c.WithReinit == nil || *c.WithReinit,
		Confirm: cmp.Or(c.Confirm, p.System.Routes.ConfirmPhrase), BackupFile: resolve(s.Pos.File, c.BackupFile)}
}

func probeKindName(k ProbeKind) string {
	kind, _, _ := k.describe()
	return string(kind)
}

// usesRefresh reports whether a probe or a check of the plan uses the
// refresh token of the named token.
func (p *Plan) usesRefresh(token string) bool {
	for _, pr := range p.Probes {
		if r, ok := pr.Probe.(*RefreshProbe); ok && r.Token == token {
			return true
		}
	}
	for _, c := range p.Checks {
		if r, ok := c.Check.(*ExpectRefresh); ok && r.Token == token {
			return true
		}
	}
	return false
}

// password is the password of user of the given kind.
func (p *Plan) password(user string, kind results.PasswordKind) string {
	if kind == results.PasswordDefault {
		return p.System.adminDefault
	}
	a, _ := p.account(user) // an unknown user has no password
	return a.password
}

// account returns the planned account of user.
func (p *Plan) account(user string) (PlannedAccount, bool) {
	for _, a := range p.Accounts {
		if a.Username == user {
			return a, true
		}
	}
	return PlannedAccount{}, false
}

// JSON renders the plan for people (rehearse validate --plan).
func (p *Plan) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	return append(b, '\n'), err
}

// needsDatabase names the first part of the plan that can only be measured
// in the system's database.
func (p *Plan) needsDatabase() (Pos, string) {
	for _, c := range p.Checks {
		if d, ok := c.Check.(databaseCheck); ok {
			return c.Pos, d.needsDatabase()
		}
	}
	if len(p.During) > 0 {
		return p.During[0].Pos, "during: (actions run when the reinit is seen in the database)"
	}
	if p.Seed == "restore" {
		return Pos{File: p.File, Line: 1, Col: 1}, "seed: restore"
	}
	if c := p.Call; c != nil && c.BackupFile == "" {
		return c.Pos, "restore_from_file without backup_file (the backup is taken from the database)"
	}
	return Pos{}, ""
}

// WithoutBackupChecks drops the checks that compare with the backup the
// harness takes itself (for an uploaded backup).
func (p *Plan) WithoutBackupChecks() {
	p.Checks = p.filterChecks(func(c Check) bool {
		b, ok := c.(backupCheck)
		return ok && b.backupRelative()
	})
}

// WithoutDatabaseChecks drops the checks that need the system's database.
func (p *Plan) WithoutDatabaseChecks() {
	p.Checks = p.filterChecks(func(c Check) bool { _, ok := c.(databaseCheck); return ok })
}

func (p *Plan) filterChecks(drop func(Check) bool) []PlannedCheck {
	var keep []PlannedCheck
	for _, c := range p.Checks {
		if !drop(c.Check) {
			keep = append(keep, c)
		}
	}
	return keep
}

// HasBackupChecks reports whether a check compares with the backup the
// harness takes itself.
func (p *Plan) HasBackupChecks() bool {
	n := len(p.Checks)
	q := *p
	q.WithoutBackupChecks()
	return len(q.Checks) != n
}

// timeout is the plan's time limit.
func (p *Plan) timeout() time.Duration { return p.Timeout.D() }
