package container

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/procowner"
	"github.com/testcontainers/testcontainers-go"
)

// needDocker skips the test when "docker info" fails (no CLI or no engine).
func needDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		t.Skipf("docker info failed, no Docker engine to test against: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if err := Available(ctx); err != nil {
		t.Skipf("docker info works but the Docker API does not answer: %v", err)
	}
}

// needImage fails the test when the image is missing (CI builds it first
// with make pg-image), unless REHEARSE_SKIP_CONTAINER=1.
func needImage(t *testing.T) {
	t.Helper()
	needDocker(t)
	ok, err := ImagePresent(context.Background(), "")
	if err != nil {
		t.Fatalf("checking image %s: %v", ImageName(""), err)
	}
	if ok {
		return
	}
	if os.Getenv("REHEARSE_SKIP_CONTAINER") == "1" {
		t.Skipf("image %s is missing and REHEARSE_SKIP_CONTAINER=1: skipping the container tests (run make pg-image to run them)", ImageName(""))
	}
	t.Fatalf("image %s is missing: run make pg-image (or set REHEARSE_SKIP_CONTAINER=1 to skip the container tests)", ImageName(""))
}

// containersWithLabel lists container ids (running or not) carrying label
// (key or key=value), through the docker CLI.
func containersWithLabel(t *testing.T, label string) []string {
	t.Helper()
	out, err := exec.Command("docker", "ps", "-aq", "--no-trunc", "--filter", "label="+label).CombinedOutput()
	if err != nil {
		t.Fatalf("docker ps: %v: %s", err, out)
	}
	return strings.Fields(string(out))
}

func dockerInspect(t *testing.T, id, format string) string {
	t.Helper()
	out, err := exec.Command("docker", "inspect", "-f", format, id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker inspect %s: %v: %s", id, err, out)
	}
	return strings.TrimSpace(string(out))
}

func start(t *testing.T) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t0 := time.Now()
	s, err := Start(ctx, Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	t.Logf("Start took %v", time.Since(t0).Round(time.Millisecond))
	return s
}

func TestStartConnectClose(t *testing.T) {
	needImage(t)
	s := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The container: labels, loopback-only port, tmpfs PGDATA, no volume.
	ids := containersWithLabel(t, LabelRun+"="+s.RunID())
	if len(ids) != 1 || ids[0] != s.ContainerID() {
		t.Fatalf("containers with %s=%s: %v, want [%s]", LabelRun, s.RunID(), ids, s.ContainerID())
	}
	if got := dockerInspect(t, s.ContainerID(), `{{index .Config.Labels "dev.rehearse.pid"}}`); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid label = %q, want %d", got, os.Getpid())
	}
	if got := dockerInspect(t, s.ContainerID(), `{{index .Config.Labels "dev.rehearse.created"}}`); got == "" {
		t.Errorf("no created label")
	}
	if got := dockerInspect(t, s.ContainerID(), `{{range (index .NetworkSettings.Ports "5432/tcp")}}{{.HostIp}}:{{.HostPort}} {{end}}`); got != "127.0.0.1:"+strconv.Itoa(s.Port()) {
		t.Errorf("published 5432/tcp = %q, want 127.0.0.1:%d only", got, s.Port())
	}
	if got := dockerInspect(t, s.ContainerID(), `{{len .Mounts}} {{json .HostConfig.Tmpfs}} {{.Config.StopSignal}}`); !strings.HasPrefix(got, `0 {"/var/lib/postgresql/data":`) || !strings.HasSuffix(got, "SIGINT") {
		t.Errorf("mounts, tmpfs, stop signal = %s; want no mount, PGDATA on tmpfs, SIGINT", got)
	}

	// Log in over TCP as the configured user; check the settings.
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var user, version string
	if err := conn.QueryRow(ctx, "SELECT current_user, current_setting('server_version')").Scan(&user, &version); err != nil {
		t.Fatal(err)
	}
	if user != User {
		t.Errorf("current_user = %q, want %q", user, User)
	}
	t.Logf("server %s (%s) on 127.0.0.1:%d", version, s.Image(), s.Port())
	for name, want := range map[string]string{
		"fsync": "off", "full_page_writes": "off", "synchronous_commit": "on",
		"max_connections": "300", "listen_addresses": "*",
	} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE rehearse_pgcontainer_test"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	db, err := pgx.Connect(ctx, s.DSN("rehearse_pgcontainer_test"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "CREATE TABLE t (id serial PRIMARY KEY, name text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, "INSERT INTO t (name) SELECT 'u' || g FROM generate_series(1, 100) g"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil || n != 100 {
		t.Fatalf("count = %d, %v; want 100", n, err)
	}
	db.Close(ctx)

	// Password authentication is enforced over TCP.
	bad := strings.Replace(s.DSN("postgres"), "password="+s.password, "password=wrong", 1)
	if c, err := pgx.Connect(ctx, bad); err == nil {
		c.Close(ctx)
		t.Errorf("login with a wrong password succeeded")
	}

	t0 := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(t0).Round(time.Millisecond))
	if ids := containersWithLabel(t, LabelRun+"="+s.RunID()); len(ids) != 0 {
		t.Fatalf("container still there after Close: %v", ids)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// deadPID returns a pid with no process, near 999999.
func deadPID(t *testing.T) int {
	t.Helper()
	for pid := 999999; pid < 1099999; pid++ {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); errors.Is(err, os.ErrNotExist) {
			return pid
		}
	}
	t.Fatal("no free pid found")
	return 0
}

