// Package scenarios holds the shipped scenarios: the YAML files beside this
// file, embedded in the rehearse binary, so `rehearse run` with no path runs
// them from any directory. Their test (scenarios_test.go) is what a test of
// your own scenarios looks like.
package scenarios

import "embed"

// FS holds the shipped scenario files (*.yaml) at its root.
//
//go:embed *.yaml
var FS embed.FS
