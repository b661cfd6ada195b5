package container

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/procowner"
)

func TestPublishAddr(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"", "127.0.0.1"},
		{"unix:///var/run/docker.sock", "127.0.0.1"},
		{"npipe:////./pipe/docker_engine", "127.0.0.1"},
		{"tcp://127.0.0.1:2375", "127.0.0.1"},
		{"tcp://127.0.0.2:2375", "127.0.0.2"},
		{"tcp://localhost:2375", "127.0.0.1"},
		{"tcp://[::1]:2375", "127.0.0.1"},
		{"https://127.0.0.1:2376", "127.0.0.1"},
		{"tcp://192.0.2.1:2375", ""},
		{"tcp://docker.example.com:2375", ""},
		{"ssh://me@127.0.0.1", ""},
		{"ssh://me@docker.example.com", ""},
	} {
		got, err := publishAddr(tc.host)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("publishAddr(%q) = %q, %v; want %q", tc.host, got, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "loopback") {
			t.Errorf("publishAddr(%q): the error does not say rehearse contacts only loopback: %v", tc.host, err)
		}
	}
}

// An engine on another machine is refused before anything is sent to it.
func TestRemoteDockerHostRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, h := range []string{"tcp://192.0.2.1:2375", "ssh://me@docker.example.com"} {
		t.Setenv("DOCKER_HOST", h)
		t0 := time.Now()
		s, err := Start(context.Background(), Options{})
		if err == nil {
			s.Close()
			t.Fatalf("DOCKER_HOST=%s: Start succeeded", h)
		}
		if !strings.Contains(err.Error(), "not on this machine") || !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), h) {
			t.Errorf("DOCKER_HOST=%s: error does not say the engine is refused for not being on loopback: %v", h, err)
		}
		if took := time.Since(t0); took > time.Second {
			t.Errorf("DOCKER_HOST=%s: refused after %v (was it contacted?)", h, took)
		}
		if err := Available(context.Background()); err == nil {
			t.Errorf("DOCKER_HOST=%s: Available says yes", h)
		}
	}
}

// dockerProxy listens on 127.0.0.1 and forwards every connection to the
// local engine's unix socket: a second daemon address, as DOCKER_HOST=tcp://.
func dockerProxy(t *testing.T, ip string) (addr string, conns *atomic.Int64) {
	t.Helper()
	sock := "/var/run/docker.sock"
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		p, ok := strings.CutPrefix(h, "unix://")
		if !ok {
			t.Skipf("DOCKER_HOST=%s is not a unix socket to put a TCP listener in front of", h)
		}
		sock = p
	}
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	conns = new(atomic.Int64)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				u, err := net.Dial("unix", sock)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.(*net.UnixConn).CloseWrite() }()
				io.Copy(c, u)
			}()
		}
	}()
	return l.Addr().String(), conns
}

// The container provider honours DOCKER_HOST: through a tcp:// engine
// address on loopback the container starts, its port is published on that
// address and the DSN names it, and Close removes it, all through that
// engine address.
func TestStartThroughTCPDockerHost(t *testing.T) {
	needImage(t)
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		t.Run(ip, func(t *testing.T) {
			addr, conns := dockerProxy(t, ip)
			t.Setenv("DOCKER_HOST", "tcp://"+addr)
			s := start(t)
			if conns.Load() == 0 {
				t.Fatal("nothing went through DOCKER_HOST: the engine was found elsewhere")
			}
			if s.Host() != ip || !strings.Contains(s.DSN("postgres"), "host="+ip+" port="+strconv.Itoa(s.Port())) {
				t.Errorf("host %q, want %s in the DSN", s.Host(), ip)
			}
			if got := dockerInspect(t, s.ContainerID(), `{{range (index .NetworkSettings.Ports "5432/tcp")}}{{.HostIp}} {{end}}`); got != ip {
				t.Errorf("port published on %q, want %s", got, ip)
			}
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, s.DSN("postgres"))
			if err != nil {
				t.Fatal(err)
			}
			conn.Close(ctx)
			before := conns.Load()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if conns.Load() == before {
				t.Error("Close did not go through DOCKER_HOST")
			}
			if ids := containersWithLabel(t, LabelRun+"="+s.RunID()); len(ids) != 0 {
				t.Errorf("container still there after Close: %v", ids)
			}
		})
	}
}

// leaseExec runs one statement on a reusable container's lease table.
func leaseExec(t *testing.T, s *Server, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatal(err)
	}
}

