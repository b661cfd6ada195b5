package reports

import _ "embed"

// schemaJSON is the JSON Schema (draft-07) of the results file,
// generated from the Go types of package results by `go test ./reports -run
// TestSchemaUpToDate -update`; the test fails when the two drift apart.
//
//go:embed results.schema.json
var schemaJSON []byte

// Schema returns the JSON Schema of the results file (results.RunFile).
func Schema() []byte { return append([]byte(nil), schemaJSON...) }
