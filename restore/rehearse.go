package restore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// rehearse loads the backup in a savepoint of tx and rolls the savepoint
// back, and returns how long that took and the rows the backup holds per
// table: the load's errors are the backup's, and nothing of it stays. A
// rollback does not give back the values nextval handed out (the
// many-to-many rows draw their ids), so the sequences the reinit restarted
// in tx (before, read at its start) are put back where the reinit left
// them, as if the rehearsal had not run; the others are shared with other
// sessions and only keep a gap.
//
// truncated are the tables emptied with TRUNCATE in tx before the reinit.
func rehearse(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, opts *Options, before map[string]sequenceState, truncated map[string]bool) (time.Duration, map[string]int64, error) {
	start := time.Now()
	afterReinit, err := readSequences(ctx, tx, cat)
	if err != nil {
		return 0, nil, err
	}
	sp, err := tx.Begin(ctx)
	if err != nil {
		return 0, nil, err
	}
	rehearsal := *opts
	rehearsal.Progress = nil
	tried := &Result{Rows: map[string]int64{}}
	err = loadInTx(ctx, sp, cat, &rehearsal, tried, truncated)
	if rerr := sp.Rollback(ctx); err == nil {
		err = rerr
	}
	if err == nil {
		err = refuseEmpty(opts, tried)
	}
	if err != nil {
		return 0, nil, err
	}
	now, err := readSequences(ctx, tx, cat)
	if err != nil {
		return 0, nil, err
	}
	for name, was := range afterReinit {
		if was.filenode != before[name].filenode && now[name].next != was.next {
			if _, err := tx.Exec(ctx, fmt.Sprintf("ALTER SEQUENCE %s RESTART WITH %d", name, was.next)); err != nil {
				return 0, nil, fmt.Errorf("put sequence %s back after the rehearsal: %w", name, err)
			}
		}
	}
	return time.Since(start), tried.Rows, nil
}

// sequenceState is where a sequence is stored (a new relfilenode when it
// was restarted in this transaction) and the value nextval would return.
type sequenceState struct {
	filenode uint32
	next     int64
}

func readSequences(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog) (map[string]sequenceState, error) {
	out := map[string]sequenceState{}
	for _, name := range cat.TableNames() {
		for _, s := range cat.Tables[name].Sequences {
			var st sequenceState
			err := q.QueryRow(ctx, fmt.Sprintf(`SELECT pg_relation_filenode($1::regclass), CASE WHEN s.is_called THEN s.last_value + q.seqincrement ELSE s.last_value END
				FROM %s s, pg_sequence q WHERE q.seqrelid = $1::regclass`, s.Name), s.Name).Scan(&st.filenode, &st.next)
			if err != nil {
				return nil, fmt.Errorf("read sequence %s: %w", s.Name, err)
			}
			out[s.Name] = st
		}
	}
	return out, nil
}
