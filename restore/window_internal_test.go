package restore

import "testing"

// withEmptied adds the rows TRUNCATE removed before the reinit to the
// reinit's account of a table, and lists a table the reinit did not
// report (a reinit reporting nothing, or not that table) from its count.
func TestWithEmptied(t *testing.T) {
	effects := []ReinitEffect{{Table: "users_user", Before: 7, After: 1}, {Table: "documents_document", Before: 0, After: 0}}
	w := newWindow(withEmptied(effects, map[string]int64{"documents_document": 40, "audit_auditevent": 90}), map[string]int64{"documents_document": 40})
	want := []TableLoss{
		{Table: "audit_auditevent", Before: 90, Now: 0, Emptied: true},
		{Table: "documents_document", Before: 40, Now: 0, Backup: 40, Emptied: true},
		{Table: "users_user", Before: 7, Now: 1},
	}
	if len(w.Tables) != len(want) {
		t.Fatalf("window %+v, want %+v", w.Tables, want)
	}
	for i := range want {
		if w.Tables[i] != want[i] {
			t.Errorf("window table %d: %+v, want %+v", i, w.Tables[i], want[i])
		}
	}
	if w := newWindow(withEmptied(nil, map[string]int64{"documents_document": 3}), nil); len(w.Tables) != 1 || w.Tables[0].Before != 3 {
		t.Errorf("no effects reported: window %+v, want documents_document emptied from 3 rows", w.Tables)
	}
}
