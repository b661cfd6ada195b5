package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/pg/guard"
	"github.com/rehearse-dev/rehearse/restore"
)

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("init", stderr, "{fixtures}", fmt.Sprint(fixtures.Names()))
	dsnFlag := addDSNFlag(fs, "to initialise")
	fixture := fs.String("fixture", "edms-small", "fixture to seed; \"none\" for the schema only")
	allowNonEmpty := fs.Bool("allow-nonempty", false, "initialise and mark a database that already holds other relations (they become fair game for reinit)")
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	var f *fixtures.Fixture
	if *fixture != "none" {
		var err error
		if f, err = fixtures.Get(*fixture); err != nil {
			return fail(stderr, "init", err)
		}
	}
	conn, err := openDB(ctx, *dsnFlag)
	if err != nil {
		return fail(stderr, "init", err)
	}
	defer conn.Close(context.Background())
	if !*allowNonEmpty {
		if err := refuseNonEmpty(ctx, conn); err != nil {
			return fail(stderr, "init", err)
		}
	}
	if err := edms.Install(ctx, conn); err != nil {
		return fail(stderr, "init", err)
	}
	fmt.Fprintln(stdout, "schema created")
	if f == nil {
		return exitOK
	}
	opts := edms.RestoreOptions(f.Open, restore.Atomic, nil)
	opts.Progress = seedProgress(stdout, time.Now(), isTerminal(stdout))
	res, err := restore.Restore(ctx, conn, opts)
	if err != nil {
		return fail(stderr, "init", fmt.Errorf("seed %s: %w", f.Name, err))
	}
	fmt.Fprintf(stdout, "seeded %s: %d objects in %s\n", f.Name, res.Objects, res.Timings.Total.Round(1e6))
	printRows(stdout, res.Rows)
	return exitOK
}

// refuseNonEmpty refuses a database that holds relations: init marks the
// database as a rehearsal target, and reinit and restore then change it freely.
func refuseNonEmpty(ctx context.Context, conn *pgx.Conn) error {
	const shown = 5
	found, err := guard.Contents(ctx, conn, shown+1)
	if err != nil || len(found) == 0 {
		return err
	}
	list := strings.Join(found[:min(len(found), shown)], ", ")
	if len(found) > shown {
		list += ", ..."
	}
	return fmt.Errorf("the database is not empty (%s); init would mark it as a rehearsal target, which lets reinit and restore change what it holds. "+
		"Create an empty database for rehearsals (createdb NAME), or pass --allow-nonempty if this one is a disposable copy", list)
}
