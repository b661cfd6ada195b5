package reports

import (
	"encoding/json"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/rehearse-dev/rehearse/results"
)

// Secrets that may leak into free text (an error message quoting a request,
// a detail from the system under test): JWTs, Django password hashes,
// bearer credentials.
var (
	reJWT        = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+`)
	reDjangoHash = regexp.MustCompile(`\b(?:pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256|bcrypt|scrypt|md5)\$[^\s"'<>,;]+`)
	reBearer     = regexp.MustCompile(`(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})`)
)

// redactRun returns a deep copy of rf in which every string has its secrets
// replaced by fingerprints; rf itself is not changed. Fingerprints let a
// reader match a token across tables without learning it.
func redactRun(rf *results.RunFile) *results.RunFile {
	passwords := plainPasswords(rf.Results) // the copy below drops them
	var cp results.RunFile
	b, err := json.Marshal(rf)
	if err == nil {
		err = json.Unmarshal(b, &cp)
	}
	if err != nil {
		// Cannot happen for a RunFile; fall back to a shallow copy rather than
		// render secrets.
		cp = *rf
		cp.Results = nil
	}
	// A nil entry has nothing to report; dropping it spares every renderer a check.
	kept := cp.Results[:0]
	for _, r := range cp.Results {
		if r != nil {
			kept = append(kept, r)
		}
	}
	cp.Results = kept
	walkStrings(reflect.ValueOf(&cp).Elem(), func(s string) string { return redact(s, passwords) })
	return &cp
}

// redact replaces the secrets in s with "sha256:…" fingerprints.
func redact(s string, passwords []string) string {
	s = reJWT.ReplaceAllStringFunc(s, results.Fingerprint)
	s = reDjangoHash.ReplaceAllStringFunc(s, func(h string) string { return "hash " + results.Fingerprint(h) })
	s = reBearer.ReplaceAllStringFunc(s, func(m string) string {
		cred := reBearer.FindStringSubmatch(m)[1]
		return "Bearer " + results.Fingerprint(cred)
	})
	for _, p := range passwords {
		if strings.Contains(s, p) {
			s = strings.ReplaceAll(s, p, "password "+results.Fingerprint(p))
		}
	}
	return s
}

// plainPasswords returns the secrets the results carry (Result.Secrets),
// longest first (so that one password inside another is replaced whole).
func plainPasswords(rs []*results.Result) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs {
		if r == nil {
			continue
		}
		for _, p := range r.Secrets {
			// Very short passwords would match inside ordinary words.
			if len(p) >= 4 && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// walkStrings applies fn to every settable plain string reachable from v.
// Typed strings (statuses, phases, kinds) are the enums verdicts rest on,
// and no secret: a password that happens to read "atomic" must not rewrite
// the engine.
func walkStrings(v reflect.Value, fn func(string) string) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() && v.Type() == reflect.TypeFor[string]() {
			v.SetString(fn(v.String()))
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			walkStrings(v.Elem(), fn)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				walkStrings(v.Field(i), fn)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			walkStrings(v.Index(i), fn)
		}
	}
}
