package restore_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

// djangoSchema mirrors what Django 3.2's migrations make for the test app
// (cmd/rehearse/testdata/django, blacklist mode: pg_dump of its migrated
// database, condensed), plus Django's sessions and admin, a model with a
// custom db_table (people.person in legacy_people, with a many-to-many of
// its own), a proxy model's content type, and a table that is no model.
const djangoSchema = `
CREATE TABLE django_migrations (id serial PRIMARY KEY, app varchar(255) NOT NULL, name varchar(255) NOT NULL, applied timestamptz NOT NULL);
CREATE TABLE django_content_type (id serial PRIMARY KEY, app_label varchar(100) NOT NULL, model varchar(100) NOT NULL, UNIQUE (app_label, model));
CREATE TABLE auth_permission (id serial PRIMARY KEY, name varchar(255) NOT NULL,
  content_type_id int NOT NULL REFERENCES django_content_type DEFERRABLE INITIALLY DEFERRED, codename varchar(100) NOT NULL);
CREATE TABLE auth_group (id serial PRIMARY KEY, name varchar(150) NOT NULL UNIQUE);
CREATE TABLE auth_group_permissions (id serial PRIMARY KEY,
  group_id int NOT NULL REFERENCES auth_group DEFERRABLE INITIALLY DEFERRED,
  permission_id int NOT NULL REFERENCES auth_permission DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE users_user (id serial PRIMARY KEY, password varchar(128) NOT NULL, last_login timestamptz,
  is_superuser bool NOT NULL, username varchar(150) NOT NULL UNIQUE, first_name varchar(150) NOT NULL,
  last_name varchar(150) NOT NULL, email varchar(254) NOT NULL, is_staff bool NOT NULL, is_active bool NOT NULL,
  date_joined timestamptz NOT NULL);
CREATE TABLE users_user_groups (id serial PRIMARY KEY,
  user_id int NOT NULL REFERENCES users_user DEFERRABLE INITIALLY DEFERRED,
  group_id int NOT NULL REFERENCES auth_group DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE users_user_user_permissions (id serial PRIMARY KEY,
  user_id int NOT NULL REFERENCES users_user DEFERRABLE INITIALLY DEFERRED,
  permission_id int NOT NULL REFERENCES auth_permission DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE token_blacklist_outstandingtoken (id bigserial PRIMARY KEY, token text NOT NULL, created_at timestamptz,
  expires_at timestamptz NOT NULL, user_id int REFERENCES users_user DEFERRABLE INITIALLY DEFERRED, jti varchar(255) NOT NULL UNIQUE);
CREATE TABLE token_blacklist_blacklistedtoken (id bigserial PRIMARY KEY, blacklisted_at timestamptz NOT NULL,
  token_id bigint NOT NULL UNIQUE REFERENCES token_blacklist_outstandingtoken DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE django_session (session_key varchar(40) PRIMARY KEY, session_data text NOT NULL, expire_date timestamptz NOT NULL);
CREATE TABLE django_admin_log (id serial PRIMARY KEY, action_time timestamptz NOT NULL, object_id text,
  object_repr varchar(200) NOT NULL, action_flag smallint NOT NULL, change_message text NOT NULL,
  content_type_id int REFERENCES django_content_type DEFERRABLE INITIALLY DEFERRED,
  user_id int NOT NULL REFERENCES users_user DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE legacy_people (id serial PRIMARY KEY, name text NOT NULL,
  account_id int REFERENCES users_user DEFERRABLE INITIALLY DEFERRED,
  shift_start time, shift_length interval, last_ip inet, met_at timestamp);
CREATE TABLE legacy_people_teams (id serial PRIMARY KEY,
  person_id int NOT NULL REFERENCES legacy_people DEFERRABLE INITIALLY DEFERRED,
  group_id int NOT NULL REFERENCES auth_group DEFERRABLE INITIALLY DEFERRED);
CREATE TABLE reporting_snapshot (id serial PRIMARY KEY, total int NOT NULL);

INSERT INTO django_content_type (app_label, model) VALUES
  ('contenttypes', 'contenttype'), ('auth', 'permission'), ('auth', 'group'), ('users', 'user'),
  ('token_blacklist', 'blacklistedtoken'), ('token_blacklist', 'outstandingtoken'),
  ('sessions', 'session'), ('admin', 'logentry'), ('people', 'person'), ('people', 'personproxy');
INSERT INTO django_migrations (app, name, applied) VALUES ('users', '0001_initial', now());
INSERT INTO auth_permission (name, content_type_id, codename) VALUES ('Can add user', 4, 'add_user'), ('Can view user', 4, 'view_user');
INSERT INTO auth_group (name) VALUES ('editors');
INSERT INTO auth_group_permissions (group_id, permission_id) VALUES (1, 2);
INSERT INTO users_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined) VALUES
  ('pbkdf2_sha256$1000$s$h1', true, 'admin', '', '', 'admin@x', true, true, '2024-01-02 03:04:05.5+00'),
  ('pbkdf2_sha256$1000$s$h2', false, 'bob', 'Bob', '', 'bob@x', false, true, '2024-01-02 03:04:06+00');
INSERT INTO users_user_groups (user_id, group_id) VALUES (2, 1);
INSERT INTO users_user_user_permissions (user_id, permission_id) VALUES (2, 1);
INSERT INTO token_blacklist_outstandingtoken (token, created_at, expires_at, user_id, jti) VALUES
  ('t1', '2024-01-02 00:00:00+00', '2024-01-03 00:00:00+00', 2, 'j1'), ('t2', NULL, '2024-01-03 00:00:00+00', NULL, 'j2');
INSERT INTO token_blacklist_blacklistedtoken (blacklisted_at, token_id) VALUES ('2024-01-02 01:00:00+00', 1);
INSERT INTO django_session VALUES ('k1', 'data', '2024-02-01 00:00:00+00');
INSERT INTO django_admin_log (action_time, object_id, object_repr, action_flag, change_message, content_type_id, user_id)
  VALUES ('2024-01-02 00:00:00+00', '2', 'bob', 1, '[]', 4, 1);
INSERT INTO legacy_people (name, account_id, shift_start, shift_length, last_ip, met_at) VALUES
  ('Bob B.', 2, '08:30:00.25', '1 day 02:03:04.000005', '10.1.2.3', '2024-01-02 03:04:05'),
  ('Nobody', NULL, NULL, '-00:00:01', '2001:db8::/32', NULL);
INSERT INTO legacy_people_teams (person_id, group_id) VALUES (1, 1);
INSERT INTO reporting_snapshot (total) VALUES (2);
`

