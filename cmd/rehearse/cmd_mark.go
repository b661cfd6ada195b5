package main

import (
	"context"
	"fmt"
	"io"

	"github.com/rehearse-dev/rehearse/pg/guard"
)

func cmdMark(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("mark", stderr, "{marker}", guard.DefaultSchema+"."+guard.Table)
	dsnFlag := addDSNFlag(fs, "to mark")
	note := fs.String("note", "marked by rehearse mark", "why this database may be destroyed")
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	conn, err := openDB(ctx, *dsnFlag)
	if err != nil {
		return fail(stderr, "mark", err)
	}
	defer conn.Close(context.Background())
	if err := guard.Mark(ctx, conn, *note); err != nil {
		return fail(stderr, "mark", err)
	}
	fmt.Fprintln(stdout, "marked as a rehearsal target")
	return exitOK
}
