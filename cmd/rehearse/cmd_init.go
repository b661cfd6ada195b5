package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
)

func init() {
	register("init", "create the reference schema in an empty database and seed a fixture", cmdInit)
}

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("init", `init --dsn DSN [--fixture NAME]

Creates the reference EDMS schema (Django-shaped tables) in an empty database
and seeds a fixture into it. Fixtures: `+fmt.Sprint(fixtures.Names()), stderr)
	dsnFlag := fs.String("dsn", "", "database to initialise (or REHEARSE_DSN)")
	fixture := fs.String("fixture", "edms-small", "fixture to seed; \"none\" for the schema only")
	if pos, code, ok := parse(fs, args); !ok {
		return code
	} else if !noArgs(fs, pos) {
		return exitError
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
	if err := edms.Install(ctx, conn); err != nil {
		return fail(stderr, "init", err)
	}
	fmt.Fprintln(stdout, "schema created")
	if f == nil {
		return exitOK
	}
	res, err := edms.Seed(ctx, conn, f)
	if err != nil {
		return fail(stderr, "init", fmt.Errorf("seed %s: %w", f.Name, err))
	}
	fmt.Fprintf(stdout, "seeded %s: %d objects in %s\n", f.Name, res.Objects, res.Timings.Total.Round(1e6))
	printRows(stdout, res.Rows)
	return exitOK
}
