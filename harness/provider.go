package harness

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/pglocal"
)

// Provider hands out databases that hold the reference schema and a fixture.
type Provider interface {
	// Database returns the DSN of a fresh database seeded with fixture, and a
	// function that drops it.
	Database(ctx context.Context, fixture string) (dsn string, drop func(), err error)
	Close() error
}

// LocalProvider runs one throwaway cluster for the whole process (package
// pglocal) and clones one database per scenario from a template that already
// holds the schema and the fixture, so per-scenario setup costs a CREATE
// DATABASE ... TEMPLATE (tens of milliseconds), not a seed.
type LocalProvider struct {
	cluster *pglocal.Cluster
	mu      sync.Mutex
	tpls    map[string]*template
	n       atomic.Int64
	run     string
}

type template struct {
	once sync.Once
	name string
	err  error
}

// NewLocalProvider starts the cluster.
func NewLocalProvider(ctx context.Context, logf func(string, ...any)) (*LocalProvider, error) {
	c, err := pglocal.Start(ctx, pglocal.Options{Logf: logf})
	if err != nil {
		return nil, err
	}
	return &LocalProvider{cluster: c, tpls: map[string]*template{}, run: fmt.Sprintf("%d", os.Getpid())}, nil
}

// Close stops the cluster and removes its files.
func (p *LocalProvider) Close() error { return p.cluster.Close() }

func (p *LocalProvider) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, p.cluster.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func (p *LocalProvider) template(ctx context.Context, fixture string) (string, error) {
	p.mu.Lock()
	t := p.tpls[fixture]
	if t == nil {
		t = &template{name: "rehearse_tpl_" + strings.ReplaceAll(fixture, "-", "_")}
		p.tpls[fixture] = t
	}
	p.mu.Unlock()
	t.once.Do(func() { t.err = p.build(ctx, t.name, fixture) })
	return t.name, t.err
}

// build seeds the template under its final name and marks it a template only
// once the seed succeeded; every connection to it is closed first, since
// CREATE DATABASE ... TEMPLATE refuses a source with sessions.
func (p *LocalProvider) build(ctx context.Context, name, fixture string) error {
	f, err := fixtures.Get(fixture)
	if err != nil {
		return err
	}
	if err := p.admin(ctx, "CREATE DATABASE "+name); err != nil {
		return fmt.Errorf("create template for %s: %w", fixture, err)
	}
	conn, err := pgx.Connect(ctx, p.cluster.DSN(name))
	if err != nil {
		return err
	}
	err = edms.Install(ctx, conn)
	if err == nil {
		_, err = edms.Seed(ctx, conn, f)
	}
	conn.Close(context.Background())
	if err != nil {
		return fmt.Errorf("seed template with %s: %w", fixture, err)
	}
	return p.admin(ctx, "ALTER DATABASE "+name+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
}

// Database clones the fixture's template.
func (p *LocalProvider) Database(ctx context.Context, fixture string) (string, func(), error) {
	tpl, err := p.template(ctx, fixture)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("rehearse_s%s_%d", p.run, p.n.Add(1))
	if err := p.admin(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s STRATEGY FILE_COPY", name, tpl)); err != nil {
		return "", nil, fmt.Errorf("clone %s: %w", tpl, err)
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return p.cluster.DSN(name), drop, nil
}
