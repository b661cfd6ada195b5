// Package restore writes and restores Django dumpdata backups on PostgreSQL.
//
// The engine is schema-generic: it learns tables, columns, foreign keys,
// many-to-many tables and sequences from the catalog (package pgcatalog). It
// validates a whole backup before it changes anything, loads with COPY
// (streaming, one object in memory at a time), replaces rows whose primary keys
// already exist (as Django's loaddata does), and moves every sequence past
// max(id). Two strategies:
//
//   - TwoPhase reproduces the seed system: the reinit commits, then the restore
//     commits, so other sessions see the emptied database in between.
//   - Atomic runs reinit and restore in one transaction: nobody sees the
//     in-between state, and any failure rolls all of it back.
package restore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/pgcatalog"
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
	return "", fmt.Errorf("unknown strategy %q: use %q (reinit commits, then restore: the seed's behaviour) or %q (one transaction, no window)", s, TwoPhase, Atomic)
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
	Table string
	Rows  int64
}

// Options configure one restore.
type Options struct {
	Open     Opener
	Schema   string // "" = public
	Strategy Strategy
	// Reinit, when set, empties the system first (the "with reinit" flow). It
	// runs in its own committed transaction (TwoPhase) or in the restore's (Atomic).
	Reinit func(ctx context.Context, tx pgx.Tx) error
	// Protected tables are never written: a backup naming them is refused.
	Protected []string
	Progress  func(Event)
	// BetweenPhases, when set, runs after the reinit committed and before the
	// restore starts (TwoPhase only): the harness uses it to act in the window.
	BetweenPhases func(ctx context.Context) error
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
	Timings   Timings
}

// Timings of the phases.
type Timings struct {
	Validate, Reinit, Load, Total time.Duration
}

func (o *Options) emit(phase, table string, rows int64) {
	if o.Progress != nil {
		o.Progress(Event{Phase: phase, At: time.Now(), Table: table, Rows: rows})
	}
}

// Restore runs a restore on conn, which must not be inside a transaction.
func Restore(ctx context.Context, conn *pgx.Conn, opts Options) (*Result, error) {
	if opts.Open == nil {
		return nil, errors.New("restore: no backup to read (Options.Open is nil)")
	}
	strategy, err := ParseStrategy(string(opts.Strategy))
	if err != nil {
		return nil, err
	}
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
		return nil, err
	}
	return res, nil
}

func restoreAtomic(ctx context.Context, conn *pgx.Conn, cat *pgcatalog.Catalog, opts *Options, res *Result) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if opts.Reinit != nil {
		t := time.Now()
		if err := opts.Reinit(ctx, tx); err != nil {
			return fmt.Errorf("reinit: %w", err)
		}
		res.Timings.Reinit = time.Since(t)
	}
	// Validation happens inside the transaction, after the reinit it will
	// commit with: nothing is visible to anyone unless every check passes.
	sm, err := validate(ctx, tx, cat, opts, res)
	if err != nil {
		return err
	}
	if err := load(ctx, tx, cat, sm, opts, res); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit restore: %w", err)
	}
	if opts.Reinit != nil {
		opts.emit(PhaseReinitCommitted, "", 0)
	}
	opts.emit(PhaseRestoreCommitted, "", 0)
	return nil
}

func restoreTwoPhase(ctx context.Context, conn *pgx.Conn, cat *pgcatalog.Catalog, opts *Options, res *Result) error {
	// 1. Validate against what will survive the reinit: rehearse the reinit in
	//    a transaction that is rolled back, so nothing is deleted before the
	//    whole backup is known to be good.
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	if opts.Reinit != nil {
		if err := opts.Reinit(ctx, tx); err != nil {
			tx.Rollback(context.Background())
			return fmt.Errorf("reinit (dry run before validation): %w", err)
		}
	}
	sm, err := validate(ctx, tx, cat, opts, res)
	tx.Rollback(context.Background())
	if err != nil {
		return err
	}
	// 2. The reinit commits on its own: the window opens.
	if opts.Reinit != nil {
		t := time.Now()
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return opts.Reinit(ctx, tx) }); err != nil {
			return fmt.Errorf("reinit: %w", err)
		}
		res.Timings.Reinit = time.Since(t)
		opts.emit(PhaseReinitCommitted, "", 0)
		if opts.BetweenPhases != nil {
			if err := opts.BetweenPhases(ctx); err != nil {
				return fmt.Errorf("between reinit and restore: %w", err)
			}
		}
	}
	// 3. The restore commits: the window closes.
	tx, err = conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if err := load(ctx, tx, cat, sm, opts, res); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit restore: %w", err)
	}
	opts.emit(PhaseRestoreCommitted, "", 0)
	return nil
}
