// Package pgcontainer starts a throwaway PostgreSQL server in a Docker
// container, on the engine testcontainers-go finds, for tests and as the rehearse CLI's
// "container" provider. It is the container counterpart of package pglocal
// (same settings, same DSN shape) for machines where Docker runs.
//
// # Image
//
// No image registry is reachable on rehearse's machines, so nothing is ever
// pulled. The image is built locally from Debian packages by "make pg-image"
// (images/postgres/build.sh): rehearse/postgres:15 by default, or the name in
// $REHEARSE_PG_IMAGE, or Options.Image. Start checks that the image exists in
// the local engine first and fails at once, saying "run: make pg-image",
// instead of letting testcontainers try (and retry) a pull.
//
// Start waits for a real pgx login over the published port: the rehearse
// image's entrypoint starts the server once, and an official postgres image
// (REHEARSE_PG_IMAGE=postgres:15 where a registry is reachable and the
// image was pulled beforehand) works too, since its temporary server does
// not listen on TCP.
//
// Each container gets: POSTGRES_USER=postgres with a random password, PGDATA
// on a tmpfs, server settings fsync=off, full_page_writes=off,
// synchronous_commit=on (a killed server never loses an acknowledged
// commit), max_connections=300 and the other pglocal defaults (overridable
// with Options.Settings), port 5432 published on 127.0.0.1 only (random host
// port), StopSignal SIGINT (fast shutdown; the image has it too where
// "docker import" accepts it), and no volume.
//
// # Cleanup, and testcontainers' reaper
//
// testcontainers' reaper (Ryuk) needs the testcontainers/ryuk image, which
// cannot be pulled here, and testcontainers-go decides whether to use it
// once per process, for every container (its config: the environment
// variable TESTCONTAINERS_RYUK_DISABLED or ~/.testcontainers.properties);
// it has no setting for one request. So Start creates rehearse's container
// through the Docker API itself, with the engine testcontainers finds
// (DOCKER_HOST, docker context, properties): the reaper never sees it, and
// the process environment and testcontainers' config are left as they
// were, so the reaper still guards the other containers a program (or a go
// test binary) starts with testcontainers. Instead:
//
//   - Close stops (SIGINT, SIGKILL after 2 s) and removes the container. It is
//     idempotent. Tests register it with t.Cleanup, which also runs when the
//     test fails.
//   - The package installs no signal handler: on Ctrl-C (SIGINT/SIGTERM) the
//     harness cancels its context and calls Close on every Server (for
//     example through signal.NotifyContext). Ctrl-C kills a "go test" binary
//     without running t.Cleanup, and a SIGKILL skips everything.
//   - What such a death leaves behind is removed by Sweep, which every Start
//     calls: each container carries the labels dev.rehearse.run (run id),
//     dev.rehearse.pid, dev.rehearse.created (unix seconds) and the owner's
//     process start time, boot id, machine and PID namespace; a container
//     whose owner process is gone (package procowner's rule) is removed, and
//     one whose owner cannot be checked (another machine or PID namespace)
//     once it is older than StaleAfter.
//     By hand: docker rm -f $(docker ps -aq --filter label=dev.rehearse.run)
//
// # Reuse (REHEARSE_REUSE=1)
//
// With Options.Reuse the container also carries dev.rehearse.reuse (a hash
// of the image name and id, PGDATA and the server settings) and
// dev.rehearse.image; Close leaves it running, and the next Start with the
// same hash logs in to it (its password is read back from its environment)
// instead of creating one, ~40 ms instead of ~1 s. Each Server holding it
// has a row in the table rehearse_lease of its postgres database; Close
// turns the row into a last-use time. Sweep removes a running reusable
// container that no live process holds (procowner's rule; a holder it
// cannot check counts for ReuseIdle) and that was last used more than
// ReuseIdle (24 h) ago; one that is not running (being created, or
// stopped) goes by its creator's labels, as any container. Server.Remove
// removes one at once unless another live process holds it. Taking a
// lease and deciding to remove are serialised by an advisory lock in the
// container, and a removal is recorded (rehearse_retired) before the
// container goes, so no Start takes a container a sweep is removing.
// Options.ReuseKey is part of the hash: tests running at once never share.
//
// # Engine
//
// DOCKER_HOST is read on every call (client.FromEnv; testcontainers itself
// resolves its engine once per process). The engine must be this machine's:
// a unix socket, or tcp:// (http://, https://) on a loopback address, where
// the port is then published and the DSN points; rehearse contacts only
// loopback addresses, so any other host, ssh:// included, is refused with
// an error saying so, before anything is sent to it when DOCKER_HOST names
// it. A loopback address forwarded to another machine's engine (ssh -L)
// does not work: the port would be published there.
package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/rehearse-dev/rehearse/pg/internal/pgconf"
	"github.com/testcontainers/testcontainers-go"
)

