// Package harness runs declarative YAML scenarios that rehearse a restore with
// reinit and assert the auth timeline: it gives each scenario a database,
// starts the target, obtains tokens, runs the operation while probes sample
// logins and tokens, then checks expectations and invariants. It returns
// results; it prints no reports (package reports does).
package harness

import (
	"fmt"
	"os"

	"github.com/rehearse-dev/rehearse/fixtures"
)

// Scenario is one YAML file. Field comments are the language reference: the
// JSON Schema shipped beside this file is generated from them.
type Scenario struct {
	located
	// Keys holds where each top-level value is, for errors about it.
	Keys map[string]Pos `yaml:"-" json:"-"`
	// Name of the scenario (defaults to the file name).
	Name string `yaml:"name" json:"name,omitempty"`
	// What the scenario shows, for people reading it in a review.
	Description string `yaml:"description" json:"description,omitempty"`
	// Fixture to seed (see fixtures/): edms-small (default), edms-medium, edms-large.
	Fixture string `yaml:"fixture" json:"fixture,omitempty"`
	// System under test: "embedded" (default) runs the reference system in-process;
	// "http" rehearses a running system described by target_file or http.
	Target string `yaml:"target" json:"target,omitempty" enum:"embedded,http"`
	// For target http: a target file (paths relative to this scenario) saying where the
	// system is and how it speaks; see harness.TargetFile.
	TargetFile string `yaml:"target_file" json:"target_file,omitempty"`
	// For target http: the target description inline, instead of target_file.
	HTTP *TargetFile `yaml:"http" json:"http,omitempty"`
	// For target http: "present" (default) if the fixture's users already exist in the
	// system with their passwords; "restore" to load the fixture into the target's
	// database (its dsn; the database must be marked as a rehearsal target).
	Seed string `yaml:"seed" json:"seed,omitempty" enum:"present,restore"`
	// Where the embedded system's database lives, overriding the run's provider: local
	// (a throwaway cluster), container (Docker; image from REHEARSE_PG_IMAGE) or dsn
	// (the server of REHEARSE_DSN).
	Provider string `yaml:"provider" json:"provider,omitempty" enum:"local,container,dsn"`
	// For target http with seed: present: the accounts the scenario logs in as, instead of
	// the fixture's users (a staging copy's test accounts, say).
	Users []Account `yaml:"users" json:"users,omitempty"`
	// Engine strategy of the embedded system: two-phase (default; the seed's behaviour) or atomic.
	Strategy string `yaml:"strategy" json:"strategy,omitempty" enum:"two-phase,atomic"`
	// How the embedded system treats sessions, DRF tokens and access tokens.
	Auth *EmbeddedAuth `yaml:"auth" json:"auth,omitempty"`
	// Named defects the embedded system is started with, to prove a check can fail:
	// no-revocation, skip-sequences, skip-table=<table>, dangling-fk, password-from=<field>.
	Defects []string `yaml:"defects" json:"defects,omitempty"`
	// Tokens obtained before the operation by logging in; named for later use (at most 100).
	Tokens map[string]TokenSpec `yaml:"tokens" json:"tokens,omitempty" max:"100"`
	// The operation under test.
	Operation Operation `yaml:"operation" json:"operation" required:"true"`
	// Actions run in the window: after the reinit committed, before the restore starts.
	During []Action `yaml:"during" json:"during,omitempty"`
	// Probes sample concurrently while the operation runs (at most 100).
	Probes []Probe `yaml:"probes" json:"probes,omitempty" max:"100"`
	// Expectations checked against the measurements.
	Expect []Expectation `yaml:"expect" json:"expect" required:"true"`
	// Time limit for the whole scenario (default 60s, at least 1s, at most 24h): every
	// other duration of the scenario must fit in it.
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty" unbounded:"true"`
}

// located is embedded in the structs of the language: Pos is where the
// value was written, set by the decoder, for errors about it.
type located struct {
	Pos Pos `yaml:"-" json:"-"`
}

// Account is a user of a running system and how to learn its password.
type Account struct {
	located
	// Its username.
	Username string `yaml:"username" json:"username" required:"true"`
	// Its password, for a disposable test account.
	Password string `yaml:"password" json:"password,omitempty"`
	// Or the environment variable that holds it (keeps it out of the file).
	PasswordEnv string `yaml:"password_env" json:"password_env,omitempty"`
}

