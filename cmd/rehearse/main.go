// Command rehearse rehearses a destructive "restore into a clean system" on a
// web application backed by PostgreSQL, and measures what it does to logins,
// tokens and foreign keys. This file only wires subcommands to packages.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes: 0 success, 1 an expectation failed, 2 bad input or the harness
// could not run.
const (
	exitOK     = 0
	exitFailed = 1
	exitError  = 2
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands holds every subcommand: its one-line summary and the function
// (in cmd_NAME.go) that runs it. usage lists them by name.
var commands = map[string]command{
	"backup":   {"write the database's application tables as a Django dumpdata backup", cmdBackup},
	"init":     {"create the reference schema in an empty database and seed a fixture", cmdInit},
	"mark":     {"mark a database as a rehearsal target, allowing destructive steps on it", cmdMark},
	"rehearse": {"rehearse restore_from_file with reinit against a running system and report its auth impact", cmdRehearse},
	"reinit":   {"empty the system down to admin (dry run, or for real with --confirm)", cmdReinit},
	"report":   {"turn a results file (run --out) into Markdown, JSON, JUnit XML or HTML", cmdReport},
	"restore":  {"restore a dumpdata backup, optionally into a clean system (--with-reinit)", cmdRestore},
	"run":      {"run YAML scenarios (files or folders; default ./scenarios, else the built-in ones) and report", cmdRun},
	"schema":   {"print the JSON Schema of scenario files, target files or results files", cmdSchema},
	"serve":    {"run the reference system's HTTP API on loopback (embedded PostgreSQL by default)", cmdServe},
	"validate": {"check scenario files without running them", cmdValidate},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "rehearse: rehearse a destructive restore-with-reinit against a real PostgreSQL and measure its auth impact.")
	fmt.Fprintln(w, "\nUsage: rehearse <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'rehearse help <command>' (or 'rehearse <command> -h') for what a command does and its flags,")
	fmt.Fprintln(w, "'rehearse --version' for the version.")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	helpFor := false
	switch {
	case len(args) == 0:
		usage(stderr)
		return exitError
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help" && len(args) == 1:
		usage(stdout)
		return exitOK
	case args[0] == "--version" || args[0] == "version":
		printVersion(stdout)
		return exitOK
	case args[0] == "help":
		args, helpFor = args[1:], true
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "rehearse: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitError
	}
	if helpFor {
		// The same page as "rehearse CMD -h", on standard output.
		return cmd.run(context.Background(), []string{"-h"}, stdout, stdout)
	}
	// Ctrl-C cancels the context: commands stop, throwaway clusters are removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cmd.run(ctx, args[1:], stdout, stderr)
}

// helpTexts are the commands' help pages (help/NAME.txt): a synopsis line,
// then what the command does.
//
//go:embed help/*.txt
var helpTexts embed.FS

// helpText is the help page of command name, with placeholders ("{marker}")
// replaced by the values that follow them in pairs.
func helpText(name string, placeholders ...string) string {
	b, err := helpTexts.ReadFile("help/" + name + ".txt")
	if err != nil {
		panic("rehearse: no help page for command " + name) // a build mistake, caught by TestEveryCommandHasHelp
	}
	return strings.NewReplacer(placeholders...).Replace(string(b))
}

// newFlags makes the FlagSet of command name, whose -h prints the command's
// help page (helpText(name, placeholders...)) and its flags.
func newFlags(name string, stderr io.Writer, placeholders ...string) *flag.FlagSet {
	synopsis := helpText(name, placeholders...)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		// The help page's first line is the command's synopsis.
		page := strings.TrimSpace(synopsis)
		if first, rest, _ := strings.Cut(page, "\n"); strings.HasPrefix(first, name) {
			page = first + "\n" + rest
		} else {
			page = name + "\n\n" + page
		}
		fmt.Fprintf(stderr, "Usage: rehearse %s\n\nFlags:\n", page)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags, which may come before, between or after positional
// arguments, and returns the positional ones. ok is false when the command
// must stop with code.
func parse(fs *flag.FlagSet, args []string) (positional []string, code int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, false
			}
			return nil, exitError, false
		}
		if fs.NArg() == 0 {
			return positional, 0, true
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseNoArgs parses the flags of a command that takes no positional
// arguments, and refuses any. ok is false when the command must stop with
// code.
func parseNoArgs(fs *flag.FlagSet, args []string) (code int, ok bool) {
	positional, code, ok := parse(fs, args)
	if !ok {
		return code, false
	}
	if len(positional) > 0 {
		fmt.Fprintf(fs.Output(), "rehearse %s: unexpected argument %q (see rehearse %s -h)\n", fs.Name(), positional[0], fs.Name())
		return exitError, false
	}
	return 0, true
}

// addDSNFlag adds --dsn of a command that works on one database, which openDB
// opens; purpose says what the command does to it ("to back up").
func addDSNFlag(fs *flag.FlagSet, purpose string) *string {
	return fs.String("dsn", "", "database "+purpose+" (or REHEARSE_DSN)")
}

// fail prints an error and returns the exit code for it.
func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "rehearse %s: %v\n", cmd, err)
	return exitError
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
