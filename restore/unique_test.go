package restore_test

import (
	"io"
	"os"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

const pairSchema = `CREATE TABLE app_pair (id bigint PRIMARY KEY, a integer, b text, c integer,
	UNIQUE (a, b), UNIQUE NULLS NOT DISTINCT (c, a))`

// pairs is a backup of app.pair objects, (a, b, c) each: no two share
// (a, b) unless one has a NULL there, none share (c, a) with NULLs equal.
const pairs = `[
{"model": "app.pair", "pk": 1, "fields": {"a": 1, "b": "x", "c": 1}},
{"model": "app.pair", "pk": 2, "fields": {"a": 1, "b": "y", "c": 2}},
{"model": "app.pair", "pk": 3, "fields": {"a": 2, "b": "x", "c": 1}},
{"model": "app.pair", "pk": 4, "fields": {"a": null, "b": "x", "c": 3}},
{"model": "app.pair", "pk": 5, "fields": {"a": null, "b": "x", "c": 4}},
{"model": "app.pair", "pk": 6, "fields": {"a": 3, "b": null, "c": null}},
{"model": "app.pair", "pk": 7, "fields": {"a": 3, "b": null, "c": 5}}`

func pairDB(t *testing.T) string {
	t.Helper()
	dsn := pgtest.NewDB(t)
	if _, err := pgtest.Connect(t, dsn).Exec(ctx, pairSchema); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Rows that differ in one column of a multi-column unique index, or hold
// a NULL where NULLs are distinct, are no duplicates: the backup loads,
// also when every value's hash clashes (only the exact comparison decides).
func TestMultiColumnUniqueNoFalsePositive(t *testing.T) {
	for _, clash := range []bool{false, true} {
		if clash {
			defer restore.ClashAllHashes()()
		}
		conn := pgtest.Connect(t, pairDB(t))
		res, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener([]byte(pairs + "]")), Strategy: restore.Atomic})
		if err != nil {
			t.Fatalf("hashes clashing %v: %v", clash, err)
		}
		if res.Rows["app_pair"] != 7 {
			t.Errorf("hashes clashing %v: %d rows loaded, want 7", clash, res.Rows["app_pair"])
		}
	}
}

// A row that repeats another's values in a multi-column unique index is
// refused in validation, naming the object and the fields, with the
// database unchanged; with every hash clashing too.
func TestMultiColumnUniqueDuplicateIsCaughtInValidation(t *testing.T) {
	cases := []struct{ name, obj, fields, want string }{
		{"unique (a, b)", `{"model": "app.pair", "pk": 8, "fields": {"a": 2, "b": "x", "c": 9}}`, "a,b",
			`object #7 (app.pair pk=8) field "a,b": duplicate values (2, x) in unique columns (a, b) (index app_pair_a_b_key): another app.pair object in this backup has them too`},
		{"nulls not distinct (c, a)", `{"model": "app.pair", "pk": 8, "fields": {"a": 3, "b": "z", "c": null}}`, "c,a",
			`object #7 (app.pair pk=8) field "c,a": duplicate values (NULL, 3) in unique columns (c, a) (index app_pair_c_a_key)`},
	}
	for _, clash := range []bool{false, true} {
		if clash {
			defer restore.ClashAllHashes()()
		}
		for _, c := range cases {
			conn := pgtest.Connect(t, pairDB(t))
			if _, err := conn.Exec(ctx, `INSERT INTO app_pair VALUES (100, 7, 'kept', 7)`); err != nil {
				t.Fatal(err)
			}
			before := checksums(t, conn)
			for _, s := range strategies() {
				_, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener([]byte(pairs + ",\n" + c.obj + "]")), Strategy: s})
				checkRefusal(t, hostileCase{index: true, model: "app.pair", pk: "8", field: c.fields, want: c.want}, err)
				sameSums(t, c.name, before, checksums(t, conn))
			}
		}
	}
}

// Over a populated database, a backup object whose values in a
// multi-column unique index belong to a row the restore keeps is refused
// in validation, naming the object and the kept row.
func TestMultiColumnUniqueOfAKeptRowIsCaughtInValidation(t *testing.T) {
	eachSeeded(t, func(t *testing.T, s restore.Strategy, conn *pgx.Conn) {
		before := checksums(t, conn)
		b := []byte(`[{"model": "documents.documentversion", "pk": 999, "fields": {"document": 1, "version_number": 1,
				"file_checksum": "", "change_summary": "", "created_by": null, "created_at": "2025-01-01T00:00:00Z"}}]`)
		_, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(b), Strategy: s, Protected: edms.Protected()})
		checkRefusal(t, hostileCase{index: true, model: "documents.documentversion", pk: "999", field: "document,version_number",
			want: `object #0 (documents.documentversion pk=999) field "document,version_number": its values in unique columns (document_id, version_number) (index documents_documentversion_document_id_version_number_key) are already held by the documents_documentversion row with pk 1, which this restore keeps`}, err)
		sameSums(t, "refused backup", before, checksums(t, conn))
	})
}

