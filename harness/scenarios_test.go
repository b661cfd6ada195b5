package harness_test

import (
	"os"
	"testing"

	"github.com/rehearse-dev/rehearse/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.CloseShared()
	os.Exit(code)
}

// Every shipped scenario runs as a subtest: go test -run TestScenarios/scenario/<name>.
func TestScenarios(t *testing.T) {
	harness.Run(t, "../scenarios")
}
