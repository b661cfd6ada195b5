// Package rate computes the rates that progress reports give.
package rate

import "time"

// PerSecond is n things done in took, per second: 0 when took is no
// measurable time.
func PerSecond(n int64, took time.Duration) float64 {
	if took <= 0 {
		return 0
	}
	return float64(n) / took.Seconds()
}
