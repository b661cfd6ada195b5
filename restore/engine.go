// Package restore writes and restores Django dumpdata backups on PostgreSQL.
//
// The engine is schema-generic: it learns tables, columns, foreign keys,
// many-to-many tables and sequences from the catalog (package pgcatalog). It
// validates a whole backup before it changes anything, loads with COPY
// (streaming, one object in memory at a time), replaces rows whose primary keys
// already exist (as Django's loaddata does), and moves every sequence past
// max(id). Two strategies:
//
//   - TwoPhase reproduces the original system's flow: the reinit commits, then the restore
//     commits, so other sessions see the emptied database in between. The
//     backup is proven before the reinit commits (Prevalidation): by the
//     validating pass, with PostgreSQL checking the rows near a limit the
//     engine does not model, or, for a schema with something the engine
//     cannot check (a CHECK constraint, say), by loading it once in a
//     savepoint rolled back.
//   - Atomic runs reinit and restore in one transaction: nobody sees the
//     in-between state, and any failure rolls all of it back.
package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/rate"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// Strategy says how reinit and restore are committed.
type Strategy string

const (
	TwoPhase Strategy = "two-phase"
	Atomic   Strategy = "atomic"
)

// ParseStrategy accepts the names used by the CLI, the HTTP server and scenarios.
func ParseStrategy(s string) (Strategy, error) {
	switch Strategy(s) {
	case TwoPhase, Atomic:
		return Strategy(s), nil
	case "":
		return TwoPhase, nil
	}
	return "", fmt.Errorf("unknown strategy %q: use %q (reinit commits, then restore: the original system's behaviour) or %q (one transaction, no window)", s, TwoPhase, Atomic)
}

// Phase names reported through Options.Progress.
const (
	PhaseValidated        = "validated"
	PhaseReinitCommitted  = "reinit committed"
	PhaseRestoreCommitted = "restore committed"
	PhaseTableLoaded      = "table loaded"
)

// Event is a progress report. At is taken right after the phase happened.
type Event struct {
	Phase string
	At    time.Time
	// Sent, on PhaseReinitCommitted, is taken right before the COMMIT was
	// sent: the commit became visible to other sessions between Sent and
	// At (whose answer may come late on a busy machine), so nothing another
	// session saw before Sent is its effect, and all it saw after At is.
	Sent  time.Time
	Table string
	Rows  int64
	// Took, on PhaseTableLoaded, is how long the run of Rows rows took to
	// load (see RowsPerSecond).
	Took time.Duration
	// Window, on PhaseValidated (two-phase with a reinit: the reinit
	// commits next) and PhaseReinitCommitted, is what the system is
	// without until PhaseRestoreCommitted.
	Window *Window
}

// Options configure one restore.
type Options struct {
	Open     Opener
	Schema   string // "" = public
	Strategy Strategy
	// Reinit, when set, empties the system first (the "with reinit" flow). It
	// runs in its own committed transaction (TwoPhase) or in the restore's
	// (Atomic), and reports what it did to each table (nil: unknown): a
	// two-phase restore that fails after the reinit committed says, from
	// this, what the system lost (WindowError).
	Reinit func(ctx context.Context, tx pgx.Tx) ([]ReinitEffect, error)
	// Protected tables are never written: a backup naming them is refused.
	Protected []string
	// KeepReadable are tables other sessions must be able to read while
	// the restore runs (the ones logins and profile calls read): the
	// restore never takes a lock on them that blocks readers. Other tables
	// whose every row the backup replaces may be emptied with TRUNCATE,
	// whose lock makes their readers wait until the restore commits. nil
	// means DefaultKeepReadable.
	KeepReadable []string
	Progress     func(Event)
	// BetweenPhases, when set, runs after the reinit committed and before the
	// restore starts (TwoPhase only): the harness uses it to act in the window.
	BetweenPhases func(ctx context.Context) error
	// AllowEmpty lets a backup without objects follow a reinit. Otherwise it
	// is refused: reinit plus an empty backup would wipe the system, which a
	// truncated or wrong file should never do.
	AllowEmpty bool
	// StatementTimeout and LockTimeout bound, on the server, each statement
	// (and each wait between two statements, idle in the transaction) and
	// each lock wait of the engine's transactions (the reinit's too), so
	// that the server ends them even when rehearse is gone; the server also
	// ends the statement of a client that disconnected. 0 means the default
	// (DefaultStatementTimeout, DefaultLockTimeout), a negative value leaves
	// the server's setting. One COPY loads a whole run of a model: a table
	// of tens of millions of rows may need a longer statement timeout.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
	// Defects, for the harness's proof that its checks can fail. Never set in production.
	Defects Defects
}

