package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/reinit"
	"github.com/rehearse-dev/rehearse/restore"
)

func init() {
	register("restore", "restore a dumpdata backup, optionally into a clean system (--with-reinit)", cmdRestore)
}

func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("restore", helpText("restore"), stderr)
	dsnFlag := fs.String("dsn", "", "database to restore into (or REHEARSE_DSN)")
	from := fs.String("from-file", "", "dumpdata backup (.json or .json.gz)")
	withReinit := fs.Bool("with-reinit", false, "empty the system first (keep admin, delete everyone else)")
	strategy := fs.String("strategy", string(restore.TwoPhase), "two-phase or atomic")
	adminPW := fs.String("admin-password", edms.DefaultAdminPassword, "admin's password after the reinit")
	allow := fs.Bool("allow-unmarked", false, "run even if the database is not marked as a rehearsal target (see rehearse mark)")
	allowEmpty := fs.Bool("allow-empty", false, "accept a backup without objects after --with-reinit (it leaves only admin)")
	if pos, code, ok := parse(fs, args); !ok {
		return code
	} else if !noArgs(fs, pos) {
		return exitError
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
	start := time.Now()
	opts.Progress = restoreProgress(stdout, start, isTerminal(stdout))
	res, err := restore.Restore(ctx, conn, opts)
	if err != nil {
		return fail(stderr, "restore", err)
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

func printRows(w io.Writer, rows map[string]int64) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, n := range slices.Sorted(maps.Keys(rows)) {
		fmt.Fprintf(tw, "  %s\t%d\n", n, rows[n])
	}
	tw.Flush()
}
