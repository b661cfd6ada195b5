package reports

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Placeholders of a normalized report.
const (
	phMS        = "‹ms›"
	phCount     = "‹n›"
	phTimestamp = "‹timestamp›"
	phDuration  = "‹duration›"
	phFinger    = "sha256:‹fp›"
	phStatuses  = "‹statuses›"
)

// fmtr formats measured values, or their placeholders when normalizing.
// Every number that varies between runs goes through it.
type fmtr struct {
	normalize bool
	// masked replaces every quoted text with one placeholder (tests), so
	// that what the reports decide can be compared apart from what they quote.
	masked bool
}

// phText is a masked text.
const phText = "‹text›"

// ms formats a measured time in milliseconds: "10.5 ms", "1.23 s".
func (f fmtr) ms(v float64) string {
	if f.normalize {
		return phMS
	}
	return fmtMS(v)
}

func fmtMS(v float64) string {
	if math.Abs(v) < 0.05 {
		v = 0 // not "-0.0 ms"
	}
	if v >= 1000 || v <= -1000 {
		return strconv.FormatFloat(v/1000, 'f', 2, 64) + " s"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
}

// at formats a point of the timeline: "T+53.1 ms".
func (f fmtr) at(v float64) string {
	if f.normalize {
		return "T+" + phMS
	}
	sign := "+"
	if v < 0 {
		sign = "-"
		v = -v
	}
	return "T" + sign + fmtMS(v)
}

// n formats a count that depends on timing (samples, failures).
func (f fmtr) n(v int) string {
	if f.normalize {
		return phCount
	}
	return strconv.Itoa(v)
}

func (f fmtr) dur(d time.Duration) string {
	if f.normalize {
		return phDuration
	}
	return d.Round(time.Millisecond).String()
}

func (f fmtr) when(t time.Time) string {
	if f.normalize {
		return phTimestamp
	}
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format(time.RFC3339)
}

// seconds formats a duration for JUnit's time attribute (a decimal number).
func (f fmtr) seconds(d time.Duration) string {
	if f.normalize {
		return "0"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// Text the harness wrote (measured values, excerpts, errors) carries times
// and counts inside sentences; these patterns find them.
var (
	reTimelinePoint = regexp.MustCompile(`T\s*[+-]\s*\d+(?:\.\d+)?\s?ms`)
	reSamplesOf     = regexp.MustCompile(`\b\d+ of \d+ samples`)
	reOKFailed      = regexp.MustCompile(`\b\d+ ok, \d+ failed`)
	reSamples       = regexp.MustCompile(`\b\d+ samples`)
	reFingerprint   = regexp.MustCompile(`\bsha256:[0-9a-f]{8}\b`)
	reGoDuration    = regexp.MustCompile(`\b\d+(?:\.\d+)?(?:h|ms|µs|us|ns|m|s)(?:\d+(?:\.\d+)?(?:ms|µs|us|ns|m|s))*\b`)
)

// fingerprint of a token: tokens are signed with a fresh key every run.
func (f fmtr) fingerprint(fp string) string {
	if f.normalize {
		return phFinger
	}
	return fp
}

// text passes through free text from the results; normalized, its times,
// sample counts and fingerprints become placeholders. Statuses, ids and
// names stay.
func (f fmtr) text(s string) string {
	if f.masked {
		return phText
	}
	if !f.normalize || s == "" {
		return s
	}
	s = reFingerprint.ReplaceAllString(s, phFinger)
	s = reTimelinePoint.ReplaceAllString(s, "T+"+phMS)
	s = reSamplesOf.ReplaceAllString(s, phCount+" of "+phCount+" samples")
	s = reOKFailed.ReplaceAllString(s, phCount+" ok, "+phCount+" failed")
	s = reSamples.ReplaceAllString(s, phCount+" samples")
	return reGoDuration.ReplaceAllString(s, phDuration)
}

// quoted is sep and the first line of a text, "" when it has none.
func (f fmtr) quoted(sep, s string) string {
	if f.masked {
		return sep + phText
	}
	if l := firstLine(s); l != "" {
		return sep + f.text(l)
	}
	return ""
}

// statuses formats HTTP statuses: "401", "0 (no response), 401".
func statuses(codes []int) string {
	if len(codes) == 0 {
		return "—"
	}
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = status(c)
	}
	return strings.Join(parts, ", ")
}

func status(c int) string {
	if c == 0 {
		return "no response"
	}
	return strconv.Itoa(c)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
