package edms

import (
	"net/url"
	"regexp"
	"strings"
)

// Recovery is how to bring back a system that a two-phase restore left as
// its reinit made it (restore.WindowError): restore the same backup again,
// reinit and restore in one transaction, so that no second failure can
// leave it half-done.
type Recovery struct {
	Backup  string // the backup file, kept
	Command string // the command that restores it
	Note    string // what the command leaves out ("" if nothing)
}

// NewRecovery is the recovery of the system at dsn ("" = the one
// REHEARSE_DSN names) from backup, with extra flags added to the command.
// The DSN's password never appears: it is left out, and Note says to set
// PGPASSWORD.
func NewRecovery(dsn, backup string, extra ...string) Recovery {
	args := []string{"rehearse", "restore"}
	r := Recovery{Backup: backup}
	if dsn != "" {
		clean, had := withoutPassword(dsn)
		args = append(args, "--dsn", ShellQuote(clean))
		if had {
			r.Note = "the DSN's password is left out: set PGPASSWORD to it first"
		}
	}
	args = append(args, "--from-file", ShellQuote(backup), "--with-reinit", "--strategy", "atomic")
	for _, e := range extra {
		args = append(args, ShellQuote(e))
	}
	r.Command = strings.Join(args, " ")
	return r
}

// String is the recovery in words: where the backup is and the command.
func (r Recovery) String() string {
	s := "the backup is kept at " + r.Backup + "; to recover, restore it with the reinit in one transaction:\n  " + r.Command
	if r.Note != "" {
		s += "\n(" + r.Note + ")"
	}
	return s
}

var kvPassword = regexp.MustCompile(`(^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// withoutPassword removes the password from a URL or keyword/value DSN
// and says whether it had one.
func withoutPassword(dsn string) (string, bool) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "postgres://(unparsable DSN left out)", true
		}
		had := false
		if _, ok := u.User.Password(); ok {
			u.User, had = url.User(u.User.Username()), true
		}
		if q := u.Query(); q.Has("password") {
			q.Del("password")
			u.RawQuery, had = q.Encode(), true
		}
		return u.String(), had
	}
	clean := kvPassword.ReplaceAllString(dsn, "")
	return strings.TrimSpace(clean), clean != dsn
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// ShellQuote quotes s for a POSIX shell when it needs it.
func ShellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
