package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/loopback"
	pgcontainer "github.com/rehearse-dev/rehearse/pg/container"
	pglocal "github.com/rehearse-dev/rehearse/pg/local"
)

// Provider hands out databases that hold the reference schema and a fixture.
type Provider interface {
	// Database returns the DSN of a fresh database seeded with fixture, and a
	// function that drops it.
	Database(ctx context.Context, fixture string) (dsn string, drop func(), err error)
	// Name says where the databases live: "local", "container" or "dsn".
	Name() string
	Close() error
}

// Provider kinds, as --provider and REHEARSE_PROVIDER name them.
const (
	ProviderLocal     = "local"     // a throwaway cluster from the installed binaries (pglocal)
	ProviderContainer = "container" // a throwaway server in Docker (pgcontainer)
	ProviderDSN       = "dsn"       // an existing server the user points at
)

// ProviderNames lists the kinds OpenProvider knows.
func ProviderNames() []string { return []string{ProviderLocal, ProviderContainer, ProviderDSN} }

// ProviderConfig chooses and configures a provider.
type ProviderConfig struct {
	// Kind is local, container or dsn; "" means dsn when DSN is set, else local.
	Kind string
	// DSN of an existing server (kind dsn). The harness creates and drops its
	// own databases there; the role needs CREATEDB.
	DSN string
	// Image for kind container; "" means $REHEARSE_PG_IMAGE or rehearse/postgres:15.
	Image string
	Logf  func(string, ...any)
}

// ProviderConfigFromEnv reads REHEARSE_PROVIDER, REHEARSE_DSN and
// REHEARSE_PG_IMAGE, so `go test` can be pointed at another provider.
func ProviderConfigFromEnv() ProviderConfig {
	return ProviderConfig{Kind: os.Getenv("REHEARSE_PROVIDER"), DSN: os.Getenv("REHEARSE_DSN"), Image: os.Getenv(pgcontainer.ImageEnv)}
}

