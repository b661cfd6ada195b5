package restore_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

// hostileCase is a backup of the seeded database, mangled, that must be
// refused before anything is written, naming the object and field.
type hostileCase struct {
	name   string
	mangle func(t *testing.T, b []byte) []byte
	index  bool   // the error names an object index
	model  string // and its model ("" = do not check)
	pk     string
	field  string
	want   string // in the message
}

// replaceOnce replaces the first old in b, failing the test if it is absent.
func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("the backup has no %q to mangle", old)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// refuse runs each case with both strategies, with the reinit, and checks
// the error and that the database did not change.
func refuse(t *testing.T, cases []hostileCase) {
	for _, s := range strategies() {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					conn := pgtest.Connect(t, pgtest.SeededDB(t))
					before := checksums(t, conn)
					bad := c.mangle(t, backup(t, conn))
					_, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(bad), Strategy: s, Reinit: withReinit(true), Protected: edms.Protected()})
					checkRefusal(t, c, err)
					sameSums(t, "refused backup", before, checksums(t, conn))
				})
			}
		})
	}
}

func checkRefusal(t *testing.T, c hostileCase, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("the backup was accepted")
	}
	var be *restore.BackupError
	if !errors.As(err, &be) {
		t.Fatalf("error %q is %T, not a *restore.BackupError naming the object", err, err)
	}
	if c.index && be.Index < 0 {
		t.Errorf("error %q names no object", err)
	}
	if c.model != "" && (be.Model != c.model || be.PK != c.pk) {
		t.Errorf("error %q: model %q pk %q, want %q pk %q", err, be.Model, be.PK, c.model, c.pk)
	}
	if be.Field != c.field {
		t.Errorf("error %q: field %q, want %q", err, be.Field, c.field)
	}
	if !strings.Contains(err.Error(), c.want) {
		t.Errorf("error %q does not say %q", err, c.want)
	}
}

// Django's loaddata reads d["model"], d.get("pk") and d["fields"]: a member
// that differs in case is another member, and the object lacks the real one.
// encoding/json's case-insensitive matching used to accept them.
func TestKeysDifferingInCaseAreRefused(t *testing.T) {
	refuse(t, []hostileCase{
		{"MODEL", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `{"model": "documents.document"`, `{"MODEL": "documents.document"`)
		}, true, "", "", "", `missing "model" (expected "app_label.modelname") (there is a member "MODEL"`},
		{"PK", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `{"model": "auth.group", "pk": 1,`, `{"model": "auth.group", "PK": 1,`)
		}, true, "auth.group", "", "", `missing "pk" (there is a member "PK"`},
		{"Fields", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `{"model": "auth.group", "pk": 1, "fields"`, `{"model": "auth.group", "pk": 1, "Fields"`)
		}, true, "auth.group", "1", "", `missing "fields" object (there is a member "Fields"`},
	})
}

// Bytes that are not UTF-8, and escapes that decode to no character, are
// refused in validation with the object and field, not by PostgreSQL.
func TestInvalidTextIsCaughtInValidation(t *testing.T) {
	refuse(t, []hostileCase{
		{"latin-1 byte in a varchar", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"username": "author01"`, "\"username\": \"auth\xf6r01\"")
		}, true, "users.user", "1", "username", "not valid UTF-8"},
		{"broken sequence in jsonb", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"ip":"127.0.0.1"`, "\"ip\":\"127.0.0.1\xe2\x82\"")
		}, true, "audit.auditevent", "1", "details", "not valid UTF-8"},
		{"invalid byte in an unknown member", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `{"model": "auth.group", "pk": 1,`, "{\"model\": \"auth.group\", \"note\": \"\xff\", \"pk\": 1,")
		}, true, "auth.group", "1", "note", "not valid UTF-8"},
		{"lone surrogate in text", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"first_name": "author01"`, `"first_name": "author\ud800"`)
		}, true, "users.user", "1", "first_name", `the escape \ud800 is half of a surrogate pair`},
		{"NUL in jsonb", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"ip":"127.0.0.1"`, `"ip":"127.0.0.1\u0000"`)
		}, true, "audit.auditevent", "1", "details", `\u0000 (a NUL character), which jsonb cannot hold`},
	})
}

// Two objects with the same value in a unique column: PostgreSQL refused
// the second with a bare SQL error; validation now names it.
func TestUniqueViolationsAreCaughtInValidation(t *testing.T) {
	refuse(t, []hostileCase{
		{"username", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"username": "reviewer01"`, `"username": "author01"`)
		}, true, "users.user", "2", "username", `duplicate value author01 in unique column "username": another users.user object in this backup has it too`},
		{"group name", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"name": "Reviewers"`, `"name": "Authors"`)
		}, true, "auth.group", "2", "name", `duplicate value Authors in unique column "name"`},
		{"unique_together", func(t *testing.T, b []byte) []byte {
			return replaceOnce(t, b, `"version_number": 2`, `"version_number": 1`)
		}, true, "documents.documentversion", "2", "document,version_number", `duplicate values (1, 1) in unique columns (document_id, version_number) (index documents_documentversion_document_id_version_number_key): another documents.documentversion object in this backup has them too`},
	})
}

// Over a populated database (more rows than the single-pass limit, so the
// backup is validated first, then loaded), a backup object whose unique
// value belongs to a row the restore keeps is refused in validation too.
func TestUniqueValueOfAKeptRowIsCaughtInValidation(t *testing.T) {
	for _, s := range strategies() {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			conn := pgtest.Connect(t, pgtest.SeededDB(t))
			if _, err := conn.Exec(ctx, `INSERT INTO audit_auditevent (action, object_repr, details, created_at)
				SELECT 'BULK', 'padding', '{}', now() FROM generate_series(1, 100001)`); err != nil {
				t.Fatal(err)
			}
			before := checksums(t, conn)
			b := []byte(`[{"model": "users.user", "pk": 999, "fields": {"password": "!", "last_login": null, "is_superuser": false,
				"username": "author01", "first_name": "", "last_name": "", "email": "", "is_staff": false, "is_active": true,
				"date_joined": "2025-01-01T00:00:00Z", "groups": []}}]`)
			_, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(b), Strategy: s, Protected: edms.Protected()})
			checkRefusal(t, hostileCase{index: true, model: "users.user", pk: "999", field: "username",
				want: `object #0 (users.user pk=999) field "username": its value in unique column "username" is already held by the users_user row with pk 1, which this restore keeps`}, err)
			sameSums(t, "refused backup", before, checksums(t, conn))
		})
	}
}