// Sweep removes containers whose owner process is gone and leaves those
// of live owners. Other test binaries may sweep at the same time (every
// Start sweeps), so the orphan is made with a bare docker create, and the
// test asks only that it is gone after Sweep, whoever removed it.
func TestSweepRemovesDeadOwnersOnly(t *testing.T) {
	needImage(t)
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	dead := deadPID(t)
	runID, _ := randomHex(6)
	labels := ownerLabels(runID, time.Now())
	labels[LabelPID] = strconv.Itoa(dead)
	args := []string{"create"}
	for k, v := range labels {
		args = append(args, "--label", k+"="+v)
	}
	args = append(args, ImageName(""))
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker create: %v: %s", err, out)
	}
	orphan := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", orphan).Run() })
	live := start(t) // owned by this process

	if _, err := Sweep(context.Background(), t.Logf); err != nil {
		t.Fatal(err)
	}
	if got := containersWithLabel(t, LabelRun+"="+runID); len(got) != 0 {
		t.Errorf("container of dead pid %d still there after Sweep: %v", dead, got)
	}
	if got := containersWithLabel(t, LabelRun+"="+live.RunID()); len(got) != 1 {
		t.Errorf("Sweep removed the container of a live owner: %v", got)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if got := containersWithLabel(t, LabelRun+"="+live.RunID()); len(got) != 0 {
		t.Errorf("live container still there after Close: %v", got)
	}
	// Close of a container that is already gone is not an error.
	if err := live.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestMissingImageFailsFast(t *testing.T) {
	needDocker(t)
	for _, tc := range []struct {
		name, env, image string
	}{
		{name: "Options.Image", image: "rehearse/no-such-image:missing"},
		{name: "REHEARSE_PG_IMAGE", env: "rehearse/no-such-image:from-env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv(ImageEnv, tc.env)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			t0 := time.Now()
			s, err := Start(ctx, Options{Image: tc.image, Logf: t.Logf})
			took := time.Since(t0)
			if err == nil {
				s.Close()
				t.Fatal("Start succeeded with a missing image")
			}
			t.Logf("error after %v: %v", took.Round(time.Millisecond), err)
			if !errors.Is(err, ErrImageMissing) || !strings.Contains(err.Error(), "make pg-image") {
				t.Errorf("error does not say the image is missing and to run make pg-image: %v", err)
			}
			if want := tc.image + tc.env; !strings.Contains(err.Error(), want) {
				t.Errorf("error does not name the image %q: %v", want, err)
			}
			if took > 5*time.Second {
				t.Errorf("took %v, want < 5s (no pull attempt)", took)
			}
		})
	}
}