// OpenProvider starts (local, container) or connects to (dsn) a server.
func OpenProvider(ctx context.Context, cfg ProviderConfig) (*ServerProvider, error) {
	kind := cfg.Kind
	if kind == "" {
		kind = ProviderLocal
		if cfg.DSN != "" {
			kind = ProviderDSN
		}
	}
	switch kind {
	case ProviderLocal:
		c, err := pglocal.Start(ctx, pglocal.Options{Logf: cfg.Logf})
		if err != nil {
			return nil, err
		}
		return newServerProvider(ctx, kind, c)
	case ProviderContainer:
		s, err := pgcontainer.Start(ctx, pgcontainer.Options{Image: cfg.Image, Logf: cfg.Logf})
		if err != nil {
			return nil, err
		}
		return newServerProvider(ctx, kind, s)
	case ProviderDSN:
		if cfg.DSN == "" {
			return nil, errors.New("provider dsn needs a DSN: pass --dsn or set REHEARSE_DSN (e.g. postgres://postgres@127.0.0.1:5432/postgres)")
		}
		if err := loopback.DSN(cfg.DSN); err != nil {
			return nil, err
		}
		s, err := newDSNServer(cfg.DSN)
		if err != nil {
			return nil, err
		}
		p, err := newServerProvider(ctx, kind, s)
		if err != nil {
			return nil, err
		}
		if err := p.sweepStale(ctx, cfg.Logf); err != nil && cfg.Logf != nil {
			cfg.Logf("sweeping databases of dead rehearse runs: %v", err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("unknown provider %q: use %s", kind, strings.Join(ProviderNames(), ", "))
}

// NewLocalProvider starts a local throwaway cluster (OpenProvider with kind local).
func NewLocalProvider(ctx context.Context, logf func(string, ...any)) (*ServerProvider, error) {
	return OpenProvider(ctx, ProviderConfig{Kind: ProviderLocal, Logf: logf})
}

// Server is a PostgreSQL server the provider creates databases on.
type Server interface {
	// DSN of database dbname on the server, as a superuser or a CREATEDB role.
	DSN(dbname string) string
	Close() error
}

// ServerProvider clones one database per scenario from a template that
// already holds the schema and the fixture, so per-scenario setup costs a
// CREATE DATABASE ... TEMPLATE (tens of milliseconds), not a seed. Every
// database it creates carries a run id in its name and is dropped when the
// scenario ends; the templates are dropped by Close, so a shared server is
// left as it was found.
type ServerProvider struct {
	kind     string
	srv      Server
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

func newServerProvider(ctx context.Context, kind string, srv Server) (*ServerProvider, error) {
	b := make([]byte, 4)
	rand.Read(b)
	p := &ServerProvider{kind: kind, srv: srv, tpls: map[string]*template{}, run: fmt.Sprintf("%d_%s", os.Getpid(), hex.EncodeToString(b))}
	conn, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("connect to the %s server: %w", kind, err)
	}
	defer conn.Close(context.Background())
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		srv.Close()
		return nil, err
	}
	if version >= 150000 {
		p.strategy = " STRATEGY FILE_COPY"
	}
	return p, nil
}

// claim labels a database this provider created with its owner, on a
// server it does not own, so that a later run can sweep it if this process
// dies before dropping it.
func (p *ServerProvider) claim(ctx context.Context, db string) error {
	if p.kind != ProviderDSN {
		return nil
	}
	return p.admin(ctx, "COMMENT ON DATABASE "+db+" IS "+quoteLiteral(ownerComment()))
}

// Name is the provider's kind.
func (p *ServerProvider) Name() string { return p.kind }

// Close drops the templates and stops the server (a dsn server is left running).
func (p *ServerProvider) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	p.mu.Lock()
	for _, t := range p.tpls {
		if t.built {
			if err := p.admin(ctx, "ALTER DATABASE "+t.name+" IS_TEMPLATE false"); err != nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, p.admin(ctx, "DROP DATABASE IF EXISTS "+t.name+" WITH (FORCE)"))
		}
	}
	p.mu.Unlock()
	errs = append(errs, p.srv.Close())
	return errors.Join(errs...)
}

func (p *ServerProvider) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, p.srv.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func (p *ServerProvider) template(ctx context.Context, fixture string) (string, error) {
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
func (p *ServerProvider) build(ctx context.Context, t *template) error {
	f, err := fixtures.Get(t.fixture)
	if err != nil {
		return err
	}
	if err := p.admin(ctx, "CREATE DATABASE "+t.name); err != nil {
		return fmt.Errorf("create template for %s: %w", f.Name, err)
	}
	if err := p.claim(ctx, t.name); err != nil {
		return err
	}
	p.mu.Lock()
	t.built = true
	p.mu.Unlock()
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

// Database clones the fixture's template.
func (p *ServerProvider) Database(ctx context.Context, fixture string) (string, func(), error) {
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

// identifierSafe maps a fixture name onto the characters of an unquoted SQL identifier.
func identifierSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}

// dsnServer is an existing server: DSN swaps the database name, Close does
// nothing (it is not ours to stop).
type dsnServer struct {
	raw string
	url *url.URL // nil for keyword/value DSNs
}

func newDSNServer(raw string) (*dsnServer, error) {
	s := &dsnServer{raw: raw}
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("DSN is not a valid URL: %v", redact(err.Error(), raw))
		}
		s.url = u
	}
	return s, nil
}

func (s *dsnServer) DSN(dbname string) string {
	if s.url != nil {
		u := *s.url
		u.Path = "/" + dbname
		return u.String()
	}
	// In a keyword/value string a later keyword overrides an earlier one.
	return s.raw + " dbname=" + dbname
}

func (s *dsnServer) Close() error { return nil }

// redact keeps a DSN's password out of error messages.
func redact(msg, dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return msg
}
