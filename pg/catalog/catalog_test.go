package catalog_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/rehearse-dev/rehearse/internal/pgtest"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// UniqueSets lists every unique constraint and index with its key columns
// in index order (not the primary key, not INCLUDE columns), and leaves
// out partial and expression indexes.
func TestUniqueSets(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	_, err := conn.Exec(ctx, `CREATE TABLE t (id int PRIMARY KEY, a int, b text, c int, d int,
		CONSTRAINT t_ba UNIQUE (b, a), CONSTRAINT t_c UNIQUE (c));
		CREATE UNIQUE INDEX t_d_incl ON t (d) INCLUDE (a);
		CREATE UNIQUE INDEX t_nnd ON t (c, d) NULLS NOT DISTINCT;
		CREATE UNIQUE INDEX t_partial ON t (a) WHERE c > 0;
		CREATE UNIQUE INDEX t_expr ON t (lower(b))`)
	if err != nil {
		t.Fatal(err)
	}
	cat, err := pgcatalog.Load(ctx, conn, "")
	if err != nil {
		t.Fatal(err)
	}
	want := []pgcatalog.UniqueSet{
		{Name: "t_ba", Columns: []string{"b", "a"}},
		{Name: "t_c", Columns: []string{"c"}},
		{Name: "t_d_incl", Columns: []string{"d"}},
		{Name: "t_nnd", Columns: []string{"c", "d"}, NullsNotDistinct: true},
	}
	if got := cat.Tables["t"].UniqueSets; !reflect.DeepEqual(got, want) {
		t.Errorf("UniqueSets = %+v, want %+v", got, want)
	}
}
