package edms_test

import (
	"context"
	"slices"
	"testing"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// RestoreOptions restores the backup into the reference schema, refusing
// the protected tables, and empties the system first exactly when it is
// given a reinit configuration, for both strategies.
func TestRestoreOptions(t *testing.T) {
	ctx := context.Background()
	f, err := fixtures.Get("edms-small")
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []restore.Strategy{restore.TwoPhase, restore.Atomic} {
		for _, withReinit := range []bool{false, true} {
			conn := pgtest.Connect(t, pgtest.SeededDB(t))
			// A user the backup does not hold: the reinit deletes it, a plain restore keeps it.
			if _, err := conn.Exec(ctx, `INSERT INTO users_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
VALUES ('!', false, 'not_in_backup', '', '', '', false, true, now())`); err != nil {
				t.Fatal(err)
			}
			cfg := edms.ReinitConfig("", true)
			opts := edms.RestoreOptions(f.Open, st, nil)
			if withReinit {
				opts = edms.RestoreOptions(f.Open, st, &cfg)
				cfg.UserTable = "no_such_table" // the options hold their own copy
			}
			if opts.Strategy != st || !slices.Equal(opts.Protected, edms.Protected()) {
				t.Errorf("%s: options %+v", st, opts)
			}
			if _, err := restore.Restore(ctx, conn, opts); err != nil {
				t.Fatalf("%s, with reinit %v: %v", st, withReinit, err)
			}
			var extra int
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM users_user WHERE username = 'not_in_backup'`).Scan(&extra); err != nil {
				t.Fatal(err)
			}
			cutoff, err := edms.RevokedBefore(ctx, conn)
			if err != nil {
				t.Fatal(err)
			}
			if reinitRan := extra == 0 && cutoff > 0; reinitRan != withReinit {
				t.Errorf("%s, with reinit %v: the user outside the backup is left %d times, token cutoff %d", st, withReinit, extra, cutoff)
			}
		}
	}
}
