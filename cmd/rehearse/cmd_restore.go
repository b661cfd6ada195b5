package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/reinit"
	"github.com/rehearse-dev/rehearse/restore"
)

// restoreFlags are the flags of rehearse restore.
type restoreFlags struct {
	dsn, from, strategy, adminPW          *string
	withReinit, allowUnmarked, allowEmpty *bool
	statementTimeout, lockTimeout         *time.Duration
	limits                                *scanLimits
}

func addRestoreFlags(fs *flag.FlagSet) restoreFlags {
	return restoreFlags{
		dsn:              addDSNFlag(fs, "to restore into"),
		from:             fs.String("from-file", "", "dumpdata backup (.json or .json.gz)"),
		withReinit:       fs.Bool("with-reinit", false, "empty the system first (keep admin, delete everyone else)"),
		strategy:         fs.String("strategy", string(restore.TwoPhase), "two-phase or atomic"),
		adminPW:          fs.String("admin-password", edms.DefaultAdminPassword, "admin's password after the reinit"),
		allowUnmarked:    fs.Bool("allow-unmarked", false, "run even if the database is not marked as a rehearsal target (see rehearse mark)"),
		allowEmpty:       fs.Bool("allow-empty", false, "accept a backup without objects after --with-reinit (it leaves only admin)"),
		statementTimeout: fs.Duration("statement-timeout", restore.DefaultStatementTimeout, "longest a statement of the restore may run (or wait idle in its transaction) on the server; one COPY loads a whole table"),
		lockTimeout:      fs.Duration("lock-timeout", restore.DefaultLockTimeout, "longest the restore waits for a lock another session holds"),
		limits:           limitFlags(fs),
	}
}

func cmdRestore(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("restore", stderr)
	f := addRestoreFlags(fs)
	if code, ok := parseNoArgs(fs, args); !ok {
		return code
	}
	st, err := restore.ParseStrategy(*f.strategy)
	if err != nil {
		return fail(stderr, "restore", err)
	}
	if *f.from == "" {
		return fail(stderr, "restore", fmt.Errorf("no backup: pass --from-file backup.json.gz"))
	}
	if _, err := os.Stat(*f.from); err != nil {
		return fail(stderr, "restore", err)
	}
	if err := f.limits.check(); err != nil {
		return fail(stderr, "restore", err)
	}
	if *f.statementTimeout <= 0 || *f.lockTimeout <= 0 {
		return fail(stderr, "restore", fmt.Errorf("--statement-timeout and --lock-timeout must be positive"))
	}
	conn, err := openDB(ctx, *f.dsn)
	if err != nil {
		return fail(stderr, "restore", err)
	}
	defer conn.Close(context.Background())
	if err := checkTarget(ctx, conn, "restore", *f.allowUnmarked); err != nil {
		return fail(stderr, "restore", err)
	}
	var withReinitCfg *reinit.Config
	if *f.withReinit {
		cfg := edms.ReinitConfig(*f.adminPW, true)
		cfg.Progress = reinitProgress(stdout, time.Now(), isTerminal(stdout))
		withReinitCfg = &cfg
	}
	opts := edms.RestoreOptions(func() (io.ReadCloser, error) { return os.Open(*f.from) }, st, withReinitCfg)
	opts.AllowEmpty = *f.allowEmpty
	opts.StatementTimeout, opts.LockTimeout = *f.statementTimeout, *f.lockTimeout
	opts.Open = restore.WithLimits(opts.Open, f.limits.Limits())
	rec := recoveryFor(*f.dsn, *f.from, flagsAgain(fs, "allow-unmarked", "allow-empty", "statement-timeout", "lock-timeout", "max-object-size", "max-expansion", "max-decompressed-size"))
	if isSet(fs, "admin-password") {
		rec.Note = strings.TrimPrefix(rec.Note+"; add --admin-password as you gave it", "; ")
	}
	return runRestore(ctx, conn, opts, rec, stdout, stderr)
}

