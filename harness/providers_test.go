package harness_test

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/harness"
	pgcontainer "github.com/rehearse-dev/rehearse/pg/container"
	pglocal "github.com/rehearse-dev/rehearse/pg/local"
)

// The shipped scenarios pass with their databases in a Docker container.
// Skipped without a Docker engine; without the image it fails (run make
// pg-image) unless REHEARSE_SKIP_CONTAINER=1.
func TestScenariosOnContainer(t *testing.T) {
	ctx := context.Background()
	if err := pgcontainer.Available(ctx); err != nil {
		t.Skipf("no Docker engine: %v", err)
	}
	if os.Getenv("REHEARSE_SKIP_CONTAINER") == "1" {
		t.Skip("REHEARSE_SKIP_CONTAINER=1 asks to skip the container tests")
	}
	prov, err := harness.OpenProvider(ctx, harness.ProviderConfig{Kind: harness.ProviderContainer})
	if errors.Is(err, pgcontainer.ErrImageMissing) {
		t.Fatalf("%v\n(build it with: make pg-image; or set REHEARSE_SKIP_CONTAINER=1)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close() })
	harness.RunWith(t, "../scenarios", prov)
}

// The shipped scenarios pass on an existing server reached by DSN: the one
// in REHEARSE_DSN_PROVIDER_TEST (.ci/run starts one), else a cluster
// started here. The
// provider leaves no database of its own behind.
func TestScenariosOnDSN(t *testing.T) {
	ctx := context.Background()
	dsn := os.Getenv("REHEARSE_DSN_PROVIDER_TEST")
	if dsn == "" {
		c, err := pglocal.Start(ctx, pglocal.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		dsn = c.TCPDSN("postgres")
	}
	before := rehearseDatabases(t, dsn)
	prov, err := harness.OpenProvider(ctx, harness.ProviderConfig{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	if prov.Name() != harness.ProviderDSN {
		t.Fatalf("provider = %s, want dsn (a DSN alone selects it)", prov.Name())
	}
	t.Run("shipped", func(t *testing.T) { harness.RunWith(t, "../scenarios", prov) })
	if err := prov.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if after := rehearseDatabases(t, dsn); after != before {
		t.Errorf("the server holds %d rehearse databases after the run, %d before: the provider leaked some", after, before)
	}
}

func rehearseDatabases(t *testing.T, dsn string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname LIKE 'rehearse\_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestOpenProviderErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := harness.OpenProvider(ctx, harness.ProviderConfig{Kind: "cloud"}); err == nil || !contains(err.Error(), "unknown provider \"cloud\": use local, container, dsn") {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := harness.OpenProvider(ctx, harness.ProviderConfig{Kind: harness.ProviderDSN}); err == nil || !contains(err.Error(), "REHEARSE_DSN") {
		t.Errorf("dsn without DSN: %v", err)
	}
	if _, err := harness.OpenProvider(ctx, harness.ProviderConfig{DSN: "postgres://nobody:secret@127.0.0.1:1/postgres?connect_timeout=2"}); err == nil || contains(err.Error(), "secret") {
		t.Errorf("unreachable server: err %v (must fail and never show the password)", err)
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// A scenario's provider: key sends its database to another provider than
// the run's, started on first use.
func TestScenarioChoosesProvider(t *testing.T) {
	ctx := context.Background()
	prov, err := harness.OpenProvider(ctx, harness.ProviderConfig{Kind: harness.ProviderLocal})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	c, err := pglocal.Start(ctx, pglocal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("REHEARSE_DSN", c.TCPDSN("postgres"))
	files := []string{"testdata/provider/on-dsn.yaml"}
	if pgcontainer.Available(ctx) == nil && os.Getenv("REHEARSE_SKIP_CONTAINER") != "1" {
		files = append(files, "testdata/provider/on-container.yaml")
	}
	scenarios, err := harness.LoadPaths(files)
	if err != nil {
		t.Fatal(err)
	}
	runner := &harness.Runner{Provider: prov}
	defer runner.Close()
	for _, s := range scenarios {
		res := runner.Run(ctx, s)
		harness.Report(t, res)
		if want := s.Provider; res.Provider != want {
			t.Errorf("%s ran on provider %q, want %q", s.Name, res.Provider, want)
		}
	}
	if n := rehearseDatabases(t, c.TCPDSN("postgres")); n == 0 {
		t.Error("no rehearse database on the dsn server before Close: the scenario did not run there (its template lives until Close)")
	}
	if err := runner.Close(); err != nil {
		t.Fatal(err)
	}
	if n := rehearseDatabases(t, c.TCPDSN("postgres")); n != 0 {
		t.Errorf("%d rehearse databases left on the dsn server after Close", n)
	}
}

// A scenario whose own timeout expires while the fixture's template is
// being built must not fail the scenarios after it.
func TestShortTimeoutDoesNotPoisonTheTemplate(t *testing.T) {
	ctx := context.Background()
	prov, err := harness.OpenProvider(ctx, harness.ProviderConfig{Kind: harness.ProviderLocal})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, drop, err := prov.Database(short, "edms-small"); err == nil {
		drop()
	}
	dsn, drop, err := prov.Database(ctx, "edms-small")
	if err != nil {
		t.Fatalf("after a timed-out first use: %v", err)
	}
	defer drop()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM users_user").Scan(&n); err != nil || n != 7 {
		t.Errorf("users: %d %v", n, err)
	}
}

// Databases a killed run left on a DSN server are dropped by the next run
// on the same machine when their owner is provably gone; a live owner's and
// unlabelled ones stay.
func TestDSNProviderSweepsDatabasesOfDeadRuns(t *testing.T) {
	ctx := context.Background()
	c, err := pglocal.Start(ctx, pglocal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dsn := c.TCPDSN("postgres")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// Forge the comments a dead and a live owner would have written.
	first, err := harness.OpenProvider(ctx, harness.ProviderConfig{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	_, drop, err := first.Database(ctx, "edms-small")
	if err != nil {
		t.Fatal(err)
	}
	var comment string
	if err := conn.QueryRow(ctx, `SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE 'rehearse\_s%'`).Scan(&comment); err != nil {
		t.Fatalf("the provider did not label its database: %v", err)
	}
	dead := deadPIDForTest(t)
	deadComment := regexp.MustCompile(`pid=\d+`).ReplaceAllString(comment, "pid="+strconv.Itoa(dead))
	for _, q := range []string{
		"CREATE DATABASE rehearse_s_dead_1",
		"COMMENT ON DATABASE rehearse_s_dead_1 IS '" + deadComment + "'",
		"CREATE DATABASE rehearse_unlabelled",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	second, err := harness.OpenProvider(ctx, harness.ProviderConfig{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	exists := func(name string) bool {
		var n int
		conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n)
		return n == 1
	}
	if exists("rehearse_s_dead_1") {
		t.Error("the database of a dead run survived the sweep")
	}
	if !exists("rehearse_unlabelled") {
		t.Error("an unlabelled database was dropped")
	}
	var liveLeft int
	conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname LIKE 'rehearse\_s%' AND datname <> 'rehearse_s_dead_1'`).Scan(&liveLeft)
	if liveLeft != 1 {
		t.Errorf("%d databases of the live run left, want 1", liveLeft)
	}
	drop()
	first.Close()
}

func deadPIDForTest(t *testing.T) int {
	t.Helper()
	for pid := 999999; pid < 1099999; pid++ {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); os.IsNotExist(err) {
			return pid
		}
	}
	t.Fatal("no free pid")
	return 0
}
