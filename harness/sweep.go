package harness

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/procowner"
)

// On a server rehearse does not own (provider dsn), every database it
// creates carries a comment naming its owner process. A run killed before
// it could drop them leaves them behind; the next run on the same machine
// drops those whose owner is provably gone: same boot and PID namespace,
// and the pid dead or reused. Anything else is left alone.

const ownerCommentPrefix = "rehearse owner "

// ownerComment describes this process, robustly against pid reuse.
func ownerComment() string {
	_, start, _ := procowner.Stat(os.Getpid())
	return fmt.Sprintf("%spid=%d start=%d boot=%s pidns=%s", ownerCommentPrefix, os.Getpid(), start, procowner.BootID(), procowner.PIDNamespace())
}

// ownerGone reports whether the owner named by comment has certainly exited.
func ownerGone(comment string) bool {
	if !strings.HasPrefix(comment, ownerCommentPrefix) {
		return false
	}
	f := map[string]string{}
	for _, kv := range strings.Fields(strings.TrimPrefix(comment, ownerCommentPrefix)) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			f[k] = v
		}
	}
	boot, ns := procowner.BootID(), procowner.PIDNamespace()
	if boot == "" || ns == "" || f["boot"] != boot || f["pidns"] != ns {
		return false // another machine or namespace: cannot tell
	}
	pid, err := strconv.Atoi(f["pid"])
	if err != nil || pid <= 0 {
		return false
	}
	state, start, err := procowner.Stat(pid)
	if err != nil || state == 'Z' || state == 'X' {
		return true
	}
	return f["start"] != strconv.FormatUint(start, 10)
}

// sweepStale drops rehearse databases whose owner process is gone, and says
// which.
func (p *ServerProvider) sweepStale(ctx context.Context, logf func(string, ...any)) error {
	conn, err := pgx.Connect(ctx, p.srv.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT datname, COALESCE(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname LIKE 'rehearse\_%'`)
	if err != nil {
		return err
	}
	var stale []string
	for rows.Next() {
		var name, comment string
		if err := rows.Scan(&name, &comment); err != nil {
			return err
		}
		if ownerGone(comment) {
			stale = append(stale, name)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, name := range stale {
		id := pgx.Identifier{name}.Sanitize()
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+id+" IS_TEMPLATE false"); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+id+" WITH (FORCE)"); err != nil {
			return err
		}
		if logf != nil {
			logf("dropped %s, left by a rehearse run that is gone", name)
		}
	}
	return nil
}
