package harness

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// The check kinds measured in the system's database: an invariant
// (invariant), admin's id through the reinit (admin_id), primary-key reuse
// (pk_reuse). Check kinds live in the check_*.go of what they look at
// (check.go).

var _ = registerCheck[ExpectInvariant]("invariant", "A database invariant after the operation.")

// ExpectInvariant names a database invariant that must hold after the
// operation: `invariant: foreign_keys`.
type ExpectInvariant struct {
	located
	Name string `yaml:"name" json:"name" shorthand:"true" required:"true" enum:"foreign_keys,sequences,ids_unchanged,counts_match_backup,hashes_match_backup"`
}

func invariantNames() []string {
	var names []string
	for _, i := range results.Invariants() {
		names = append(names, string(i))
	}
	return names
}

func (e *ExpectInvariant) validate(sc *scope) {
	names := invariantNames()
	if !slices.Contains(names, e.Name) {
		sc.bad(e.Pos, "unknown invariant %q%s; expected one of: %s", e.Name, suggest(e.Name, names), strings.Join(names, ", "))
	}
	if c := sc.s.Operation.RestoreFromFile; c != nil && c.BackupFile != "" && e.backupRelative() {
		sc.bad(e.Pos, "invariant %s compares with the backup the harness takes just before; with backup_file (another backup) it cannot be judged: remove one of them", e.Name)
	}
}

func (e *ExpectInvariant) needsDatabase() string { return "invariant " + e.Name }

// backupRelative invariants compare the state after with the backup the
// harness took of the state before.
func (e *ExpectInvariant) backupRelative() bool {
	n := results.Invariant(e.Name)
	return n == results.CountsMatchBackup || n == results.HashesMatchBackup
}

func (e *ExpectInvariant) judge(m *measured) results.Outcome {
	o := results.Outcome{Subject: e.Name, Expected: "holds", Measured: "not measured"}
	if c, ok := m.res.Invariant(results.Invariant(e.Name)); ok {
		o.Measured, o.Pass = c.Evidence, c.OK
	}
	return o
}

var _ = registerCheck[ExpectAdminID]("admin_id", "Whether admin keeps its id through the reinit (measured at the first sample after reinit).")

// ExpectAdminID says whether admin's id survives the reinit.
type ExpectAdminID struct {
	located
	Unchanged bool `yaml:"unchanged" json:"unchanged" required:"true"`
}

func (e *ExpectAdminID) validate(*scope) {}

func (e *ExpectAdminID) needsDatabase() string { return "admin_id" }

func (e *ExpectAdminID) judge(m *measured) results.Outcome {
	f := m.res.Facts
	after := f.AdminIDAfterReinit
	if after == 0 {
		after = f.AdminIDAfter // atomic: the in-between state is never visible
	}
	return results.Outcome{
		Subject:  "admin's id through the reinit",
		Expected: fmt.Sprintf("unchanged: %t", e.Unchanged),
		Measured: fmt.Sprintf("id %d before, %d after the reinit, %d at the end", f.AdminIDBefore, after, f.AdminIDAfter),
		Pass:     (after == f.AdminIDBefore) == e.Unchanged,
	}
}

var _ = registerCheck[ExpectPKReuse]("pk_reuse", "Whether primary-key reuse was detected: a user created in the window got an id from the backup, an old token authenticated as that user, or the restore overwrote that user's row.")

// ExpectPKReuse says whether the pk-reuse hazard was observed.
type ExpectPKReuse struct {
	located
	Detected bool `yaml:"detected" json:"detected" required:"true"`
}

func (e *ExpectPKReuse) validate(*scope) {}

func (e *ExpectPKReuse) needsDatabase() string { return "pk_reuse" }

func (e *ExpectPKReuse) judge(m *measured) results.Outcome {
	seen := m.res.Facts.PKReuse
	o := results.Outcome{
		Subject:  "primary-key reuse hazard",
		Expected: fmt.Sprintf("detected: %t", e.Detected),
		Measured: fmt.Sprintf("detected: %t", len(seen) > 0),
		Pass:     (len(seen) > 0) == e.Detected,
	}
	if len(seen) > 0 {
		var what []string
		for _, p := range seen {
			what = append(what, p.String())
		}
		o.Measured += ": " + strings.Join(what, "; ")
	}
	return o
}
