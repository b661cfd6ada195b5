package edms_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/edms"
)

// The recovery command names the kept backup and the system, quoted for
// a shell, and never holds the DSN's password.
func TestRecoveryCommand(t *testing.T) {
	cases := []struct {
		dsn, backup string
		want        string
		note        bool
	}{
		{"host=/tmp port=5432 dbname=edms", "/var/backups/b.json.gz",
			`rehearse restore --dsn 'host=/tmp port=5432 dbname=edms' --from-file /var/backups/b.json.gz --with-reinit --strategy atomic`, false},
		{"host=127.0.0.1 password='s3 cr\\'et' dbname=edms user=app", "/tmp/it's here.json",
			`rehearse restore --dsn 'host=127.0.0.1 dbname=edms user=app' --from-file '/tmp/it'\''s here.json' --with-reinit --strategy atomic`, true},
		{"postgres://app:s3cret@127.0.0.1:5432/edms?sslmode=disable&password=s3cret", "/b.json",
			`rehearse restore --dsn 'postgres://app@127.0.0.1:5432/edms?sslmode=disable' --from-file /b.json --with-reinit --strategy atomic`, true},
		{"", "/b.json", `rehearse restore --from-file /b.json --with-reinit --strategy atomic`, false},
	}
	for _, c := range cases {
		r := edms.NewRecovery(c.dsn, c.backup)
		if r.Command != c.want {
			t.Errorf("NewRecovery(%q):\n got %s\nwant %s", c.dsn, r.Command, c.want)
		}
		if strings.Contains(r.String(), "s3") {
			t.Errorf("the password shows: %s", r)
		}
		if (r.Note != "") != c.note || !strings.Contains(r.String(), c.backup) {
			t.Errorf("%q: %s", c.dsn, r)
		}
		// The shell reads the command back into the same words.
		words, err := exec.Command("sh", "-c", "printf '%s\\n' "+edms.ShellQuote(c.backup)).Output()
		if err != nil || strings.TrimSuffix(string(words), "\n") != c.backup {
			t.Errorf("the shell reads %q back as %q (%v)", c.backup, words, err)
		}
	}
}
