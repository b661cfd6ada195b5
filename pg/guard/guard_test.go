package guard_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/pg/guard"
)

var ctx = context.Background()

// TestMain runs the tests against a throwaway PostgreSQL cluster.
func TestMain(m *testing.M) { pgtest.Main(m) }

func exec(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func wantNotMarked(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("a database that is not a rehearsal target was accepted")
	}
	if !errors.Is(err, guard.ErrNotMarked) {
		t.Fatalf("error %v does not match guard.ErrNotMarked", err)
	}
}

// A database marked by Mark passes; a fresh one does not.
func TestMarkedAndUnmarked(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	wantNotMarked(t, guard.Check(ctx, conn, "reinit"))
	if err := guard.Mark(ctx, conn, "test"); err != nil {
		t.Fatal(err)
	}
	if err := guard.Check(ctx, conn, "reinit"); err != nil {
		t.Fatalf("marked database refused: %v", err)
	}
	// Marking twice keeps the first note and stays marked.
	if err := guard.Mark(ctx, conn, "again"); err != nil {
		t.Fatal(err)
	}
	if err := guard.Check(ctx, conn, "reinit"); err != nil {
		t.Fatalf("marked twice, refused: %v", err)
	}
}

// Relations that are named rehearse_target but are not the marker table in
// the schema the engine writes must not pass for it (issue 11, item 3): each
// of these made reinit --confirm wipe the public schema.
func TestLookalikesAreRefused(t *testing.T) {
	cases := []struct {
		name  string
		setup string
	}{
		{"view", `CREATE VIEW public.rehearse_target AS SELECT 1::smallint AS id, now() AS marked_at, 'x'::text AS note`},
		{"sequence", `CREATE SEQUENCE public.rehearse_target`},
		{"index", `CREATE TABLE public.t (id int); CREATE INDEX rehearse_target ON public.t (id)`},
		{"composite type", `CREATE TYPE public.rehearse_target AS (id smallint, note text)`},
		{"materialized view", `CREATE MATERIALIZED VIEW public.rehearse_target AS SELECT 1::smallint AS id, 'x'::text AS note`},
		{"partitioned table", `CREATE TABLE public.rehearse_target (id smallint, note text) PARTITION BY LIST (id);
CREATE TABLE public.rehearse_target_1 PARTITION OF public.rehearse_target FOR VALUES IN (1);
INSERT INTO public.rehearse_target VALUES (1, 'x')`},
		{"table in the $user schema", `CREATE SCHEMA AUTHORIZATION CURRENT_USER;
CREATE TABLE rehearse_target (id smallint PRIMARY KEY, marked_at timestamptz NOT NULL DEFAULT now(), note text NOT NULL);
INSERT INTO rehearse_target (id, note) VALUES (1, 'x')`},
		{"temporary table", `CREATE TEMP TABLE rehearse_target (id smallint PRIMARY KEY, marked_at timestamptz NOT NULL DEFAULT now(), note text NOT NULL);
INSERT INTO rehearse_target (id, note) VALUES (1, 'x')`},
		{"empty marker table", `CREATE TABLE public.rehearse_target (id smallint PRIMARY KEY, marked_at timestamptz NOT NULL DEFAULT now(), note text NOT NULL)`},
		{"table of another shape", `CREATE TABLE public.rehearse_target (x int); INSERT INTO public.rehearse_target VALUES (1)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn := pgtest.Connect(t, pgtest.NewDB(t))
			exec(t, conn, c.setup)
			wantNotMarked(t, guard.Check(ctx, conn, "reinit"))
		})
	}
}

// A marker reached only through the search path, set in the DSN's options or
// with ALTER DATABASE ... SET search_path, is not a marker of public.
func TestMarkerOnTheSearchPathOnly(t *testing.T) {
	marker := `CREATE SCHEMA elsewhere;
CREATE TABLE elsewhere.rehearse_target (id smallint PRIMARY KEY, marked_at timestamptz NOT NULL DEFAULT now(), note text NOT NULL);
INSERT INTO elsewhere.rehearse_target (id, note) VALUES (1, 'x')`
	t.Run("dsn options", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.NewDB(t)
		exec(t, pgtest.Connect(t, dsn), marker)
		conn := pgtest.Connect(t, dsn+" options='-c search_path=elsewhere'")
		wantNotMarked(t, guard.Check(ctx, conn, "reinit"))
	})
	t.Run("alter database", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.NewDB(t)
		setup := pgtest.Connect(t, dsn)
		exec(t, setup, marker)
		exec(t, setup, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = elsewhere, public', current_database()); END $$`)
		conn := pgtest.Connect(t, dsn)
		var path string
		conn.QueryRow(ctx, `SHOW search_path`).Scan(&path)
		if !strings.HasPrefix(path, "elsewhere") {
			t.Fatalf("search_path = %q: the setting did not apply", path)
		}
		wantNotMarked(t, guard.Check(ctx, conn, "reinit"))
	})
}

