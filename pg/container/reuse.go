package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

const leaseTable = `CREATE TABLE IF NOT EXISTS rehearse_lease (id text PRIMARY KEY, owner text NOT NULL, used timestamptz NOT NULL DEFAULT now())`

// configHash names what a reusable container must match.
func configHash(image, imageID, pgdata string, args []string) string {
	h := sha256.New()
	for _, s := range append([]string{image, imageID, pgdata}, args...) {
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

// takeLease records that this Server holds the container.
func (s *Server) takeLease(ctx context.Context) error {
	id, err := randomHex(8)
	if err != nil {
		return err
	}
	owner := "unknown"
	if o, err := procowner.Self(); err == nil {
		owner = o.String()
	}
	return s.exec(ctx, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, leaseTable); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, `INSERT INTO rehearse_lease (id, owner) VALUES ($1, $2)`, id, owner)
		s.lease = id
		return err
	})
}

// releaseLease turns this Server's row into the last-use mark (and drops
// older marks).
func (s *Server) releaseLease(ctx context.Context) error {
	return s.exec(ctx, func(conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, `DELETE FROM rehearse_lease WHERE owner = '' AND id <> $1`, s.lease); err != nil {
			return err
		}
		_, err := conn.Exec(ctx, `UPDATE rehearse_lease SET owner = '', used = now() WHERE id = $1`, s.lease)
		return err
	})
}

func (s *Server) exec(ctx context.Context, f func(*pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return f(conn)
}

// reusableStale decides whether Sweep may remove a running reusable
// container: no live process holds it and it was last used (created, when
// its lease table cannot be read) more than ReuseIdle ago. Leases of owners
// that are gone are released on the way.
func reusableStale(ctx context.Context, cli *testcontainers.DockerClient, c container.Summary, host string, created, now time.Time) (bool, string) {
	idle := now.Sub(created)
	s, err := attach(ctx, cli, c.ID, host, nil)
	if err == nil {
		var held bool
		held, idle, err = s.leaseIdle(ctx, idle)
		if err == nil && held {
			return false, ""
		}
	}
	if idle <= ReuseIdle {
		return false, ""
	}
	return true, fmt.Sprintf("a reusable container unused for %v", idle.Round(time.Second))
}

// leaseIdle reads the lease table: whether a live process holds the
// container, and how long ago it was last used (dflt without any row).
// Rows of owners that are gone become last-use marks.
func (s *Server) leaseIdle(ctx context.Context, dflt time.Duration) (held bool, idle time.Duration, err error) {
	idle = dflt
	here := procowner.Here()
	err = s.exec(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT id, owner, extract(epoch FROM now() - used)::bigint FROM rehearse_lease ORDER BY used DESC`)
		if err != nil {
			return err
		}
		var gone []string
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
			_, err = conn.Exec(ctx, `UPDATE rehearse_lease SET owner = '' WHERE id = ANY($1)`, gone)
		}
		return err
	})
	return held, idle, err
}

// reuseLabelled reports whether a container's labels mark it reusable.
func reuseLabelled(labels map[string]string) bool { return labels[LabelReuse] != "" }
