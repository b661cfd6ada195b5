package provider

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/procowner"
	"github.com/rehearse-dev/rehearse/internal/proctest"
	pgcontainer "github.com/rehearse-dev/rehearse/pg/container"
	pglocal "github.com/rehearse-dev/rehearse/pg/local"
)

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Config{Kind: "cloud"}); err == nil || !strings.Contains(err.Error(), "unknown provider \"cloud\": use local, container, dsn") {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := Open(ctx, Config{Kind: DSN}); err == nil || !strings.Contains(err.Error(), "REHEARSE_DSN") {
		t.Errorf("dsn without DSN: %v", err)
	}
	if _, err := Open(ctx, Config{DSN: "postgres://nobody:secret@127.0.0.1:1/postgres?connect_timeout=2"}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("unreachable server: err %v (must fail and never show the password)", err)
	}
	if _, err := Open(ctx, Config{DSN: "postgres://nobody:secret@db.example.com/postgres"}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("a server off this machine: err %v (must be refused before any connection)", err)
	}
}

// A provider that fails to open is an error and a nil provider whose
// methods do not panic: callers that keep it in an interface (a Runner's
// providers, the shared provider of go test) close it without a check.
func TestOpenFailureIsAnErrorNotAProvider(t *testing.T) {
	t.Setenv(pgcontainer.ImageEnv, "rehearse/no-such-image:missing")
	p, err := Open(context.Background(), Config{Kind: Container})
	if err == nil {
		p.Close()
		t.Fatal("Open succeeded without the image (or without Docker)")
	}
	if p != nil {
		t.Fatalf("Open returned a provider with the error %v", err)
	}
	if pgcontainer.Available(context.Background()) == nil && !errors.Is(err, pgcontainer.ErrImageMissing) {
		t.Errorf("error does not say the image is missing: %v", err)
	}
	if err := p.Close(); err != nil || p.Name() != "" {
		t.Errorf("nil provider: Close %v, Name %q", err, p.Name())
	}
	if _, _, err := p.Database(context.Background(), "edms-small"); err == nil {
		t.Error("a nil provider handed out a database")
	}
}

func TestResolvedKind(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, Local},
		{Config{DSN: "postgres://127.0.0.1/x"}, DSN},
		{Config{Kind: Container, DSN: "postgres://127.0.0.1/x"}, Container},
	} {
		if got := tc.cfg.ResolvedKind(); got != tc.want {
			t.Errorf("%+v: kind %q, want %q", tc.cfg, got, tc.want)
		}
	}
	t.Setenv("REHEARSE_PROVIDER", "container")
	t.Setenv("REHEARSE_DSN", "postgres://127.0.0.1/x")
	t.Setenv(pgcontainer.ImageEnv, "img:1")
	if got := ConfigFromEnv(); got.Kind != Container || got.DSN != "postgres://127.0.0.1/x" || got.Image != "img:1" {
		t.Errorf("ConfigFromEnv = %+v", got)
	}
}

// A scenario whose own timeout expires while the fixture's template is
// being built must not fail the scenarios after it.
func TestShortTimeoutDoesNotPoisonTheTemplate(t *testing.T) {
	ctx := context.Background()
	prov, err := Open(ctx, Config{Kind: Local})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if _, drop, err := prov.Database(short, "edms-small"); err == nil {
		drop()
	}
	dsn, drop, err := prov.Database(ctx, "edms-small")
	if err != nil {
		t.Fatalf("after a timed-out first use: %v", err)
	}
	defer drop()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM users_user").Scan(&n); err != nil || n != 7 {
		t.Errorf("users: %d %v", n, err)
	}
}

