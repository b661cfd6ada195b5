package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/reinit"
)

func cmdReinit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("reinit", stderr)
	dsnFlag := addDSNFlag(fs, "to reinitialise")
	dry := fs.Bool("dry-run", false, "print what would be deleted; change nothing")
	confirm := fs.Bool("confirm", false, "really delete")
	adminPW := fs.String("admin-password", edms.DefaultAdminPassword, "admin's password after the reinit")
	allow := fs.Bool("allow-unmarked", false, "run even if the database is not marked as a rehearsal target (see rehearse mark)")
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	if *dry == *confirm {
		return fail(stderr, "reinit", fmt.Errorf("say either --dry-run (show what would be deleted) or --confirm (delete it)"))
	}
	conn, err := openDB(ctx, *dsnFlag)
	if err != nil {
		return fail(stderr, "reinit", err)
	}
	defer conn.Close(context.Background())
	if *confirm {
		if err := checkTarget(ctx, conn, "reinit", *allow); err != nil {
			return fail(stderr, "reinit", err)
		}
	}
	cfg := edms.ReinitConfig(*adminPW, true)
	cfg.Progress = reinitProgress(stdout, time.Now(), isTerminal(stdout))
	var plan *reinit.Plan
	if *dry {
		plan, err = reinit.DryRun(ctx, conn, cfg)
	} else {
		plan, err = reinit.Run(ctx, conn, cfg)
	}
	if err != nil {
		return fail(stderr, "reinit", err)
	}
	printPlan(stdout, plan)
	return exitOK
}

func printPlan(w io.Writer, plan *reinit.Plan) {
	if plan.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed; with --confirm the reinit would do this:")
	} else {
		fmt.Fprintf(w, "reinit committed in %s:\n", plan.Took.Round(1e5))
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  table\trows\tdeleted\tset NULL\tleft")
	for _, e := range plan.Tables {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\n", e.Table, e.Before, e.Deleted, e.Nulled, e.Before-e.Deleted)
	}
	tw.Flush()
	switch plan.AdminAction {
	case "kept":
		fmt.Fprintf(w, "admin: kept (id %d), password reset to the default\n", plan.AdminID)
	default:
		fmt.Fprintf(w, "admin: recreated (new id %d) with the default password\n", plan.AdminID)
	}
	for _, s := range plan.Sequences {
		if s.Before != s.After {
			fmt.Fprintf(w, "sequence %s: next %d -> %d\n", s.Sequence, s.Before, s.After)
		}
	}
}

var _ pgx.Tx
