package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/procowner"
)

// helperEnv switches the test binary into a child that starts a cluster,
// prints "READY <dir> <datadir> <postmaster pid>" and waits to be killed.
const helperEnv = "PGLOCAL_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

func helperMain(mode string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Start(ctx, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if mode == "signal" {
		c.CloseOnSignal()
	}
	fmt.Printf("READY %s %s %d\n", c.dir, c.DataDir(), c.PID())
	time.Sleep(time.Minute) // the parent kills us long before
	_ = c.Close()
	return 3
}

func needPG(t *testing.T) {
	t.Helper()
	if _, err := FindBinDir(); err != nil {
		t.Skipf("no PostgreSQL binaries: %v", err)
	}
}

func start(t *testing.T) *Cluster {
	t.Helper()
	needPG(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	c, err := Start(ctx, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v", time.Since(t0))
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestStartConnectClose(t *testing.T) {
	c := start(t)
	ctx := context.Background()

	if !strings.HasPrefix(c.Version(), "1") || !strings.Contains(c.Version(), ".") {
		t.Errorf("Version() = %q", c.Version())
	}
	sock, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		t.Fatalf("socket connect %q: %v", c.DSN("postgres"), err)
	}
	defer sock.Close(ctx)
	if got := sock.PgConn().ParameterStatus("server_version"); !strings.HasPrefix(got, c.Version()) {
		t.Errorf("server_version %q, Version() %q", got, c.Version())
	}
	for setting, want := range map[string]string{"synchronous_commit": "on", "fsync": "off", "max_connections": "300", "wal_level": "minimal"} {
		var got string
		if err := sock.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil || got != want {
			t.Errorf("%s = %q (%v), want %q", setting, got, err, want)
		}
	}
	if _, err := sock.Exec(ctx, "CREATE DATABASE app"); err != nil {
		t.Fatal(err)
	}

	tcp, err := pgx.Connect(ctx, c.TCPDSN("app"))
	if err != nil {
		t.Fatalf("tcp connect %q: %v", c.TCPDSN("app"), err)
	}
	var db string
	var n int
	if _, err := tcp.Exec(ctx, "CREATE TABLE t AS SELECT g FROM generate_series(1,10) g"); err != nil {
		t.Fatal(err)
	}
	if err := tcp.QueryRow(ctx, "SELECT current_database(), count(*) FROM t").Scan(&db, &n); err != nil || db != "app" || n != 10 {
		t.Fatalf("got %q %d %v", db, n, err)
	}
	tcp.Close(ctx)
	sock.Close(ctx)

	dir, port := c.dir, c.Port()
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs { // concurrent Close calls
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Close() }()
	}
	wg.Wait()
	t.Logf("Close took %v", time.Since(t0))
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster dir %s still there: %v", dir, err)
	}
	if conn, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		conn.Close()
		t.Errorf("port %d still accepts connections after Close", port)
	}
}

func TestTwoClustersConcurrently(t *testing.T) {
	needPG(t)
	var (
		wg sync.WaitGroup
		cs [2]*Cluster
		es [2]error
	)
	for i := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs[i], es[i] = Start(context.Background(), Options{Settings: map[string]string{"application_name": "c" + strconv.Itoa(i)}})
		}()
	}
	wg.Wait()
	for i := range cs {
		if es[i] != nil {
			t.Fatal(es[i])
		}
		t.Cleanup(func() { _ = cs[i].Close() })
	}
	if cs[0].Port() == cs[1].Port() || cs[0].dir == cs[1].dir {
		t.Fatalf("clusters share port %d / dir %s", cs[0].Port(), cs[0].dir)
	}
	for _, c := range cs {
		conn, err := pgx.Connect(context.Background(), c.TCPDSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		var port int
		if err := conn.QueryRow(context.Background(), "SELECT current_setting('port')::int").Scan(&port); err != nil || port != c.Port() {
			t.Errorf("port %d (%v), want %d", port, err, c.Port())
		}
		conn.Close(context.Background())
	}
}

