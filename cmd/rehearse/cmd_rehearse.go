package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/reports"
)

//go:embed rehearsal/default.yaml
var defaultRehearsal []byte

func init() {
	register("rehearse", "rehearse restore_from_file with reinit against a running system and report its auth impact", cmdRehearse)
}

func cmdRehearse(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("rehearse", `rehearse --target URL [--dsn DSN] [--scenario FILE] [--target-file FILE] [flags]

The pre-staging run: calls the system's restore_from_file with with_reinit
while probes log in and use old tokens every 10 ms, then checks the auth
timeline (old tokens 401, original passwords work, the reinit default
password does not) and, with --dsn, the database (foreign keys, sequences,
ids, counts, hashes; the reinit and restore commits are watched there).

It WIPES the system's data and restores it from a backup taken just before
(with --dsn) or from --backup. With --dsn the database must be marked as a
rehearsal target (rehearse mark); without it, --allow-unmarked confirms the
target is disposable. Only loopback URLs and databases are accepted.

The default scenario uses the users of fixture edms-small (see
fixtures/README.md); --scenario runs your own (target: http). Endpoint
paths and field names follow DESIGN.md (DRF + simplejwt) unless a target
file says otherwise (see README "Rehearse against your Django app").
Exit code: 0 passed, 1 an expectation failed, 2 could not run.`, stderr)
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
	s, err := loadRehearsal(*scenario, *targetFile, *dsn != "")
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitError
	}
	if *backup != "" {
		if s.Operation.RestoreFromFile == nil {
			fmt.Fprintf(stderr, "%s: --backup needs a restore_from_file operation\n", s.Pos)
			return exitError
		}
		if _, err := os.Stat(*backup); err != nil {
			return fail(stderr, "rehearse", err)
		}
		s.Operation.RestoreFromFile.BackupFile = *backup
		if *scenario == "" {
			s.Expect = harness.WithoutBackupChecks(s.Expect)
		} else if len(harness.WithoutBackupChecks(s.Expect)) != len(s.Expect) {
			fmt.Fprintf(stderr, "%s: counts_match_backup and hashes_match_backup compare with the backup rehearse takes itself; remove them to upload --backup\n", s.Pos)
			return exitError
		}
	}
	if *target == "" && (s.HTTP == nil || s.HTTP.BaseURL == "") {
		fmt.Fprintln(stderr, "rehearse rehearse: give the system's base URL with --target URL (or base_url in the target file)")
		return exitError
	}
	if *target != "" {
		if err := harness.CheckLoopback(*target); err != nil {
			return fail(stderr, "rehearse", err)
		}
	}
	if *dsn == "" && (s.HTTP == nil || s.HTTP.DSN == "") && !*allow {
		fmt.Fprintln(stderr, "rehearse rehearse: the rehearsal wipes the system's data, and without --dsn rehearse cannot check that its database is marked as a rehearsal target (rehearse mark); give --dsn, or pass --allow-unmarked to confirm the target is disposable")
		return exitError
	}
	runner := &harness.Runner{BaseURL: *target, DSN: *dsn, AllowUnmarked: *allow,
		Logf: func(format string, a ...any) { fmt.Fprintf(stdout, "  "+format+"\n", a...) }}
	started := time.Now()
	fmt.Fprintf(stdout, "rehearse: %s against %s\n", s.Name, describeTarget(*target, s))
	res := runner.Run(ctx, s)
	printResult(stdout, res, *verbose)
	rf := harness.RunFile{Version: harness.ResultsVersion, Started: started, Duration: time.Since(started), Results: []*harness.Result{res}}
	if *out != "" {
		if err := writeJSON(*out, rf); err != nil {
			return fail(stderr, "rehearse", err)
		}
		fmt.Fprintf(stdout, "results written to %s\n", *out)
	}
	if *reportDir != "" {
		written, err := reports.WriteAll(*reportDir, &rf, reports.Options{})
		if err != nil {
			return fail(stderr, "rehearse", err)
		}
		for _, p := range written {
			fmt.Fprintf(stdout, "report written to %s\n", p)
		}
	}
	if res.Status == harness.Errored {
		fmt.Fprintf(stderr, "rehearse rehearse: %s\n", res.Error)
	}
	switch res.Status {
	case harness.Passed:
		return exitOK
	case harness.Failed:
		return exitFailed
	}
	return exitError
}

// loadRehearsal loads the scenario (or the built-in one) and applies the
// target file. Without a database the built-in scenario drops the checks
// that need one.
func loadRehearsal(path, targetFile string, haveDSN bool) (*harness.Scenario, error) {
	var s *harness.Scenario
	var err error
	if path != "" {
		s, err = harness.LoadFile(path)
	} else {
		s, err = harness.Parse("(built-in rehearsal)", defaultRehearsal)
	}
	if err != nil {
		return nil, err
	}
	if s.Target != harness.TargetHTTP {
		return nil, fmt.Errorf("%s: rehearse runs scenarios with target: http (this one is %q; run it with rehearse run)", s.Pos, s.Target)
	}
	if targetFile != "" {
		abs, _ := filepath.Abs(targetFile)
		tf, err := harness.LoadTargetFile(abs)
		if err != nil {
			return nil, err
		}
		s.HTTP = tf
	}
	if path == "" && !haveDSN {
		s.Expect = harness.WithoutDatabaseChecks(s.Expect)
	}
	return s, nil
}

func describeTarget(flagURL string, s *harness.Scenario) string {
	if flagURL != "" {
		return flagURL
	}
	return s.HTTP.BaseURL
}
