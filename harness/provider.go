package harness

import (
	"context"

	"github.com/rehearse-dev/rehearse/pg/provider"
)

// Provider hands out databases that hold the reference schema and a fixture.
// Package provider opens them (local, container or dsn); its
// *provider.TemplateProvider satisfies this interface.
type Provider interface {
	// Database returns the DSN of a fresh database seeded with fixture, and a
	// function that drops it.
	Database(ctx context.Context, fixture string) (dsn string, drop func(), err error)
	// Name says where the databases live: "local", "container" or "dsn".
	Name() string
	Close() error
}

var _ Provider = (*provider.TemplateProvider)(nil)

// openProvider opens a provider configured from the environment
// (provider.ConfigFromEnv), of kind unless kind is "". On error the
// Provider is nil, never a nil *TemplateProvider in a non-nil interface.
func openProvider(ctx context.Context, kind string, logf func(string, ...any)) (Provider, error) {
	cfg := provider.ConfigFromEnv()
	if kind != "" {
		cfg.Kind = kind
	}
	cfg.Logf = logf
	p, err := provider.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return p, nil
}
