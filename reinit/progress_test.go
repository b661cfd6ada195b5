package reinit_test

import (
	"testing"

	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/internal/pgtest"
	"github.com/rehearse-dev/rehearse/reinit"
)

// The reinit reports each table it deletes from and each foreign key it
// sets to NULL, with the rows the plan counts and a measured time; the
// sums of the reports are the plan's.
func TestReinitReportsProgress(t *testing.T) {
	conn := pgtest.Connect(t, pgtest.SeededDB(t))
	cfg := edms.ReinitConfig("", true)
	var steps []reinit.Progress
	cfg.Progress = func(p reinit.Progress) { steps = append(steps, p) }
	plan := mustRun(t, conn, cfg)
	deleted, nulled := map[string]int64{}, map[string]int64{}
	for _, p := range steps {
		if p.Took <= 0 || p.Table == "" {
			t.Errorf("step %+v: no table or no time", p)
		}
		switch p.Step {
		case reinit.StepDeleted:
			deleted[p.Table] += p.Rows
		case reinit.StepNulled:
			if p.Column == "" {
				t.Errorf("step %+v names no column", p)
			}
			nulled[p.Table] += p.Rows
		default:
			t.Errorf("step %+v: unknown step", p)
		}
	}
	for _, e := range plan.Tables {
		if deleted[e.Table] != e.Deleted || nulled[e.Table] != e.Nulled {
			t.Errorf("%s: reported %d deleted, %d nulled; the plan says %d, %d", e.Table, deleted[e.Table], nulled[e.Table], e.Deleted, e.Nulled)
		}
	}
	if deleted["users_user"] != 6 || nulled["audit_auditevent"] == 0 {
		t.Errorf("reported deleted %v, nulled %v; want 6 users deleted and audit actors nulled", deleted, nulled)
	}
}
