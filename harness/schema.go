package harness

import _ "embed"

// schemaJSON is the JSON Schema (draft 2020-12) of the scenario language,
// generated from the Go types and the registries of check and probe kinds by
// `go test ./harness -run TestSchemaMatchesTypes -update-schema`; that test
// fails when the two drift apart.
//
//go:embed scenario.schema.json
var schemaJSON []byte

// JSONSchema returns the JSON Schema of the scenario language, for editors
// that validate and complete scenarios.
func JSONSchema() []byte { return append([]byte(nil), schemaJSON...) }
