// Package pgconf is what pglocal and pgcontainer share, so that a cluster
// and a container are the same throwaway server: its settings, their
// command-line form, and the quoting of keyword/value connection strings.
package pgconf

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Starting is how both Starts begin: a nil ctx is context.Background(), a
// done one an error naming who ("pglocal: not starting: …"), and a nil logf
// one that drops what it is given.
func Starting(ctx context.Context, who string, logf func(string, ...any)) (context.Context, func(string, ...any), error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("%s: not starting: %w", who, err)
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return ctx, logf, nil
}

// Throwaway returns the settings of a throwaway server: fast (no fsync, no
// full-page writes, minimal WAL) but never losing an acknowledged commit,
// with room for parallel scenarios and for restores that lock many tables.
func Throwaway() map[string]string {
	return map[string]string{
		"fsync":                     "off",
		"full_page_writes":          "off",
		"synchronous_commit":        "on", // never off: rehearse checks that killed servers lose no commit
		"max_connections":           "300",
		"shared_buffers":            "128MB",
		"wal_level":                 "minimal",
		"max_wal_senders":           "0",
		"max_locks_per_transaction": "256",
	}
}

var settingName = regexp.MustCompile(`^[a-z_][a-z0-9_.]*$`)

// Args merges extra over defaults and returns them as "-c key=value"
// arguments sorted by name. Names are case-insensitive, as PostgreSQL's
// are; the managed ones (owned by the caller's layout) are refused, and so
// are values that cannot pass through one argument.
func Args(defaults, extra map[string]string, managed []string, manager string) ([]string, error) {
	m := maps.Clone(defaults)
	for k, v := range extra {
		name := strings.ToLower(k)
		if !settingName.MatchString(name) {
			return nil, fmt.Errorf("invalid setting name %q in Options.Settings", k)
		}
		if slices.Contains(managed, name) {
			return nil, fmt.Errorf("setting %s is managed by %s; remove it from Options.Settings", k, manager)
		}
		if strings.ContainsAny(v, "\x00\n") {
			return nil, fmt.Errorf("setting %s in Options.Settings: the value contains a NUL or newline", k)
		}
		m[name] = v
	}
	args := make([]string, 0, 2*len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		args = append(args, "-c", k+"="+m[k])
	}
	return args, nil
}

// QuoteDSN quotes a value of a keyword/value connection string when it is
// empty or holds white space, quotes, backslashes or '='.
func QuoteDSN(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r'\\=") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
