package pgconf

import (
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestArgs(t *testing.T) {
	defaults := map[string]string{"fsync": "off", "max_connections": "300"}
	args, err := Args(defaults, map[string]string{"FSYNC": "on", "work_mem": "64MB"}, []string{"port"}, "the test")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-c", "fsync=on", "-c", "max_connections=300", "-c", "work_mem=64MB"}
	if !slices.Equal(args, want) {
		t.Errorf("Args = %q, want %q (FSYNC overrides fsync, sorted by name)", args, want)
	}
	if defaults["fsync"] != "off" {
		t.Error("Args changed the defaults")
	}
	for extra, msg := range map[string]string{
		"PORT":       "managed by the test",
		"bad name":   "invalid setting name",
		"1st":        "invalid setting name",
		"work_mem\n": "invalid setting name",
	} {
		if _, err := Args(defaults, map[string]string{extra: "1"}, []string{"port"}, "the test"); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("Args(%q): %v, want an error saying %q", extra, err, msg)
		}
	}
	if _, err := Args(defaults, map[string]string{"work_mem": "1MB\n-c fsync=on"}, nil, "x"); err == nil || !strings.Contains(err.Error(), "newline") {
		t.Errorf("a value with a newline: %v", err)
	}
}

// Every quoted value reads back as itself through pgx's own parser.
func TestQuoteDSN(t *testing.T) {
	for _, v := range []string{"edms", "", "a b", `it's`, `back\slash`, "x=y", "/tmp/rehearse-pg-1/sock"} {
		cfg, err := pgconn.ParseConfig("host=/tmp dbname=" + QuoteDSN(v) + " user=postgres")
		if err != nil {
			t.Errorf("QuoteDSN(%q) = %s: %v", v, QuoteDSN(v), err)
			continue
		}
		if v != "" && cfg.Database != v {
			t.Errorf("QuoteDSN(%q) = %s reads back as %q", v, QuoteDSN(v), cfg.Database)
		}
	}
	if QuoteDSN("edms") != "edms" {
		t.Errorf("a plain value is quoted: %s", QuoteDSN("edms"))
	}
}