// With Reuse the container outlives Close, the next Start (same image and
// settings) takes it without creating one, and Sweep removes it only once
// nobody holds it and it has been idle for ReuseIdle.
func TestReuseKeepsAndSweepsByAge(t *testing.T) {
	needImage(t)
	opts := reuseOpts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	first, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Remove() })
	if first.Reused() {
		t.Fatal("the first Start says it reused a container: the hash is not this test's own")
	}
	hash := dockerInspect(t, first.ContainerID(), `{{index .Config.Labels "dev.rehearse.reuse"}}`)
	if hash == "" || dockerInspect(t, first.ContainerID(), `{{index .Config.Labels "dev.rehearse.image"}}`) != first.Image() {
		t.Fatalf("reusable container lacks its labels (reuse %q)", hash)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if got := dockerInspect(t, first.ContainerID(), "{{.State.Status}}"); got != "running" {
		t.Fatalf("after Close the reusable container is %s", got)
	}

	t0 := time.Now()
	second, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("second Start took %v", time.Since(t0).Round(time.Millisecond))
	if !second.Reused() || second.ContainerID() != first.ContainerID() || second.Port() != first.Port() {
		t.Fatalf("second Start: reused %v, container %.12s (want %.12s)", second.Reused(), second.ContainerID(), first.ContainerID())
	}
	if ids := containersWithLabel(t, LabelReuse+"="+hash); len(ids) != 1 {
		t.Fatalf("containers with the hash: %v, want the one", ids)
	}
	// Held by a live process: never swept, however old its lease.
	leaseExec(t, second, `UPDATE rehearse_lease SET used = now() - interval '48 hours'`)
	Sweep(ctx, t.Logf)
	if ids := containersWithLabel(t, LabelReuse+"="+hash); len(ids) != 1 {
		t.Fatal("Sweep removed a reusable container a live process holds")
	}
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}
	// Released recently, and a lease of a dead process: kept.
	dead := procowner.Owner{}
	if o, err := procowner.Self(); err == nil {
		dead = o
	}
	dead.PID = deadPID(t)
	leaseExec(t, second, `INSERT INTO rehearse_lease (id, owner, used) VALUES ('dead', $1, now() - interval '48 hours')`, dead.String())
	Sweep(ctx, t.Logf)
	if ids := containersWithLabel(t, LabelReuse+"="+hash); len(ids) != 1 {
		t.Fatal("Sweep removed a reusable container used a moment ago")
	}
	// Idle for longer than ReuseIdle: removed.
	leaseExec(t, second, `UPDATE rehearse_lease SET used = now() - interval '25 hours'`)
	if _, err := Sweep(ctx, t.Logf); err != nil {
		t.Fatal(err)
	}
	// A sweep of another process (go test runs packages at once) may be the
	// one removing it: then it is gone a moment later.
	deadline := time.Now().Add(30 * time.Second)
	for ids := containersWithLabel(t, LabelReuse+"="+hash); len(ids) != 0; ids = containersWithLabel(t, LabelReuse+"="+hash) {
		if time.Now().After(deadline) {
			t.Fatalf("reusable container idle for 25 h still there 30 s after Sweep: %v", ids)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reuseOpts is a reuse configuration no other test shares.
func reuseOpts(t *testing.T) Options {
	tag, err := randomHex(4)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Reuse: true, ReuseKey: t.Name() + "-" + tag, Logf: t.Logf}
}

// startReusable starts a reusable container of a configuration of the
// test's own, removed when the test ends whoever holds it.
func startReusable(t *testing.T) (context.Context, Options, *Server) {
	t.Helper()
	needImage(t)
	opts := reuseOpts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { forceRemove(context.Background(), s.ContainerID()) })
	return ctx, opts, s
}

// Two Servers hold one reusable container: Remove by the first leaves it to
// the second, which then removes it.
func TestReuseRemoveRespectsAnotherHolder(t *testing.T) {
	ctx, opts, first := startReusable(t)
	second, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Reused() || second.ContainerID() != first.ContainerID() {
		t.Fatalf("second Start did not take the first's container (reused %v)", second.Reused())
	}
	if err := first.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := dockerInspect(t, first.ContainerID(), "{{.State.Status}}"); got != "running" {
		t.Fatalf("Remove by one holder took the container from the other: it is %q", got)
	}
	conn, err := pgx.Connect(ctx, second.DSN("postgres"))
	if err != nil {
		t.Fatalf("the other holder lost its server: %v", err)
	}
	conn.Close(ctx)
	if err := second.Remove(); err != nil {
		t.Fatal(err)
	}
	if ids := containersWithLabel(t, LabelRun+"="+first.RunID()); len(ids) != 0 {
		t.Fatalf("the last holder's Remove left the container: %v", ids)
	}
}

// Once a sweep has decided to remove a reusable container (retired it),
// Start never takes it, even before it is gone; and a lease taken first
// keeps the sweep off.
func TestReuseSweepAndTakeDoNotRace(t *testing.T) {
	ctx, opts, first := startReusable(t)
	// Held: a sweep's decision finds the live lease and does not retire it.
	leaseExec(t, first, `UPDATE rehearse_lease SET used = now() - interval '48 hours'`)
	if retired, _, err := first.retireIf(ctx, "", ReuseIdle, 0); err != nil || retired {
		t.Fatalf("retired a container a live process holds (%v, %v)", retired, err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	leaseExec(t, first, `UPDATE rehearse_lease SET used = now() - interval '25 hours'`)
	// The sweep's decision, made before its docker rm: from here on no lease.
	if retired, _, err := first.retireIf(ctx, "", ReuseIdle, 0); err != nil || !retired {
		t.Fatalf("an idle container was not retired (%v, %v)", retired, err)
	}
	if err := first.takeLease(ctx); !errors.Is(err, errRetired) {
		t.Errorf("takeLease on a retired container: %v, want errRetired", err)
	}
	second, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Remove() })
	if second.Reused() || second.ContainerID() == first.ContainerID() {
		t.Fatal("Start took a container a sweep is removing")
	}
}
