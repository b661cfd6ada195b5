package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ReinitEffect is what a reinit did to one table, as Options.Reinit
// reports it.
type ReinitEffect struct {
	Table         string
	Before, After int64 // rows before the reinit and after it
	Nulled        int64 // references in kept rows set to NULL (they pointed at deleted rows)
}

// TableLoss is one table of a Window: as the reinit left it, and as the
// backup would have made it.
type TableLoss struct {
	Table  string `json:"table"`
	Before int64  `json:"rows_before"`
	Now    int64  `json:"rows_now"`
	Nulled int64  `json:"references_nulled,omitempty"`
	Backup int64  `json:"rows_in_backup"`
	// Emptied: the restore emptied the table with TRUNCATE at the reinit,
	// since the backup replaces every row it held.
	Emptied bool `json:"emptied,omitempty"`
}

// Window is what the system is without from the moment a two-phase
// restore's reinit commits until its restore commits: every table the
// reinit changed, from the reinit's own account, with the rows the backup
// puts back.
type Window struct {
	Tables []TableLoss `json:"tables"`
}

// emptiedEffect marks a ReinitEffect of a table emptied with TRUNCATE
// before the reinit ran.
type emptiedEffect struct {
	ReinitEffect
	emptied bool
}

// withEmptied adds to the reinit's effects the tables emptied before it
// (emptied: their rows then), which the reinit saw empty.
func withEmptied(effects []ReinitEffect, emptied map[string]int64) []emptiedEffect {
	out := make([]emptiedEffect, 0, len(effects)+len(emptied))
	seen := map[string]bool{}
	for _, e := range effects {
		n, ok := emptied[e.Table]
		if ok {
			e.Before, seen[e.Table] = e.Before+n, true
		}
		out = append(out, emptiedEffect{e, ok})
	}
	for table, n := range emptied {
		if !seen[table] {
			out = append(out, emptiedEffect{ReinitEffect{Table: table, Before: n}, true})
		}
	}
	return out
}

func newWindow(effects []emptiedEffect, backup map[string]int64) *Window {
	w := &Window{}
	for _, e := range effects {
		if e.Before != e.After || e.Nulled > 0 {
			w.Tables = append(w.Tables, TableLoss{Table: e.Table, Before: e.Before, Now: e.After, Nulled: e.Nulled, Backup: backup[e.Table], Emptied: e.emptied})
		}
	}
	slices.SortFunc(w.Tables, func(a, b TableLoss) int { return strings.Compare(a.Table, b.Table) })
	return w
}

// Lines is one line per table, each starting with indent:
// "users_user  10007 -> 1 rows (the backup holds 10007)".
func (w *Window) Lines(indent string) []string {
	if len(w.Tables) == 0 {
		return []string{indent + "(the reinit reported no table it changed)"}
	}
	width := 0
	for _, t := range w.Tables {
		width = max(width, len(t.Table))
	}
	out := make([]string, 0, len(w.Tables))
	for _, t := range w.Tables {
		nulled := ""
		if t.Nulled > 0 {
			nulled = fmt.Sprintf(", %d references set to NULL", t.Nulled)
		}
		if t.Emptied {
			nulled += ", emptied with TRUNCATE: the backup replaces every row"
		}
		out = append(out, fmt.Sprintf("%s%-*s  %d -> %d rows%s (the backup holds %d)", indent, width, t.Table, t.Before, t.Now, nulled, t.Backup))
	}
	return out
}

// Commits of a WindowError that got no answer.
const (
	ReinitCommitUnknown  = "reinit" // the reinit may not have committed
	RestoreCommitUnknown = "restore"
)

// WindowError is a two-phase restore that failed after its reinit
// committed: the system is left as the reinit made it (Window says how)
// until the backup is restored again.
type WindowError struct {
	Err    error
	Window *Window
	// Unknown names the commit that got no answer (the connection broke
	// while it ran): ReinitCommitUnknown, RestoreCommitUnknown, or "".
	Unknown string
}

func (e *WindowError) Unwrap() error { return e.Err }

func (e *WindowError) Error() string {
	var head string
	switch e.Unknown {
	case ReinitCommitUnknown:
		head = fmt.Sprintf("the reinit's commit got no answer (%v): it may have committed; if it did, the system is left as the reinit made it; what it lost (rows before the reinit -> rows now):", e.Err)
	case RestoreCommitUnknown:
		head = fmt.Sprintf("the reinit committed, then the restore's commit got no answer (%v): if the restore did not commit, the system is left as the reinit made it; what it lost (rows before the reinit -> rows now):", e.Err)
	default:
		head = fmt.Sprintf("the reinit committed, then the restore failed: %v\nthe system is left as the reinit made it; what it lost (rows before the reinit -> rows now):", e.Err)
	}
	return head + "\n" + strings.Join(e.Window.Lines("  "), "\n")
}

