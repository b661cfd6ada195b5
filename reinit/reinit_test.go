package reinit_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/edms/password"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
	"github.com/rehearse-dev/rehearse/pg/integrity"
	"github.com/rehearse-dev/rehearse/reinit"
)

var ctx = context.Background()

func count(t testing.TB, conn *pgx.Conn, sql string) int64 {
	t.Helper()
	var n int64
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// mustRun is reinit.Run, which must succeed.
func mustRun(t *testing.T, conn *pgx.Conn, cfg reinit.Config) *reinit.Plan {
	t.Helper()
	plan, err := reinit.Run(ctx, conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func effects(p *reinit.Plan) map[string]reinit.TableEffect {
	m := map[string]reinit.TableEffect{}
	for _, e := range p.Tables {
		m[e.Table] = e
	}
	return m
}

func TestDryRunChangesNothing(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.SeededDB(t))
	cat, _ := pgcatalog.Load(ctx, conn, "")
	before, _ := integrity.TableChecksums(ctx, conn, cat, nil)
	plan, err := reinit.DryRun(ctx, conn, edms.ReinitConfig("", true))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := integrity.TableChecksums(ctx, conn, cat, nil)
	for table, b := range before {
		if after[table] != b {
			t.Errorf("dry run changed %s", table)
		}
	}
	e := effects(plan)
	if !plan.DryRun || e["users_user"].Deleted != 6 || e["users_user"].Before != 7 {
		t.Errorf("plan = %+v", plan)
	}
	// Documents of the deleted authors go, admin's stays.
	if got, want := e["documents_document"].Deleted, count(t, conn, `SELECT count(*) FROM documents_document WHERE author_id <> 5`); got != want {
		t.Errorf("documents deleted = %d, want %d", got, want)
	}
	if e["audit_auditevent"].Nulled == 0 {
		t.Errorf("audit events of deleted users should have their actor set to NULL: %+v", e["audit_auditevent"])
	}
}

func TestReinitKeepsAdminAndResetsSequences(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.SeededDB(t))
	adminDocs := count(t, conn, `SELECT count(*) FROM documents_document WHERE author_id = 5`)
	plan := mustRun(t, conn, edms.ReinitConfig("", true))
	if plan.AdminAction != "kept" || plan.AdminID != 5 {
		t.Errorf("admin: %s id %d, want kept id 5", plan.AdminAction, plan.AdminID)
	}
	var hash, email string
	conn.QueryRow(ctx, `SELECT password, email FROM users_user WHERE username = 'admin'`).Scan(&hash, &email)
	if ok, _ := password.Verify("test123", hash); !ok {
		t.Error("admin's password is not test123 after reinit")
	}
	if n := count(t, conn, `SELECT count(*) FROM users_user`); n != 1 {
		t.Errorf("users after reinit = %d, want 1", n)
	}
	if n := count(t, conn, `SELECT count(*) FROM documents_document`); n != adminDocs {
		t.Errorf("documents after reinit = %d, want admin's %d", n, adminDocs)
	}
	cat, _ := pgcatalog.Load(ctx, conn, "")
	fks, err := integrity.CheckForeignKeys(ctx, conn, cat, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bad := integrity.Broken(fks); len(bad) > 0 {
		t.Errorf("orphans after reinit: %+v", bad)
	}
	// The original reinit resets sequences: the next user reuses author02's id 6.
	if next := count(t, conn, `SELECT nextval(pg_get_serial_sequence('users_user','id'))`); next != 6 {
		t.Errorf("next user id after reinit = %d, want 6 (recycled)", next)
	}
	if cutoff, _ := edms.RevokedBefore(ctx, conn); cutoff == 0 {
		t.Error("reinit did not move the token cutoff")
	}
}

// The reinit reports each table it deletes from and each foreign key it
// sets to NULL, with the rows the plan counts and a measured time; the
// sums of the reports are the plan's.
func TestReinitReportsProgress(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.SeededDB(t))
	cfg := edms.ReinitConfig("", true)
	var steps []reinit.Progress
	cfg.Progress = func(p reinit.Progress) { steps = append(steps, p) }
	plan := mustRun(t, conn, cfg)
	deleted, nulled := map[string]int64{}, map[string]int64{}
	for _, p := range steps {
		if p.Took <= 0 || p.Table == "" {
			t.Errorf("step %+v: no table or no time", p)
		}
		switch p.Step {
		case reinit.StepDeleted:
			deleted[p.Table] += p.Rows
		case reinit.StepNulled:
			if p.Column == "" {
				t.Errorf("step %+v names no column", p)
			}
			nulled[p.Table] += p.Rows
		default:
			t.Errorf("step %+v: unknown step", p)
		}
	}
	for _, e := range plan.Tables {
		if deleted[e.Table] != e.Deleted || nulled[e.Table] != e.Nulled {
			t.Errorf("%s: reported %d deleted, %d nulled; the plan says %d, %d", e.Table, deleted[e.Table], nulled[e.Table], e.Deleted, e.Nulled)
		}
	}
	if deleted["users_user"] != 6 || nulled["audit_auditevent"] == 0 {
		t.Errorf("reported deleted %v, nulled %v; want 6 users deleted and audit actors nulled", deleted, nulled)
	}
}

func TestReinitRecreatesMissingAdmin(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.SeededDB(t))
	if _, err := conn.Exec(ctx, `UPDATE users_user SET username = 'root' WHERE username = 'admin'`); err != nil {
		t.Fatal(err)
	}
	plan := mustRun(t, conn, edms.ReinitConfig("", true))
	if plan.AdminAction != "recreated" || plan.AdminID != 1 {
		t.Errorf("admin: %s id %d, want recreated with id 1 (sequence reset)", plan.AdminAction, plan.AdminID)
	}
	var staff, super bool
	var email string
	conn.QueryRow(ctx, `SELECT is_staff, is_superuser, email FROM users_user WHERE username = 'admin'`).Scan(&staff, &super, &email)
	if !staff || !super || email != "admin@edms.local" {
		t.Errorf("recreated admin staff=%v super=%v email=%q", staff, super, email)
	}
}

func TestReinitRefusesWrongDatabase(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	_, err := reinit.Run(ctx, conn, edms.ReinitConfig("", true))
	if err == nil {
		t.Fatal("reinit of a database without the user table succeeded")
	}
	t.Log(err)
}
