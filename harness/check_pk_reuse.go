package harness

import (
	"fmt"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

var _ = registerCheck[ExpectPKReuse]("pk_reuse", "Whether primary-key reuse was detected: a user created in the window got an id from the backup, an old token authenticated as that user, or the restore overwrote that user's row.")

// ExpectPKReuse says whether the pk-reuse hazard was observed.
type ExpectPKReuse struct {
	located
	Detected bool `yaml:"detected" json:"detected" required:"true"`
}

func (e *ExpectPKReuse) validate(*scope) {}

func (e *ExpectPKReuse) needsDatabase() string { return "pk_reuse" }

func (e *ExpectPKReuse) judge(m *measured) results.Outcome {
	seen := m.res.Facts.PKReuse
	o := results.Outcome{
		Subject:  "primary-key reuse hazard",
		Expected: fmt.Sprintf("detected: %t", e.Detected),
		Measured: fmt.Sprintf("detected: %t", len(seen) > 0),
		Pass:     (len(seen) > 0) == e.Detected,
	}
	if len(seen) > 0 {
		var what []string
		for _, p := range seen {
			what = append(what, p.String())
		}
		o.Measured += ": " + strings.Join(what, "; ")
	}
	return o
}
