package results

import "testing"

// Phases() and the labels are two lists of the same enum: a phase added to
// one and not the other fails here.
func TestPhasesListEveryLabelledPhase(t *testing.T) {
	seen := map[Phase]bool{}
	for _, p := range Phases() {
		if !p.Valid() {
			t.Errorf("Phases() holds %q, which has no label", p)
		}
		if seen[p] {
			t.Errorf("Phases() holds %q twice", p)
		}
		seen[p] = true
	}
	for p := range phaseLabels {
		if !seen[p] {
			t.Errorf("phase %q has a label but is missing from Phases()", p)
		}
	}
}
