package provider

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	pgcontainer "github.com/rehearse-dev/rehearse/pg/container"
)

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
	dead := regexp.MustCompile(`pid=\d+`).ReplaceAllString(comment, "pid="+strconv.Itoa(reapedPID(t)))
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