// runRestore runs the restore under the window guard and prints its outcome.
func runRestore(parent context.Context, conn *pgx.Conn, opts restore.Options, rec edms.Recovery, stdout, stderr io.Writer) int {
	ctx, guard, stop := guardWindow(parent, stderr)
	defer stop()
	start := time.Now()
	show := restoreProgress(stdout, start, isTerminal(stdout))
	opts.Progress = func(e restore.Event) {
		show(e)
		if e.Phase == restore.PhaseValidated && e.Window != nil {
			printWindow(stdout, e.Window, rec)
		}
		guard.phase(e)
	}
	res, err := restore.Restore(ctx, conn, opts)
	if err != nil {
		return failRestore(stderr, err, rec)
	}
	fmt.Fprintf(stdout, "restored %d objects (%s) in %s\n", res.Objects, res.Strategy, res.Timings.Total.Round(time.Millisecond))
	if pv := res.Prevalidation; pv != nil {
		fmt.Fprintf(stdout, "the backup was proven before anything committed by %s\n", pv)
	}
	printRows(stdout, res.Rows)
	for _, s := range res.Sequences {
		if s.Before != s.After {
			fmt.Fprintf(stdout, "sequence %s: next %d -> %d\n", s.Sequence, s.Before, s.After)
		}
	}
	return exitOK
}

// isSet says whether flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// flagsAgain are the named flags that were given, as --name=value.
func flagsAgain(fs *flag.FlagSet, names ...string) []string {
	var out []string
	for _, n := range names {
		if isSet(fs, n) {
			out = append(out, "--"+n+"="+fs.Lookup(n).Value.String())
		}
	}
	return out
}

func printRows(w io.Writer, rows map[string]int64) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, n := range slices.Sorted(maps.Keys(rows)) {
		fmt.Fprintf(tw, "  %s\t%d\n", n, rows[n])
	}
	tw.Flush()
}

// scanLimits are the flags that bound the backup scanner (restore.Limits).
type scanLimits struct {
	object, decompressed byteSize
	expansion            int
}

// limitFlags adds --max-object-size, --max-expansion and
// --max-decompressed-size to fs.
func limitFlags(fs *flag.FlagSet) *scanLimits {
	l := &scanLimits{object: restore.DefaultMaxObjectBytes}
	fs.Var(&l.object, "max-object-size", "largest single object of the backup, white space inside it included, as a `size` such as 64MiB or 500MB")
	fs.IntVar(&l.expansion, "max-expansion", restore.DefaultMaxExpansion, "most bytes a gzipped backup may decompress to per compressed byte, past its first "+humanize.IBytes(restore.ExpansionGrace)+" (0: no limit)")
	fs.Var(&l.decompressed, "max-decompressed-size", "most a gzipped backup may decompress to in all, as a `size` such as 20GiB (0: no limit)")
	return l
}

func (l *scanLimits) check() error {
	if l.object <= 0 {
		return fmt.Errorf("--max-object-size must be more than 0 bytes (the default is %s)", humanize.IBytes(restore.DefaultMaxObjectBytes))
	}
	if l.expansion < 0 {
		return fmt.Errorf("--max-expansion %d is negative: give a ratio such as %d, or 0 for no limit", l.expansion, restore.DefaultMaxExpansion)
	}
	return nil
}

// Limits are the flags as the engine takes them: its 0 means its default,
// the flag's 0 means none.
func (l *scanLimits) Limits() restore.Limits {
	out := restore.Limits{MaxObjectBytes: int(l.object), MaxExpansion: l.expansion, MaxDecompressedBytes: int64(l.decompressed)}
	if l.expansion == 0 {
		out.MaxExpansion = -1
	}
	return out
}

// byteSize is a flag holding a number of bytes, given with a unit or not:
// 64MiB, 1.5GB, 500000 (parsed by go-humanize: MB is 10^6, MiB 2^20).
type byteSize int64

func (b *byteSize) String() string { return humanize.IBytes(uint64(max(*b, 0))) }

func (b *byteSize) Set(v string) error {
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return fmt.Errorf("%q is not a size: give a number of bytes with or without a unit, e.g. 64MiB, 500MB or 1048576", v)
	}
	if n > math.MaxInt64 {
		return fmt.Errorf("%q is too large", v)
	}
	*b = byteSize(n)
	return nil
}
