package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/rehearse-dev/rehearse/pg/provider"
)

// providerFlags adds --provider, --dsn and --image; the defaults come from
// REHEARSE_PROVIDER, REHEARSE_DSN and REHEARSE_PG_IMAGE.
type providerFlags struct {
	kind, dsn, image *string
}

func addProviderFlags(fs *flag.FlagSet) providerFlags {
	env := provider.ConfigFromEnv()
	return providerFlags{
		kind: fs.String("provider", env.Kind, "where scenario databases live: "+strings.Join(provider.Names(), ", ")+
			" (default: dsn when --dsn is set, else local; env REHEARSE_PROVIDER)"),
		dsn:   fs.String("dsn", env.DSN, "an existing PostgreSQL server for provider dsn; rehearse creates and drops its own databases there (env REHEARSE_DSN)"),
		image: fs.String("image", env.Image, "image for provider container (default rehearse/postgres:15, built by make pg-image; env REHEARSE_PG_IMAGE)"),
	}
}

// open starts or connects to the provider and says so on out.
func (pf providerFlags) open(ctx context.Context, out io.Writer) (harness.Provider, error) {
	cfg := provider.Config{Kind: *pf.kind, DSN: *pf.dsn, Image: *pf.image}
	what, ok := map[string]string{provider.Local: "a throwaway PostgreSQL cluster",
		provider.Container: "a PostgreSQL container", provider.DSN: "the server of --dsn"}[cfg.ResolvedKind()]
	if !ok {
		what = cfg.ResolvedKind()
	}
	started := time.Now()
	fmt.Fprintf(out, "rehearse: starting %s...\n", what)
	prov, err := provider.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "rehearse: PostgreSQL (%s) ready in %s\n", prov.Name(), time.Since(started).Round(time.Millisecond))
	return prov, nil
}
