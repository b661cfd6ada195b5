package harness_test

import (
	"os"
	"testing"

	"github.com/rehearse-dev/rehearse/harness"
)

// TestMain gives back the provider harness.SharedProvider holds for the
// tests that drive a Runner themselves; harness.Run needs no TestMain.
func TestMain(m *testing.M) {
	code := m.Run()
	harness.CloseShared()
	os.Exit(code)
}
