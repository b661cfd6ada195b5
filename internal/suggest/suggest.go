// Package suggest finds the option a mistyped name most likely meant, for
// "did you mean" hints in error messages.
package suggest

// Closest returns the option within two edits of got ("" when none is).
func Closest(got string, options []string) string {
	best, bestD := "", 3
	for _, o := range options {
		if d := distance(got, o); d < bestD {
			best, bestD = o, d
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b, in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