const (
	// DefaultImage is the image "make pg-image" builds.
	DefaultImage = "rehearse/postgres:15"
	// ImageEnv names the environment variable that overrides DefaultImage.
	ImageEnv = "REHEARSE_PG_IMAGE"

	// Labels put on every container Start creates.
	LabelRun     = "dev.rehearse.run"      // random run id
	LabelPID     = "dev.rehearse.pid"      // pid of the process that called Start
	LabelCreated = "dev.rehearse.created"  // unix seconds
	LabelStart   = "dev.rehearse.pidstart" // that process's start time (clock ticks since boot)
	LabelBoot    = "dev.rehearse.boot"     // its kernel boot id
	LabelMachine = "dev.rehearse.machine"  // its machine (procowner.MachineID)
	LabelPIDNS   = "dev.rehearse.pidns"    // its PID namespace, e.g. "pid:[4026531836]"

	// User is the superuser the DSN logs in as.
	User = "postgres"

	defaultPGDATA = "/var/lib/postgresql/data"
	containerPort = "5432/tcp"
	startTimeout  = 60 * time.Second // create, start, login
	stopGrace     = 2 * time.Second  // SIGINT (fast shutdown), then SIGKILL
	shmSize       = 512 << 20        // /dev/shm: Docker's 64 MB default is too small for parallel queries
	makeHint      = "run: make pg-image"
)

// Settings the container layout owns.
var managedSettings = []string{"port", "listen_addresses", "data_directory", "config_file", "hba_file", "ident_file", "unix_socket_directories"}

// ErrImageMissing is returned (wrapped) by Start when the image is not in the
// local Docker engine.
var ErrImageMissing = errors.New("image not present locally")

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Image to run. "" means $REHEARSE_PG_IMAGE, or DefaultImage when that
	// is unset. It must already exist in the local engine (make pg-image).
	Image string
	// Logf, if set, receives progress lines (sweep, container id, timings).
	// Passwords are never logged. testcontainers' own messages go here too.
	Logf func(format string, args ...any)
	// Settings are extra server settings passed as "-c key=value"; they
	// override the defaults (fsync=off, full_page_writes=off,
	// synchronous_commit=on, max_connections=300, shared_buffers=128MB,
	// wal_level=minimal, max_wal_senders=0, max_locks_per_transaction=256).
	// port, listen_addresses and the file locations are rejected.
	Settings map[string]string
	// Reuse keeps the container after Close, labelled dev.rehearse.reuse
	// with a hash of its image and settings, and makes Start use a running
	// container with the same hash instead of creating one (REHEARSE_REUSE=1
	// for the providers). Sweep removes such a container once it has been
	// idle for ReuseIdle, never while a live process holds it.
	Reuse bool
	// ReuseKey, with Reuse, is part of what a reusable container must
	// match: callers that must never share one (tests running at once)
	// give distinct keys.
	ReuseKey string
}

// Server is a running PostgreSQL container. Its methods are safe for
// concurrent use.
type Server struct {
	id, name string
	image    string
	runID    string
	password string
	host     string // where the port is published: 127.0.0.1, or the tcp:// engine's loopback address
	port     int
	logf     func(string, ...any)
	reuse    bool   // kept by Close (Options.Reuse)
	reused   bool   // found running, not created, by Start
	lease    string // this Server's row in the container's lease table

	closeOnce, removeOnce sync.Once
	closeErr, removeErr   error
}

// ImageName returns the image Start uses for opts.Image: the argument, else
// $REHEARSE_PG_IMAGE, else DefaultImage.
func ImageName(image string) string {
	if image != "" {
		return image
	}
	if v := strings.TrimSpace(os.Getenv(ImageEnv)); v != "" {
		return v
	}
	return DefaultImage
}

