// Package pglocal starts a private, throwaway PostgreSQL cluster from the
// server binaries installed on this machine (no Docker), for tests and as the
// rehearse CLI's default "local" provider.
//
// Start copies a cached, initdb'd data directory into a fresh temporary
// directory (on /dev/shm when it is usable), execs postgres directly with
// settings tuned for throwaway use (fsync=off, full_page_writes=off, but
// synchronous_commit=on, so a killed server or connection never loses an
// acknowledged commit), waits until it accepts connections and returns a
// Cluster. The first Start per PostgreSQL version runs initdb (~0.5 s); the
// later ones take well under 100 ms on tmpfs.
//
// Every cluster uses trust authentication for the superuser "postgres" over
// its unix socket and 127.0.0.1: any local user can connect. Do not put
// anything secret in it.
//
// # Cleanup
//
// Close stops the server (fast shutdown) and removes the directory. On top of
// that:
//
//   - If the process that called Start dies, even by SIGKILL, the kernel sends
//     the postmaster SIGQUIT (immediate shutdown): it is started with
//     PR_SET_PDEATHSIG from an OS thread locked for the server's lifetime.
//     The directory is then left behind and removed by SweepStale, which the
//     next Start calls (an owner file records the creating process).
//   - The postmaster runs in its own process group, so a terminal's Ctrl-C
//     does not reach it: the program decides when to stop it.
//   - The package installs no signal handler by itself. A program should
//     turn SIGINT/SIGTERM into a cancelled context and call Close, for
//     example with signal.NotifyContext, or call Cluster.CloseOnSignal.
//     (Ctrl-C kills a "go test" binary without running t.Cleanup; the
//     cluster's server then dies through the mechanism above.)
//
// When running as root, initdb and postgres run as the "postgres" user
// (PostgreSQL refuses to run as root) and the directories are chowned to it.
package local

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rehearse-dev/rehearse/internal/procowner"
	"github.com/rehearse-dev/rehearse/pg/internal/pgconf"
)

// Options configures Start. The zero value is ready to use.
type Options struct {
	// BinDir holds initdb and postgres. "" means FindBinDir.
	BinDir string
	// Logf, if set, receives progress lines ("initdb (cached template ...)",
	// "ready in 63ms", stale directories removed, ...).
	Logf func(format string, args ...any)
	// Settings are extra server settings passed as "-c key=value"; they
	// override the defaults (listen_addresses=127.0.0.1, fsync=off,
	// full_page_writes=off, synchronous_commit=on, max_connections=300,
	// shared_buffers=128MB, wal_level=minimal, max_wal_senders=0,
	// max_locks_per_transaction=256, unix_socket_permissions=0777).
	// port, unix_socket_directories and data_directory are managed by
	// pglocal and rejected. Setting listen_addresses to '' disables TCPDSN.
	Settings map[string]string
}

// defaultSettings are pgconf.Throwaway plus TCP on loopback and a socket
// any local user may reach.
func defaultSettings() map[string]string {
	m := pgconf.Throwaway()
	m["listen_addresses"] = "127.0.0.1"
	m["unix_socket_permissions"] = "0777"
	return m
}

// managedSettings are set by Start itself.
var managedSettings = []string{"port", "unix_socket_directories", "data_directory"}

const (
	readyTimeout = 30 * time.Second
	readyPoll    = 5 * time.Millisecond
	stopGrace    = 10 * time.Second
	portAttempts = 5
)

var (
	errPortTaken    = errors.New("port already in use")
	errServerExited = errors.New("postgres exited during start-up")
)

// Cluster is a running throwaway PostgreSQL server. Its methods are safe for
// concurrent use.
type Cluster struct {
	dir, dataDir, sockDir, logPath string
	binDir, version                string
	template                       string // cached data dir copied from
	port                           int
	srv                            *server
	logf                           func(string, ...any)

	closeOnce sync.Once
	closeErr  error
}

