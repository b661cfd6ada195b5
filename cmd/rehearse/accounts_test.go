package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/internal/pgtest"
)

// Where rehearse cannot create its accounts, the rehearsal stops before it
// touches anything, naming the target-file key to set.
func TestRehearseAccountsNeedTheirColumns(t *testing.T) {
	dsn := pgtest.SeededDB(t)
	conn := pgtest.Connect(t, dsn)
	defer conn.Close(context.Background())
	users := func() (n int) {
		conn.QueryRow(context.Background(), `SELECT count(*) FROM users_user`).Scan(&n)
		return n
	}
	before := users()
	for key, value := range map[string]string{"users_table": "no_users", "login_column": "login_name", "password_column": "pw_hash", "staff_column": "is_boss"} {
		t.Run(key, func(t *testing.T) {
			tf := filepath.Join(t.TempDir(), "target.yaml")
			if err := os.WriteFile(tf, []byte(key+": "+value+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := rehearse(t, "rehearse", "--target", "http://127.0.0.1:9", "--dsn", dsn, "--target-file", tf, "--report-dir", "")
			if want := "set " + key + " in the target file"; code != exitError || !strings.Contains(stdout+stderr, want) || !strings.Contains(stdout+stderr, value) {
				t.Errorf("exit %d, want 2 and %q:\n%s\n%s", code, want, stdout, stderr)
			}
		})
	}
	if after := users(); after != before {
		t.Errorf("users: %d before, %d after a refused rehearsal", before, after)
	}
}