func TestFindBinDirEnvEmpty(t *testing.T) {
	empty := t.TempDir()
	t.Setenv(EnvBinDir, empty)
	_, err := FindBinDir()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{EnvBinDir, empty, "initdb", "postgres"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	t.Log(err)
	if _, err := Start(context.Background(), Options{}); err == nil || !strings.Contains(err.Error(), EnvBinDir) {
		t.Errorf("Start: %v", err)
	}
}

func TestFindBinDirNothingInstalled(t *testing.T) {
	t.Setenv(EnvBinDir, "")
	t.Setenv("PATH", t.TempDir())
	_, err := FindBinDir()
	if len(debianBinDirs()) > 0 {
		if err != nil {
			t.Fatal(err) // falls back to /usr/lib/postgresql/*/bin
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("error %v does not say how to install", err)
	}
}

func TestBadSetting(t *testing.T) {
	_, err := Start(context.Background(), Options{Settings: map[string]string{"port": "5432"}})
	if err == nil || !strings.Contains(err.Error(), "managed by pglocal") {
		t.Fatalf("got %v", err)
	}
}

func TestStartFailureShowsLogAndCleansUp(t *testing.T) {
	needPG(t)
	_, err := Start(context.Background(), Options{Settings: map[string]string{"shared_buffers": "nonsense"}})
	if err == nil || !strings.Contains(err.Error(), `invalid value for parameter "shared_buffers"`) {
		t.Fatalf("error does not carry the server log: %v", err)
	}
	t.Log(err)
	// "... server log /dev/shm/rehearse-pg-123/postgres.log:"
	_, after, _ := strings.Cut(err.Error(), "server log ")
	logPath, _, _ := strings.Cut(after, ":")
	dir := filepath.Dir(logPath)
	if !strings.Contains(dir, clusterPrefix) {
		t.Fatalf("no cluster dir in the error: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed Start left %s behind: %v", dir, err)
	}
}

// startHelper re-executes the test binary as a child that starts a cluster.
func startHelper(t *testing.T, mode string) (cmd *exec.Cmd, dir, dataDir string, pid int) {
	t.Helper()
	needPG(t)
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	var s string
	select {
	case s = <-line:
	case <-time.After(30 * time.Second):
		t.Fatal("child did not report a cluster")
	}
	if _, err := fmt.Sscanf(s, "READY %s %s %d", &dir, &dataDir, &pid); err != nil {
		t.Fatalf("child said %q: %v", s, err)
	}
	if !procowner.Running(pid) {
		t.Fatalf("postmaster %d not running", pid)
	}
	return cmd, dir, dataDir, pid
}

func waitGone(t *testing.T, pid int, within time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for procowner.Running(pid) {
		if time.Since(t0) > within {
			t.Fatalf("postmaster %d still alive %v after its parent died", pid, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(t0)
}

func TestSIGKILLedParentLeavesNoPostmaster(t *testing.T) {
	cmd, dir, dataDir, pid := startHelper(t, "sleep")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	t.Logf("postmaster %d gone %v after SIGKILL of its parent", pid, waitGone(t, pid, 5*time.Second))

	if _, err := os.Stat(dataDir); err != nil {
		t.Fatalf("expected the stale dir to remain until swept: %v", err)
	}
	if n := SweepStale(t.Logf); n < 1 {
		t.Errorf("SweepStale removed %d dirs", n)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale dir %s not swept: %v", dir, err)
	}
}

func TestCloseOnSignal(t *testing.T) {
	cmd, dir, _, pid := startHelper(t, "signal")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("child should die of the re-raised SIGTERM, got %v", err)
	}
	if procowner.Running(pid) {
		t.Errorf("postmaster %d still alive", pid)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dir %s not removed on SIGTERM: %v", dir, err)
	}
}

func TestSweepKeepsLiveClusters(t *testing.T) {
	c := start(t)
	SweepStale(t.Logf)
	if _, err := os.Stat(c.DataDir()); err != nil {
		t.Fatalf("SweepStale removed a live cluster: %v", err)
	}
	conn, err := pgx.Connect(context.Background(), c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
}

func TestRetryWhenPortTaken(t *testing.T) {
	needPG(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := l.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPort = func() (int, error) {
		calls++
		if calls == 1 {
			return taken, nil
		}
		return freePort()
	}
	defer func() { pickPort = freePort }()
	c := start(t)
	if calls < 2 || c.Port() == taken {
		t.Fatalf("port %d after %d picks; taken port was %d", c.Port(), calls, taken)
	}
}

// A template partly deleted (e.g. by a tmp cleaner) is detected and rebuilt.
// Uses a private cache entry (the bin dir, part of the cache key, is a
// directory of symlinks), seeded with a copy of the shared template.
func TestDamagedTemplateIsRebuilt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs initdb (~0.5 s)")
	}
	shared := start(t).template
	real, _ := FindBinDir()
	bin, err := os.MkdirTemp("", "pglocal-bin-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(bin)
	_ = os.Chmod(bin, 0o755) // the postgres user must reach it when we are root
	for _, name := range requiredBins {
		if err := os.Symlink(real+"/"+name, bin+"/"+name); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := versionOf(context.Background(), bin)
	r, _ := serverUser()
	tpl := templatePath(filepath.Dir(filepath.Dir(shared)), bin, v, r)
	defer os.Remove(tpl + ".lock")
	defer os.RemoveAll(tpl)
	if err := copyTemplate(shared, tpl, r); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(shared+"/"+manifestFile, tpl+"/"+manifestFile, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = r.chown(tpl + "/" + manifestFile)
	if err := os.Remove(tpl + "/base/1/1259"); err != nil { // pg_class of template1
		t.Fatal(err)
	}

	var logs strings.Builder
	var mu sync.Mutex
	c, err := Start(context.Background(), Options{BinDir: bin, Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&logs, f+"\n", a...)
		t.Logf(f, a...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.template != tpl {
		t.Fatalf("used template %s, want %s", c.template, tpl)
	}
	if !strings.Contains(logs.String(), "incomplete") {
		t.Error("template damage not reported")
	}
	if _, err := os.Stat(tpl + "/base/1/1259"); err != nil {
		t.Errorf("template not rebuilt: %v", err)
	}
}

// go test ./pglocal/ -run '^$' -bench StartClose -benchtime 10x
func BenchmarkStartClose(b *testing.B) {
	if _, err := FindBinDir(); err != nil {
		b.Skip(err)
	}
	c, err := Start(context.Background(), Options{}) // warm the template cache
	if err != nil {
		b.Fatal(err)
	}
	_ = c.Close()
	var start, stop time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		c, err := Start(context.Background(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
		start += t1.Sub(t0)
		stop += time.Since(t1)
	}
	b.ReportMetric(float64(start.Milliseconds())/float64(b.N), "start-ms/op")
	b.ReportMetric(float64(stop.Milliseconds())/float64(b.N), "close-ms/op")
}

func TestNewestFirst(t *testing.T) {
	got := newestFirst([]string{"/r/9.6/bin", "/r/15/bin", "/r/10/bin", "/r/15.2/bin", "/r/devel/bin"})
	want := []string{"/r/15.2/bin", "/r/15/bin", "/r/10/bin", "/r/9.6/bin", "/r/devel/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("newestFirst = %q, want %q", got, want)
	}
}
