package restore_test

import (
	"testing"

	"github.com/rehearse-dev/rehearse/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
