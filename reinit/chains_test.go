package reinit_test

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/reinit"
)

// chainSchema has every shape the walker must follow, with non-deferrable
// foreign keys (so that the delete order matters when triggers are on):
//
//   - CASCADE chains: project → users, task → project, comment → task,
//     comment → users (two paths to one table);
//   - SET_NULL: task.assignee, comment.reply_to (a self-reference whose
//     target goes by cascade), audit.actor;
//   - a 50-deep self-referencing CASCADE chain (thread.parent);
//   - a foreign key to a column that is not the primary key (badge.user_name);
//   - a table without a primary key that nothing points at (tag).
const chainSchema = `
CREATE TABLE users (id bigint PRIMARY KEY, username text NOT NULL UNIQUE, password text NOT NULL, is_staff boolean NOT NULL DEFAULT false);
CREATE TABLE project (id bigint PRIMARY KEY, owner_id bigint NOT NULL REFERENCES users);
CREATE TABLE task (id bigint PRIMARY KEY, project_id bigint NOT NULL REFERENCES project, assignee_id bigint REFERENCES users);
CREATE TABLE comment (id bigint PRIMARY KEY, task_id bigint NOT NULL REFERENCES task, author_id bigint NOT NULL REFERENCES users, reply_to_id bigint REFERENCES comment);
CREATE TABLE thread (id bigint PRIMARY KEY, parent_id bigint NOT NULL REFERENCES thread, owner_id bigint NOT NULL REFERENCES users);
CREATE TABLE badge (id bigint PRIMARY KEY, user_name text NOT NULL REFERENCES users (username));
CREATE TABLE tag (task_id bigint NOT NULL REFERENCES task, label text NOT NULL);
CREATE TABLE audit (id bigint PRIMARY KEY, actor_id bigint REFERENCES users);

INSERT INTO users VALUES (1, 'admin', 'x', true), (2, 'alice', 'x', false), (3, 'bob', 'x', false);
INSERT INTO project VALUES (10, 1), (11, 2), (12, 3);
INSERT INTO task VALUES (100, 10, 2), (101, 11, 1), (102, 10, NULL), (103, 12, 2);
INSERT INTO comment VALUES
  (1000, 100, 1, NULL),  -- stays
  (1001, 101, 1, NULL),  -- goes with task 101 (project of alice)
  (1002, 100, 3, 1000),  -- goes with its author bob
  (1003, 100, 1, 1002),  -- stays, reply_to set to NULL
  (1004, 102, 1, 1001),  -- stays, reply_to set to NULL
  (1005, 101, 1, 1002);  -- goes with task 101: not set to NULL first
INSERT INTO thread VALUES (1, 1, 1), (60, 1, 1), (2, 1, 2);
INSERT INTO thread SELECT i, i - 1, 1 FROM generate_series(3, 50) i;  -- under 2: goes, all 48 levels
INSERT INTO badge VALUES (1, 'admin'), (2, 'alice');
INSERT INTO tag VALUES (100, 'keep'), (101, 'go'), (103, 'go');
INSERT INTO audit VALUES (1, 1), (2, 2), (3, NULL), (4, 3);
`

func chainConfig() reinit.Config {
	return reinit.Config{
		UserTable: "users", AdminUsername: "admin", DefaultPassword: "pw",
		Hash:          func(p string) (string, error) { return "hashed:" + p, nil },
		KeepSequences: true,
	}
}

func chainDB(t *testing.T, extra string) *pgx.Conn {
	t.Helper()
	_, conn := chainDSN(t, extra)
	return conn
}

// chainDSN is a new database holding chainSchema and extra, and a
// connection to it.
func chainDSN(t *testing.T, extra string) (string, *pgx.Conn) {
	t.Helper()
	dsn := pgtest.NewDB(t)
	conn := pgtest.Connect(t, dsn)
	if _, err := conn.Exec(ctx, chainSchema+extra); err != nil {
		t.Fatal(err)
	}
	return dsn, conn
}

