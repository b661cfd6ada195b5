package server

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

// Config.Limits reach the scanner of restore_from_file: a backup with an
// object over MaxObjectBytes gets a 400 naming the object and the limit,
// with the reinit confirmed and the database untouched; the same backup
// restores on a server without that limit.
func TestRestoreHonoursLimits(t *testing.T) {
	dsn := pgtest.SeededDB(t)
	good := backupOf(t, dsn)
	// White space after the second object's opening brace makes it 4 KiB larger.
	first := bytes.Index(good, []byte("{\"model\""))
	second := first + 1 + bytes.Index(good[first+1:], []byte("{\"model\""))
	fat := append(append(append([]byte{}, good[:second+1]...), bytes.Repeat([]byte{' '}, 4096)...), good[second+1:]...)

	e := startOn(t, dsn, func(c *Config) { c.Limits = restore.Limits{MaxObjectBytes: 2048} })
	conn := pgtest.Connect(t, dsn)
	before := dbState(t, conn)
	admin, _ := e.tokens("admin", "admin_secure_password_123")
	got := e.restore(admin, fat, reinitFields)
	if got.status != 400 || !strings.Contains(got.body, `backup refused: object #1`) || !strings.Contains(got.body, "larger than 2.0 KiB") {
		t.Errorf("fat object: %d %s", got.status, got.body)
	}
	sameState(t, "after the refused restore", before, dbState(t, conn))

	e = start(t, nil)
	admin, _ = e.tokens("admin", "admin_secure_password_123")
	if got := e.restore(admin, fat, reinitFields); got.status != 200 {
		t.Errorf("default limits: %d %s", got.status, got.body)
	}
}
