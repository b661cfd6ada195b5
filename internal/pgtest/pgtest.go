// Package pgtest gives the project's tests real PostgreSQL databases: one
// throwaway cluster per test binary (package pglocal), one database per test.
package pgtest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	pglocal "github.com/rehearse-dev/rehearse/pg/local"
)

var (
	cluster *pglocal.Cluster
	counter atomic.Int64
	tplOnce sync.Once
	tplErr  error
)

// Main starts the cluster, runs the tests and removes the cluster. Use it from
// TestMain. With REHEARSE_TEST_DSN set, tests use that server instead.
func Main(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		// A fuzz worker runs fuzz targets only: no cluster of its own.
		os.Exit(m.Run())
	}
	if os.Getenv("REHEARSE_TEST_DSN") == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		c, err := pglocal.Start(ctx, pglocal.Options{})
		cancel()
		if err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: cannot start PostgreSQL for the tests: %v\n", err)
			os.Exit(2)
		}
		cluster = c
	}
	code := m.Run()
	if cluster != nil {
		cluster.Close()
	}
	os.Exit(code)
}

// AdminDSN is the DSN of the maintenance database.
func AdminDSN() string {
	if dsn := os.Getenv("REHEARSE_TEST_DSN"); dsn != "" {
		return dsn
	}
	return cluster.DSN("postgres")
}

// DSN returns the DSN of database name on the test server.
func DSN(name string) string {
	if cluster != nil {
		return cluster.DSN(name)
	}
	cfg, err := pgx.ParseConfig(AdminDSN())
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable", cfg.Host, cfg.Port, cfg.User, cfg.Password, name)
}

func exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, AdminDSN())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// NewDB creates an empty database and drops it when the test ends.
func NewDB(t testing.TB) string {
	return newDB(t, "")
}

const seededTemplate = "rehearse_test_edms_small"

// SeededDB returns a fresh database with the reference schema and edms-small,
// cloned from a template built once per test binary.
func SeededDB(t testing.TB) string {
	tplOnce.Do(func() {
		ctx := context.Background()
		exec(ctx, "DROP DATABASE IF EXISTS "+seededTemplate)
		if tplErr = exec(ctx, "CREATE DATABASE "+seededTemplate); tplErr != nil {
			return
		}
		conn, err := pgx.Connect(ctx, DSN(seededTemplate))
		if err != nil {
			tplErr = err
			return
		}
		defer conn.Close(ctx)
		if tplErr = edms.Install(ctx, conn); tplErr != nil {
			return
		}
		f, _ := fixtures.Get("edms-small")
		_, tplErr = edms.Seed(ctx, conn, f)
	})
	if tplErr != nil {
		t.Fatalf("build seeded template: %v", tplErr)
	}
	return newDB(t, seededTemplate)
}

func newDB(t testing.TB, template string) string {
	t.Helper()
	name := fmt.Sprintf("rehearse_test_%d_%d", os.Getpid(), counter.Add(1))
	sql := "CREATE DATABASE " + name
	if template != "" {
		sql += " TEMPLATE " + template
	}
	if err := exec(context.Background(), sql); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("REHEARSE_KEEP_FAILED") != "" {
			t.Logf("kept database of failed test: %s", DSN(name))
			return
		}
		exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return DSN(name)
}

// Connect opens a connection that is closed when the test ends.
func Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// WaitFor polls cond every 20 ms until it holds or d has passed, and
// reports whether it held.
func WaitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// Active reports, through the monitoring connection mon, whether a backend
// matching where (a pg_stat_activity condition over args) runs a statement
// LIKE like.
func Active(t testing.TB, mon *pgx.Conn, like, where string, args ...any) bool {
	t.Helper()
	var n int
	err := mon.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '`+like+`' AND `+where, args...).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}