// commitTimeout bounds, on the client, a commit that runs on after ctx
// is done (commit): the server bounds it with the statement timeout.
var commitTimeout = time.Minute

// commit commits tx and waits for the server's answer even when ctx is
// done meanwhile: a commit abandoned halfway leaves nobody knowing
// whether it happened. (When ctx is done, the server is asked to cancel
// the statement running, which ends a commit still checking deferred
// constraints with an answer: rolled back.) When no answer comes (the
// connection broke, the server stopped), the server is asked again, on a
// new connection, what became of the transaction (txid_status): a commit
// that happened is a success, one that did not is the error. unknown
// reports that not even that answered: tx may or may not have committed.
func commit(ctx context.Context, tx pgx.Tx, opts *Options) (unknown bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err // nothing sent: tx rolls back
	}
	limit := commitTimeout
	if d := opts.statementTimeout(); d > 0 {
		limit += d
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	defer cancel()
	var txid int64
	if err := tx.QueryRow(cctx, "SELECT txid_current()").Scan(&txid); err != nil {
		return false, err // no COMMIT sent: tx rolls back
	}
	err = tx.Commit(cctx)
	if !commitUnknown(err) {
		return false, err
	}
	// A context of its own: cctx is spent when the COMMIT waited it out.
	switch status, serr := commitStatus(context.WithoutCancel(ctx), tx.Conn().Config(), txid); status {
	case "committed":
		return false, nil
	case "aborted":
		return false, err
	case "in progress":
		return true, fmt.Errorf("%w; asked again for %s, the server still ran the commit", err, commitStatusWait)
	case "":
		if serr == nil {
			return true, fmt.Errorf("%w; asked again afterwards, the server no longer knew the transaction", err)
		}
		return true, fmt.Errorf("%w; the server could not be asked again: %v", err, serr)
	default:
		return true, fmt.Errorf("%w; asked again afterwards, the server said %q", err, status)
	}
}

// commitUnknown says whether a failed COMMIT leaves its outcome unknown.
// The server answered it only with an error of the statement (a deferred
// constraint, a serialization failure, a cancel) or a rollback; a failure
// to send it at all (pgconn's "safe to retry") means it never went out. A
// fatal error (the server shutting down) or a connection closed while the
// answer was awaited may come after the commit was durable.
func commitUnknown(err error) bool {
	if err == nil || errors.Is(err, pgx.ErrTxCommitRollback) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		severity := cmp.Or(pgErr.SeverityUnlocalized, pgErr.Severity)
		return severity == "FATAL" || severity == "PANIC" || strings.HasPrefix(pgErr.Code, "08")
	}
	// pgconn reports a connection closed under a read as "conn closed",
	// safe to retry, as it does one closed before the call: here the call
	// found it open (the txid query ran on it), so the COMMIT went out.
	return errors.Is(err, pgconn.ErrConnClosed) || !pgconn.SafeToRetry(err)
}

// commitStatusWait bounds how long commitStatus tries to reach the server
// again (a server restarting after an immediate stop takes a few seconds).
var commitStatusWait = 15 * time.Second

// commitStatus asks the server, on a new connection, what became of
// transaction txid: "committed" or "aborted"; "in progress" when it still
// ran after commitStatusWait (its session may not have noticed the broken
// connection yet, so it is asked again until then); "" when no answer came
// (err says why) or the server no longer knows the transaction.
func commitStatus(ctx context.Context, cfg *pgx.ConnConfig, txid int64) (status string, err error) {
	ctx, cancel := context.WithTimeout(ctx, commitStatusWait)
	defer cancel()
	for {
		var conn *pgx.Conn
		if conn, err = pgx.ConnectConfig(ctx, cfg); err == nil {
			var s *string
			err = conn.QueryRow(ctx, "SELECT txid_status($1)", txid).Scan(&s)
			conn.Close(context.WithoutCancel(ctx))
			if err == nil {
				if s == nil {
					return "", nil
				}
				if status = *s; status != "in progress" {
					return status, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if status == "in progress" {
				return status, nil
			}
			return "", err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