// Defects deliberately break the engine in named ways.
type Defects struct {
	SkipTables    []string // tables whose rows are read but not restored
	SkipSequences bool     // leave sequences where they are
	SkipFKCheck   bool     // check no foreign keys, before or after loading
	// ColumnFrom fills a column from another field of the same object, e.g.
	// {"users_user.password": "last_name"}: passwords restored from the wrong field.
	ColumnFrom map[string]string
}

// Result says what a restore did.
type Result struct {
	Strategy  Strategy
	Objects   int
	Rows      map[string]int64 // per table, including many-to-many tables
	Sequences []SequenceFix
	FastPath  bool // loaded with FK triggers off (superuser) and checked set-wise after
	// Prevalidation is how a two-phase restore proved the backup before its
	// reinit committed (nil for an atomic one: its transaction is the proof).
	Prevalidation *Prevalidation
	Timings       Timings
}

// Prevalidation is how a two-phase restore proved the backup.
type Prevalidation struct {
	// Rehearsed: the whole backup was loaded once in a savepoint rolled
	// back, because of Reason (something of the schema the engine's own
	// checks do not cover).
	Rehearsed bool
	Reason    string
	// Otherwise the validating pass proved it, and PostgreSQL checked
	// CheckedByPostgres rows (those near a limit the engine does not model,
	// and each model's first) in temporary copies of their tables.
	CheckedByPostgres int
}

func (p *Prevalidation) String() string {
	if p.Rehearsed {
		return "loading it once in a savepoint rolled back, since " + p.Reason
	}
	return fmt.Sprintf("the engine's checks, with %d rows checked by PostgreSQL in copies of their tables (each model's first, and any near a limit the engine does not model)", p.CheckedByPostgres)
}

// Timings of the phases. For TwoPhase, Validate is the proof of the backup
// before the reinit commits (see Prevalidation), the reinit excluded.
type Timings struct {
	Validate, Reinit, Load, Total time.Duration
}

func (o *Options) keepReadable() map[string]bool {
	list := o.KeepReadable
	if list == nil {
		list = DefaultKeepReadable
	}
	out := map[string]bool{}
	for _, t := range list {
		out[t] = true
	}
	return out
}

func (o *Options) emit(phase, table string, rows int64) {
	if o.Progress != nil {
		o.Progress(Event{Phase: phase, At: time.Now(), Table: table, Rows: rows})
	}
}

// RowsPerSecond is a PhaseTableLoaded event's load rate (0 for other
// phases, or when no time was measured).
func (e Event) RowsPerSecond() float64 { return rate.PerSecond(e.Rows, e.Took) }

func (o *Options) emitLoaded(table string, rows int64, took time.Duration) {
	if o.Progress != nil {
		o.Progress(Event{Phase: PhaseTableLoaded, At: time.Now(), Table: table, Rows: rows, Took: took})
	}
}

func (o *Options) emitWindow(phase string, w *Window) { o.emitCommit(phase, w, time.Time{}) }

// emitCommit is emitWindow for a commit sent at sent.
func (o *Options) emitCommit(phase string, w *Window, sent time.Time) {
	if o.Progress != nil {
		o.Progress(Event{Phase: phase, At: time.Now(), Sent: sent, Window: w})
	}
}

// Restore runs a restore on conn, which must not be inside a transaction.
// When ctx is done, the statement running on the server is cancelled.
func Restore(ctx context.Context, conn *pgx.Conn, opts Options) (*Result, error) {
	if opts.Open == nil {
		return nil, errors.New("restore: no backup to read (Options.Open is nil)")
	}
	strategy, err := ParseStrategy(string(opts.Strategy))
	if err != nil {
		return nil, err
	}
	defer cancelOnDone(ctx, conn)()
	opts.Open = closeOnDone(ctx, opts.Open)
	start := time.Now()
	res := &Result{Strategy: strategy, Rows: map[string]int64{}}
	cat, err := pgcatalog.Load(ctx, conn, opts.Schema)
	if err != nil {
		return nil, err
	}
	if strategy == Atomic {
		err = restoreAtomic(ctx, conn, cat, &opts, res)
	} else {
		err = restoreTwoPhase(ctx, conn, cat, &opts, res)
	}
	res.Timings.Total = time.Since(start)
	if err != nil {
		return nil, explainStop(ctx, err, &opts)
	}
	return res, nil
}

