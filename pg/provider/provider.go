// Package provider chooses and opens where rehearse's scenario databases
// live: a throwaway cluster from the installed binaries (pglocal), a
// throwaway server in Docker (pgcontainer), or an existing server the user
// points at (dsn). The CLI and `go test` both open providers here, so the
// choice is made in one place; harness only knows the interface its
// *TemplateProvider satisfies (harness.Provider).
package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rehearse-dev/rehearse/internal/loopback"
	pgcontainer "github.com/rehearse-dev/rehearse/pg/container"
	pglocal "github.com/rehearse-dev/rehearse/pg/local"
)

// Provider kinds, as --provider, REHEARSE_PROVIDER and a scenario's
// provider: key name them.
const (
	Local     = "local"     // a throwaway cluster from the installed binaries (pglocal)
	Container = "container" // a throwaway server in Docker (pgcontainer)
	DSN       = "dsn"       // an existing server the user points at
)

// Names lists the kinds Open knows.
func Names() []string { return []string{Local, Container, DSN} }

// Config chooses and configures a provider.
type Config struct {
	// Kind is local, container or dsn; "" means dsn when DSN is set, else local.
	Kind string
	// DSN of an existing server (kind dsn). The provider creates and drops
	// its own databases there; the role needs CREATEDB.
	DSN string
	// Image for kind container; "" means $REHEARSE_PG_IMAGE or rehearse/postgres:15.
	Image string
	// Reuse (kind container) keeps the container between runs and uses the
	// one an earlier run kept (pgcontainer.Options.Reuse). The databases
	// stay this run's own: they carry owner comments, as on a dsn server,
	// and those of runs that are gone are dropped on Open. REHEARSE_REUSE=1
	// in the environment turns it on too, for every caller of Open (the
	// CLI's flags have no switch for it).
	Reuse bool
	// ReuseKey (with reuse) must match too for a kept container to be
	// used (pgcontainer.Options.ReuseKey): tests give distinct keys.
	ReuseKey string
	// Logf receives progress lines; nil discards them.
	Logf func(string, ...any)
}

// ConfigFromEnv reads REHEARSE_PROVIDER, REHEARSE_DSN, REHEARSE_PG_IMAGE and
// REHEARSE_REUSE (=1), so that `go test` can be pointed at another provider.
func ConfigFromEnv() Config {
	return Config{
		Kind: os.Getenv("REHEARSE_PROVIDER"), DSN: os.Getenv("REHEARSE_DSN"),
		Image: os.Getenv(pgcontainer.ImageEnv), Reuse: os.Getenv(pgcontainer.ReuseEnv) == "1",
	}
}

// ResolvedKind is the kind Open will start: Kind, else dsn when a DSN is
// set, else local.
func (c Config) ResolvedKind() string {
	switch {
	case c.Kind != "":
		return c.Kind
	case c.DSN != "":
		return DSN
	}
	return Local
}

// Open starts (local, container) or connects to (dsn) a server. On error it
// returns a nil provider and leaves nothing running.
func Open(ctx context.Context, cfg Config) (*TemplateProvider, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	kind := cfg.ResolvedKind()
	switch kind {
	case Local:
		c, err := pglocal.Start(ctx, pglocal.Options{Logf: cfg.Logf})
		if err != nil {
			return nil, err
		}
		return newTemplateProvider(ctx, kind, c)
	case Container:
		reuse := cfg.Reuse || os.Getenv(pgcontainer.ReuseEnv) == "1"
		s, err := pgcontainer.Start(ctx, pgcontainer.Options{Image: cfg.Image, Logf: cfg.Logf, Reuse: reuse, ReuseKey: cfg.ReuseKey})
		if err != nil {
			return nil, err
		}
		if !reuse {
			return newTemplateProvider(ctx, kind, s)
		}
		return openShared(ctx, kind, s, logf)
	case DSN:
		return openDSN(ctx, cfg.DSN, logf)
	}
	return nil, fmt.Errorf("unknown provider %q: use %s", kind, strings.Join(Names(), ", "))
}

func openDSN(ctx context.Context, dsn string, logf func(string, ...any)) (*TemplateProvider, error) {
	if dsn == "" {
		return nil, errors.New("provider dsn needs a DSN: pass --dsn or set REHEARSE_DSN (e.g. postgres://postgres@127.0.0.1:5432/postgres)")
	}
	if err := loopback.DSN(dsn); err != nil {
		return nil, err
	}
	s, err := newDSNServer(dsn)
	if err != nil {
		return nil, err
	}
	return openShared(ctx, DSN, s, logf)
}

// openShared opens a provider on a server other runs use too (dsn, a
// reusable container): its databases carry owner comments, and those of
// runs that are gone are dropped first.
func openShared(ctx context.Context, kind string, s server, logf func(string, ...any)) (*TemplateProvider, error) {
	p, err := newTemplateProvider(ctx, kind, s)
	if err != nil {
		return nil, err
	}
	p.shared = true
	if err := p.sweepStale(ctx, logf); err != nil {
		logf("sweeping databases of dead rehearse runs: %v", err)
	}
	return p, nil
}
