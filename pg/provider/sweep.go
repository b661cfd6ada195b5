package provider

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/procowner"
)

// On a server other runs use too (provider dsn, a reusable container), every database it
// creates carries a comment naming its owner process. A run killed before
// it could drop them leaves them behind; the next run drops those whose
// owner is gone by procowner's rule. An owner it cannot check (another
// machine or PID namespace) and a database without such a comment are left
// alone: the server may be shared.

const ownerCommentPrefix = "rehearse owner "

// claim labels a database this provider created with its owner, on a
// server it does not own, so that a later run can sweep it if this process
// dies before dropping it.
func (p *TemplateProvider) claim(ctx context.Context, db string) error {
	if !p.shared {
		return nil
	}
	self, err := procowner.Self()
	if err != nil {
		return nil // nothing a later run could check: leave the database unlabelled
	}
	// COMMENT takes no parameters: let the server quote the literal.
	conn, err := pgx.Connect(ctx, p.srv.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var stmt string
	if err := conn.QueryRow(ctx, "SELECT format('COMMENT ON DATABASE %I IS %L', $1::text, $2::text)", db, ownerCommentPrefix+self.String()).Scan(&stmt); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, stmt)
	return err
}

// ownerGone reports whether the owner named by a database comment has
// certainly exited.
func ownerGone(here procowner.Host, comment string) (bool, string) {
	text, ok := strings.CutPrefix(comment, ownerCommentPrefix)
	if !ok {
		return false, ""
	}
	o, err := procowner.Parse(text)
	if err != nil {
		return false, ""
	}
	verdict, why := here.Check(o)
	return verdict == procowner.Gone, why
}

// sweepStale drops rehearse databases whose owner process is gone, and says
// which.
func (p *TemplateProvider) sweepStale(ctx context.Context, logf func(string, ...any)) error {
	conn, err := pgx.Connect(ctx, p.srv.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT datname, COALESCE(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname LIKE 'rehearse\_%'`)
	if err != nil {
		return err
	}
	here := procowner.Here()
	stale := map[string]string{}
	for rows.Next() {
		var name, comment string
		if err := rows.Scan(&name, &comment); err != nil {
			return err
		}
		if gone, why := ownerGone(here, comment); gone {
			stale[name] = why
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for name, why := range stale {
		if err := p.dropDatabase(ctx, name); err != nil {
			return err
		}
		logf("dropped %s, left by a rehearse run that is gone (%s)", name, why)
	}
	return nil
}
