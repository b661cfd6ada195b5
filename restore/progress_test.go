package restore_test

import (
	"testing"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

// Seeding a fixture (a restore into the empty schema) reports every run
// of a table it loads with its rows and the time it took, so a caller can
// show table, rows and rows/s; the reported rows add up to the result's.
func TestSeedingReportsTableProgress(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	if err := edms.Install(ctx, conn); err != nil {
		t.Fatal(err)
	}
	f, err := fixtures.Get("edms-medium")
	if err != nil {
		t.Fatal(err)
	}
	opts := edms.RestoreOptions(f.Open, restore.Atomic, nil)
	rows := map[string]int64{}
	opts.Progress = func(e restore.Event) {
		if e.Phase != restore.PhaseTableLoaded {
			return
		}
		if e.Took <= 0 || e.Rows <= 0 || e.RowsPerSecond() <= 0 {
			t.Errorf("table %s: %d rows in %s (%.0f rows/s): want rows and a measured time", e.Table, e.Rows, e.Took, e.RowsPerSecond())
		}
		rows[e.Table] += e.Rows
	}
	res, err := restore.Restore(ctx, conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range res.Rows {
		if table == "users_user_groups" {
			continue // many-to-many rows are written after the runs
		}
		if rows[table] != n {
			t.Errorf("%s: reported %d rows loaded, the result says %d", table, rows[table], n)
		}
	}
	if len(rows) < 5 {
		t.Errorf("reported tables %v: want every model's table", rows)
	}
}