// Start creates and starts a new cluster. ctx bounds only the start-up
// (readiness is also capped at 30 s); cancelling it later does not stop the
// server: call Close. On error nothing is left behind.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	ctx, logf, err := pgconf.Starting(ctx, "pglocal", opts.Logf)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	p, err := planStart(ctx, opts)
	if err != nil {
		return nil, err
	}
	SweepStale(logf)

	base := preferredBase()
	if err := p.runAs.checkReachable(base); err != nil {
		return nil, err
	}
	tpl, fresh, err := templateDir(ctx, base, p.binDir, p.version, p.runAs, p.self, logf)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(base, clusterPrefix+"*")
	if err != nil {
		return nil, fmt.Errorf("pglocal: create cluster dir in %s: %w", base, err)
	}
	c := &Cluster{
		dir:     dir,
		dataDir: filepath.Join(dir, "data"),
		sockDir: filepath.Join(dir, "sock"),
		logPath: filepath.Join(dir, "postgres.log"),
		binDir:  p.binDir,
		version: p.version.short,
		logf:    logf,
	}
	ok := false
	defer func() {
		if !ok {
			_ = c.Close()
		}
	}()
	if err := c.prepareDir(base, p); err != nil {
		return nil, err
	}
	if err := c.copyData(ctx, base, tpl, fresh, p); err != nil {
		return nil, err
	}
	if err := c.launchRetrying(ctx, p.runAs, p.settings); err != nil {
		return nil, err
	}
	ok = true
	logf("pglocal: PostgreSQL %s ready in %v (port %d, %s)", c.version, time.Since(t0).Round(time.Millisecond), c.port, c.dir)
	return c, nil
}

// startPlan is what Start works out before it touches the disk.
type startPlan struct {
	settings []string // "-c key=value" arguments
	binDir   string
	version  binVersion
	runAs    runAs
	self     procowner.Owner
}

func planStart(ctx context.Context, opts Options) (startPlan, error) {
	var p startPlan
	var err error
	if p.settings, err = serverSettings(opts.Settings); err != nil {
		return p, err
	}
	if p.binDir, err = resolveBinDir(opts.BinDir); err != nil {
		return p, err
	}
	if p.version, err = versionOf(ctx, p.binDir); err != nil {
		return p, err
	}
	if p.runAs, err = serverUser(); err != nil {
		return p, err
	}
	p.self, err = selfOwner()
	return p, err
}

// resolveBinDir returns Options.BinDir made absolute, or FindBinDir's answer.
func resolveBinDir(binDir string) (string, error) {
	if binDir == "" {
		return FindBinDir()
	}
	if err := checkBinDir(binDir); err != nil {
		return "", fmt.Errorf("pglocal: Options.BinDir %q is not usable: %v; %s", binDir, err, installHint)
	}
	abs, err := filepath.Abs(binDir)
	if err != nil {
		return "", fmt.Errorf("pglocal: %w", err)
	}
	return abs, nil
}

// prepareDir writes the owner file and the socket directory, readable by
// the server user.
func (c *Cluster) prepareDir(base string, p startPlan) error {
	if err := writeOwner(c.dir, p.self); err != nil {
		return err
	}
	if err := os.Chmod(c.dir, 0o755); err != nil { // let the server user in
		return fmt.Errorf("pglocal: %w", err)
	}
	if err := os.Mkdir(c.sockDir, 0o755); err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	if err := p.runAs.chown(c.sockDir); err != nil {
		return fmt.Errorf("pglocal: chown %s to the postgres user: %w", c.sockDir, err)
	}
	if n := len(c.sockDir) + len("/.s.PGSQL.65535"); n > 107 {
		return fmt.Errorf("pglocal: socket path under %s would be %d bytes, over the 107-byte unix socket limit; set TMPDIR to a shorter directory", base, n)
	}
	return nil
}

// copyData copies the cached data directory tpl into the cluster; a
// template damaged by a tmp cleaner is rebuilt once (fresh: it was built
// just now, so rebuilding would not help).
func (c *Cluster) copyData(ctx context.Context, base, tpl string, fresh bool, p startPlan) error {
	tc := time.Now()
	err := copyTemplate(tpl, c.dataDir, p.runAs)
	if errors.Is(err, errDamagedTemplate) && !fresh {
		// Move the template aside (others may be copying it right now),
		// rebuild it, copy again.
		c.logf("pglocal: %v; rebuilding it", err)
		discardTemplate(tpl)
		if tpl, _, err = templateDir(ctx, base, p.binDir, p.version, p.runAs, p.self, c.logf); err != nil {
			return err
		}
		if err := os.RemoveAll(c.dataDir); err != nil {
			return fmt.Errorf("pglocal: %w", err)
		}
		tc = time.Now()
		err = copyTemplate(tpl, c.dataDir, p.runAs)
	}
	if err != nil {
		return fmt.Errorf("pglocal: copy template %s: %w (check free space in %s)", tpl, err, base)
	}
	c.template = tpl
	c.logf("pglocal: copied data dir in %v", time.Since(tc).Round(time.Millisecond))
	return nil
}

