package harness

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// connectTimeout bounds one attempt to reach a database whose server accepts
// the TCP connection but never answers (a dropped route, a wedged proxy):
// without it pgx waits for the scenario's whole timeout. A DSN's own
// connect_timeout wins.
var connectTimeout = 15 * time.Second

func connectDB(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	return connectDBConfig(ctx, cfg)
}

func connectDBConfig(ctx context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	return pgx.ConnectConfig(ctx, cfg)
}
