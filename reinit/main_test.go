package reinit_test

import (
	"os"
	"testing"

	"github.com/rehearse-dev/rehearse/internal/pgtest"
)

func TestMain(m *testing.M) {
	if dsn := os.Getenv(helperEnv); dsn != "" {
		os.Exit(helperMain(dsn))
	}
	pgtest.Main(m)
}