// launchRetrying launches the server, on another port when another process
// took the chosen one first.
func (c *Cluster) launchRetrying(ctx context.Context, r runAs, settings []string) error {
	for attempt := 1; ; attempt++ {
		err := c.launch(ctx, r, settings)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errPortTaken) || attempt >= portAttempts {
			return err
		}
		c.logf("pglocal: port %d was taken before postgres could bind it; retrying with another port", c.port)
	}
}

func serverSettings(extra map[string]string) ([]string, error) {
	args, err := pgconf.Args(defaultSettings(), extra, managedSettings, "pglocal")
	if err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	return args, nil
}

// pickPort is freePort; tests replace it.
var pickPort = freePort

// freePort asks the kernel for a free loopback port. Another process may
// take it before postgres binds it; Start retries on "could not bind".
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pglocal: find a free port on 127.0.0.1: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// launch starts the postmaster on a fresh port and waits until it is ready.
func (c *Cluster) launch(ctx context.Context, r runAs, settings []string) error {
	port, err := pickPort()
	if err != nil {
		return err
	}
	lf, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	args := append([]string{"-D", c.dataDir, "-k", c.sockDir, "-p", strconv.Itoa(port)}, settings...)
	cmd := r.command(context.Background(), filepath.Join(c.binDir, "postgres"), c.dataDir, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr.Setpgid = true              // out of reach of the terminal's Ctrl-C
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT // immediate shutdown if our thread dies
	srv, err := startLocked(cmd)
	lf.Close()
	if err != nil {
		return fmt.Errorf("pglocal: start %s: %w", cmd.Path, err)
	}
	c.port = port
	if err := c.waitReady(ctx, srv); err != nil {
		_ = srv.stop(2*time.Second, c.logf)
		return err
	}
	c.srv = srv
	return nil
}

func (c *Cluster) waitReady(ctx context.Context, s *server) error {
	rctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	cfg, err := pgconn.ParseConfig(c.DSN("postgres"))
	if err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	var lastTry time.Time
	err = errors.New("no connection attempt yet")
	for {
		// Every connection attempt made while the server is still starting
		// costs it a fork (to send "the database system is starting up"),
		// which slows the start-up down. So poll the status line that
		// postgres writes into postmaster.pid (as pg_ctl does) and connect
		// once it says "ready"; a connect every 100 ms is the fallback.
		if pmStatus(c.dataDir) == "ready" || time.Since(lastTry) >= 100*time.Millisecond {
			lastTry = time.Now()
			actx, acancel := context.WithTimeout(rctx, 2*time.Second)
			var conn *pgconn.PgConn
			conn, err = pgconn.ConnectConfig(actx, cfg)
			acancel()
			if err == nil {
				_ = conn.Close(rctx)
				return nil
			}
		}
		select {
		case <-s.exited:
			log := c.logTail()
			if strings.Contains(log, "could not bind") || strings.Contains(log, "could not create any TCP/IP sockets") {
				return fmt.Errorf("pglocal: %w (port %d, %d attempts); server log %s:\n%s", errPortTaken, c.port, portAttempts, c.logPath, log)
			}
			return fmt.Errorf("pglocal: %w (%v); server log %s:\n%s", errServerExited, s.waitErr, c.logPath, log)
		case <-rctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("pglocal: start-up interrupted: %w", ctx.Err())
			}
			return fmt.Errorf("pglocal: postgres not ready after %v (last connection error: %v); server log %s:\n%s",
				readyTimeout, err, c.logPath, c.logTail())
		case <-tick.C:
		}
	}
}

