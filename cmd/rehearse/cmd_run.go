package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/reports"
	"github.com/rehearse-dev/rehearse/results"
)

// runFlags are the flags of rehearse run.
type runFlags struct {
	out, reportDir, shard *string
	parallel              *int
	verbose, quiet        *bool
	provider              providerFlags
}

func addRunFlags(fs *flag.FlagSet) runFlags {
	return runFlags{
		out:       fs.String("out", "", "also write the results as JSON to this file"),
		reportDir: fs.String("report-dir", "results", "write report.md, report.html, junit.xml and results.json into this folder (\"\" for none)"),
		shard:     fs.String("shard", os.Getenv(harness.ShardEnv), "run the Kth of N shards of the scenarios (K/N, e.g. 2/3: in name order, every Nth from the Kth), to split a suite over CI runners (env "+harness.ShardEnv+")"),
		parallel:  fs.Int("parallel", runtime.GOMAXPROCS(0), "scenarios run at once"),
		verbose:   fs.Bool("v", false, "print every expectation, not only failures"),
		quiet:     fs.Bool("q", false, "print one line per scenario and the summary, nothing else"),
		provider:  addProviderFlags(fs),
	}
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", stderr)
	f := addRunFlags(fs)
	paths, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	shard, err := harness.ParseShard(*f.shard)
	if err != nil {
		return fail(stderr, "run", err)
	}
	all, builtin, err := loadScenarios(paths)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		fmt.Fprintln(stderr, "rehearse run: invalid scenarios; nothing was run (check them with: rehearse validate PATH)")
		return exitError
	}
	scenarios := shard.Scenarios(all)
	started := time.Now()
	pr := newProgress(stdout, *f.quiet)
	if shard.All() {
		pr.printf("rehearse: %d %sscenario(s)\n", len(scenarios), builtin)
	} else {
		pr.printf("rehearse: shard %s: %d of %d %sscenario(s)\n", shard, len(scenarios), len(all), builtin)
	}
	defer pr.heartbeat()()
	pr.wait("PostgreSQL to start")
	prov, err := f.provider.open(ctx, pr)
	pr.wait("")
	if err != nil {
		return fail(stderr, "run", err)
	}
	defer prov.Close()
	runner := &harness.Runner{Provider: prov}
	defer runner.Close()
	out := runAll(ctx, runner, scenarios, *f.parallel, func(w io.Writer, r *results.Result) { printResult(w, r, *f.verbose, *f.quiet) }, pr)

	rf := &results.RunFile{Version: results.Version, Started: started, Duration: time.Since(started), Results: out}
	if err := writeOutputs(pr, rf, *f.out, *f.reportDir); err != nil {
		return fail(stderr, "run", err)
	}
	passed, failed, errored := rf.Counts()
	fmt.Fprintf(stdout, "%d passed, %d failed, %d errors in %s\n", passed, failed, errored, time.Since(started).Round(time.Millisecond))
	return exitCode(rf, ctx)
}

// runAll runs the scenarios, parallel at once, and prints each result as
// it comes.
func runAll(ctx context.Context, runner *harness.Runner, scenarios []*harness.Scenario, parallel int,
	print func(io.Writer, *results.Result), pr *progress) []*results.Result {
	out := make([]*results.Result, len(scenarios))
	sem := make(chan struct{}, max(1, parallel))
	var wg sync.WaitGroup
	for i, s := range scenarios {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			pr.start(s.Name)
			res := runner.Run(ctx, s)
			out[i] = res
			pr.done(s.Name, func(w io.Writer) { print(w, res) })
		}()
	}
	wg.Wait()
	return out
}

// writeOutputs writes the results file (--out) and the reports
// (--report-dir); reports writes both, with secrets redacted.
func writeOutputs(stdout io.Writer, rf *results.RunFile, out, reportDir string) error {
	if out != "" {
		if err := reports.WriteResults(out, rf); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "results written to %s\n", out)
	}
	if reportDir == "" {
		return nil
	}
	written, err := reports.WriteAll(reportDir, rf, reports.Options{})
	if err != nil {
		return err
	}
	for _, p := range written {
		fmt.Fprintf(stdout, "report written to %s\n", p)
	}
	return nil
}

// exitCode is 0 when every scenario passed, 1 when an expectation failed,
// 2 when a scenario could not be run or the run was interrupted.
func exitCode(rf *results.RunFile, ctx context.Context) int {
	_, failed, errored := rf.Counts()
	switch {
	case errored > 0 || ctx.Err() != nil:
		return exitError
	case failed > 0:
		return exitFailed
	}
	return exitOK
}

func printResult(w io.Writer, r *results.Result, verbose, quiet bool) {
	mark := map[results.Status]string{results.Passed: "PASS", results.Failed: "FAIL", results.Errored: "ERROR"}[r.Status]
	head := fmt.Sprintf("%-5s %s (%s, setup %s)", mark, r.Name, r.Duration.Round(time.Millisecond), r.Setup.Round(time.Millisecond))
	if quiet {
		fmt.Fprintln(w, head+quietReason(r))
		return
	}
	fmt.Fprintln(w, head)
	if r.Status == results.Errored {
		if o := r.Facts.Outcome; o != "" && o != results.OperationCompleted {
			// The harness ran; the operation did not happen as it should.
			fmt.Fprintf(w, "      %s\n", r.Error)
		} else {
			fmt.Fprintf(w, "      the harness could not run it: %s\n", r.Error)
		}
		if r.Facts.Outcome != results.OperationFailedAfterReinit {
			return
		}
	}
	for _, p := range r.Probes {
		fmt.Fprintf(w, "      probe %-22s %4d samples, %3d failed, longest window %s\n", p.Name, p.Samples, p.Failures, time.Duration(p.LongestMS*float64(time.Millisecond)).Round(100*time.Microsecond))
	}
	for _, o := range r.Expectations {
		if !o.Pass {
			fmt.Fprintln(w, indent(harness.FormatFailure(o), "      "))
		} else if verbose {
			fmt.Fprintf(w, "      ok  %s: %s\n", o.Subject, o.Measured)
		}
	}
}

// quietReason is why a scenario did not pass, on the same line: its error,
// or its first failed expectation and how many more failed.
func quietReason(r *results.Result) string {
	if r.Status == results.Errored {
		return ": " + strings.Join(strings.Fields(r.Error), " ")
	}
	var failed []results.Outcome
	for _, o := range r.Expectations {
		if !o.Pass {
			failed = append(failed, o)
		}
	}
	if len(failed) == 0 {
		return ""
	}
	o := failed[0]
	reason := fmt.Sprintf(": %s: %s: expected %s, measured %s", o.Pos, o.Subject, o.Expected, strings.Join(strings.Fields(o.Measured), " "))
	if len(failed) > 1 {
		reason += fmt.Sprintf(" (and %d more)", len(failed)-1)
	}
	return reason
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", stderr)
	showPlan := fs.Bool("plan", false, "print each scenario's plan (every default resolved) as JSON")
	paths, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	scenarios, _, err := loadScenarios(paths)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	for _, s := range scenarios {
		// Planning resolves every default; a plan that cannot be made is
		// an error here too.
		p, err := harness.NewPlan(s, harness.Overrides{})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return exitError
		}
		if !*showPlan {
			fmt.Fprintf(stdout, "ok  %s (%s)\n", s.Pos.File, s.Name)
			continue
		}
		b, err := p.JSON()
		if err != nil {
			return fail(stderr, "validate", err)
		}
		stdout.Write(b)
	}
	return exitOK
}
