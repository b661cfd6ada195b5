package suggest

import "testing"

func TestClosest(t *testing.T) {
	opts := []string{"probes", "expect", "operation"}
	for got, want := range map[string]string{"probe": "probes", "expcet": "expect", "operaton": "operation", "zzzzzz": "", "": ""} {
		if c := Closest(got, opts); c != want {
			t.Errorf("Closest(%q) = %q, want %q", got, c, want)
		}
	}
	if d := distance("kitten", "sitting"); d != 3 {
		t.Errorf("distance(kitten, sitting) = %d, want 3", d)
	}
}
