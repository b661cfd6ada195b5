package main

import (
	"context"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/internal/pgtest"
)

// init refuses a database that already holds relations, so that it never
// marks (and so exposes to reinit) something that is not a rehearsal copy;
// --allow-nonempty overrides.
func TestInitRefusesNonEmptyDatabase(t *testing.T) {
	dsn := pgtest.NewDB(t)
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(context.Background(), `CREATE TABLE customers (id int PRIMARY KEY); INSERT INTO customers VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	code, _, errs := rehearse(t, "init", "--dsn", dsn, "--fixture", "none")
	if code != exitError || !strings.Contains(errs, "not empty (public.customers (table))") || !strings.Contains(errs, "--allow-nonempty") {
		t.Fatalf("init of a non-empty database: exit %d, %s", code, errs)
	}
	var marked bool
	conn.QueryRow(context.Background(), `SELECT to_regclass('public.rehearse_target') IS NOT NULL OR to_regclass('public.users_user') IS NOT NULL`).Scan(&marked)
	if marked {
		t.Fatal("the refused database was changed")
	}
	if code, out, errs := rehearse(t, "init", "--dsn", dsn, "--fixture", "none", "--allow-nonempty"); code != exitOK || !strings.Contains(out, "schema created") {
		t.Fatalf("init --allow-nonempty: exit %d, %s %s", code, out, errs)
	}
	// An empty database needs no flag.
	if code, out, errs := rehearse(t, "init", "--dsn", pgtest.NewDB(t), "--fixture", "none"); code != exitOK {
		t.Fatalf("init of an empty database: exit %d, %s %s", code, out, errs)
	}
}
