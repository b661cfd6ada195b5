package results

import (
	"regexp"
	"strings"
	"testing"
)

func TestFingerprint(t *testing.T) {
	fp := Fingerprint("test123")
	// sha256("test123") = ecd71870d1963316a97e3ac3408c9835ad8cf0f3c1bc703527c30265534f75ae
	if fp != "sha256:ecd71870" {
		t.Fatalf("Fingerprint = %q", fp)
	}
	if Fingerprint("test123") != fp {
		t.Fatal("not stable")
	}
	if Fingerprint("test124") == fp {
		t.Fatal("different secrets, same fingerprint")
	}
	raw := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwidXNlcl9pZCI6MX0.c2lnbmF0dXJlLW5vdC1jaGVja2VkLWhlcmU"
	if f := Fingerprint(raw); !regexp.MustCompile(`^sha256:[0-9a-f]{8}$`).MatchString(f) || strings.Contains(f, raw) {
		t.Fatalf("Fingerprint(token) = %q", f)
	}
}
