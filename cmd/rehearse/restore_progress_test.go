package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

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
