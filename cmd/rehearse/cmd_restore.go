package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/reinit"
	"github.com/rehearse-dev/rehearse/restore"
)

func init() {
	register("restore", "restore a dumpdata backup, optionally into a clean system (--with-reinit)", cmdRestore)
}

func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("restore", stderr)
	dsnFlag := addDSNFlag(fs, "to restore into")
	from := fs.String("from-file", "", "dumpdata backup (.json or .json.gz)")
	withReinit := fs.Bool("with-reinit", false, "empty the system first (keep admin, delete everyone else)")
	strategy := fs.String("strategy", string(restore.TwoPhase), "two-phase or atomic")
	adminPW := fs.String("admin-password", edms.DefaultAdminPassword, "admin's password after the reinit")
	allow := fs.Bool("allow-unmarked", false, "run even if the database is not marked as a rehearsal target (see rehearse mark)")
	allowEmpty := fs.Bool("allow-empty", false, "accept a backup without objects after --with-reinit (it leaves only admin)")
	stmtTimeout := fs.Duration("statement-timeout", restore.DefaultStatementTimeout, "longest a statement of the restore may run (or wait idle in its transaction) on the server; one COPY loads a whole table")
	lockTimeout := fs.Duration("lock-timeout", restore.DefaultLockTimeout, "longest the restore waits for a lock another session holds")
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	st, err := restore.ParseStrategy(*strategy)
	if err != nil {
		return fail(stderr, "restore", err)
	}
	if *from == "" {
		return fail(stderr, "restore", fmt.Errorf("no backup: pass --from-file backup.json.gz"))
	}
	if _, err := os.Stat(*from); err != nil {
		return fail(stderr, "restore", err)
	}
	if *stmtTimeout <= 0 || *lockTimeout <= 0 {
		return fail(stderr, "restore", fmt.Errorf("--statement-timeout and --lock-timeout must be positive"))
	}
	conn, err := openDB(ctx, *dsnFlag)
	if err != nil {
		return fail(stderr, "restore", err)
	}
	defer conn.Close(context.Background())
	if err := checkTarget(ctx, conn, "restore", *allow); err != nil {
		return fail(stderr, "restore", err)
	}
	var withReinitCfg *reinit.Config
	if *withReinit {
		cfg := edms.ReinitConfig(*adminPW, true)
		withReinitCfg = &cfg
	}
	opts := edms.RestoreOptions(func() (io.ReadCloser, error) { return os.Open(*from) }, st, withReinitCfg)
	opts.AllowEmpty = *allowEmpty
	opts.StatementTimeout, opts.LockTimeout = *stmtTimeout, *lockTimeout
	rec := recoveryFor(*dsnFlag, *from, flagsAgain(fs, "allow-unmarked", "allow-empty", "statement-timeout", "lock-timeout"))
	if isSet(fs, "admin-password") {
		rec.Note = strings.TrimPrefix(rec.Note+"; add --admin-password as you gave it", "; ")
	}
	return runRestore(ctx, conn, opts, rec, stdout, stderr)
}

// runRestore runs the restore under the window guard and prints its outcome.
func runRestore(parent context.Context, conn *pgx.Conn, opts restore.Options, rec edms.Recovery, stdout, stderr io.Writer) int {
	ctx, guard, stop := guardWindow(parent, stderr)
	defer stop()
	start := time.Now()
	show := restoreProgress(stdout, start, isTerminal(stdout))
	opts.Progress = func(e restore.Event) {
		show(e)
		if e.Phase == restore.PhaseValidated && e.Window != nil {
			printWindow(stdout, e.Window, rec)
		}
		guard.phase(e)
	}
	res, err := restore.Restore(ctx, conn, opts)
	if err != nil {
		return failRestore(stderr, err, rec)
	}
	fmt.Fprintf(stdout, "restored %d objects (%s) in %s\n", res.Objects, res.Strategy, res.Timings.Total.Round(time.Millisecond))
	printRows(stdout, res.Rows)
	for _, s := range res.Sequences {
		if s.Before != s.After {
			fmt.Fprintf(stdout, "sequence %s: next %d -> %d\n", s.Sequence, s.Before, s.After)
		}
	}
	return exitOK
}

// isSet says whether flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// flagsAgain are the named flags that were given, as --name=value.
func flagsAgain(fs *flag.FlagSet, names ...string) []string {
	var out []string
	for _, n := range names {
		if isSet(fs, n) {
			out = append(out, "--"+n+"="+fs.Lookup(n).Value.String())
		}
	}
	return out
}

func printRows(w io.Writer, rows map[string]int64) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, n := range slices.Sorted(maps.Keys(rows)) {
		fmt.Fprintf(tw, "  %s\t%d\n", n, rows[n])
	}
	tw.Flush()
}
