package server

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pingAfter is how long a connection may sit idle before Acquire pings it,
// so that a database restart or a killed backend costs one reconnect
// instead of a failed request (pgxpool's default; a variable for tests).
var pingAfter = time.Second

// NewPool opens a pool of connections to the system's database: dsn is a
// URL or keyword/value string (as pgxpool.ParseConfig accepts), maxConns
// bounds the connections (<= 0: pgxpool's default, max(4, number of CPUs)).
// It connects once to check the address. A connection released busy or
// inside a transaction is discarded, never reused (pgxpool does that).
func NewPool(ctx context.Context, dsn string, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("server: database address: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = int32(min(maxConns, math.MaxInt32))
	}
	cfg.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool { return p.IdleDuration > pingAfter }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// closeConn closes a connection that must not go back to the pool.
func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.Close(ctx)
}
