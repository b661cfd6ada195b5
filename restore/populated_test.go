package restore_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/restore"
)

// A backup of another system restored with reinit over a populated one:
// the rows the reinit keeps (admin's documents and their versions) carry
// keys the backup gives other rows, so a row of the backup may need the
// (document, version) pair an existing row holds until the backup replaces
// that row too. Both strategies must restore it, leaving the backup's rows.
func TestRestoreOtherBackupOverPopulated(t *testing.T) {
	other := generated(t, fixtures.LargeSpec, 30) // 10 documents a user where edms-small has 1
	want := func() map[string]int64 {
		conn := pgtest.Connect(t, pgtest.NewDB(t))
		if err := edms.Install(ctx, conn); err != nil {
			t.Fatal(err)
		}
		if _, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(other), Strategy: restore.Atomic, Protected: edms.Protected()}); err != nil {
			t.Fatal(err)
		}
		return rowCounts(t, conn)
	}()
	eachSeeded(t, func(t *testing.T, s restore.Strategy, conn *pgx.Conn) {
		if _, err := restore.Restore(ctx, conn, restore.Options{Open: bytesOpener(other), Strategy: s, Reinit: withReinit(true), Protected: edms.Protected()}); err != nil {
			t.Fatal(err)
		}
		got := rowCounts(t, conn)
		for table, n := range want {
			if got[table] != n {
				t.Errorf("%s: %d rows, want the backup's %d", table, got[table], n)
			}
		}
	})
}

func rowCounts(t *testing.T, conn *pgx.Conn) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range []string{"auth_group", "users_user", "users_user_groups", "documents_document", "documents_documentversion", "workflows_workflowassignment", "audit_auditevent"} {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}
