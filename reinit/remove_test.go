package reinit_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/reinit"
)

// CreateUsers fills the NOT NULL columns it is not given, and DeleteUsers
// removes exactly the users named, with what hangs off them by the
// reinit's rules; both fail loudly on a column the table lacks.
func TestCreateAndDeleteUsers(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.SeededDB(t))
	cfg := reinit.Config{Protected: edms.Protected()}
	before := count(t, conn, `SELECT count(*) FROM users_user`)
	var ids []int64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var err error
		ids, err = reinit.CreateUsers(ctx, tx, cfg, []map[string]any{
			{"username": "rehearse_probe_1", "password": "x", "is_staff": false},
			{"username": "rehearse_staff", "password": "y", "is_staff": true, "no_such_column": 1},
		})
		return err
	})
	if err != nil || len(ids) != 2 {
		t.Fatalf("create: %v %v", ids, err)
	}
	if n := count(t, conn, `SELECT count(*) FROM users_user WHERE username = 'rehearse_staff' AND is_staff AND email = ''`); n != 1 {
		t.Errorf("staff account with the zero email: %d rows", n)
	}
	// A document of one of them: a NOT NULL foreign key, deleted with it.
	if _, err := conn.Exec(ctx, `INSERT INTO documents_document (document_number, title, status, author_id, created_at, updated_at)
VALUES ('RP-1', 'probe doc', 'draft', $1, now(), now())`, ids[0]); err != nil {
		t.Fatal(err)
	}
	var effects []reinit.TableEffect
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var err error
		effects, err = reinit.DeleteUsers(ctx, tx, cfg, []string{"rehearse_probe_1", "rehearse_staff", "never_there"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := count(t, conn, `SELECT count(*) FROM users_user`); got != before {
		t.Errorf("users after = %d, want %d", got, before)
	}
	del := map[string]int64{}
	for _, e := range effects {
		del[e.Table] = e.Deleted
	}
	if del["users_user"] != 2 || del["documents_document"] != 1 {
		t.Errorf("effects = %+v", effects)
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := reinit.DeleteUsers(ctx, tx, cfg, []string{"admin"})
		return err
	}); err == nil {
		t.Error("DeleteUsers deleted the admin")
	}
	if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		_, err := reinit.DeleteUsers(ctx, tx, reinit.Config{UsernameColumn: "login"}, []string{"x"})
		return err
	}); err == nil {
		t.Error("DeleteUsers with a column the table lacks did not fail")
	}
}