func rows(t *testing.T, conn *pgx.Conn, sql string) string {
	t.Helper()
	r, err := conn.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		vals, err := r.Values()
		if err != nil {
			t.Fatal(err)
		}
		var cells []string
		for _, v := range vals {
			if v == nil {
				cells = append(cells, "NULL")
			} else {
				cells = append(cells, fmt.Sprint(v))
			}
		}
		out = append(out, strings.Join(cells, ":"))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// asOwner makes conn a table owner without superuser rights: the walker
// then keeps triggers on, and non-deferrable foreign keys check every
// statement (the delete order must be right).
func asOwner(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	role := fmt.Sprintf("rehearse_reinit_owner_%d", os.Getpid())
	conn.Exec(ctx, "DROP OWNED BY "+role)
	conn.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	var tables []string
	if err := conn.QueryRow(ctx, `SELECT array_agg(quote_ident(relname)) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE ROLE " + role + " NOLOGIN", "ALTER TABLE " + strings.Join(tables, " OWNER TO "+role+"; ALTER TABLE ") + " OWNER TO " + role, "SET ROLE " + role} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Cleanup(func() {
		for _, q := range []string{"RESET ROLE", "REASSIGN OWNED BY " + role + " TO postgres", "DROP ROLE " + role} {
			conn.Exec(ctx, q)
		}
	})
}

// Every CASCADE and SET_NULL chain is followed to its end, whether the
// walker runs with triggers off (superuser) or on (owner).
func TestReinitFollowsChains(t *testing.T) {
	for _, mode := range []string{"superuser", "owner"} {
		t.Run(mode, func(t *testing.T) {
			conn := chainDB(t, "")
			if mode == "owner" {
				asOwner(t, conn)
			}
			plan := mustRun(t, conn, chainConfig())
			want := map[string]string{
				"SELECT id, username, password FROM users ORDER BY id": "1:admin:hashed:pw",
				"SELECT id FROM project ORDER BY id":                   "10",
				"SELECT id, assignee_id FROM task ORDER BY id":         "100:NULL 102:NULL",
				"SELECT id, reply_to_id FROM comment ORDER BY id":      "1000:NULL 1003:NULL 1004:NULL",
				"SELECT id FROM thread ORDER BY id":                    "1 60",
				"SELECT id, user_name FROM badge ORDER BY id":          "1:admin",
				"SELECT task_id, label FROM tag ORDER BY task_id":      "100:keep",
				"SELECT id, actor_id FROM audit ORDER BY id":           "1:1 2:NULL 3:NULL 4:NULL",
			}
			for sql, w := range want {
				if got := rows(t, conn, sql); got != w {
					t.Errorf("%s\n got %s\nwant %s", sql, got, w)
				}
			}
			gotEffects := map[string][3]int64{}
			for _, e := range plan.Tables {
				gotEffects[e.Table] = [3]int64{e.Before, e.Deleted, e.Nulled}
			}
			wantEffects := map[string][3]int64{
				"users": {3, 2, 0}, "project": {3, 2, 0}, "task": {4, 2, 1}, "comment": {6, 3, 2},
				"thread": {51, 49, 0}, "badge": {2, 1, 0}, "tag": {3, 2, 0}, "audit": {4, 0, 2},
			}
			if !reflect.DeepEqual(gotEffects, wantEffects) {
				t.Errorf("effects (before, deleted, nulled)\n got %v\nwant %v", gotEffects, wantEffects)
			}
		})
	}
}

// A row the reinit may not touch that points at a user to delete makes it
// refuse, and change nothing — in a dry run too. Each case leaves an orphan
// when the walker switches triggers off and nothing checks set-wise.
func TestReinitRefusesWhatItCannotDelete(t *testing.T) {
	cases := []struct {
		name, extra, want string
		protect           []string
	}{
		{"protected table (PROTECT)", `CREATE TABLE keep (id int PRIMARY KEY, user_id bigint NOT NULL REFERENCES users); INSERT INTO keep VALUES (1, 3);`,
			"keep is protected", []string{"keep"}},
		{"protected nullable reference", `CREATE TABLE keep (id int PRIMARY KEY, user_id bigint REFERENCES users); INSERT INTO keep VALUES (1, 2);`,
			"keep is protected", []string{"keep"}},
		{"composite foreign key", `ALTER TABLE users ADD UNIQUE (id, username);
CREATE TABLE pair (uid bigint NOT NULL, uname text NOT NULL, FOREIGN KEY (uid, uname) REFERENCES users (id, username)); INSERT INTO pair VALUES (2, 'alice');`,
			"single-column foreign keys only", nil},
		{"reference from another schema", `CREATE SCHEMA other; CREATE TABLE other.ref (id int PRIMARY KEY, user_id bigint NOT NULL REFERENCES public.users); INSERT INTO other.ref VALUES (1, 2);`,
			"violates foreign key constraint", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := chainDB(t, c.extra)
			cfg := chainConfig()
			cfg.Protected = c.protect
			before := rows(t, conn, "SELECT id FROM users ORDER BY id")
			for _, run := range []func() (*reinit.Plan, error){
				func() (*reinit.Plan, error) { return reinit.DryRun(ctx, conn, cfg) },
				func() (*reinit.Plan, error) { return reinit.Run(ctx, conn, cfg) },
			} {
				_, err := run()
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("want a refusal mentioning %q, got %v", c.want, err)
				}
				t.Log(err)
			}
			if after := rows(t, conn, "SELECT id FROM users ORDER BY id"); after != before {
				t.Errorf("users after a refused reinit: %s, want %s", after, before)
			}
		})
	}
}

// A table with a trigger of its own keeps it firing: the walker only
// switches triggers off when nothing but foreign key checks would be lost.
func TestReinitKeepsUserTriggers(t *testing.T) {
	conn := chainDB(t, `
CREATE TABLE gone (task_id bigint);
CREATE FUNCTION log_gone() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO gone VALUES (OLD.id); RETURN OLD; END $$;
CREATE TRIGGER log_gone AFTER DELETE ON task FOR EACH ROW EXECUTE FUNCTION log_gone();`)
	mustRun(t, conn, chainConfig())
	if got := rows(t, conn, "SELECT task_id FROM gone ORDER BY 1"); got != "101 103" {
		t.Errorf("the delete trigger on task logged %q, want 101 103", got)
	}
}
