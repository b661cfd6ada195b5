package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/reinit"
	"github.com/rehearse-dev/rehearse/restore"
)

// On a terminal each loaded table is a line with its rows and rate; in a
// log only the phases are.
func TestRestoreProgress(t *testing.T) {
	start := time.Now()
	events := []restore.Event{
		{Phase: restore.PhaseValidated, At: start.Add(10 * time.Millisecond)},
		{Phase: restore.PhaseTableLoaded, At: start.Add(510 * time.Millisecond), Table: "documents_document", Rows: 1000},
		{Phase: restore.PhaseRestoreCommitted, At: start.Add(600 * time.Millisecond)},
	}
	for _, tty := range []bool{true, false} {
		var b bytes.Buffer
		p := restoreProgress(&b, start, tty)
		for _, e := range events {
			p(e)
		}
		out := b.String()
		table := strings.Contains(out, "loaded documents_document: 1000 rows, 2000 rows/s")
		if table != tty || !strings.Contains(out, "validated") || !strings.Contains(out, "restore committed") {
			t.Errorf("tty=%t:\n%s", tty, out)
		}
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is no terminal")
	}
}

// On a terminal, a real reinit of the seeded system and a real seeding show
// each table with its rows and rate; elsewhere they print nothing beyond
// their summaries.
func TestReinitAndSeedProgress(t *testing.T) {
	ctx := context.Background()
	conn := pgtest.Connect(t, pgtest.SeededDB(t))
	cfg := edms.ReinitConfig(edms.DefaultAdminPassword, true)
	var b bytes.Buffer
	cfg.Progress = reinitProgress(&b, time.Now(), true)
	plan, err := reinit.Run(ctx, conn, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range plan.Tables {
		if e.Deleted > 0 && !strings.Contains(b.String(), fmt.Sprintf("deleted from %s: %d rows", e.Table, e.Deleted)) {
			t.Errorf("no progress line for %s (%d deleted):\n%s", e.Table, e.Deleted, b.String())
		}
	}
	if reinitProgress(&b, time.Now(), false) != nil || seedProgress(&b, time.Now(), false) != nil {
		t.Error("progress lines off a terminal")
	}

	empty := pgtest.Connect(t, pgtest.NewDB(t))
	if err := edms.Install(ctx, empty); err != nil {
		t.Fatal(err)
	}
	f, err := fixtures.Get("edms-small")
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	opts := edms.RestoreOptions(f.Open, restore.Atomic, nil)
	opts.Progress = seedProgress(&b, time.Now(), true)
	res, err := restore.Restore(ctx, empty, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Many-to-many rows are loaded with their model's table, without a line.
	for _, table := range []string{"auth_group", "users_user", "documents_document", "documents_documentversion", "workflows_workflowassignment", "audit_auditevent"} {
		if n := res.Rows[table]; !strings.Contains(b.String(), fmt.Sprintf("loaded %s: %d rows", table, n)) {
			t.Errorf("no progress line for %s (%d rows):\n%s", table, n, b.String())
		}
	}
	if strings.Contains(b.String(), "committed") {
		t.Errorf("seeding progress shows the engine's phases:\n%s", b.String())
	}
}
