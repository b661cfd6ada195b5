package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
)

// server is a PostgreSQL server the provider creates databases on:
// *pglocal.Cluster, *pgcontainer.Server or an existing server (dsnServer).
type server interface {
	// DSN of database dbname on the server, as a superuser or a CREATEDB role.
	DSN(dbname string) string
	Close() error
}

// TemplateProvider clones one database per scenario from a template that
// already holds the reference schema and the fixture, so per-scenario setup
// costs a CREATE DATABASE ... TEMPLATE (tens of milliseconds), not a seed.
// Every database it creates carries a run id in its name and is dropped
// when the scenario ends; the templates are dropped by Close, so a shared
// server is left as it was found.
type TemplateProvider struct {
	kind     string
	srv      server
	shared   bool // other runs use the server too: claim databases (sweep.go)
	run      string
	strategy string // " STRATEGY FILE_COPY" on PostgreSQL 15+, where it is faster for small databases
	mu       sync.Mutex
	tpls     map[string]*template
	n        atomic.Int64
}

// templateBuildTimeout bounds seeding one fixture's template (edms-large,
// ~1M rows, takes seconds).
const templateBuildTimeout = 10 * time.Minute

type template struct {
	once    sync.Once
	fixture string
	name    string
	built   bool
	err     error
}

// newTemplateProvider takes srv over: on error it is closed.
func newTemplateProvider(ctx context.Context, kind string, srv server) (*TemplateProvider, error) {
	b := make([]byte, 4)
	rand.Read(b)
	p := &TemplateProvider{kind: kind, srv: srv, tpls: map[string]*template{}, run: fmt.Sprintf("%d_%s", os.Getpid(), hex.EncodeToString(b))}
	conn, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("connect to the %s server: %w", kind, err)
	}
	defer conn.Close(context.Background())
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		srv.Close()
		return nil, fmt.Errorf("read the %s server's version: %w", kind, err)
	}
	if version >= 150000 {
		p.strategy = " STRATEGY FILE_COPY"
	}
	return p, nil
}

// Name is the provider's kind: local, container or dsn.
func (p *TemplateProvider) Name() string {
	if p == nil {
		return ""
	}
	return p.kind
}

// Close drops the templates and stops the server (a dsn server is left
// running). A nil provider closes without error.
func (p *TemplateProvider) Close() error {
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	p.mu.Lock()
	for _, t := range p.tpls {
		if t.built {
			errs = append(errs, p.dropDatabase(ctx, t.name))
		}
	}
	p.mu.Unlock()
	errs = append(errs, p.srv.Close())
	return errors.Join(errs...)
}

// Database clones the fixture's template and returns the clone's DSN and a
// function that drops it.
func (p *TemplateProvider) Database(ctx context.Context, fixture string) (string, func(), error) {
	if p == nil {
		return "", nil, errors.New("no provider: it failed to open")
	}
	tpl, err := p.template(ctx, fixture)
	if err != nil {
		return "", nil, err
	}
	name := fmt.Sprintf("rehearse_s%s_%d", p.run, p.n.Add(1))
	if err := p.admin(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s%s", name, tpl, p.strategy)); err != nil {
		return "", nil, fmt.Errorf("clone %s: %w", tpl, err)
	}
	if err := p.claim(ctx, name); err != nil {
		return "", nil, err
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.admin(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	}
	return p.srv.DSN(name), drop, nil
}

// admin runs one statement on the server's postgres database.
func (p *TemplateProvider) admin(ctx context.Context, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, p.srv.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// dropDatabase drops a database that may be a template.
func (p *TemplateProvider) dropDatabase(ctx context.Context, name string) error {
	id := pgx.Identifier{name}.Sanitize()
	if err := p.admin(ctx, "ALTER DATABASE "+id+" IS_TEMPLATE false"); err != nil {
		return err
	}
	return p.admin(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)")
}

func (p *TemplateProvider) template(ctx context.Context, fixture string) (string, error) {
	p.mu.Lock()
	t := p.tpls[fixture]
	if t == nil {
		t = &template{fixture: fixture, name: "rehearse_tpl_" + identifierSafe(fixture) + "_" + p.run}
		p.tpls[fixture] = t
	}
	p.mu.Unlock()
	// The template serves every later scenario with this fixture: build it
	// under no scenario's deadline, or one short timeout would fail them all.
	t.once.Do(func() {
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), templateBuildTimeout)
		defer cancel()
		t.err = p.build(bctx, t)
	})
	return t.name, t.err
}

// build seeds the template under its final name and marks it a template only
// once the seed succeeded; every connection to it is closed first, since
// CREATE DATABASE ... TEMPLATE refuses a source with sessions.
func (p *TemplateProvider) build(ctx context.Context, t *template) error {
	f, err := fixtures.Get(t.fixture)
	if err != nil {
		return err
	}
	if err := p.admin(ctx, "CREATE DATABASE "+t.name); err != nil {
		return fmt.Errorf("create template for %s: %w", f.Name, err)
	}
	p.mu.Lock()
	t.built = true
	p.mu.Unlock()
	if err := p.claim(ctx, t.name); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, p.srv.DSN(t.name))
	if err != nil {
		return err
	}
	err = edms.Install(ctx, conn)
	if err == nil {
		_, err = edms.Seed(ctx, conn, f)
	}
	conn.Close(context.Background())
	if err != nil {
		return fmt.Errorf("seed template with %s: %w", f.Name, err)
	}
	return p.admin(ctx, "ALTER DATABASE "+t.name+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
}

// identifierSafe maps a fixture name onto the characters of an unquoted SQL identifier.
func identifierSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}