// explainStop says why a restore failed: stopped (ctx done), or a guard
// rail of the server. A WindowError keeps its window and explains its cause.
func explainStop(ctx context.Context, err error, opts *Options) error {
	if we, ok := err.(*WindowError); ok {
		we.Err = explainStop(ctx, we.Err, opts)
		return we
	}
	if ctx.Err() != nil {
		// What failed once ctx was done (a read of the closed backup among
		// others) failed because of it: no backup or database error to report.
		return fmt.Errorf("restore stopped: %w (%v)", ctx.Err(), err)
	}
	return explainLimit(ctx, err, opts)
}

func restoreAtomic(ctx context.Context, conn *pgx.Conn, cat *pgcatalog.Catalog, opts *Options, res *Result) error {
	tx, err := begin(ctx, conn, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if err := reinitAndLoad(ctx, tx, cat, opts, res); err != nil {
		return err
	}
	if _, err := commitRestore(ctx, tx, opts); err != nil {
		return err
	}
	if opts.Reinit != nil {
		opts.emit(PhaseReinitCommitted, "", 0)
	}
	opts.emit(PhaseRestoreCommitted, "", 0)
	return nil
}

// reinitAndLoad runs the reinit (if any) and the restore inside tx, which the
// caller commits or rolls back. The backup is validated inside the
// transaction, after the reinit it will commit with, so nothing is visible to
// anyone unless every check passes. When few rows exist (the usual case after
// a reinit) one pass validates and loads; otherwise the backup is validated
// first, then loaded.
func reinitAndLoad(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, opts *Options, res *Result) error {
	if done, err := replaceThenReinit(ctx, tx, cat, opts, res); done || err != nil {
		return err
	}
	if _, err := runReinit(ctx, tx, opts, res); err != nil {
		return err
	}
	if err := loadInTx(ctx, tx, cat, opts, res, nil); err != nil {
		return err
	}
	return refuseEmpty(opts, res)
}

// replaceThenReinit is the atomic restore with a reinit over a populated
// database, on the fast path: the backup's primary keys are read first,
// the tables it wholly replaces are emptied with TRUNCATE
// (truncateReplaced) before the reinit runs, so that the reinit does not
// delete and update row by row the rows the load replaces anyway (at a
// million rows that was most of the restore's time), then the reinit runs
// and the backup is validated and loaded as usual (in one pass, as over an
// emptied system, when few rows are left). The committed result is the
// same: every row of such a table is one the backup brings again, whatever
// the reinit would have done to it, and TRUNCATE takes every table that
// refers to it, so the reinit's cascades into them have nothing left to
// do. The reinit's own report counts no rows for those tables (an atomic
// restore does not report it). done is false, and nothing was done,
// without a reinit or superuser rights, or with few existing rows.
func replaceThenReinit(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, opts *Options, res *Result) (done bool, err error) {
	r, err := emptyReplaced(ctx, tx, cat, opts, nil, nil)
	if r == nil || err != nil {
		return err != nil, err
	}
	if _, err := runReinit(ctx, tx, opts, res); err != nil {
		return true, err
	}
	if err := loadInTx(ctx, tx, cat, opts, res, r.truncated); err != nil {
		return true, err
	}
	return true, refuseEmpty(opts, res)
}

// replaced is what emptyReplaced did: the backup's keys, read once, and
// the tables it emptied with TRUNCATE.
type replaced struct {
	keys      *schemaMap
	truncated map[string]bool
}

// emptyReplaced reads the backup's primary keys (unless keys holds them)
// and empties with TRUNCATE
// the tables it wholly replaces (truncateReplaced), when a reinit runs
// with superuser rights over more rows than an inline pass holds; keys,
// counted, when not nil, receives each
// emptied table's rows before the TRUNCATE. It returns nil, having done
// nothing, otherwise.
func emptyReplaced(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, opts *Options, keys *schemaMap, counted map[string]int64) (*replaced, error) {
	if opts.Reinit == nil {
		return nil, nil
	}
	var super bool
	if err := tx.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil {
		return nil, fmt.Errorf("read role attributes: %w", err)
	}
	if !super {
		return nil, nil
	}
	if inline, err := inlineFits(ctx, tx, cat, opts.Protected); err != nil || inline {
		return nil, err
	}
	if keys == nil {
		var err error
		if keys, err = readKeys(ctx, cat, opts); err != nil {
			return nil, err
		}
	}
	return truncateWith(ctx, tx, cat, opts, keys, counted)
}

// truncateWith empties the tables the backup's keys sm wholly replace.
func truncateWith(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, opts *Options, sm *schemaMap, counted map[string]int64) (*replaced, error) {
	skip := map[string]bool{}
	for _, t := range opts.Defects.SkipTables {
		skip[t] = true
	}
	truncated, err := truncateReplaced(ctx, tx, cat, sm, opts.keepReadable(), skip, counted)
	if err != nil {
		return nil, err
	}
	return &replaced{keys: sm, truncated: truncated}, nil
}

// readKeys reads the backup once for each model's primary keys; the load's
// pass checks everything else. skimKeys does it fast for a plain backup;
// otherwise, or when it finds anything unusual, the validating scanner
// does, and reports the problem.
func readKeys(ctx context.Context, cat *pgcatalog.Catalog, opts *Options) (*schemaMap, error) {
	if sm, ok, err := skimKeys(ctx, cat, opts); ok || err != nil {
		return sm, err
	}
	return scanKeys(ctx, cat, opts)
}

// scanKeys is readKeys with the validating scanner.
func scanKeys(ctx context.Context, cat *pgcatalog.Catalog, opts *Options) (*schemaMap, error) {
	sm := newSchemaMap(cat, opts.Protected)
	r, err := newDumpReader(opts.Open)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var c cell
	for n := 1; ; n++ {
		o, err := r.Next()
		if errors.Is(err, io.EOF) {
			return sm, nil
		}
		if err != nil {
			return nil, err
		}
		p, err := sm.model(o)
		if err != nil {
			return nil, err
		}
		if err := p.pkConv.convert(o.PK, &c); err != nil {
			return nil, objErr(o, "pk", "%v", err)
		}
		if c.null {
			return nil, objErr(o, "pk", "expected a pk, got null")
		}
		if !p.keys.add(p.pkConv.key(&c)) {
			return nil, objErr(o, "pk", "duplicate primary key: another %s object in this backup has pk %s", o.Model, o.pkText())
		}
		if n%65536 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

func runReinit(ctx context.Context, tx pgx.Tx, opts *Options, res *Result) ([]ReinitEffect, error) {
	if opts.Reinit == nil {
		return nil, nil
	}
	t := time.Now()
	effects, err := opts.Reinit(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("reinit: %w", err)
	}
	res.Timings.Reinit = time.Since(t)
	return effects, nil
}

// refuseEmpty refuses a backup without objects after a reinit: together they
// would wipe the system, which a truncated or wrong file should never do.
func refuseEmpty(opts *Options, res *Result) error {
	if opts.Reinit != nil && res.Objects == 0 && !opts.AllowEmpty {
		return &BackupError{Index: -1, Problem: "the backup holds no objects, and with the reinit it would leave the system empty; check the file (or allow an empty backup explicitly)"}
	}
	return nil
}

// loadInTx validates and loads the backup in tx; truncated are the tables
// emptied with TRUNCATE in tx already (their indexes may be rebuilt).
func loadInTx(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, opts *Options, res *Result, truncated map[string]bool) error {
	inline, err := inlineFits(ctx, tx, cat, opts.Protected)
	if err != nil {
		return err
	}
	if inline {
		sm := newSchemaMap(cat, opts.Protected)
		sm.columnFrom = opts.Defects.ColumnFrom
		sm.open = opts.Open
		sm.truncated = truncated
		return load(ctx, tx, cat, sm, opts, res, true)
	}
	sm, err := validate(ctx, tx, cat, opts, res)
	if err != nil {
		return err
	}
	sm.truncated = truncated
	return load(ctx, tx, cat, sm, opts, res, false)
}

func restoreTwoPhase(ctx context.Context, conn *pgx.Conn, cat *pgcatalog.Catalog, opts *Options, res *Result) error {
	// 1. The validating pass reads the whole backup, before anything is
	//    locked or changed: a backup it refuses leaves the database as it
	//    was. It also notes the rows PostgreSQL must check itself.
	start := time.Now()
	limits, err := schemaLimits(ctx, conn, cat)
	if err != nil {
		return err
	}
	sm, err := readBackup(ctx, cat, opts, res, limits)
	if err != nil {
		return err
	}
	// 2. The reinit runs, then the backup is proven against what it left,
	//    before anything commits (reinitAndProve): a bad backup is refused
	//    with the database intact, and the reinit that commits is the one
	//    the backup was proven against.
	tx, err := begin(ctx, conn, opts)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	w, keys, err := reinitAndProve(ctx, tx, cat, opts, res, sm, limits.reasonFor(sm))
	sm.releaseSpills() // the kept rows are checked: only its keys are read from here on
	if err != nil {
		return err
	}
	validated := time.Since(start) - res.Timings.Reinit
	if opts.Reinit == nil {
		if err := tx.Rollback(ctx); err != nil {
			return err
		}
	} else if err := commitReinit(ctx, tx, opts, w); err != nil {
		return err
	}
	if conn.IsClosed() {
		// The reinit's commit got no answer and the server, asked again,
		// said it committed; pgx closed the connection: the restore goes on
		// with a new one.
		nc, err := pgx.ConnectConfig(ctx, conn.Config())
		if err != nil {
			return &WindowError{Err: fmt.Errorf("connect again after the reinit's commit: %w", err), Window: w}
		}
		defer nc.Close(context.Background())
		defer cancelOnDone(ctx, nc)()
		conn = nc
	}
	// 3. The restore commits: the window closes.
	if unknown, err := loadAndCommit(ctx, conn, cat, opts, res, keys); err != nil {
		if w == nil {
			return err
		}
		we := &WindowError{Err: err, Window: w}
		if unknown {
			we.Unknown = RestoreCommitUnknown
		}
		return we
	}
	res.Timings.Validate = validated
	opts.emit(PhaseRestoreCommitted, "", 0)
	return nil
}

// reinitAndProve runs the reinit in tx, then proves the backup against
// what it left, and announces what the window will hold (nil without a
// reinit). When rehearsal is "" (the engine's checks cover what the schema
// can refuse), the proof is the validating pass's (sm) checks against the
// kept rows, and PostgreSQL's own check of the rows sm flagged; otherwise
// the whole backup is loaded once in a savepoint that is rolled back.
//
// Over a populated database (emptyReplaced), the tables the backup wholly
// replaces are emptied with TRUNCATE first, as the atomic restore does:
// the reinit then has nothing to delete or set to NULL there, and the
// load writes fresh relations. The window holds them empty (the reinit row
// by row would leave the rows it keeps, the admin's say, until the restore
// brings them back): they are listed as emptied. keys are the backup's
// keys, for the load to check again under its lock.
func reinitAndProve(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, opts *Options, res *Result, sm *schemaMap, rehearsal string) (*Window, *schemaMap, error) {
	seqs, err := readSequences(ctx, tx, cat)
	if err != nil {
		return nil, nil, err
	}
	emptied := map[string]int64{}
	r, err := emptyReplaced(ctx, tx, cat, opts, sm, emptied)
	if err != nil {
		return nil, nil, err
	}
	var truncated map[string]bool
	var keys *schemaMap
	if r != nil {
		truncated, keys = r.truncated, r.keys
	}
	effects, err := runReinit(ctx, tx, opts, res)
	if err != nil {
		return nil, nil, err
	}
	pv := &Prevalidation{Rehearsed: rehearsal != "", Reason: rehearsal}
	res.Prevalidation = pv
	var backup map[string]int64
	if rehearsal != "" {
		if _, backup, err = rehearse(ctx, tx, cat, opts, seqs, truncated); err != nil {
			return nil, nil, err
		}
	} else {
		quiet := *opts
		quiet.Progress = nil
		if err := checkAgainst(ctx, tx, sm, &quiet, res, time.Now()); err != nil {
			return nil, nil, err
		}
		if err := checkInPostgres(ctx, tx, cat, sm.check); err != nil {
			return nil, nil, err
		}
		if err := refuseEmpty(opts, res); err != nil {
			return nil, nil, err
		}
		pv.CheckedByPostgres = sm.check.rowsChecked()
		backup = sm.backupRows()
	}
	var w *Window
	if opts.Reinit != nil {
		w = newWindow(withEmptied(effects, emptied), backup)
	}
	opts.emitWindow(PhaseValidated, w)
	return w, keys, nil
}

// commitReinit is step 2: the reinit commits on its own and the window
// opens. From here on every failure is a WindowError.
func commitReinit(ctx context.Context, tx pgx.Tx, opts *Options, w *Window) error {
	sent := time.Now()
	if unknown, err := commit(ctx, tx, opts); err != nil {
		err = fmt.Errorf("reinit: commit: %w", err)
		if unknown {
			return &WindowError{Err: err, Window: w, Unknown: ReinitCommitUnknown}
		}
		return err
	}
	opts.emitCommit(PhaseReinitCommitted, w, sent)
	if opts.BetweenPhases != nil {
		if err := opts.BetweenPhases(ctx); err != nil {
			return &WindowError{Err: fmt.Errorf("between reinit and restore: %w", err), Window: w}
		}
	}
	return nil
}

// loadAndCommit loads the backup in a transaction of its own and commits
// it; unknown reports a commit that got no answer. With keys (the
// backup's, read by the first transaction), the tables the backup wholly
// replaces are emptied with TRUNCATE first, so that the load writes fresh
// relations: the rows left after the reinit (and any a session wrote in
// the window) are checked against the keys again under the lock.
func loadAndCommit(ctx context.Context, conn *pgx.Conn, cat *pgcatalog.Catalog, opts *Options, res *Result, keys *schemaMap) (unknown bool, err error) {
	tx, err := begin(ctx, conn, opts)
	if err != nil {
		return false, err
	}
	defer tx.Rollback(context.Background())
	quiet := *opts
	quiet.Progress = func(e Event) {
		if e.Phase != PhaseValidated && opts.Progress != nil {
			opts.Progress(e)
		}
	}
	var truncated map[string]bool
	if keys != nil {
		r, err := truncateWith(ctx, tx, cat, opts, keys, nil)
		if err != nil {
			return false, err
		}
		truncated = r.truncated
	}
	if err := loadInTx(ctx, tx, cat, &quiet, res, truncated); err != nil {
		return false, err
	}
	return commitRestore(ctx, tx, opts)
}

// commitRestore commits the restore's transaction.
func commitRestore(ctx context.Context, tx pgx.Tx, opts *Options) (unknown bool, err error) {
	if unknown, err = commit(ctx, tx, opts); err != nil {
		if unknown {
			return true, fmt.Errorf("commit restore: %w (no answer came: the restore may or may not have committed)", err)
		}
		return false, fmt.Errorf("commit restore: %w", err)
	}
	return false, nil
}

// inlineLimit bounds the rows an inline pass may hold back in memory: rows
// whose keys already exist are replaced after the pass.
const inlineLimit = 100_000

// inlineFits says whether one pass may validate and load over the rows
// that exist: few enough of them (the rows whose keys exist are held back
// in memory), and none in a table with a unique index the pass cannot hold
// rows back for (several columns, an expression, a predicate) or an
// exclusion constraint: a row loaded early could clash there with a row
// the pass replaces only later. Otherwise the backup is validated first
// and the existing rows are replaced before the load.
func inlineFits(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, protected []string) (bool, error) {
	counts, err := existingRows(ctx, tx, cat, protected)
	if err != nil {
		return false, err
	}
	var total int64
	var withRows []string
	for name, n := range counts {
		if total += n; n > 0 {
			withRows = append(withRows, name)
		}
	}
	if total > inlineLimit {
		return false, nil
	}
	if len(withRows) == 0 {
		return true, nil
	}
	var blocked bool
	err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
		WHERE c.relnamespace = $1::regnamespace AND c.relname = ANY($2)
		  AND (i.indisexclusion OR (i.indisunique AND NOT i.indisprimary
		       AND NOT (i.indnatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL))))`, cat.Schema, withRows).Scan(&blocked)
	if err != nil {
		return false, fmt.Errorf("read unique indexes: %w", err)
	}
	return !blocked, nil
}

// existingRows counts the rows of every table a backup may write, up to
// inlineLimit+1 each: enough for inlineFits, without counting a million.
func existingRows(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, protected []string) (map[string]int64, error) {
	skip := map[string]bool{}
	for _, t := range protected {
		skip[t] = true
	}
	var names, parts []string
	for _, name := range cat.TableNames() {
		if !skip[name] {
			names = append(names, name)
			parts = append(parts, fmt.Sprintf("(SELECT count(*) FROM (SELECT FROM %s LIMIT %d) l)", cat.QualifiedIdent(name), inlineLimit+1))
		}
	}
	counts := map[string]int64{}
	if len(parts) == 0 {
		return counts, nil
	}
	n := make([]int64, len(names))
	dest := make([]any, len(names))
	for i := range n {
		dest[i] = &n[i]
	}
	if err := tx.QueryRow(ctx, "SELECT "+strings.Join(parts, ", ")).Scan(dest...); err != nil {
		return nil, err
	}
	for i, name := range names {
		counts[name] = n[i]
	}
	return counts, nil
}
