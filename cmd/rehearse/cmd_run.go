package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/reports"
	"github.com/rehearse-dev/rehearse/results"
)

func init() {
	register("run", "run YAML scenarios (files or folders; default scenarios/) and report", cmdRun)
	register("validate", "check scenario files without running them", cmdValidate)
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", helpText("run"), stderr)
	jsonOut := fs.String("out", "", "also write the results as JSON to this file")
	reportDir := fs.String("report-dir", "results", "write report.md, report.html, junit.xml and results.json into this folder (\"\" for none)")
	parallel := fs.Int("parallel", runtime.GOMAXPROCS(0), "scenarios run at once")
	verbose := fs.Bool("v", false, "print every expectation, not only failures")
	provider := addProviderFlags(fs)
	paths, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(paths) == 0 {
		paths = []string{"scenarios"}
	}
	scenarios, err := harness.LoadPaths(paths)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		fmt.Fprintln(stderr, "rehearse run: invalid scenarios; nothing was run (check them with: rehearse validate PATH)")
		return exitError
	}
	started := time.Now()
	fmt.Fprintf(stdout, "rehearse: %d scenario(s)\n", len(scenarios))
	prov, err := provider.open(ctx, stdout)
	if err != nil {
		return fail(stderr, "run", err)
	}
	defer prov.Close()
	runner := &harness.Runner{Provider: prov}
	defer runner.Close()

	out := make([]*results.Result, len(scenarios))
	var mu sync.Mutex
	sem := make(chan struct{}, max(1, *parallel))
	var wg sync.WaitGroup
	for i, s := range scenarios {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			mu.Lock()
			fmt.Fprintf(stdout, "  … %s\n", s.Name)
			mu.Unlock()
			res := runner.Run(ctx, s)
			out[i] = res
			mu.Lock()
			defer mu.Unlock()
			printResult(stdout, res, *verbose)
		}()
	}
	wg.Wait()

	rf := &results.RunFile{Version: results.Version, Started: started, Duration: time.Since(started), Results: out}
	if err := writeOutputs(stdout, rf, *jsonOut, *reportDir); err != nil {
		return fail(stderr, "run", err)
	}
	passed, failed, errored := rf.Counts()
	fmt.Fprintf(stdout, "%d passed, %d failed, %d errors in %s\n", passed, failed, errored, time.Since(started).Round(time.Millisecond))
	return exitCode(rf, ctx)
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

func printResult(w io.Writer, r *results.Result, verbose bool) {
	mark := map[results.Status]string{results.Passed: "PASS", results.Failed: "FAIL", results.Errored: "ERROR"}[r.Status]
	fmt.Fprintf(w, "%-5s %s (%s, setup %s)\n", mark, r.Name, r.Duration.Round(time.Millisecond), r.Setup.Round(time.Millisecond))
	if r.Status == results.Errored {
		fmt.Fprintf(w, "      the harness could not run it: %s\n", r.Error)
		return
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

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("validate", helpText("validate"), stderr)
	showPlan := fs.Bool("plan", false, "print each scenario's plan (every default resolved) as JSON")
	paths, code, ok := parse(fs, args)
	if !ok {
		return code
	}
	if len(paths) == 0 {
		paths = []string{"scenarios"}
	}
	scenarios, err := harness.LoadPaths(paths)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	for _, s := range scenarios {
		// Planning finds what only the environment can say (a password_env
		// that is not set).
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
