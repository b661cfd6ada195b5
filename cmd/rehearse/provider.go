package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rehearse-dev/rehearse/harness"
)

// providerFlags adds --provider, --dsn and --image; the defaults come from
// REHEARSE_PROVIDER, REHEARSE_DSN and REHEARSE_PG_IMAGE.
type providerFlags struct {
	kind, dsn, image *string
}

func addProviderFlags(fs *flag.FlagSet) providerFlags {
	env := harness.ProviderConfigFromEnv()
	return providerFlags{
		kind: fs.String("provider", env.Kind, "where scenario databases live: "+strings.Join(harness.ProviderNames(), ", ")+
			" (default: dsn when --dsn is set, else local; env REHEARSE_PROVIDER)"),
		dsn:   fs.String("dsn", env.DSN, "an existing PostgreSQL server for provider dsn; rehearse creates and drops its own databases there (env REHEARSE_DSN)"),
		image: fs.String("image", env.Image, "image for provider container (default rehearse/postgres:15, built by make pg-image; env REHEARSE_PG_IMAGE)"),
	}
}

// open starts or connects to the provider and says so on out.
func (pf providerFlags) open(ctx context.Context, out io.Writer) (*harness.ServerProvider, error) {
	cfg := harness.ProviderConfig{Kind: *pf.kind, DSN: *pf.dsn, Image: *pf.image}
	if cfg.Kind == "" && cfg.DSN != "" {
		cfg.Kind = harness.ProviderDSN
	}
	what := map[string]string{"": "a throwaway PostgreSQL cluster", harness.ProviderLocal: "a throwaway PostgreSQL cluster",
		harness.ProviderContainer: "a PostgreSQL container", harness.ProviderDSN: "the server of --dsn"}[cfg.Kind]
	if what == "" {
		what = cfg.Kind
	}
	started := time.Now()
	fmt.Fprintf(out, "rehearse: starting %s...\n", what)
	prov, err := harness.OpenProvider(ctx, cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "rehearse: PostgreSQL (%s) ready in %s\n", prov.Name(), time.Since(started).Round(time.Millisecond))
	return prov, nil
}
