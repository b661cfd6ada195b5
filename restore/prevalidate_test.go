package restore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

// limitsSchema has a value of each kind whose limits only PostgreSQL
// knows: an indexed text (an index entry holds about 2700 bytes), a name
// (63 bytes), jsonb (numeric's range for its numbers), a decimal of fixed
// precision (its rounding), and a table with a CHECK constraint.
const limitsSchema = `
CREATE TABLE app_thing (
    id    integer PRIMARY KEY,
    label text NOT NULL DEFAULT '',
    tag   name,
    doc   jsonb,
    price numeric(5,2),
    note  text
);
CREATE INDEX app_thing_label_idx ON app_thing (label);
CREATE INDEX app_thing_tag_note_idx ON app_thing (tag, note) INCLUDE (doc);
CREATE TABLE app_checked (id integer PRIMARY KEY, n integer NOT NULL CHECK (n >= 0));
CREATE TABLE app_priced (id integer PRIMARY KEY, amount numeric UNIQUE);
CREATE TABLE app_day (id integer PRIMARY KEY, owner integer NOT NULL, day date NOT NULL, UNIQUE (owner, day));
INSERT INTO app_day VALUES (1000, 7, '2020-01-01');
CREATE TABLE app_slug (id integer PRIMARY KEY, name text NOT NULL, slug text NOT NULL DEFAULT '' UNIQUE);
INSERT INTO app_thing (id, label) VALUES (100, 'kept until the reinit');
INSERT INTO app_checked VALUES (100, 1);`

// deleteAll is a reinit that empties both tables: a failure after it
// committed is a WindowError.
func deleteAll(ctx context.Context, tx pgx.Tx) ([]restore.ReinitEffect, error) {
	_, err := tx.Exec(ctx, "DELETE FROM app_thing; DELETE FROM app_checked")
	return []restore.ReinitEffect{{Table: "app_thing", Before: 1}, {Table: "app_checked", Before: 1}}, err
}

// things is a backup of a plain thing, then one with fields (and an empty
// label unless fields give one): the second is not its model's first row,
// which PostgreSQL always checks.
func things(fields string) string {
	if !strings.Contains(fields, `"label"`) {
		fields = `"label": "", ` + fields
	}
	return `{"model": "app.thing", "pk": 2, "fields": {"label": "plain", "tag": "t", "doc": {}, "price": 1, "note": "n"}}, ` +
		`{"model": "app.thing", "pk": 1, "fields": {` + fields + `}}`
}

// A two-phase restore refuses, before its reinit commits, every backup
// PostgreSQL would refuse, also where the engine's own checks cannot
// tell: those rows are checked by PostgreSQL in copies of their tables
// (or, for a table with a CHECK constraint, the whole backup is loaded
// once in a rolled-back savepoint). The database is left as it was.
// Plain backups are proven without that rehearsal.
func TestTwoPhaseRefusesWhatOnlyPostgresRefuses(t *testing.T) {
	long := make([]byte, 8000)
	for i := range long {
		long[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"[rand.IntN(64)]
	}
	for _, c := range []struct {
		name, backup, want string
		rehearsed          bool // refused by the full rehearsal, not a check of one row
	}{
		{"long value in an indexed column", things(`"label": "` + string(long) + `"`), "index row size 8016 exceeds btree version 4 maximum 2704 for index \"app_thing_label_idx\"", false},
		{"values that fit alone but not together in an index entry", things(`"note": "` + string(long[:1500]) + `", "doc": {"s": "` + string(long[1500:3000]) + `"}`), "index row size", false},
		{"name beyond 63 bytes", things(`"tag": "` + strings.Repeat("n", 70) + `"`), "identifier too long", false},
		{"jsonb number beyond numeric's range", things(`"doc": {"n": 1e999999}`), "numeric", false},
		{"decimal that rounds beyond its precision", things(`"price": 999.995`), "numeric field overflow", false},
		{"CHECK constraint", `{"model": "app.checked", "pk": 1, "fields": {"n": 1}}, {"model": "app.checked", "pk": 2, "fields": {"n": -1}}`, "check constraint", true},
		// The engine compares decimals by their digits (1.0 and 1.00 differ); numeric's equality does not.
		// A row the reinit keeps, compared by the engine only for ints, text and uuids.
		{"a kept row's date in a unique index", `{"model": "app.day", "pk": 1, "fields": {"owner": 7, "day": "2020-01-01"}}`, "duplicate key", true},
		// The default of a unique column the objects leave out is the same in every row.
		{"a unique column left to its default", `{"model": "app.slug", "pk": 1, "fields": {"name": "a"}}, {"model": "app.slug", "pk": 2, "fields": {"name": "b"}}`, "duplicate key", true},
		{"values a unique index takes as equal", `{"model": "app.priced", "pk": 1, "fields": {"amount": 1.0}}, {"model": "app.priced", "pk": 2, "fields": {"amount": 1.00}}`, "duplicate key", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn := pgtest.Connect(t, pgtest.NewDB(t))
			if _, err := conn.Exec(ctx, limitsSchema); err != nil {
				t.Fatal(err)
			}
			before := checksums(t, conn)
			_, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener([]byte("[" + c.backup + "]")), Strategy: restore.TwoPhase, Reinit: deleteAll})
			var we *restore.WindowError
			if err == nil || errors.As(err, &we) {
				t.Fatalf("restore returned %v; want a refusal before the reinit commits", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("refusal %q does not say %q", err, c.want)
			}
			var be *restore.BackupError
			if !c.rehearsed && (!errors.As(err, &be) || be.Index != 1 || !strings.Contains(be.Problem, "PostgreSQL refuses it")) {
				t.Errorf("refusal %v (%T): want a BackupError naming object #1, from PostgreSQL's check of the row", err, err)
			}
			sameSums(t, "refused backup", before, checksums(t, conn))
		})
	}
	t.Run("plain backups", func(t *testing.T) {
		t.Parallel()
		conn := pgtest.Connect(t, pgtest.NewDB(t))
		if _, err := conn.Exec(ctx, limitsSchema); err != nil {
			t.Fatal(err)
		}
		var objects []string
		for i := 1; i <= 50; i++ {
			objects = append(objects, fmt.Sprintf(`{"model": "app.thing", "pk": %d, "fields": {"label": "thing %d", "tag": "t", "doc": {"n": %d, "f": 1.5}, "price": 12.5}}`, i, i, i))
		}
		objects = append(objects, `{"model": "app.thing", "pk": 51, "fields": {"label": "", "price": 99.99, "doc": {"deep": [[[1]]]}}}`)
		res, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener([]byte("[" + strings.Join(objects, ",") + "]")), Strategy: restore.TwoPhase, Reinit: deleteAll})
		if err != nil {
			t.Fatal(err)
		}
		if pv := res.Prevalidation; pv == nil || pv.Rehearsed || pv.CheckedByPostgres != 1 {
			t.Errorf("prevalidation %+v: want the engine's checks, PostgreSQL checking the first row only", pv)
		}
		with := append(objects, `{"model": "app.checked", "pk": 1, "fields": {"n": 3}}`)
		res, err = restore.Restore(ctx, conn, restore.Options{Open: bytesOpener([]byte("[" + strings.Join(with, ",") + "]")), Strategy: restore.TwoPhase, Reinit: deleteAll})
		if err != nil {
			t.Fatal(err)
		}
		if pv := res.Prevalidation; pv == nil || !pv.Rehearsed || !strings.Contains(pv.Reason, "app_checked has a CHECK constraint") {
			t.Errorf("prevalidation %+v: want the rehearsal, for app_checked's CHECK constraint", pv)
		}
	})
}