func djangoDB(t *testing.T) *pgx.Conn {
	t.Helper()
	conn := pgtest.Connect(t, pgtest.NewDB(t))
	if _, err := conn.Exec(ctx, djangoSchema); err != nil {
		t.Fatal(err)
	}
	return conn
}

type dumped struct {
	Model  string         `json:"model"`
	PK     any            `json:"pk"`
	Fields map[string]any `json:"fields"`
}

func djangoBackup(t *testing.T, conn *pgx.Conn, opts restore.BackupOptions) ([]dumped, *restore.BackupStats) {
	t.Helper()
	var buf bytes.Buffer
	stats, err := restore.Backup(ctx, conn, &buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	var objs []dumped
	if err := json.Unmarshal(buf.Bytes(), &objs); err != nil {
		t.Fatalf("backup is not JSON: %v\n%s", err, buf.Bytes())
	}
	return objs, stats
}

func labelsOf(objs []dumped) map[string]int {
	out := map[string]int{}
	for _, o := range objs {
		out[o.Model]++
	}
	return out
}

type skip struct {
	table, model string
	reason       restore.SkipReason
}

func skipsOf(stats *restore.BackupStats) []skip {
	var out []skip
	for _, s := range stats.Skipped {
		if s.Detail == "" {
			out = append(out, skip{s.Table, s.Model, "(no detail)"})
			continue
		}
		out = append(out, skip{s.Table, s.Model, s.Reason})
	}
	return out
}

func find(objs []dumped, model string, pk float64) map[string]any {
	for _, o := range objs {
		if o.Model == model && o.PK == pk {
			return o.Fields
		}
	}
	return nil
}

// Every table is written under the label django_content_type gives its
// model, a custom db_table under the caller's mapping; what is no model,
// and what Django's docs leave out of a portable dump, is left out and said.
func TestDjangoBackupLabelsFromContentTypes(t *testing.T) {
	conn := djangoDB(t)
	objs, stats := djangoBackup(t, conn, restore.BackupOptions{Exclude: edms.Protected(), Models: map[string]string{"legacy_people": "people.Person"}})
	want := map[string]int{"auth.group": 1, "users.user": 2, "token_blacklist.outstandingtoken": 2, "token_blacklist.blacklistedtoken": 1, "people.person": 2}
	if got := labelsOf(objs); !reflect.DeepEqual(got, want) {
		t.Errorf("models written = %v, want %v", got, want)
	}
	if !reflect.DeepEqual(stats.Models, want) || stats.Objects != 8 || stats.Labels != restore.LabelsFromContentTypes {
		t.Errorf("stats = %+v", stats)
	}
	wantSkips := []skip{
		{"", "people.personproxy", restore.SkipNoTable},
		{"auth_permission", "auth.permission", restore.SkipDjangoDefault},
		{"django_admin_log", "admin.logentry", restore.SkipDjangoDefault},
		{"django_content_type", "contenttypes.contenttype", restore.SkipDjangoDefault},
		{"django_migrations", "", restore.SkipNotAModel},
		{"django_session", "sessions.session", restore.SkipDjangoDefault},
		{"reporting_snapshot", "", restore.SkipNotAModel},
	}
	if got := skipsOf(stats); !reflect.DeepEqual(got, wantSkips) {
		t.Errorf("left out = %v\nwant       %v", got, wantSkips)
	}
	bob := find(objs, "users.user", 2)
	if bob == nil || !reflect.DeepEqual(bob["groups"], []any{1.0}) || !reflect.DeepEqual(bob["user_permissions"], []any{1.0}) {
		t.Errorf("bob = %v: want groups [1], user_permissions [1]", bob)
	}
	if tok := find(objs, "token_blacklist.blacklistedtoken", 1); tok == nil || tok["token"] != 1.0 {
		t.Errorf("blacklisted token = %v: want the FK as field token", tok)
	}
	// Values as Django's serializer writes them: TimeField isoformat,
	// DurationField duration_string, an inet host without /32, a naive
	// DateTimeField without a zone.
	p1, p2 := find(objs, "people.person", 1), find(objs, "people.person", 2)
	wantP1 := map[string]any{"name": "Bob B.", "account": 2.0, "shift_start": "08:30:00.250000", "shift_length": "1 02:03:04.000005",
		"last_ip": "10.1.2.3", "met_at": "2024-01-02T03:04:05", "teams": []any{1.0}}
	if !reflect.DeepEqual(p1, wantP1) {
		t.Errorf("person 1 = %v\nwant       %v", p1, wantP1)
	}
	if p2["shift_length"] != "-1 23:59:59" || p2["last_ip"] != "2001:db8::/32" || p2["shift_start"] != nil || p2["met_at"] != nil {
		t.Errorf("person 2 = %v", p2)
	}
}

// Without the mapping, the custom db_table is no model: its table, its
// many-to-many table and its content type are each reported.
func TestDjangoBackupCustomTableNeedsMapping(t *testing.T) {
	conn := djangoDB(t)
	objs, stats := djangoBackup(t, conn, restore.BackupOptions{})
	if n := labelsOf(objs)["people.person"]; n != 0 {
		t.Errorf("%d people.person objects without a mapping", n)
	}
	got := map[skip]bool{}
	for _, s := range skipsOf(stats) {
		got[s] = true
	}
	for _, want := range []skip{
		{"legacy_people", "", restore.SkipNotAModel},
		{"legacy_people_teams", "", restore.SkipOwnerLeftOut},
		{"", "people.person", restore.SkipNoTable},
	} {
		if !got[want] {
			t.Errorf("left out lacks %v: %v", want, stats.Skipped)
		}
	}
	for _, s := range stats.Skipped {
		if s.Model == "people.person" && !strings.Contains(s.Detail, "people_person") {
			t.Errorf("the no-table reason does not name the table it looked for: %q", s.Detail)
		}
	}
}

// Include and exclude take labels and app labels, as dumpdata does: naming
// a default-excluded model keeps it, and an exclude wins over an include.
func TestDjangoBackupIncludeExclude(t *testing.T) {
	conn := djangoDB(t)
	for _, tc := range []struct {
		name             string
		include, exclude []string
		want             map[string]int
	}{
		{"app label includes its defaults", []string{"auth", "users"}, nil, map[string]int{"auth.group": 1, "auth.permission": 2, "users.user": 2}},
		{"exclude wins", []string{"auth", "users.User"}, []string{"auth.permission"}, map[string]int{"auth.group": 1, "users.user": 2}},
		{"exclude an app", nil, []string{"token_blacklist", "users"}, map[string]int{"auth.group": 1}},
		{"include a default", []string{"sessions"}, nil, map[string]int{"sessions.session": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, stats := djangoBackup(t, conn, restore.BackupOptions{IncludeModels: tc.include, ExcludeModels: tc.exclude})
			if got := labelsOf(objs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("models written = %v, want %v", got, tc.want)
			}
			for _, s := range stats.Skipped {
				if s.Model != "" && tc.want[s.Model] > 0 {
					t.Errorf("%s both written and left out: %+v", s.Model, s)
				}
			}
		})
	}
	// A session written on request is a plain object Django can load.
	objs, _ := djangoBackup(t, conn, restore.BackupOptions{IncludeModels: []string{"sessions"}})
	if objs[0].PK != "k1" || objs[0].Fields["session_data"] != "data" {
		t.Errorf("session = %+v", objs[0])
	}
}

// Options that name nothing, or two tables under one label, are refused
// with the option at fault, before anything is written.
func TestDjangoBackupBadOptions(t *testing.T) {
	conn := djangoDB(t)
	for _, tc := range []struct {
		opts restore.BackupOptions
		want string
	}{
		{restore.BackupOptions{IncludeModels: []string{"auth.usr"}}, `include models: "auth.usr" names no model in this database (it has admin.logentry, auth.group`},
		{restore.BackupOptions{ExcludeModels: []string{"blacklist"}}, `exclude models: "blacklist" names no model`},
		{restore.BackupOptions{ExcludeModels: []string{"a.b.c"}}, `"a.b.c" is not a model label`},
		{restore.BackupOptions{Models: map[string]string{"legacy_folk": "people.person"}}, "models: schema public has no table legacy_folk"},
		{restore.BackupOptions{Models: map[string]string{"legacy_people": "people.persn"}}, "models: table legacy_people is mapped to people.persn, which django_content_type does not know"},
		{restore.BackupOptions{Models: map[string]string{"legacy_people": "person"}}, `models: table legacy_people: "person" is not a model label`},
		{restore.BackupOptions{Models: map[string]string{"reporting_snapshot": "users.user"}}, "tables reporting_snapshot and users_user would both be written as model users.user"},
	} {
		var buf bytes.Buffer
		_, err := restore.Backup(ctx, conn, &buf, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.opts, err, tc.want)
		}
		if buf.Len() != 0 {
			t.Errorf("%+v: %d bytes written before the error", tc.opts, buf.Len())
		}
	}
}

// Without django_content_type (the reference schema) labels are guessed from
// table names, as before, and only the caller's exclusions are left out.
func TestBackupWithoutContentTypes(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.SeededDB(t))
	objs, stats := djangoBackup(t, conn, restore.BackupOptions{Exclude: edms.Protected()})
	if stats.Labels != restore.LabelsFromTableNames {
		t.Errorf("labels from %q", stats.Labels)
	}
	for label := range labelsOf(objs) {
		if got := restore.TableForModel(label); restore.ModelLabel(got) != label {
			t.Errorf("model %s is not its table name's label", label)
		}
	}
	for _, s := range stats.Skipped {
		if s.Reason != restore.SkipExcludedTable {
			t.Errorf("left out %+v: the reference schema has only excluded tables to leave out", s)
		}
	}
	if len(stats.Skipped) != len(edms.Protected()) {
		t.Errorf("left out %v, want the %d protected tables", stats.Skipped, len(edms.Protected()))
	}
}
