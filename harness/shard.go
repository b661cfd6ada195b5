package harness

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// ShardEnv names the environment variable that picks the shard Run runs
// (K/N), as `rehearse run --shard K/N` does.
const ShardEnv = "REHEARSE_SHARD"

// Shard is the Kth of N slices of a suite, so that N CI runners split it:
// in the order of their names, the scenarios are dealt out to the shards
// one by one, so every scenario is in exactly one shard, the shards differ
// in size by one at most, and every runner that has the same files picks
// the same ones. The zero Shard is the whole suite.
type Shard struct{ K, N int }

// ParseShard reads "K/N" (1 ≤ K ≤ N); "" is the whole suite.
func ParseShard(s string) (Shard, error) {
	if s == "" {
		return Shard{}, nil
	}
	k, n, ok := strings.Cut(s, "/")
	ki, kerr := strconv.Atoi(strings.TrimSpace(k))
	ni, nerr := strconv.Atoi(strings.TrimSpace(n))
	if !ok || kerr != nil || nerr != nil || ni < 1 || ki < 1 || ki > ni {
		return Shard{}, fmt.Errorf("shard %q: want K/N with 1 ≤ K ≤ N, e.g. 2/3 for the second of three", s)
	}
	return Shard{K: ki, N: ni}, nil
}

// ShardFromEnv is the shard $REHEARSE_SHARD names.
func ShardFromEnv() (Shard, error) {
	sh, err := ParseShard(os.Getenv(ShardEnv))
	if err != nil {
		return sh, fmt.Errorf("%s: %w", ShardEnv, err)
	}
	return sh, nil
}

// All reports whether s is the whole suite.
func (s Shard) All() bool { return s.N <= 1 }

func (s Shard) String() string {
	if s.All() {
		return "1/1"
	}
	return fmt.Sprintf("%d/%d", s.K, s.N)
}

// Scenarios returns the scenarios of the shard, in name order.
func (s Shard) Scenarios(all []*Scenario) []*Scenario {
	return pick(s, all, func(sc *Scenario) string { return sc.Name })
}

// pick returns the items of the shard, sorted by name.
func pick[T any](s Shard, items []T, name func(T) string) []T {
	sorted := slices.SortedStableFunc(slices.Values(items), func(a, b T) int { return strings.Compare(name(a), name(b)) })
	if s.All() {
		return sorted
	}
	var out []T
	for i, it := range sorted {
		if i%s.N == s.K-1 {
			out = append(out, it)
		}
	}
	return out
}