// TokenSpec obtains an access token by logging in with the user's original password,
// or by minting it with the target's signing key.
type TokenSpec struct {
	located
	// A user of the fixture.
	User string `yaml:"user" json:"user" shorthand:"true"`
	// How the token is obtained and sent: jwt (default; simplejwt's login, sent as
	// Authorization: Bearer), session (a session login; its cookie jar is sent, as a
	// browser does) or drf_token (DRF's obtain_auth_token; Authorization: Token KEY).
	Kind string `yaml:"kind" json:"kind,omitempty" enum:"jwt,session,drf_token"`
	// Make the token without logging in: a jwt is minted (HS256, simplejwt claims)
	// with the target's signing key, a drf_token row is created in the target's
	// database; the user's id comes from the target's database, else the fixture.
	Mint bool `yaml:"mint" json:"mint,omitempty"`
}

// Operation is exactly one of restore_from_file or manual.
type Operation struct {
	located
	// The seed's API call: POST restore_from_file with with_reinit, as its curl does.
	RestoreFromFile *RestoreCall `yaml:"restore_from_file" json:"restore_from_file,omitempty"`
	// The seed's manual path: create_backup, system_reinit --confirm, restore_backup, as separate steps.
	Manual *Manual `yaml:"manual" json:"manual,omitempty"`
}

// RestoreCall is the API call. The backup uploaded is taken from the system just before.
type RestoreCall struct {
	located
	// Token (from tokens:) that authorises the call; default: log in as admin first.
	As string `yaml:"as" json:"as,omitempty"`
	// Reinit first (default true).
	WithReinit *bool `yaml:"with_reinit" json:"with_reinit,omitempty"`
	// Confirmation phrase sent with with_reinit (default: the target's confirm_phrase, "RESTORE CLEAN").
	Confirm string `yaml:"confirm" json:"confirm,omitempty"`
	// Backup to upload (path relative to the scenario). Default: a backup of the
	// system's database taken just before, as create_backup would.
	BackupFile string `yaml:"backup_file" json:"backup_file,omitempty"`
}

// Manual runs backup, reinit and restore as three steps against the database.
type Manual struct {
	located
	// Time an operator takes between reinit and restore (default 0s).
	Pause Duration `yaml:"pause" json:"pause,omitempty"`
	// Strategy of the restore step (default two-phase; the reinit has committed already).
	Strategy string `yaml:"strategy" json:"strategy,omitempty" enum:"two-phase,atomic"`
}

// Probe samples one kind of request at an interval while the operation runs.
type Probe struct {
	located
	// Name used by expectations.
	Name string `yaml:"name" json:"name" required:"true"`
	// Interval between samples (default 10ms).
	Every Duration `yaml:"every" json:"every,omitempty"`
	// What the probe requests: exactly one of the probe kinds (login, profile).
	Kind ProbeKind `yaml:"-" json:"-" oneof:"probe"`
}

// Action is something done in the window.
type Action struct {
	located
	// Create a user directly in the database, as a sign-up or an admin would.
	CreateUser *CreateUser `yaml:"create_user" json:"create_user,omitempty"`
	// Call profile with a named token and record whom it authenticates as.
	Profile *ProfileProbe `yaml:"profile" json:"profile,omitempty"`
	// Wait this long.
	Sleep Duration `yaml:"sleep" json:"sleep,omitempty"`
}

// CreateUser inserts a user; its id comes from the table's sequence.
type CreateUser struct {
	located
	// Username of the new user.
	Username string `yaml:"username" json:"username" required:"true"`
	// Its password (default "<username>_pw").
	Password string `yaml:"password" json:"password,omitempty"`
}

// Expectation is exactly one check: one of the check kinds (profile,
// login, window, probe, during_window, invariant, admin_id, pk_reuse).
type Expectation struct {
	located
	Check Check `yaml:"-" json:"-" oneof:"check"`
}

// at is where the value of a top-level key is (the file's start if absent).
func (s *Scenario) at(key string) Pos { return keyPos(s.Keys, key, s.Pos) }

// keyPos is where the value of key is in keys, else def.
func keyPos(keys map[string]Pos, key string, def Pos) Pos {
	if p, ok := keys[key]; ok {
		return p
	}
	return def
}

// accountsFixture describes the scenario's users: (that of) Users when
// given, with passwords read from the environment where asked.
// passwordSet says, for an account whose password comes from the
// environment, that the variable is not set.
func (a Account) passwordSet() error {
	if a.PasswordEnv != "" && os.Getenv(a.PasswordEnv) == "" {
		return fmt.Errorf("user %s: password_env names %s, which is not set", clip(a.Username, maxQuoted), clip(a.PasswordEnv, maxQuoted))
	}
	return nil
}

func (s *Scenario) accountsFixture() *fixtures.Fixture {
	f := &fixtures.Fixture{Name: "the scenario's users", Description: "users: of " + s.Pos.File}
	for _, a := range s.Users {
		pw := a.Password
		if a.PasswordEnv != "" {
			pw = os.Getenv(a.PasswordEnv)
		}
		f.Users = append(f.Users, fixtures.User{Username: a.Username, Password: pw})
	}
	return f
}