// pmStatus returns the start-up status from line 8 of postmaster.pid
// ("starting", "ready", "stopping", "standby"), or "".
func pmStatus(dataDir string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 {
		return ""
	}
	return strings.TrimSpace(lines[7])
}

func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tail(string(b), 4000)
}

// server is a postmaster started by startLocked.
type server struct {
	proc    *os.Process
	exited  chan struct{} // closed once the postmaster has exited and been reaped
	waitErr error         // valid after exited is closed
}

// startLocked starts cmd from a goroutine locked to its OS thread that stays
// alive until the process exits. Pdeathsig fires when the *thread* that
// forked the child exits (golang/go#27505), so the thread must outlive the
// server; if the whole process dies, the kernel signals the postmaster.
func startLocked(cmd *exec.Cmd) (*server, error) {
	s := &server{exited: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Never unlocked: when this goroutine returns the runtime ends the
		// thread, which is what we want once the server is gone.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		s.proc = cmd.Process
		started <- nil
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return s, nil
}

// stop shuts the postmaster down: SIGINT (fast shutdown: disconnect clients,
// write a shutdown checkpoint, which fsync=off makes cheap), then SIGKILL to
// its process group after grace.
func (s *server) stop(grace time.Duration, logf func(string, ...any)) error {
	pid := s.proc.Pid
	select {
	case <-s.exited:
		// It died on its own (or was killed by the harness): kill any
		// orphaned backend still in its process group.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return nil
	default:
	}
	_ = s.proc.Signal(syscall.SIGINT)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.exited:
		return nil
	case <-t.C:
	}
	logf("pglocal: postmaster %d still running %v after SIGINT; sending SIGKILL", pid, grace)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-s.exited:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("pglocal: postmaster pid %d survived SIGKILL", pid)
	}
}

// Close stops the server (SIGINT = fast shutdown, SIGKILL after 10 s) and
// removes the cluster directory. It is idempotent and safe to call from
// several goroutines; all calls return the first call's result.
func (c *Cluster) Close() error {
	if c == nil {
		return nil
	}
	c.closeOnce.Do(func() {
		unregisterSignal(c)
		t0 := time.Now()
		var errs []error
		if c.srv != nil {
			if err := c.srv.stop(stopGrace, c.logf); err != nil {
				errs = append(errs, err)
			}
		}
		if err := os.RemoveAll(c.dir); err != nil {
			time.Sleep(50 * time.Millisecond) // a dying backend may still write
			if err := os.RemoveAll(c.dir); err != nil {
				errs = append(errs, fmt.Errorf("pglocal: remove %s: %w; remove it by hand", c.dir, err))
			}
		}
		c.closeErr = errors.Join(errs...)
		if c.srv != nil {
			c.logf("pglocal: closed cluster on port %d in %v", c.port, time.Since(t0).Round(time.Millisecond))
		}
	})
	return c.closeErr
}

// DSN returns a keyword/value connection string over the unix socket:
// "host=<socketdir> port=<port> user=postgres dbname=<dbname> sslmode=disable".
func (c *Cluster) DSN(dbname string) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable", pgconf.QuoteDSN(c.sockDir), c.port, pgconf.QuoteDSN(dbname))
}

// TCPDSN is like DSN but connects over TCP to 127.0.0.1.
func (c *Cluster) TCPDSN(dbname string) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=%s sslmode=disable", c.port, pgconf.QuoteDSN(dbname))
}

// Port returns the TCP port on 127.0.0.1 (also the unix socket's port number).
func (c *Cluster) Port() int { return c.or().port }

// Version returns the server version, e.g. "15.18".
func (c *Cluster) Version() string { return c.or().version }

// DataDir returns the cluster's data directory (removed by Close).
func (c *Cluster) DataDir() string { return c.or().dataDir }

// or is c, or a zero Cluster for a nil one: the getters answer zero
// values on a Cluster that failed to start.
func (c *Cluster) or() *Cluster {
	if c == nil {
		return &Cluster{}
	}
	return c
}

// PID returns the postmaster's process id (e.g. for a scenario that kills
// the server). The postmaster is a process group leader.
func (c *Cluster) PID() int {
	if c == nil || c.srv == nil {
		return 0
	}
	return c.srv.proc.Pid
}
