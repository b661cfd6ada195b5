package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/loopback"
	"github.com/rehearse-dev/rehearse/pg/guard"
)

// dsnFrom returns the DSN from the flag or REHEARSE_DSN.
func dsnFrom(flagValue string) (string, error) {
	if dsn := cmp.Or(flagValue, os.Getenv("REHEARSE_DSN")); dsn != "" {
		return dsn, nil
	}
	return "", errors.New("no database: pass --dsn 'host=... dbname=...' (or set REHEARSE_DSN)")
}

// openDB connects to the database of --dsn (or REHEARSE_DSN).
func openDB(ctx context.Context, flagValue string) (*pgx.Conn, error) {
	dsn, err := dsnFrom(flagValue)
	if err != nil {
		return nil, err
	}
	return connect(ctx, dsn)
}

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	if err := loopback.DSN(dsn); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to the database: %w", err)
	}
	return conn, nil
}

// checkTarget refuses destructive steps on unmarked databases unless allowed.
func checkTarget(ctx context.Context, conn *pgx.Conn, step string, allow bool) error {
	err := guard.Check(ctx, conn, step)
	if err != nil && allow && errors.Is(err, guard.ErrNotMarked) {
		return nil
	}
	return err
}
