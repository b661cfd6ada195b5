package server

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/restore"
)

// Defects break the reference system in named ways, so the harness can prove
// that its checks fail when the system is wrong. Never set in production.
type Defects struct {
	// NoRevocation is plain simplejwt: the reinit does not revoke tokens and
	// the profile does not check the cutoff, so a token issued before the
	// restore works again after it (token resurrection).
	NoRevocation bool
	// SkipSequences: the restore does not move sequences past max(id).
	SkipSequences bool
	// SkipTables: the restore reads these tables' rows but does not write them.
	SkipTables []string
	// DanglingFK: the restore skips documents_document and every foreign key
	// check, so versions and assignments point at documents that are gone.
	DanglingFK bool
	// PasswordFrom: the restore fills users_user.password from this field of
	// the backup's user objects (e.g. "last_name") instead of "password".
	PasswordFrom string
}

// defectNames is the help text of ParseDefects.
const defectNames = `"no-revocation", "skip-sequences", "skip-table=<table>", "dangling-fk", "password-from=<field>"`

// ParseDefects reads defect names: "no-revocation", "skip-sequences",
// "skip-table=<table>" (may repeat), "dangling-fk", "password-from=<field>".
// Blank names are ignored; anything else is an error that lists the valid
// names.
func ParseDefects(names []string) (Defects, error) {
	var d Defects
	for _, raw := range names {
		name := strings.TrimSpace(raw)
		if name == "" {
			continue
		}
		key, val, hasVal := strings.Cut(name, "=")
		switch key {
		case "no-revocation", "skip-sequences", "dangling-fk":
			if hasVal {
				return Defects{}, fmt.Errorf("defect %q takes no value; valid defects: %s", name, defectNames)
			}
			switch key {
			case "no-revocation":
				d.NoRevocation = true
			case "skip-sequences":
				d.SkipSequences = true
			case "dangling-fk":
				d.DanglingFK = true
			}
		case "skip-table", "password-from":
			val = strings.TrimSpace(val)
			if !hasVal || val == "" {
				return Defects{}, fmt.Errorf("defect %q needs a value: %s=<%s>; valid defects: %s", name, key, map[string]string{"skip-table": "table", "password-from": "field"}[key], defectNames)
			}
			if !isIdent(val) {
				return Defects{}, fmt.Errorf("defect %q: %q is not a plain table or field name (letters, digits, underscores)", name, val)
			}
			if key == "skip-table" {
				d.SkipTables = append(d.SkipTables, val)
			} else {
				if d.PasswordFrom != "" && d.PasswordFrom != val {
					return Defects{}, fmt.Errorf("defect %q: password-from is already %q; give it once", name, d.PasswordFrom)
				}
				d.PasswordFrom = val
			}
		default:
			return Defects{}, fmt.Errorf("unknown defect %q; valid defects: %s", name, defectNames)
		}
	}
	return d, nil
}

// Names returns the defects in ParseDefects' syntax (ParseDefects(d.Names())
// gives d back), for logs and reports.
func (d Defects) Names() []string {
	var out []string
	if d.NoRevocation {
		out = append(out, "no-revocation")
	}
	if d.SkipSequences {
		out = append(out, "skip-sequences")
	}
	for _, t := range d.SkipTables {
		out = append(out, "skip-table="+t)
	}
	if d.DanglingFK {
		out = append(out, "dangling-fk")
	}
	if d.PasswordFrom != "" {
		out = append(out, "password-from="+d.PasswordFrom)
	}
	return out
}

// Any reports whether any defect is set.
func (d Defects) Any() bool { return len(d.Names()) > 0 }

func (d Defects) validate() error {
	for _, t := range d.SkipTables {
		if !isIdent(t) {
			return fmt.Errorf("Defects.SkipTables: %q is not a plain table name", t)
		}
	}
	if d.PasswordFrom != "" && !isIdent(d.PasswordFrom) {
		return fmt.Errorf("Defects.PasswordFrom: %q is not a plain field name", d.PasswordFrom)
	}
	return nil
}

// engine maps the server defects onto the restore engine's.
func (d Defects) Engine() restore.Defects {
	var e restore.Defects
	e.SkipTables = append(e.SkipTables, d.SkipTables...)
	e.SkipSequences = d.SkipSequences
	if d.DanglingFK {
		e.SkipTables = append(e.SkipTables, "documents_document")
		e.SkipFKCheck = true
	}
	if d.PasswordFrom != "" {
		e.ColumnFrom = map[string]string{"users_user.password": d.PasswordFrom}
	}
	return e
}

func isIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// DefectNames lists the defect names ParseDefects accepts, for help texts.
func DefectNames() []string {
	return []string{"no-revocation", "skip-sequences", "skip-table=<table>", "dangling-fk", "password-from=<field>"}
}
