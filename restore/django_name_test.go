package restore

import "testing"

// Django's default db_table, shortened as django.db.backends.utils.
// truncate_name(name, 63) does (vector computed with Django 3.2).
func TestDjangoTableName(t *testing.T) {
	for _, tc := range []struct{ app, model, want string }{
		{"token_blacklist", "outstandingtoken", "token_blacklist_outstandingtoken"},
		{"averyveryverylongapplabelname", "averyveryverylongmodelnamethatexceedsit", "averyveryverylongapplabelname_averyveryverylongmodelnametha9671"},
	} {
		if got := djangoTableName(tc.app, tc.model); got != tc.want {
			t.Errorf("djangoTableName(%s, %s) = %s, want %s", tc.app, tc.model, got, tc.want)
		}
	}
}
