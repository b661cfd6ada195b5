package harness

import (
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rehearse-dev/rehearse/results"
)

// builtinRehearsal is the scenario `rehearse rehearse` runs unless given one.
//
//go:embed rehearsal.yaml
var builtinRehearsal []byte

// Rehearsal describes a rehearsal against a running system, as `rehearse
// rehearse` is asked for it.
type Rehearsal struct {
	// Scenario is a scenario file with target: http; "" runs the built-in one.
	Scenario string
	// TargetFile replaces the scenario's target description.
	TargetFile string
	// Backup is uploaded instead of a backup taken from the database.
	Backup string
	// BaseURL and DSN override the target file's.
	BaseURL, DSN string
	// AllowUnmarked rehearses a database that is not marked as a rehearsal
	// target, or without a database.
	AllowUnmarked bool
}

// PlanRehearsal loads the rehearsal's scenario and plans it. It decides
// which checks can be judged: the built-in rehearsal leaves out the
// database checks without a database and, for an uploaded backup, the
// checks that compare with the backup rehearse takes itself; a scenario of
// the user's own that has such checks is refused instead.
func PlanRehearsal(r Rehearsal) (*Plan, error) {
	s, err := r.load()
	if err != nil {
		return nil, err
	}
	builtin := r.Scenario == ""
	// With the database, the built-in rehearsal brings its own accounts:
	// it needs no list of the app's users. An uploaded backup would not
	// hold them, so it keeps the fixture's.
	var staff string
	create := builtin && r.Backup == "" && cmp.Or(r.DSN, s.HTTP.DSN) != ""
	if create {
		if staff, err = withCreatedAccounts(s, s.HTTP); err != nil {
			return nil, err
		}
	}
	p, err := NewPlan(s, Overrides{BaseURL: r.BaseURL, DSN: r.DSN})
	if err != nil {
		return nil, err
	}
	if create {
		p.CreateAccounts, p.AccountsFrom, p.AccountsSource = true, "accounts rehearse created", results.AccountsCreated
		p.Call.User = staff
	}
	if builtin && !p.System.HasDSN {
		p.WithoutDatabaseChecks()
	}
	if r.Backup != "" {
		if err := r.useBackup(p, builtin); err != nil {
			return nil, err
		}
	}
	if p.System.BaseURL == "" {
		return nil, errors.New("give the system's base URL with --target URL (or base_url in the target file)")
	}
	if err := CheckLoopback(p.System.BaseURL); err != nil {
		return nil, err
	}
	if !p.System.HasDSN && !r.AllowUnmarked {
		return nil, errors.New("the rehearsal wipes the system's data, and without --dsn rehearse cannot check that its database is marked as a rehearsal target (rehearse mark); give --dsn, or pass --allow-unmarked to confirm the target is disposable")
	}
	return p, nil
}

func (r Rehearsal) load() (*Scenario, error) {
	var s *Scenario
	var err error
	if r.Scenario != "" {
		s, err = LoadFile(r.Scenario)
	} else {
		s, err = Parse("(built-in rehearsal)", builtinRehearsal)
	}
	if err != nil {
		return nil, err
	}
	if s.Target != TargetHTTP {
		return nil, fmt.Errorf("%s: rehearse runs scenarios with target: http (this one is %q; run it with rehearse run)", s.Pos, s.Target)
	}
	if r.TargetFile != "" {
		abs, _ := filepath.Abs(r.TargetFile)
		tf, err := LoadTargetFile(abs)
		if err != nil {
			return nil, err
		}
		s.HTTP = tf
		if r.Scenario == "" {
			kindsOfTarget(s, tf)
		}
	}
	return s, nil
}

func (r Rehearsal) useBackup(p *Plan, builtin bool) error {
	if p.Call == nil {
		return fmt.Errorf("%s: --backup needs a restore_from_file operation", p.File)
	}
	if _, err := os.Stat(r.Backup); err != nil {
		return err
	}
	p.Call.BackupFile = r.Backup
	switch {
	case builtin:
		p.WithoutBackupChecks()
	case p.HasBackupChecks():
		return fmt.Errorf("%s: counts_match_backup and hashes_match_backup compare with the backup rehearse takes itself; remove them to upload --backup", p.File)
	}
	return nil
}