func TestBadSettings(t *testing.T) {
	for _, m := range []map[string]string{
		{"port": "5433"},
		{"listen_addresses": "localhost"},
		{"bad name": "x"},
		{"work_mem": "1MB\n-c fsync=on"},
	} {
		if _, err := Start(context.Background(), Options{Settings: m}); err == nil {
			t.Errorf("Start accepted settings %v", m)
		}
	}
	args, err := serverArgs(map[string]string{"work_mem": "64MB", "fsync": "on"})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"-c fsync=on", "-c work_mem=64MB", "-c synchronous_commit=on", "-c max_connections=300"} {
		if !strings.Contains(joined, want) {
			t.Errorf("args %q lack %q", joined, want)
		}
	}
}

func TestStaleOwner(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	here := procowner.Here()
	now := time.Now()
	young, old := now.Add(-time.Minute), now.Add(-StaleAfter-time.Hour)
	labels := func(edit func(map[string]string)) map[string]string {
		l := ownerLabels("x", now)
		edit(l)
		return l
	}
	dead := strconv.Itoa(deadPID(t))
	for _, tc := range []struct {
		name    string
		labels  map[string]string
		created time.Time
		want    bool
	}{
		{"ours", labels(func(map[string]string) {}), old, false},
		{"live parent", labels(func(l map[string]string) { l[LabelPID] = strconv.Itoa(os.Getppid()); delete(l, LabelStart) }), old, false},
		{"dead pid", labels(func(l map[string]string) { l[LabelPID] = dead }), young, true},
		// Written without /proc: nothing here says the pid is the same machine's.
		{"only a pid label, young", map[string]string{LabelRun: "x", LabelPID: dead}, young, false},
		{"only a pid label, old", map[string]string{LabelRun: "x", LabelPID: dead}, old, true},
		{"pid reused", labels(func(l map[string]string) { l[LabelPID] = strconv.Itoa(os.Getppid()); l[LabelStart] = "1" }), young, true},
		{"other namespace, young", labels(func(l map[string]string) { l[LabelPID] = dead; l[LabelPIDNS] = "pid:[1]" }), young, false},
		{"other namespace, old", labels(func(l map[string]string) { l[LabelPID] = dead; l[LabelPIDNS] = "pid:[1]" }), old, true},
		{"earlier boot of this machine, young", labels(func(l map[string]string) { l[LabelBoot] = "b" }), young, true},
		{"earlier boot, no machine label, young", labels(func(l map[string]string) { l[LabelBoot] = "b"; delete(l, LabelMachine) }), young, true},
		{"other machine, young", labels(func(l map[string]string) { l[LabelBoot] = "b"; l[LabelMachine] = "elsewhere" }), young, false},
		{"other machine, old", labels(func(l map[string]string) { l[LabelBoot] = "b"; l[LabelMachine] = "elsewhere" }), old, true},
		{"no pid, young", map[string]string{LabelRun: "x"}, young, false},
		{"no pid, old", map[string]string{LabelRun: "x"}, old, true},
	} {
		got, why := staleOwner(tc.labels, tc.created, now, here)
		if got != tc.want {
			t.Errorf("%s: stale = %v (%s), want %v", tc.name, got, why, tc.want)
		}
	}
}

// Starting rehearse's container leaves testcontainers' reaper as the
// process configured it: TESTCONTAINERS_RYUK_DISABLED stays unset,
// testcontainers still has the reaper on for every other container, and
// the container carries none of testcontainers' labels (the reaper never
// learns of it).
func TestReaperLeftToOtherContainers(t *testing.T) {
	needImage(t)
	if v, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); ok {
		t.Skipf("TESTCONTAINERS_RYUK_DISABLED=%s is set for this process: nothing to leave alone", v)
	}
	s := start(t)
	if v, ok := os.LookupEnv("TESTCONTAINERS_RYUK_DISABLED"); ok {
		t.Errorf("Start set TESTCONTAINERS_RYUK_DISABLED=%s for the whole process", v)
	}
	p, err := testcontainers.NewDockerProvider()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Config().RyukDisabled {
		t.Error("testcontainers has the reaper off for the process after Start (unless ~/.testcontainers.properties says ryuk.disabled)")
	}
	if got := dockerInspect(t, s.ContainerID(), `{{range $k, $v := .Config.Labels}}{{$k}} {{end}}`); strings.Contains(got, "org.testcontainers") {
		t.Errorf("rehearse's container carries testcontainers labels (%s): the reaper would take it", got)
	}
}
