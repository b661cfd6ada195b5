package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
	"github.com/rehearse-dev/rehearse/pg/integrity"
	pglocal "github.com/rehearse-dev/rehearse/pg/local"
	"github.com/rehearse-dev/rehearse/restore"
)

// The fault matrix's setting: a real `rehearse restore` process, a real
// server, and a seeded database per case cloned from a template.

// faultData is the dataset the matrix restores (edms-medium: 8371
// objects) and what a blocker needs to stop a restore in the middle.
type faultData struct {
	backup string // the backup the database was seeded with
	// extra is the backup with one audit event more (pk extraPK), the
	// last row of its audit COPY: a transaction that inserts that pk and
	// waits holds the restore there (atomic).
	extra   string
	extraPK int64
	// pairUser, pairGroup: a group membership the reinit deletes and the
	// restore writes back last of all (two-phase blocker).
	pairUser, pairGroup int64
}

func writeFaultData(t *testing.T, dir string) faultData {
	t.Helper()
	b := fixtureBackup(t, "edms-medium")
	d := faultData{backup: filepath.Join(dir, "backup.json"), extra: filepath.Join(dir, "backup-extra.json"), extraPK: 1 << 40}
	end := bytes.LastIndexByte(b, ']')
	ev := fmt.Sprintf(`,{"model": "audit.auditevent", "pk": %d, "fields": {"actor": null, "action": "SYSTEM", "object_repr": "blocker", "details": {}, "created_at": "2025-06-02T08:00:00.000Z"}}`, d.extraPK)
	extra := append(append(append([]byte{}, b[:end]...), ev...), b[end:]...)
	if os.WriteFile(d.backup, b, 0o600) != nil || os.WriteFile(d.extra, extra, 0o600) != nil {
		t.Fatal("write the backups")
	}
	return d
}

// fixtureBackup is the dumpdata backup of fixture name.
func fixtureBackup(t *testing.T, name string) []byte {
	t.Helper()
	f, err := fixtures.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pgServer is a PostgreSQL server the matrix creates databases on.
type pgServer struct {
	admin   string                 // maintenance DSN
	dsn     func(db string) string // DSN of a database (unix socket)
	tcp     string                 // host:port over TCP
	cluster *pglocal.Cluster       // when the matrix started it (to stop it)
}

func sharedServer(t *testing.T) *pgServer {
	cfg, err := pgx.ParseConfig(pgtest.AdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	host := cfg.Host
	if strings.HasPrefix(host, "/") {
		host = "127.0.0.1"
	}
	return &pgServer{admin: pgtest.AdminDSN(), dsn: pgtest.DSN, tcp: net.JoinHostPort(host, strconv.Itoa(int(cfg.Port)))}
}

// ownServer is a cluster of the test's own, for a fault that stops the server.
func ownServer(t *testing.T) *pgServer {
	c, err := pglocal.Start(context.Background(), pglocal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// Registered after Close, so it runs first: the server pg_ctl
	// restarted is not the one Close knows.
	t.Cleanup(func() { pgctl(t, c, "stop", "-m", "immediate") })
	return &pgServer{admin: c.DSN("postgres"), dsn: c.DSN, tcp: net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port())), cluster: c}
}

func (s *pgServer) exec(t *testing.T, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), s.admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

var dbCounter atomic.Int64

// seeded returns the name of a new database with the reference schema,
// seeded with the backup (by cloning template when it is not "").
func (s *pgServer) seeded(t *testing.T, template string, d faultData) string {
	t.Helper()
	name := fmt.Sprintf("rehearse_fault_%d_%d", os.Getpid(), dbCounter.Add(1))
	if template != "" {
		s.exec(t, "CREATE DATABASE "+name+" TEMPLATE "+template)
	} else {
		s.exec(t, "CREATE DATABASE "+name)
		conn := pgtest.Connect(t, s.dsn(name))
		if err := edms.Install(context.Background(), conn); err != nil {
			t.Fatal(err)
		}
		opts := edms.RestoreOptions(func() (io.ReadCloser, error) { return os.Open(d.backup) }, restore.Atomic, nil)
		if _, err := restore.Restore(context.Background(), conn, opts); err != nil {
			t.Fatal(err)
		}
		conn.Close(context.Background()) // a template has no sessions
	}
	t.Cleanup(func() { s.exec(t, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	return name
}

// tableSums are the checksums of every table but the protected ones (the
// reinit moves the token cutoff, as it should).
func tableSums(t *testing.T, dsn string) map[string]integrity.Checksum {
	t.Helper()
	conn := pgtest.Connect(t, dsn)
	cat, err := pgcatalog.Load(context.Background(), conn, "")
	if err != nil {
		t.Fatal(err)
	}
	sums, err := integrity.TableChecksums(context.Background(), conn, cat, edms.Protected())
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

// sameTables fails when a table's rows differ from before.
func sameTables(t *testing.T, what string, before, after map[string]integrity.Checksum) {
	t.Helper()
	var changed []string
	for _, table := range slices.Sorted(maps.Keys(before)) {
		if b, a := before[table], after[table]; a != b {
			changed = append(changed, fmt.Sprintf("%s (%d rows %s -> %d rows %s)", table, b.Rows, b.MD5, a.Rows, a.MD5))
		}
	}
	if len(changed) > 0 {
		t.Errorf("%s: tables changed: %s", what, strings.Join(changed, "; "))
	}
}

// pgctl runs pg_ctl on the cluster's data directory, as the server's user.
func pgctl(t *testing.T, c *pglocal.Cluster, args ...string) {
	t.Helper()
	bin, err := pglocal.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(bin, "pg_ctl"), append([]string{"-D", c.DataDir()}, args...)...)
	cmd.Dir = c.DataDir()
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if out, err := cmd.CombinedOutput(); err != nil && args[0] != "stop" {
		t.Errorf("pg_ctl %v: %v\n%s", args, err, out)
	}
}

// proxy is a loopback TCP proxy to a server whose connections the test
// cuts (as a dropped network would, with a reset), while it keeps
// accepting new ones.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []*net.TCPConn
}

func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c.(*net.TCPConn), up.(*net.TCPConn))
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// cut resets every connection the proxy carries.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.SetLinger(0)
		c.Close()
	}
	p.conns = nil
}

// lines collects a process's output line by line and says when a line
// containing some text has come.
type lines struct {
	mu   sync.Mutex
	all  []string
	wake chan struct{}
	eof  chan struct{} // closed when r is read to its end
}

func readLines(r io.Reader) *lines {
	l := &lines{wake: make(chan struct{}, 1), eof: make(chan struct{})}
	go func() {
		defer close(l.eof)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

func (l *lines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// waitFor waits up to d for a line containing s.
func (l *lines) waitFor(s string, d time.Duration) bool {
	deadline := time.After(d)
	for !strings.Contains(l.text(), s) {
		select {
		case <-l.wake:
		case <-deadline:
			return false
		}
	}
	return true
}