// Validation over a populated database reads the backup a fixed number of
// times, whatever the rows the reinit keeps that the backup brings again
// (admin's documents and versions, with their unique values): comparing
// hashes exactly must not read the backup again for each of them.
func TestKeptRowsDoNotMultiplyBackupReads(t *testing.T) {
	for _, c := range []struct {
		s     restore.Strategy
		reads int // atomic: the keys, then one pass that validates and loads; two-phase: the validating pass, then the load's
	}{{restore.Atomic, 2}, {restore.TwoPhase, 2}} {
		t.Run(string(c.s), func(t *testing.T) {
			t.Parallel()
			dsn, data := populatedDB(t, 10)
			var mu sync.Mutex
			reads := 0
			open := func() (io.ReadCloser, error) {
				mu.Lock()
				reads++
				mu.Unlock()
				return bytesOpener(data)()
			}
			if _, err := restore.Restore(ctx, pgtest.Connect(t, dsn), restore.Options{Open: open, Strategy: c.s, Reinit: withReinit(true), Protected: edms.Protected()}); err != nil {
				t.Fatal(err)
			}
			if reads != c.reads {
				t.Errorf("the backup was read %d times, want %d", reads, c.reads)
			}
		})
	}
}

// The unique checks give the same answers, and name the same objects, when
// every index's values spill to a temporary file after two (the path a
// backup with more than spillAt unique values per index takes).
func TestUniqueChecksSpilled(t *testing.T) {
	t.Cleanup(restore.SpillAt(2))
	before := restore.Spills()
	for name, test := range map[string]func(*testing.T){
		"no false positive":                TestMultiColumnUniqueNoFalsePositive,
		"multi-column duplicate":           TestMultiColumnUniqueDuplicateIsCaughtInValidation,
		"multi-column value of a kept row": TestMultiColumnUniqueOfAKeptRowIsCaughtInValidation,
		"duplicates":                       TestUniqueViolationsAreCaughtInValidation,
		"value of a kept row":              TestUniqueValueOfAKeptRowIsCaughtInValidation,
		"round trip":                       TestRoundTripWithReinit,
	} {
		t.Run(name, test)
	}
	t.Cleanup(func() {
		if restore.Spills() == before {
			t.Error("no unique index spilled: the spilled path was not tested")
		}
	})
}

// With its values spilled, a backup object whose values in a multi-column
// unique index belong to a row the restore keeps is still refused, naming
// it, with both strategies.
func TestSpilledUniqueOfAKeptRow(t *testing.T) {
	t.Cleanup(restore.SpillAt(2))
	for _, s := range strategies() {
		conn := pgtest.Connect(t, pairDB(t))
		if _, err := conn.Exec(ctx, `INSERT INTO app_pair VALUES (100, 9, 'z', 100)`); err != nil {
			t.Fatal(err)
		}
		before := restore.Spills()
		b := pairs + `, {"model": "app.pair", "pk": 8, "fields": {"a": 9, "b": "z", "c": 8}}]`
		_, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener([]byte(b)), Strategy: s})
		checkRefusal(t, hostileCase{index: true, model: "app.pair", pk: "8", field: "a,b",
			want: `are already held by the app_pair row with pk 100, which this restore keeps`}, err)
		if s == restore.TwoPhase && restore.Spills() == before {
			t.Errorf("%s: no unique index spilled", s)
		}
		if n := count(t, conn, "SELECT count(*) FROM app_pair"); n != 1 {
			t.Errorf("%s: %d rows after the refusal, want the kept one", s, n)
		}
	}
}

// A spilled set's temporary files are closed when the pass ends, however
// it ends: a refused backup, a two-phase proof, a load (with the collector
// off, so that no finalizer closes them instead).
func TestSpillFilesAreClosed(t *testing.T) {
	t.Cleanup(restore.SpillAt(2))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	openFiles := func() int {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skipf("cannot count open files: %v", err)
		}
		return len(fds)
	}
	bad := pairs + `, {"model": "app.pair", "pk": 8, "fields": {"a": "not a number", "b": "z", "c": 8}}]`
	for _, s := range strategies() {
		for _, b := range []string{pairs + "]", bad} {
			conn := pgtest.Connect(t, pairDB(t))
			if _, err := conn.Exec(ctx, `INSERT INTO app_pair VALUES (100, 9, 'z', 100)`); err != nil {
				t.Fatal(err)
			}
			before, spills := openFiles(), restore.Spills()
			restore.Restore(ctx, conn, restore.Options{Open: bytesOpener([]byte(b)), Strategy: s})
			if restore.Spills() == spills {
				t.Errorf("%s: nothing spilled", s)
			}
			if after := openFiles(); after != before {
				t.Errorf("%s, %d bytes of backup: %d files open after the restore, %d before", s, len(b), after, before)
			}
		}
	}
}