// The engine can write another schema: the marker must be in that one.
func TestCheckSchema(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	exec(t, conn, `CREATE SCHEMA app`)
	if err := guard.Mark(ctx, conn, "public only"); err != nil {
		t.Fatal(err)
	}
	wantNotMarked(t, guard.CheckSchema(ctx, conn, "app", "reinit"))
	if err := guard.MarkSchema(ctx, conn, "app", "app too"); err != nil {
		t.Fatal(err)
	}
	if err := guard.CheckSchema(ctx, conn, "app", "reinit"); err != nil {
		t.Fatalf("marked schema refused: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM app.rehearse_target WHERE id = 1`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("marker row in app: %d %v", n, err)
	}
}

// Mark writes the schema it names whatever the search path says, and does
// not adopt a lookalike.
func TestMarkIgnoresTheSearchPathAndRefusesLookalikes(t *testing.T) {
	dsn := pgtest.NewDB(t)
	exec(t, pgtest.Connect(t, dsn), `CREATE SCHEMA elsewhere`)
	conn := pgtest.Connect(t, dsn+" options='-c search_path=elsewhere,public'")
	if err := guard.Mark(ctx, conn, "x"); err != nil {
		t.Fatal(err)
	}
	var where string
	if err := conn.QueryRow(ctx, `SELECT relnamespace::regnamespace::text FROM pg_class WHERE relname = 'rehearse_target'`).Scan(&where); err != nil || where != "public" {
		t.Fatalf("marker created in %q (%v), want public", where, err)
	}
	if err := guard.Check(ctx, pgtest.Connect(t, dsn), "reinit"); err != nil {
		t.Fatalf("marked database refused: %v", err)
	}

	for _, c := range []struct{ setup, want string }{
		{`CREATE VIEW public.rehearse_target AS SELECT 1::smallint AS id, 'x'::text AS note`, "is a view"},
		{`CREATE SEQUENCE public.rehearse_target`, "is a sequence"},
		{`CREATE TABLE public.rehearse_target (x int)`, "is not the table rehearse mark creates"},
	} {
		conn := pgtest.Connect(t, pgtest.NewDB(t))
		exec(t, conn, c.setup)
		err := guard.Mark(ctx, conn, "x")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Mark said %v, want an error saying %q", c.setup, err, c.want)
		}
		wantNotMarked(t, guard.Check(ctx, conn, "reinit"))
	}
}

// The refusal says what was found, so that the user can tell a lookalike
// from a missing marker.
func TestNotMarkedSaysWhy(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	err := guard.Check(ctx, conn, "reinit")
	if err == nil || !strings.Contains(err.Error(), "no table public.rehearse_target") || !strings.Contains(err.Error(), "refusing to reinit") {
		t.Errorf("unmarked: %v", err)
	}
	exec(t, conn, `CREATE VIEW rehearse_target AS SELECT 1 AS id`)
	if err := guard.Check(ctx, conn, "reinit"); err == nil || !strings.Contains(err.Error(), "public.rehearse_target is a view, not a table") {
		t.Errorf("view: %v", err)
	}
}

// Contents lists what a database holds outside the system schemas, the
// marker aside.
func TestContents(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	got, err := guard.Contents(ctx, conn, 10)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty database: %v %v", got, err)
	}
	if err := guard.Mark(ctx, conn, "x"); err != nil {
		t.Fatal(err)
	}
	if got, _ := guard.Contents(ctx, conn, 10); len(got) != 0 {
		t.Fatalf("a marked, otherwise empty database holds %v", got)
	}
	exec(t, conn, `CREATE SCHEMA app; CREATE TABLE app.customers (id int); CREATE VIEW public.v AS SELECT 1; CREATE SEQUENCE public.s`)
	got, err = guard.Contents(ctx, conn, 10)
	want := []string{"app.customers (table)", "public.s (sequence)", "public.v (view)"}
	if err != nil || strings.Join(got, ";") != strings.Join(want, ";") {
		t.Fatalf("Contents = %v %v, want %v", got, err, want)
	}
	if got, _ := guard.Contents(ctx, conn, 1); len(got) != 1 {
		t.Fatalf("max 1: %v", got)
	}
}
