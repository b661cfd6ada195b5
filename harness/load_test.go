package harness_test

import (
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/edms/server"
	"github.com/rehearse-dev/rehearse/harness"
)

func TestShippedScenariosValidate(t *testing.T) {
	scenarios, err := harness.LoadPaths([]string{"../scenarios"})
	if err != nil {
		t.Fatal(err)
	}
	if len(scenarios) < 5 {
		t.Fatalf("only %d shipped scenarios", len(scenarios))
	}
}

// Malformed scenarios get errors that name file:line:col and what to do.
func TestLoaderErrors(t *testing.T) {
	base := `name: x
operation:
  restore_from_file: {}
tokens:
  old: {user: author01}
probes:
  - name: p
    login: {user: author01}
expect:
  - profile: {token: old, status: 401}
`
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown top-level key", "nmae: x\n" + base, `f.yaml:1:1: unknown key "nmae" (did you mean "name"?)`},
		{"unknown nested key", strings.Replace(base, "{user: author01}\nexpect", "{user: author01, pasword: default}\nexpect", 1), `f.yaml:8:29: unknown key "pasword" (did you mean "password"?)`},
		{"bad duration", strings.Replace(base, "  - name: p\n", "  - name: p\n    every: 10 ms\n", 1), `f.yaml:8:12: expected a duration such as 10ms, 1.5s or 2m, got "10 ms"`},
		{"wrong type", strings.Replace(base, "status: 401", "status: fourohone", 1), `f.yaml:10:35: expected a whole number, got "fourohone"`},
		{"unknown user", strings.Replace(base, "old: {user: author01}", "old: {user: nobody}", 1), `f.yaml:5:8: unknown user "nobody": fixture edms-small has`},
		{"unknown token", strings.Replace(base, "token: old", "token: olde", 1), `f.yaml:10:14: unknown token "olde"`},
		{"unknown probe", base + "  - window: {probe: q, max: 0s}\n", `f.yaml:11:13: unknown probe "q"`},
		{"two kinds in one expectation", base + "  - {invariant: sequences, probe: {name: p, ever_failed: true}}\n", `f.yaml:11:5: an expectation is exactly one of`},
		{"missing required", strings.Replace(base, "status: 401", "", 1), `f.yaml:10:14: missing required key "status"`},
		{"unknown invariant", base + "  - invariant: sequence\n", `unknown invariant "sequence" (did you mean "sequences"?)`},
		{"no operation", "expect:\n  - invariant: sequences\n", `f.yaml:1:1: missing required key "operation"`},
		{"bad strategy", "strategy: fast\n" + base, `f.yaml:1:11: unknown strategy "fast"`},
		{"bad defect", "defects: [no-revocaton]\n" + base, `defects:`},
		{"not yaml", "name: [unclosed\n", `f.yaml:1:1: not valid YAML`},
		{"a list at the top", "- 1\n- 2\n", `f.yaml:1:1: expected a mapping with keys`},
		{"empty", "", `a scenario needs at least operation: and expect:`},
		{"atomic with window actions", "strategy: atomic\n" + base + "during:\n  - sleep: 1ms\n", `the atomic strategy has no window`},
		{"http with a strategy", "target: http\nstrategy: atomic\n" + base, `f.yaml:2:11: strategy: a running system's strategy is its own setting`},
		{"http with defects", "target: http\ndefects: [no-revocation]\n" + base, `only the embedded system can be started with defects`},
		{"http with manual", "target: http\nexpect: [{invariant: sequences}]\noperation: {manual: {}}\n", `f.yaml:3:21: manual: the 3-step path runs rehearse's own engine`},
		{"http target file missing", "target: http\ntarget_file: nowhere.yaml\n" + base, `nowhere.yaml: cannot read target file`},
		{"http inline unknown key", "target: http\nhttp: {login: {paht: /x}}\n" + base, `f.yaml:2:16: unknown key "paht" (did you mean "path"?)`},
		{"http not loopback", "target: http\nhttp: {base_url: \"http://10.0.0.1:8000\"}\n" + base, `is not on loopback`},
		{"http seed", "target: http\nseed: fresh\n" + base, `f.yaml:2:7: unknown seed "fresh"; expected present or restore`},
		{"target options on embedded", "target_file: t.yaml\n" + base, `set target: http, or remove them`},
		{"unknown provider", "provider: cloud\n" + base, `provider`},
		{"provider on http", "target: http\nprovider: local\n" + base, `a running system brings its own database`},
		{"two documents", base + "---\nname: y\n", `f.yaml:11:1: a scenario file holds one YAML document`},
		{"binary garbage", "\x00\x01\x02\xff", `f.yaml:1:1: not valid YAML`},
		{"backup_file with counts_match_backup", strings.Replace(base, "restore_from_file: {}", "restore_from_file: {backup_file: f.yaml}", 1) + "  - invariant: counts_match_backup\n", `cannot be judged`},
		{"users on the embedded system", "users: [{username: a, password: b}]\n" + base, `f.yaml:1:8: users: names the accounts of a running system`},
		{"user without a password", "target: http\nusers: [{username: author01}]\n" + strings.Replace(base, "name: x\n", "", 1), `give exactly one of password or password_env`},
		{"unknown user among the scenario's", "target: http\nusers: [{username: someone, password: pw}]\n" + strings.Replace(base, "name: x\n", "", 1), `unknown user "author01": users: lists someone`},
		{"backup file missing", strings.Replace(base, "restore_from_file: {}", "restore_from_file: {backup_file: gone.json}", 1), `f.yaml:3:22: backup_file:`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := harness.Parse("f.yaml", []byte(c.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
			if !harness.IsInputError(err) {
				t.Errorf("error %T is not an input error", err)
			}
		})
	}
	if _, err := harness.Parse("f.yaml", []byte(base)); err != nil {
		t.Fatalf("the base scenario is valid: %v", err)
	}
}

// The documented DRF + simplejwt target file spells out the defaults: it
// must load strictly and describe exactly what rehearse speaks without it.
func TestDocumentedTargetFileIsTheDefault(t *testing.T) {
	tf, err := harness.LoadTargetFile("../docs/targets/drf-simplejwt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tf.Routes(), server.DefaultRoutes(); got != want {
		t.Errorf("documented routes differ from the defaults:\n got %+v\nwant %+v", got, want)
	}
	if tf.Admin.DefaultPassword != "test123" || tf.Admin.Username != "admin" || tf.UsersTable != "users_user" {
		t.Errorf("admin/users: %+v %q", tf.Admin, tf.UsersTable)
	}
}
