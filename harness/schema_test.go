package harness

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var updateSchema = flag.Bool("update-schema", false, "rewrite harness/scenario.schema.json")

// The shipped JSON Schema must be what the Go types generate: change the
// types, then run go test ./harness -run TestSchema -update-schema.
func TestSchemaMatchesTypes(t *testing.T) {
	got, err := generateSchema()
	if err != nil {
		t.Fatal(err)
	}
	if *updateSchema {
		if err := os.WriteFile("scenario.schema.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	shipped, err := os.ReadFile("scenario.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, shipped) {
		t.Fatal("harness/scenario.schema.json drifted from the scenario types; run: go test ./harness -run TestSchema -update-schema")
	}
	for _, want := range []string{`"restore_from_file"`, `"additionalProperties": false`, `"during_window"`, `Engine strategy of the embedded system`} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("schema lacks %s", want)
		}
	}
}

// The embedded schema is the shipped file.
func TestJSONSchemaIsShipped(t *testing.T) {
	shipped, err := os.ReadFile("scenario.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(JSONSchema(), shipped) {
		t.Fatal("JSONSchema() differs from scenario.schema.json")
	}
}
