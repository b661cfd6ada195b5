package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/rehearse-dev/rehearse/internal/procowner"
	"github.com/testcontainers/testcontainers-go"
)

// A reusable container (Options.Reuse, REHEARSE_REUSE=1) outlives the
// process that created it, so its owner labels say only who created it.
// Who uses it is in a table of its own postgres database, rehearse_lease:
// one row per Server holding it (its owner process, by procowner's rule),
// and released rows with an empty owner whose time is the last use. Sweep
// removes a reusable container when no live process holds it and its last
// use is older than ReuseIdle.

const (
	// LabelReuse marks a container kept between runs; its value is the
	// hash of image (name and id), PGDATA and server settings that Start
	// must match to use it.
	LabelReuse = "dev.rehearse.reuse"
	// LabelImage is the image a reusable container was created from.
	LabelImage = "dev.rehearse.image"
	// ReuseEnv names the environment variable (REHEARSE_REUSE=1) with which
	// the providers pass Options.Reuse.
	ReuseEnv = "REHEARSE_REUSE"
	// ReuseIdle is how long a reusable container may stay unused before
	// Sweep removes it.
	ReuseIdle = 24 * time.Hour
)

// The lease tables live in the container's postgres database. Every change
// to them runs in a transaction that first takes leaseLock, so taking a
// lease, releasing it and deciding to remove the container (Sweep, Remove)
// never interleave: once a remover has written rehearse_retired, no lease
// is granted any more, and a lease granted first makes the remover keep it.
const (
	leaseLock   = 0x7265687273 // "rehrs": pg_advisory_xact_lock key
	leaseTables = `CREATE TABLE IF NOT EXISTS rehearse_lease (id text PRIMARY KEY, owner text NOT NULL, used timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS rehearse_retired (by text NOT NULL, at timestamptz NOT NULL DEFAULT now())`
)

// errRetired: a remover got there first; Start creates another container.
var errRetired = errors.New("being removed (a sweep or Remove retired it)")