// Start creates and starts a new container and waits until PostgreSQL
// accepts a login over TCP. ctx bounds only the start-up (also capped at
// 60 s); cancelling it later does not stop the container: call Close. On
// error nothing is left behind.
func Start(ctx context.Context, opts Options) (*Server, error) {
	ctx, logf, err := pgconf.Starting(ctx, "pgcontainer", opts.Logf)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	args, err := serverArgs(opts.Settings)
	if err != nil {
		return nil, err
	}
	image := ImageName(opts.Image)

	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	host, err := publishAddr(cli.DaemonHost())
	if err != nil {
		return nil, err
	}
	pgdata, imageID, err := checkImage(ctx, cli, image)
	if err != nil {
		return nil, err
	}
	if n, err := sweep(ctx, cli, logf); err != nil {
		logf("pgcontainer: sweeping stale containers: %v", err)
	} else if n > 0 {
		logf("pgcontainer: removed %d stale container(s)", n)
	}

	runID, err := randomHex(6)
	if err != nil {
		return nil, err
	}
	password, err := randomHex(16)
	if err != nil {
		return nil, err
	}
	labels := ownerLabels(runID, time.Now())
	if opts.Reuse {
		hash := configHash(image, imageID, pgdata, opts.ReuseKey, args)
		if s := findReusable(ctx, cli, hash, host, logf); s != nil {
			return s, nil
		}
		labels[LabelReuse], labels[LabelImage] = hash, image
	}
	return run(ctx, runSpec{
		cli: cli, image: image, pgdata: pgdata, args: args, labels: labels, host: host,
		runID: runID, password: password, logf: logf, t0: t0, reuse: opts.Reuse,
	})
}

type runSpec struct {
	cli             *testcontainers.DockerClient
	image, pgdata   string
	host            string
	reuse           bool
	args            []string
	labels          map[string]string
	runID, password string
	logf            func(string, ...any)
	t0              time.Time
}

// run creates and starts the container through the Docker API and waits
// for a login over its published port.
func run(ctx context.Context, sp runSpec) (*Server, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	name := "rehearse-pg-" + sp.runID
	port := network.MustParsePort(containerPort)
	s := &Server{image: sp.image, runID: sp.runID, password: sp.password, name: name, logf: sp.logf, host: sp.host}
	fail := func(err error) (*Server, error) {
		tail := s.logTail(20)
		if cerr := s.Remove(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		if tail != "" {
			err = fmt.Errorf("%w\ncontainer log (last lines):\n%s", err, tail)
		}
		return nil, err
	}
	created, err := sp.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name, Config: &container.Config{
		Image:        sp.image,
		Cmd:          append([]string{"postgres"}, sp.args...),
		Env:          []string{"POSTGRES_USER=" + User, "POSTGRES_PASSWORD=" + sp.password, "POSTGRES_DB=postgres"},
		ExposedPorts: network.PortSet{port: {}},
		Labels:       sp.labels,
		// The image has STOPSIGNAL SIGINT where "docker import" accepts it
		// (Docker 20.10 does not); set it here in any case. SIGTERM would
		// be a "smart" shutdown that waits for clients.
		StopSignal: "SIGINT",
	}, HostConfig: &container.HostConfig{
		PortBindings: network.PortMap{port: {{HostIP: netip.MustParseAddr(sp.host), HostPort: "0"}}},
		Tmpfs:        map[string]string{sp.pgdata: "rw"},
		ShmSize:      shmSize,
	}})
	if err != nil {
		return fail(fmt.Errorf("pgcontainer: create %s from %s: %w", name, sp.image, err))
	}
	s.id = created.ID
	if _, err := sp.cli.ContainerStart(ctx, s.id, client.ContainerStartOptions{}); err != nil {
		return fail(fmt.Errorf("pgcontainer: start %s: %w", name, err))
	}
	insp, err := sp.cli.ContainerInspect(ctx, s.id, client.ContainerInspectOptions{})
	if err != nil {
		return fail(fmt.Errorf("pgcontainer: inspect %s: %w", name, err))
	}
	if s.port = publishedPort(insp.Container); s.port == 0 {
		return fail(fmt.Errorf("pgcontainer: %s: no host port published for %s", name, containerPort))
	}
	// The login is the readiness check: the official image's temporary
	// server does not listen on TCP, so only the real one answers it.
	if err := s.ping(ctx); err != nil {
		return fail(err)
	}
	if sp.reuse {
		if err := s.takeLease(ctx); err != nil {
			return fail(err)
		}
		s.reuse = true
	}
	sp.logf("pgcontainer: %s (%s, %.12s) ready in %v on %s:%d",
		name, sp.image, s.id, time.Since(sp.t0).Round(time.Millisecond), s.host, s.port)
	return s, nil
}

// publishedPort is the host port a container publishes 5432/tcp on (0 if none).
func publishedPort(c container.InspectResponse) int {
	if c.NetworkSettings == nil {
		return 0
	}
	for _, b := range c.NetworkSettings.Ports[network.MustParsePort(containerPort)] {
		if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
			return p
		}
	}
	return 0
}

