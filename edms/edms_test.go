package edms_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/pg/guard"

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

// installDB is an empty database prepared by setup (SQL, run as is), and
// a connection to it with extra appended to its DSN.
func installDB(t *testing.T, setup, extra string) (dsn string, conn *pgx.Conn) {
	t.Helper()
	dsn = pgtest.NewDB(t)
	if setup != "" {
		if _, err := pgtest.Connect(t, dsn).Exec(context.Background(), setup); err != nil {
			t.Fatal(err)
		}
	}
	return dsn, pgtest.Connect(t, dsn+extra)
}

// where lists "schema.table" for each relation of the reference schema's
// users table and marker, and the columns of public.users_user.
func where(t *testing.T, conn *pgx.Conn) (places []string, publicUserColumns int) {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT n.nspname || '.' || c.relname || ':' || c.relkind::text FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname IN ('users_user', 'auth_group', 'rehearse_target') AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	places, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid = 'public.users_user'::regclass AND attnum > 0`).Scan(&publicUserColumns)
	if err != nil {
		publicUserColumns = -1
	}
	return places, publicUserColumns
}

// Install writes public, the schema the engine and the guard read, whatever
// the search path says, and a lookalike users_user elsewhere neither stops
// it nor passes for the schema.
func TestInstallIgnoresTheSearchPath(t *testing.T) {
	ctx := context.Background()
	installed := []string{"elsewhere.users_user:r", "public.auth_group:r", "public.rehearse_target:r", "public.users_user:r"}
	for _, c := range []struct {
		name, setup, extra string
		want               []string
	}{
		{"lookalike table first on the path of the DSN",
			`CREATE SCHEMA elsewhere; CREATE TABLE elsewhere.users_user (id int)`,
			" options='-c search_path=elsewhere,public'", installed},
		{"path set by ALTER DATABASE",
			`CREATE SCHEMA elsewhere; DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = elsewhere, public', current_database()); END $$`,
			"", []string{"public.auth_group:r", "public.rehearse_target:r", "public.users_user:r"}},
		{"lookalike view first on the path",
			`CREATE SCHEMA elsewhere; CREATE VIEW elsewhere.users_user AS SELECT 1 AS id`,
			" options='-c search_path=elsewhere,public'", []string{"elsewhere.users_user:v", "public.auth_group:r", "public.rehearse_target:r", "public.users_user:r"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dsn, conn := installDB(t, c.setup, c.extra)
			if err := edms.Install(ctx, conn); err != nil {
				t.Fatalf("Install: %v", err)
			}
			places, cols := where(t, conn)
			if !slices.Equal(places, c.want) || cols != 11 {
				t.Errorf("installed at %v (public.users_user has %d columns), want %v with 11", places, cols, c.want)
			}
			plain := pgtest.Connect(t, dsn)
			if err := guard.Check(ctx, plain, "reinit"); err != nil {
				t.Errorf("the installed database is not marked: %v", err)
			}
			f, _ := fixtures.Get("edms-small")
			if _, err := edms.Seed(ctx, plain, f); err != nil {
				t.Errorf("Seed after Install: %v", err)
			}
		})
	}
	// A temporary table is searched first by default: the foreign keys must
	// still point at public's.
	t.Run("temporary lookalike", func(t *testing.T) {
		t.Parallel()
		_, conn := installDB(t, "", "")
		if _, err := conn.Exec(ctx, `CREATE TEMP TABLE users_user (id bigint PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		if err := edms.Install(ctx, conn); err != nil {
			t.Fatalf("Install: %v", err)
		}
		var target string
		if err := conn.QueryRow(ctx, `SELECT confrelid::regclass::text FROM pg_catalog.pg_constraint WHERE conrelid = 'public.users_user_groups'::regclass AND contype = 'f' AND conname LIKE '%user%'`).Scan(&target); err != nil || target != "public.users_user" {
			t.Errorf("users_user_groups references %q (%v), want public.users_user", target, err)
		}
	})
}

// A users_user in public of any kind stops Install, which then leaves
// nothing behind: no table of the schema, no marker.
func TestInstallRefusesAnOccupiedPublic(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct{ setup, want string }{
		{`CREATE VIEW users_user AS SELECT 1 AS id`, "the database already has a view public.users_user; rehearse init wants an empty database"},
		{`CREATE TABLE users_user (id int)`, "the database already has a table public.users_user"},
		{`CREATE SEQUENCE users_user`, "the database already has a sequence public.users_user"},
		{`DROP SCHEMA public CASCADE; CREATE SCHEMA elsewhere`, `the database has no schema "public", where rehearse writes`},
	} {
		_, conn := installDB(t, c.setup, " options='-c search_path=elsewhere,public'")
		err := edms.Install(ctx, conn)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Install: %v, want %q", c.setup, err, c.want)
		}
		places, _ := where(t, conn)
		for _, p := range places {
			if !strings.HasPrefix(p, "public.users_user:") {
				t.Errorf("%s: Install left %s behind", c.setup, p)
			}
		}
	}
}