// configHash names what a reusable container must match: image (name and
// id), PGDATA, server settings and the caller's ReuseKey.
func configHash(image, imageID, pgdata, key string, args []string) string {
	h := sha256.New()
	for _, s := range append([]string{image, imageID, pgdata, key}, args...) {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// findReusable returns a running container labelled with hash that answers
// a login, leased to a new Server, or nil (it then says why in logf).
func findReusable(ctx context.Context, cli *testcontainers.DockerClient, hash, host string, logf func(string, ...any)) *Server {
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{
		Filters: make(client.Filters).Add("label", LabelReuse+"="+hash).Add("status", "running"),
	})
	if err != nil {
		logf("pgcontainer: looking for a reusable container: %v", err)
		return nil
	}
	for _, c := range res.Items {
		s, err := attach(ctx, cli, c.ID, host, logf)
		if err == nil {
			err = s.takeLease(ctx)
		}
		if err != nil {
			logf("pgcontainer: not reusing %.12s: %v", c.ID, err)
			continue
		}
		s.reuse, s.reused = true, true
		logf("pgcontainer: reusing %s (%.12s) on %s:%d", s.name, s.id, s.host, s.port)
		return s
	}
	return nil
}

// attach makes a Server of a running container Start created, reading its
// password back from its environment, and checks that it answers a login.
func attach(ctx context.Context, cli *testcontainers.DockerClient, id, host string, logf func(string, ...any)) (*Server, error) {
	insp, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, err
	}
	c := insp.Container
	s := &Server{id: c.ID, name: strings.TrimPrefix(c.Name, "/"), host: host, logf: logf, port: publishedPort(c)}
	if c.Config != nil {
		s.image, s.runID = c.Config.Image, c.Config.Labels[LabelRun]
		for _, e := range c.Config.Env {
			if v, ok := strings.CutPrefix(e, "POSTGRES_PASSWORD="); ok {
				s.password = v
			}
		}
	}
	if s.port == 0 || s.password == "" {
		return nil, fmt.Errorf("no published port or no password")
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return s, s.ping(pctx)
}

// takeLease records that this Server holds the container, unless a
// remover has retired it.
func (s *Server) takeLease(ctx context.Context) error {
	id, err := randomHex(8)
	if err != nil {
		return err
	}
	owner := "unknown"
	if o, err := procowner.Self(); err == nil {
		owner = o.String()
	}
	return s.leaseTx(ctx, func(tx pgx.Tx) error {
		var retired bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM rehearse_retired)`).Scan(&retired); err != nil {
			return err
		}
		if retired {
			return errRetired
		}
		if _, err := tx.Exec(ctx, `INSERT INTO rehearse_lease (id, owner) VALUES ($1, $2)`, id, owner); err != nil {
			return err
		}
		s.lease = id
		return nil
	})
}

// releaseLease turns this Server's row into the last-use mark (and drops
// older marks).
func (s *Server) releaseLease(ctx context.Context) error {
	return s.leaseTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM rehearse_lease WHERE owner = '' AND id <> $1`, s.lease); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE rehearse_lease SET owner = '', used = now() WHERE id = $1`, s.lease)
		return err
	})
}

// leaseTx runs f in a transaction holding leaseLock, on tables that exist.
func (s *Server) leaseTx(ctx context.Context, f func(pgx.Tx) error) error {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(leaseLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, leaseTables); err != nil {
			return err
		}
		return f(tx)
	})
}

// reusableStale decides whether Sweep may remove a running reusable
// container, and retires it when so: no live process holds it and it was
// last used (created, when its lease table cannot be read) more than
// ReuseIdle ago. Leases of owners that are gone are released on the way.
func reusableStale(ctx context.Context, cli *testcontainers.DockerClient, c container.Summary, host string, created, now time.Time) (bool, string) {
	s, err := attach(ctx, cli, c.ID, host, nil)
	if err != nil {
		// Nobody can take a lease on a container that does not answer.
		if idle := now.Sub(created); idle > ReuseIdle {
			return true, fmt.Sprintf("a reusable container that does not answer (%v), created %v ago", err, idle.Round(time.Second))
		}
		return false, ""
	}
	retired, idle, err := s.retireIf(ctx, "", ReuseIdle, now.Sub(created))
	if err != nil || !retired {
		return false, ""
	}
	return true, fmt.Sprintf("a reusable container unused for %v", idle.Round(time.Second))
}

// retireIf retires the container (no lease is granted afterwards) when no
// live process holds it, the lease mine (this Server's own, dropped first;
// "" for none) aside, and it was last used at least minIdle ago. idle is
// how long ago that was (dflt without any row). Leases of owners that are
// gone are released on the way.
func (s *Server) retireIf(ctx context.Context, mine string, minIdle, dflt time.Duration) (retired bool, idle time.Duration, err error) {
	here := procowner.Here()
	by := "unknown"
	if o, err := procowner.Self(); err == nil {
		by = o.String()
	}
	err = s.leaseTx(ctx, func(tx pgx.Tx) error {
		retired, idle = false, dflt
		if _, err := tx.Exec(ctx, `DELETE FROM rehearse_lease WHERE id = $1`, mine); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, owner, extract(epoch FROM now() - used)::bigint FROM rehearse_lease ORDER BY used DESC`)
		if err != nil {
			return err
		}
		var gone []string
		held := false
		for i := 0; rows.Next(); i++ {
			var id, owner string
			var secs int64
			if err := rows.Scan(&id, &owner, &secs); err != nil {
				return err
			}
			if i == 0 {
				idle = time.Duration(secs) * time.Second
			}
			if owner == "" {
				continue
			}
			o, perr := procowner.Parse(owner)
			verdict := procowner.Unknown
			if perr == nil {
				verdict, _ = here.Check(o)
			}
			switch {
			case verdict == procowner.Gone:
				gone = append(gone, id)
			case verdict == procowner.Alive || time.Duration(secs)*time.Second <= ReuseIdle:
				held = true
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(gone) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE rehearse_lease SET owner = '' WHERE id = ANY($1)`, gone); err != nil {
				return err
			}
		}
		if held || idle < minIdle {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO rehearse_retired (by) VALUES ($1)`, by); err != nil {
			return err
		}
		retired = true
		return nil
	})
	return retired && err == nil, idle, err
}

// reuseLabelled reports whether a container's labels mark it reusable.
func reuseLabelled(labels map[string]string) bool { return labels[LabelReuse] != "" }
