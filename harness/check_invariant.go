package harness

import (
	"slices"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

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
