package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/rehearse-dev/rehearse/pg/provider"
	"github.com/rehearse-dev/rehearse/results"
)

// Params configures Run, as testscript.Params configures testscript.Run.
// The zero value of every field but Dir and Files is ready to use.
type Params struct {
	// Dir is a folder of scenario files (*.yaml, *.yml).
	Dir string
	// Files are scenario files, run beside those of Dir.
	Files []string

	// Provider is where the databases of embedded-target scenarios live:
	// "local" (a throwaway cluster), "container" (Docker) or "dsn" (an
	// existing server). "" means $REHEARSE_PROVIDER, else dsn when a DSN is
	// set, else local.
	Provider string
	// ProviderDSN is the server of provider dsn ("" means $REHEARSE_DSN).
	ProviderDSN string

	// BaseURL and DSN override those of scenarios with target: http (the
	// running system's base URL and its database), as `rehearse rehearse
	// --target URL --dsn DSN` does.
	BaseURL, DSN string

	// Parallel is how many scenarios run at once: 0 means all of them (each
	// subtest calls t.Parallel, so go test's -parallel bounds them), 1 one
	// after another.
	Parallel int

	// SkipWithoutPostgreSQL skips the scenarios, instead of failing them,
	// when PostgreSQL cannot be started or reached (no server binaries, no
	// Docker engine or image, a DSN nothing answers at). Malformed files
	// fail all the same.
	SkipWithoutPostgreSQL bool

	// Done, if set, is called once every scenario has finished, with the
	// results of those that ran, in name order: for example to write
	// reports with reports.WriteAll.
	Done func(rs []*results.Result)
}

// paths are the files and folders p names.
func (p Params) paths() ([]string, error) {
	var paths []string
	if p.Dir != "" {
		paths = append(paths, p.Dir)
	}
	paths = append(paths, p.Files...)
	if len(paths) == 0 {
		return nil, errors.New("harness.Run: Params names no scenarios: set Dir or Files")
	}
	return paths, nil
}

// config is the provider p asks for: the environment's, overridden by p.
func (p Params) config() (provider.Config, error) {
	cfg := provider.ConfigFromEnv()
	if p.Provider != "" {
		cfg.Kind = p.Provider
	}
	if p.ProviderDSN != "" {
		cfg.DSN = p.ProviderDSN
	}
	if k := cfg.ResolvedKind(); !slices.Contains(provider.Names(), k) {
		return cfg, fmt.Errorf("harness.Run: unknown provider %q: use %s", k, strings.Join(provider.Names(), ", "))
	}
	return cfg, nil
}

// shared holds the providers Run's tests use, one per configuration, each
// counted by its users: the last one to release it closes it, so no
// TestMain is needed and no cluster outlives the tests that used it.
var shared = struct {
	mu sync.Mutex
	m  map[sharedKey]*sharedProvider
}{m: map[sharedKey]*sharedProvider{}}

type sharedKey struct{ kind, dsn, image string }

type sharedProvider struct {
	p     Provider
	users int
}

// acquire returns the shared provider of cfg, opening it if no test holds
// it, and the function that gives it back (the last one back closes it and
// returns what Close returned).
func acquire(ctx context.Context, cfg provider.Config) (Provider, func() error, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	key := sharedKey{cfg.ResolvedKind(), cfg.DSN, cfg.Image}
	sp := shared.m[key]
	if sp == nil {
		p, err := provider.Open(ctx, cfg)
		if err != nil {
			return nil, nil, err
		}
		sp = &sharedProvider{p: p}
		shared.m[key] = sp
	}
	sp.users++
	var once sync.Once
	release := func() (err error) {
		once.Do(func() {
			shared.mu.Lock()
			defer shared.mu.Unlock()
			if sp.users--; sp.users == 0 {
				delete(shared.m, key)
				err = sp.p.Close()
			}
		})
		return err
	}
	return sp.p, release, nil
}

var held struct {
	once    sync.Once
	p       Provider
	release func() error
	err     error
}

// SharedProvider returns the provider of the environment's configuration,
// held for the whole process until CloseShared (call it from TestMain).
// Run needs neither.
func SharedProvider(ctx context.Context) (Provider, error) {
	held.once.Do(func() {
		cfg, err := Params{}.config()
		if err != nil {
			held.err = err
			return
		}
		held.p, held.release, held.err = acquire(ctx, cfg)
	})
	return held.p, held.err
}

// CloseShared gives back what SharedProvider holds.
func CloseShared() error {
	if held.release != nil {
		return held.release()
	}
	return nil
}
