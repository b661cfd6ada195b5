package server

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Pool is a small pool of connections to the system's database.
//
// It exists because pgxpool cannot be built in this module: pgxpool needs
// github.com/jackc/puddle/v2, which go.mod/go.sum do not list. Its API mirrors
// the part of pgxpool the server uses (Acquire, Conn, Release, QueryRow,
// Close), so switching to *pgxpool.Pool later is a type change.
//
// A connection that has been idle for more than a second is pinged before it
// is handed out (as pgxpool does), so a database restart or a killed backend
// costs one reconnect instead of a failed request. A connection returned
// closed, busy or inside a transaction is discarded.
type Pool struct {
	cfg *pgx.ConnConfig
	sem chan struct{} // one slot per connection in use

	mu     sync.Mutex
	idle   []idleConn
	closed bool
}

type idleConn struct {
	conn  *pgx.Conn
	since time.Time
}

// ErrPoolClosed is returned by Acquire after Close.
var ErrPoolClosed = errors.New("server: connection pool is closed")

// pingAfter is how long a connection may sit idle before Acquire pings it
// (a variable for tests).
var pingAfter = time.Second

// NewPool parses dsn (a URL or keyword/value string, as pgx.ParseConfig
// accepts), connects once to check it, and returns a pool of at most maxConns
// connections (<= 0: max(4, number of CPUs), pgxpool's default).
func NewPool(ctx context.Context, dsn string, maxConns int) (*Pool, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("server: database address: %w", err)
	}
	return NewPoolConfig(ctx, cfg, maxConns)
}

// NewPoolConfig is NewPool with a parsed configuration.
func NewPoolConfig(ctx context.Context, cfg *pgx.ConnConfig, maxConns int) (*Pool, error) {
	if cfg == nil {
		return nil, errors.New("server: NewPoolConfig: nil connection configuration")
	}
	if maxConns <= 0 {
		maxConns = max(4, runtime.NumCPU())
	}
	p := &Pool{cfg: cfg.Copy(), sem: make(chan struct{}, maxConns)}
	c, err := p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	c.Release()
	return p, nil
}

// PooledConn is a connection taken from a Pool. Release it exactly once.
type PooledConn struct {
	pool     *Pool
	conn     *pgx.Conn
	released bool
}

// Conn returns the underlying connection.
func (c *PooledConn) Conn() *pgx.Conn { return c.conn }

// Acquire returns a connection, waiting for a free slot until ctx is done.
func (p *Pool) Acquire(ctx context.Context) (*PooledConn, error) {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			<-p.sem
			return nil, ErrPoolClosed
		}
		var ic idleConn
		n := len(p.idle)
		if n > 0 {
			ic = p.idle[n-1]
			p.idle = p.idle[:n-1]
		}
		p.mu.Unlock()
		if n == 0 {
			break
		}
		if ic.conn.IsClosed() {
			continue
		}
		if time.Since(ic.since) > pingAfter {
			if err := ic.conn.Ping(ctx); err != nil {
				closeConn(ic.conn)
				if ctx.Err() != nil {
					<-p.sem
					return nil, ctx.Err()
				}
				continue
			}
		}
		return &PooledConn{pool: p, conn: ic.conn}, nil
	}
	conn, err := pgx.ConnectConfig(ctx, p.cfg.Copy())
	if err != nil {
		<-p.sem
		return nil, err
	}
	return &PooledConn{pool: p, conn: conn}, nil
}

// Release gives the connection back. A closed connection, or one left busy
// or inside a transaction, is discarded instead of reused.
func (c *PooledConn) Release() {
	if c == nil || c.released {
		return
	}
	c.released = true
	p := c.pool
	pg := c.conn.PgConn()
	reusable := !c.conn.IsClosed() && !pg.IsBusy() && pg.TxStatus() == 'I'
	p.mu.Lock()
	if reusable && !p.closed {
		p.idle = append(p.idle, idleConn{conn: c.conn, since: time.Now()})
		reusable = true
	} else {
		reusable = false
	}
	p.mu.Unlock()
	if !reusable {
		closeConn(c.conn)
	}
	<-p.sem
}

// QueryRow runs a one-row query on a pooled connection; the connection goes
// back to the pool when Scan returns. It satisfies edms.Querier.
func (p *Pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	c, err := p.Acquire(ctx)
	if err != nil {
		return errRow{err}
	}
	return &poolRow{row: c.conn.QueryRow(ctx, sql, args...), c: c}
}

// Close closes the idle connections; connections in use are closed when
// released. Acquire fails afterwards.
func (p *Pool) Close() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.closed = true
	p.mu.Unlock()
	for _, ic := range idle {
		closeConn(ic.conn)
	}
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.Close(ctx)
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type poolRow struct {
	row pgx.Row
	c   *PooledConn
}

func (r *poolRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	r.c.Release()
	return err
}
