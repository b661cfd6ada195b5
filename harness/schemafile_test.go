package harness_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rehearse-dev/rehearse/harness"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// compile compiles a draft-07 schema as an editor's YAML language server
// would read it.
func compile(t *testing.T, name string, schema []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource(name, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(name)
	if err != nil {
		t.Fatalf("%s does not compile: %v", name, err)
	}
	return s
}

// validateYAML checks a YAML document against s.
func validateYAML(t *testing.T, s *jsonschema.Schema, data []byte) error {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(inst)
}

// The draft-07 schemas accept the shipped scenarios and target files and
// refuse a misspelt key, as an editor would mark it.
func TestSchemasValidateShippedFiles(t *testing.T) {
	scenario := compile(t, "scenario.schema.json", harness.JSONSchema())
	target := compile(t, "target.schema.json", harness.TargetJSONSchema())
	files, _ := filepath.Glob("../scenarios/*.yaml")
	more, _ := filepath.Glob("testdata/provider/*.yaml")
	files = append(append(files, more...), "testdata/gotest/good.yaml") // not broken.yaml, malformed on purpose
	for _, f := range append(files, "../cmd/rehearse/testdata/http/rehearsal.yaml", "../cmd/rehearse/testdata/http/own-users.yaml", "rehearsal.yaml") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateYAML(t, scenario, data); err != nil {
			t.Errorf("%s: not valid against scenario.schema.json:\n%v", f, err)
		}
	}
	for _, f := range []string{"../docs/targets/drf-simplejwt.yaml", "../cmd/rehearse/testdata/http/target.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateYAML(t, target, data); err != nil {
			t.Errorf("%s: not valid against target.schema.json:\n%v", f, err)
		}
	}
	good, _ := os.ReadFile("../scenarios/seed-flow-two-phase.yaml")
	bad := strings.Replace(string(good), "  - window:", "  - windw:", 1)
	if err := validateYAML(t, scenario, []byte(bad)); err == nil {
		t.Error("scenario.schema.json accepts an expectation named windw")
	}
	tgt, _ := os.ReadFile("../docs/targets/drf-simplejwt.yaml")
	if err := validateYAML(t, target, append(tgt, []byte("\nlogn: {}\n")...)); err == nil {
		t.Error("target.schema.json accepts a key named logn")
	}
}
