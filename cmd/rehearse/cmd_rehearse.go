package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/results"
)

// planned, when set (by tests in this package), sees the rehearsal's plan
// before it runs: the accounts it will create and their passwords, to log
// in as them from outside and to look for the passwords in every output.
var planned func(*harness.Plan)

func cmdRehearse(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("rehearse", stderr)
	target := fs.String("target", "", "base URL of the running system (loopback only), e.g. http://127.0.0.1:8000")
	dsn := fs.String("dsn", os.Getenv("REHEARSE_TARGET_DSN"), "the system's database, for seeding, watching the commits and the invariants (env REHEARSE_TARGET_DSN)")
	scenario := fs.String("scenario", "", "scenario file with target: http (default: the built-in rehearsal)")
	targetFile := fs.String("target-file", "", "target file: endpoint paths, field names, admin, signing key (overrides the scenario's)")
	backup := fs.String("backup", "", "dumpdata backup to upload (default: one taken from --dsn just before)")
	out := fs.String("out", "", "also write the results as JSON to this file")
	reportDir := fs.String("report-dir", "results", "write the auth-impact report (report.md, report.html), junit.xml and results.json into this folder (\"\" for none)")
	allow := fs.Bool("allow-unmarked", false, "rehearse although the database of --dsn is not marked as a rehearsal target, or without --dsn (the marker cannot be checked then)")
	verbose := fs.Bool("v", false, "print every expectation, not only failures")
	positional, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(positional) > 0 {
		fmt.Fprintf(stderr, "rehearse rehearse: unexpected argument %q (the scenario goes in --scenario)\n", positional[0])
		return exitError
	}
	p, err := harness.PlanRehearsal(harness.Rehearsal{Scenario: *scenario, TargetFile: *targetFile, Backup: *backup,
		BaseURL: *target, DSN: *dsn, AllowUnmarked: *allow})
	if err != nil {
		return fail(stderr, "rehearse", err)
	}
	if planned != nil {
		planned(p)
	}
	pr := newProgress(stdout, false)
	runner := &harness.Runner{AllowUnmarked: *allow, Logf: func(format string, a ...any) { pr.printf("  "+format+"\n", a...) }}
	started := time.Now()
	pr.printf("rehearse: %s against %s\n", p.Name, p.System.BaseURL)
	defer pr.heartbeat()()
	pr.start(p.Name)
	res := runner.RunPlan(ctx, p)
	pr.done(p.Name, func(w io.Writer) { printResult(w, res, *verbose, false) })
	rf := &results.RunFile{Version: results.Version, Started: started, Duration: time.Since(started), Results: []*results.Result{res}}
	if err := writeOutputs(pr, rf, *out, *reportDir); err != nil {
		return fail(stderr, "rehearse", err)
	}
	if res.Status == results.Errored {
		fmt.Fprintf(stderr, "rehearse rehearse: %s\n", res.Error)
	}
	return exitCode(rf, ctx)
}