// Databases a killed run left on a DSN server are dropped by the next run
// on the same machine when their owner is provably gone (dead, or from an
// earlier boot); a live owner's, another machine's and unlabelled ones stay.
func TestDSNProviderSweepsDatabasesOfDeadRuns(t *testing.T) {
	ctx := context.Background()
	// A server of its own: the sweep drops databases other tests may be counting.
	c, err := pglocal.Start(ctx, pglocal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	dsn := c.TCPDSN("postgres")
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	first, err := Open(ctx, Config{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, drop, err := first.Database(ctx, "edms-small")
	if err != nil {
		t.Fatal(err)
	}
	defer drop()
	var live, comment string
	if err := conn.QueryRow(ctx, `SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE datname LIKE 'rehearse\_s`+first.run+`\_%'`).Scan(&live, &comment); err != nil {
		t.Fatalf("the provider did not label its database: %v", err)
	}
	// Forge the comments dead owners, and a live one elsewhere, would have written.
	forged := map[string]string{
		"rehearse_s_dead_1":      regexp.MustCompile(`pid=\d+`).ReplaceAllString(comment, "pid="+strconv.Itoa(proctest.ReapedPID(t))),
		"rehearse_s_rebooted_1":  regexp.MustCompile(`boot=\S+`).ReplaceAllString(comment, "boot=an-earlier-boot"),
		"rehearse_s_elsewhere_1": regexp.MustCompile(`boot=\S+ machine=\S+`).ReplaceAllString(comment, "boot=b machine=elsewhere"),
	}
	for name, c := range forged {
		for _, q := range []string{"CREATE DATABASE " + name, "COMMENT ON DATABASE " + name + " IS '" + c + "'"} {
			if _, err := conn.Exec(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE rehearse_unlabelled"); err != nil {
		t.Fatal(err)
	}
	second, err := Open(ctx, Config{DSN: dsn, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	exists := func(name string) bool {
		var n int
		conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n)
		return n == 1
	}
	for name, want := range map[string]bool{
		"rehearse_s_dead_1": false, "rehearse_s_rebooted_1": false,
		"rehearse_s_elsewhere_1": true, "rehearse_unlabelled": true, live: true,
	} {
		if got := exists(name); got != want {
			t.Errorf("%s exists after the sweep: %v, want %v", name, got, want)
		}
	}
}

func TestOwnerGone(t *testing.T) {
	here := procowner.Here()
	self, err := procowner.Self()
	if err != nil {
		t.Skip("needs /proc")
	}
	dead := self
	dead.PID = proctest.ReapedPID(t)
	for _, tc := range []struct {
		comment string
		want    bool
	}{
		{ownerCommentPrefix + self.String(), false},
		{ownerCommentPrefix + dead.String(), true},
		{dead.String(), false}, // not written by rehearse
		{ownerCommentPrefix + "pid=garbage", false},
		{"", false},
	} {
		if got, why := ownerGone(here, tc.comment); got != tc.want {
			t.Errorf("ownerGone(%q) = %v (%s), want %v", tc.comment, got, why, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := Redact("connect to postgres://u:hunter2@127.0.0.1/x failed", "postgres://u:hunter2@127.0.0.1/x"); strings.Contains(got, "hunter2") {
		t.Errorf("Redact left the password: %s", got)
	}
	if got := Redact("plain", "host=/tmp"); got != "plain" {
		t.Errorf("Redact changed a message without a password: %s", got)
	}
}

func needContainerImage(t *testing.T) {
	t.Helper()
	if err := pgcontainer.Available(context.Background()); err != nil {
		t.Skipf("no Docker engine: %v", err)
	}
	if ok, err := pgcontainer.ImagePresent(context.Background(), ""); err != nil || !ok {
		if os.Getenv("REHEARSE_SKIP_CONTAINER") == "1" {
			t.Skip("image missing and REHEARSE_SKIP_CONTAINER=1")
		}
		t.Fatalf("image %s missing (%v): run make pg-image", pgcontainer.ImageName(""), err)
	}
}

// REHEARSE_REUSE=1: the second Open finds the container the first kept and
// creates none; no database of the first run is left in it, and one a dead
// run left behind is dropped by the next Open.
func TestContainerReuseKeepsNoState(t *testing.T) {
	needContainerImage(t)
	t.Setenv(pgcontainer.ReuseEnv, "1")
	ctx := context.Background()
	if !ConfigFromEnv().Reuse {
		t.Fatal("ConfigFromEnv ignores REHEARSE_REUSE=1")
	}
	// No Config.Reuse, as the CLI opens it: the environment is enough. A
	// key of its own: no other test (nor a user's run) shares the container.
	cfg := Config{Kind: Container, Logf: t.Logf, ReuseKey: "provider-test-" + t.Name() + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	first, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := first.srv.(*pgcontainer.Server)
	var runs []string
	t.Cleanup(func() { srv.Remove() })
	dsn, drop, err := first.Database(ctx, "edms-small")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, srv.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	db := regexp.MustCompile(`dbname=(\S+)`).FindStringSubmatch(dsn)[1]
	var comment string
	if err := conn.QueryRow(ctx, "SELECT COALESCE(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1", db).Scan(&comment); err != nil || !strings.HasPrefix(comment, ownerCommentPrefix) {
		t.Fatalf("the clone %s in a reusable container has no owner comment (%q, %v)", db, comment, err)
	}
	drop()
	runs = append(runs, first.run)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// This test's own databases (its runs' names) and the dead run's: other
	// databases are not its business.
	rehearseDBs := func() []string {
		rows, _ := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname = 'rehearse_s_dead_1' OR EXISTS (SELECT FROM unnest($1::text[]) r WHERE strpos(datname, r) > 0) ORDER BY 1`, runs)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return names
	}
	if left := rehearseDBs(); len(left) != 0 {
		t.Fatalf("the first run left databases in the kept container: %v", left)
	}
	// What a killed run would leave: a clone whose owner is gone.
	dead := regexp.MustCompile(`pid=\d+`).ReplaceAllString(comment, "pid="+strconv.Itoa(proctest.ReapedPID(t)))
	for _, q := range []string{"CREATE DATABASE rehearse_s_dead_1", "COMMENT ON DATABASE rehearse_s_dead_1 IS '" + dead + "'"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	second, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	runs = append(runs, second.run)
	again := second.srv.(*pgcontainer.Server)
	if !again.Reused() || again.ContainerID() != srv.ContainerID() {
		t.Fatalf("the second Open created a container (%.12s) instead of reusing %.12s", again.ContainerID(), srv.ContainerID())
	}
	if left := rehearseDBs(); len(left) != 0 {
		t.Errorf("the second Open kept databases of a dead run: %v", left)
	}
	if _, drop, err := second.Database(ctx, "edms-small"); err != nil {
		t.Fatal(err)
	} else {
		drop()
	}
}
