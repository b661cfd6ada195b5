package harness

import (
	"fmt"

	"github.com/rehearse-dev/rehearse/results"
)

var _ = registerCheck[ExpectAdminID]("admin_id", "Whether admin keeps its id through the reinit (measured at the first sample after reinit).")

// ExpectAdminID says whether admin's id survives the reinit.
type ExpectAdminID struct {
	located
	Unchanged bool `yaml:"unchanged" json:"unchanged" required:"true"`
}

func (e *ExpectAdminID) validate(*scope) {}

func (e *ExpectAdminID) needsDatabase() string { return "admin_id" }

func (e *ExpectAdminID) judge(m *measured) results.Outcome {
	f := m.res.Facts
	after := f.AdminIDAfterReinit
	if after == 0 {
		after = f.AdminIDAfter // atomic: the in-between state is never visible
	}
	return results.Outcome{
		Subject:  "admin's id through the reinit",
		Expected: fmt.Sprintf("unchanged: %t", e.Unchanged),
		Measured: fmt.Sprintf("id %d before, %d after the reinit, %d at the end", f.AdminIDBefore, after, f.AdminIDAfter),
		Pass:     (after == f.AdminIDBefore) == e.Unchanged,
	}
}
