package harness

import _ "embed"

// schemaJSON and targetSchemaJSON are the JSON Schemas (draft-07, what
// editors' YAML language servers support) of the scenario language and of
// target files, generated from the Go types and the registries of check and
// probe kinds by `go test ./harness -run TestSchemaMatchesTypes
// -update-schema`; that test fails when they drift apart.
var (
	//go:embed scenario.schema.json
	schemaJSON []byte
	//go:embed target.schema.json
	targetSchemaJSON []byte
)

// JSONSchema returns the JSON Schema of the scenario language, for editors
// that validate and complete scenarios.
func JSONSchema() []byte { return append([]byte(nil), schemaJSON...) }

// TargetJSONSchema returns the JSON Schema of target files (TargetFile).
func TargetJSONSchema() []byte { return append([]byte(nil), targetSchemaJSON...) }