// ping logs in over TCP until it works: the last readiness check, and the
// one that matters when the image logs the ready line more than once.
func (s *Server) ping(ctx context.Context) error {
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgconn.Connect(cctx, s.DSN("postgres"))
		if err == nil {
			err = conn.Exec(cctx, "SELECT 1").Close()
			_ = conn.Close(cctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcontainer: %s: no login over %s:%d: %v (%w)", s.name, s.host, s.port, last, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// DSN returns a keyword/value connection string for database dbname over
// the container's published port (on 127.0.0.1, or on the loopback address
// of a tcp:// engine), as the superuser "postgres" with its password (which
// only this process and the engine know):
// "host=127.0.0.1 port=<port> user=postgres password=<pw> dbname=<db> sslmode=disable".
// Do not log it.
func (s *Server) DSN(dbname string) string {
	if s == nil {
		return ""
	}
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable",
		s.host, s.port, User, s.password, pgconf.QuoteDSN(dbname))
}

// TCPDSN is DSN (a container is only reachable over TCP); it exists so that
// a Server and a pglocal.Cluster can be used through the same interface.
func (s *Server) TCPDSN(dbname string) string { return s.DSN(dbname) }

// Host returns the address the port is published on (127.0.0.1 unless the
// engine is a tcp:// one on another loopback address).
func (s *Server) Host() string { return s.or().host }

// Reused reports whether Start found this container running (Options.Reuse)
// instead of creating it.
func (s *Server) Reused() bool { return s.or().reused }

// or is s, or a zero Server for a nil one: the getters answer zero values
// on a Server that failed to start.
func (s *Server) or() *Server {
	if s == nil {
		return &Server{}
	}
	return s
}

// Port returns the host port on Host that reaches the server.
func (s *Server) Port() int { return s.or().port }

// ContainerID returns the Docker container id.
func (s *Server) ContainerID() string { return s.or().id }

// Name returns the container name, "rehearse-pg-<run id>".
func (s *Server) Name() string { return s.or().name }

// RunID returns the value of the container's dev.rehearse.run label.
func (s *Server) RunID() string { return s.or().runID }

// Image returns the image the container runs.
func (s *Server) Image() string { return s.or().image }

// Close stops (SIGINT = fast shutdown, SIGKILL after 2 s) and removes the
// container with its tmpfs; a reusable one (Options.Reuse) is kept running
// and released: its lease says when it was last used. It is idempotent and
// safe to call from several goroutines; all calls return the first call's
// result. A container that is already gone counts as removed.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	if s.reuse {
		s.closeOnce.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.releaseLease(ctx); err != nil {
				s.closeErr = fmt.Errorf("pgcontainer: release reusable container %s: %w", s.name, err)
				return
			}
			s.logf("pgcontainer: kept %s for the next run (%s=1)", s.name, ReuseEnv)
		})
		return s.closeErr
	}
	return s.Remove()
}

// Remove stops and removes the container, reusable or not, as Close does
// for a throwaway one; a reusable container another live process holds is
// only released and stays. It is idempotent; all calls return the first
// call's result.
func (s *Server) Remove() error {
	if s == nil {
		return nil
	}
	s.removeOnce.Do(func() {
		if s.id == "" {
			return
		}
		t0 := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if s.reuse {
			// One that does not answer holds no lease anyone could use: removed.
			if retired, _, err := s.retireIf(ctx, s.lease, 0, 0); err == nil && !retired {
				s.logf("pgcontainer: kept %s: another process holds it", s.name)
				return
			}
		}
		if err := stopAndRemove(ctx, s.id); err != nil {
			s.removeErr = fmt.Errorf("pgcontainer: remove container %s (%.12s): %w; remove it by hand: docker rm -f %s", s.name, s.id, err, s.id)
			return
		}
		s.logf("pgcontainer: removed %s in %v", s.name, time.Since(t0).Round(time.Millisecond))
	})
	return s.removeErr
}

// logTail returns the last n lines of the container's log ("" if none),
// its password masked.
func (s *Server) logTail(n int) string {
	if s.id == "" {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out := containerLogTail(ctx, s.id, n)
	if s.password != "" {
		out = strings.ReplaceAll(out, s.password, "********")
	}
	return out
}

// serverArgs merges pgconf.Throwaway with extra and returns "-c key=value"
// args in a stable order.
func serverArgs(extra map[string]string) ([]string, error) {
	args, err := pgconf.Args(pgconf.Throwaway(), extra, managedSettings, "the container")
	if err != nil {
		return nil, fmt.Errorf("pgcontainer: %w", err)
	}
	return args, nil
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("pgcontainer: random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
