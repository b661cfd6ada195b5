package rate

import (
	"testing"
	"time"
)

func TestPerSecond(t *testing.T) {
	for _, c := range []struct {
		n    int64
		took time.Duration
		want float64
	}{
		{1000, 2 * time.Second, 500},
		{5, 0, 0},
		{5, -time.Second, 0},
		{0, time.Second, 0},
	} {
		if got := PerSecond(c.n, c.took); got != c.want {
			t.Errorf("PerSecond(%d, %v) = %v, want %v", c.n, c.took, got, c.want)
		}
	}
}
