package harness_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	pgcontainer "github.com/rehearse-dev/rehearse/pg/container"
	pglocal "github.com/rehearse-dev/rehearse/pg/local"
	"github.com/rehearse-dev/rehearse/pg/provider"
	"github.com/rehearse-dev/rehearse/results"
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
	if ok, err := pgcontainer.ImagePresent(ctx, ""); err != nil {
		t.Fatal(err)
	} else if !ok {
		t.Fatalf("%v: %s\n(build it with: make pg-image; or set REHEARSE_SKIP_CONTAINER=1)", pgcontainer.ErrImageMissing, pgcontainer.ImageName(""))
	}
	harness.Run(t, harness.Params{Dir: "../scenarios", Provider: provider.Container})
}

// The shipped scenarios pass on an existing server reached by DSN: the one
// in REHEARSE_DSN_PROVIDER_TEST, else a cluster started here from the
// installed binaries and reached, as a user's server is, by a TCP DSN on
// loopback. The provider leaves no database of its own behind.
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
	t.Setenv("REHEARSE_PROVIDER", "") // the DSN alone
	before := rehearseDatabases(t, dsn)
	var ran []*results.Result
	t.Run("shipped", func(t *testing.T) {
		harness.Run(t, harness.Params{Dir: "../scenarios", ProviderDSN: dsn, Done: func(rs []*results.Result) { ran = rs }})
	})
	for _, r := range ran {
		if r.Provider != provider.DSN {
			t.Fatalf("%s ran on provider %s, want dsn (a DSN alone selects it)", r.Name, r.Provider)
		}
	}
	// The subtest's cleanup closed the provider: its templates are gone.
	if after := rehearseDatabases(t, dsn); after != before {
		t.Errorf("the server holds %d rehearse databases after the run, %d before: the provider leaked some", after, before)
	}
}

func rehearseDatabases(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn := pgtest.Connect(t, dsn)
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname LIKE 'rehearse\_%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A scenario's provider: key sends its database to another provider than
// the run's, started on first use.
func TestScenarioChoosesProvider(t *testing.T) {
	ctx := context.Background()
	prov, err := provider.Open(ctx, provider.Config{Kind: provider.Local})
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

// A scenario whose provider cannot start fails with an error that names it
// (here: a container provider without its image, or without Docker); the
// run goes on and closing the runner does not trip over the missing
// provider.
func TestScenarioProviderThatCannotStart(t *testing.T) {
	ctx := context.Background()
	t.Setenv(pgcontainer.ImageEnv, "rehearse/no-such-image:missing")
	scenarios, err := harness.LoadPaths([]string{"testdata/provider/on-container.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	runner := &harness.Runner{}
	for range 2 { // the second scenario gets the same error, not a nil provider
		res := runner.Run(ctx, scenarios[0])
		if !strings.Contains(res.Error, "provider container") {
			t.Errorf("result error %q does not say that provider container failed", res.Error)
		}
	}
	if err := runner.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
