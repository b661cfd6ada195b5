package harness

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var updateSchema = flag.Bool("update-schema", false, "rewrite harness/scenario.schema.json and harness/target.schema.json")

// The shipped JSON Schemas must be what the Go types generate: change the
// types, then run go test ./harness -run TestSchema -update-schema.
func TestSchemaMatchesTypes(t *testing.T) {
	for file, gen := range map[string]func() ([]byte, error){"scenario.schema.json": generateSchema, "target.schema.json": generateTargetSchema} {
		got, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		if *updateSchema {
			if err := os.WriteFile(file, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		shipped, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, shipped) {
			t.Fatalf("harness/%s drifted from the Go types; run: go test ./harness -run TestSchema -update-schema", file)
		}
	}
	got, _ := generateSchema()
	for _, want := range []string{`"restore_from_file"`, `"additionalProperties": false`, `"during_window"`, `Engine strategy of the embedded system`,
		`"$schema": "http://json-schema.org/draft-07/schema#"`, `"$ref": "#/definitions/TargetFile"`} {
		if !bytes.Contains(got, []byte(want)) {
			t.Errorf("schema lacks %s", want)
		}
	}
	if bytes.Contains(got, []byte("$defs")) {
		t.Error("the scenario schema uses $defs, which draft-07 does not know")
	}
}

// The embedded schemas are the shipped files.
func TestJSONSchemaIsShipped(t *testing.T) {
	for file, embedded := range map[string][]byte{"scenario.schema.json": JSONSchema(), "target.schema.json": TargetJSONSchema()} {
		shipped, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(embedded, shipped) {
			t.Fatalf("the embedded schema differs from %s", file)
		}
	}
}
