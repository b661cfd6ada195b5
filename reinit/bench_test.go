package reinit_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/reinit"
)

// populate fills the reference schema the way edms-large is shaped, in
// SQL: per user (admin is id 5) a group, 10 documents with 3 versions (one
// without an author) and 2 assignments each, and 38 audit events (one in
// five without an actor) — about 100 rows per user.
const populate = `
INSERT INTO auth_group (id, name) VALUES (1, 'Authors'), (2, 'Reviewers'), (3, 'Approvers'), (4, 'Viewers');
INSERT INTO users_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
  SELECT i, 'x', i = 5, CASE WHEN i = 5 THEN 'admin' ELSE 'user' || i END, '', '', '', i = 5, true, now() FROM generate_series(1, %[1]d) i;
INSERT INTO users_user_groups (user_id, group_id) SELECT i, 1 + i %% 4 FROM generate_series(1, %[1]d) i WHERE i <> 5;
INSERT INTO documents_document (id, document_number, title, status, author_id, created_at, updated_at)
  SELECT d, 'DOC-' || d, 'document', 'DRAFT', 1 + (d - 1) / 10, now(), now() FROM generate_series(1, %[1]d * 10) d;
INSERT INTO documents_documentversion (document_id, version_number, file_checksum, change_summary, created_by_id, created_at)
  SELECT d, v, md5(d::text), 'revision', CASE WHEN v = 2 THEN NULL ELSE 1 + (d - 1) / 10 END, now()
  FROM generate_series(1, %[1]d * 10) d, generate_series(1, 3) v;
INSERT INTO workflows_workflowassignment (document_id, assignee_id, role, status, created_at)
  SELECT d, 1 + (d * 7 + a) %% %[1]d, 'REVIEWER', 'PENDING', now() FROM generate_series(1, %[1]d * 10) d, generate_series(1, 2) a;
INSERT INTO audit_auditevent (actor_id, action, object_repr, details, created_at)
  SELECT CASE WHEN a %% 5 = 4 THEN NULL ELSE u END, 'LOGIN', 'user', '{"ip": "127.0.0.1"}', now()
  FROM generate_series(1, %[1]d) u, generate_series(1, 38) a;`

// BenchmarkReinit runs the reinit on two populated databases, one ten
// times the other (REHEARSE_BENCH_USERS users, default 10000: about 1M
// rows, and a tenth of that), and prints the time ratio beside the size
// ratio: linear work keeps them close. Run with: make bench.
func BenchmarkReinit(b *testing.B) {
	users := 10000
	if v := os.Getenv("REHEARSE_BENCH_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 20 {
			b.Fatalf("REHEARSE_BENCH_USERS=%q: want a number of users, at least 20", v)
		}
		users = n
	}
	small, big := populated(b, users/10), populated(b, users)
	for i := 0; i < b.N; i++ {
		ts, rs := timeReinit(b, small)
		tb, rb := timeReinit(b, big)
		fmt.Printf("\nreinit, set-wise: %d rows in %.2fs (%.0f rows/s), %d rows in %.2fs (%.0f rows/s)\n",
			rs, ts.Seconds(), float64(rs)/ts.Seconds(), rb, tb.Seconds(), float64(rb)/tb.Seconds())
		fmt.Printf("  time ratio %.1f for a size ratio of %.1f (linear: close; quadratic: the square)\n",
			tb.Seconds()/ts.Seconds(), float64(rb)/float64(rs))
		b.ReportMetric(tb.Seconds()/ts.Seconds(), "time-ratio")
		b.ReportMetric(float64(rb)/float64(rs), "size-ratio")
	}
}

// populated builds a template database with the reference schema and the
// rows of users users, and returns its name.
func populated(b *testing.B, users int) string {
	conn := pgtest.Connect(b, pgtest.NewDB(b))
	if err := edms.Install(ctx, conn); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf(populate, users)); err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	name := conn.Config().Database
	conn.Close(ctx)
	return name
}

// timeReinit runs reinit.Run on a fresh copy of template and returns its
// time and the rows the copy held.
func timeReinit(b *testing.B, template string) (time.Duration, int64) {
	conn := clone(b, template)
	var rows int64
	if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM auth_group) + (SELECT count(*) FROM users_user) + (SELECT count(*) FROM users_user_groups)
		+ (SELECT count(*) FROM documents_document) + (SELECT count(*) FROM documents_documentversion)
		+ (SELECT count(*) FROM workflows_workflowassignment) + (SELECT count(*) FROM audit_auditevent)`).Scan(&rows); err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	plan, err := reinit.Run(ctx, conn, edms.ReinitConfig("", true))
	d := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	if n := count(b, conn, `SELECT count(*) FROM users_user`); n != 1 || plan.AdminID != 5 {
		b.Fatalf("after the reinit: %d users, admin id %d", n, plan.AdminID)
	}
	return d, rows
}

func clone(b *testing.B, template string) *pgx.Conn {
	admin := pgtest.Connect(b, pgtest.AdminDSN())
	name := fmt.Sprintf("%s_copy_%d", template, time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	return pgtest.Connect(b, pgtest.DSN(name))
}
