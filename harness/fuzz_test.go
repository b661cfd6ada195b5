package harness

import (
	"strings"
	"testing"
	"time"
)

// The fuzz targets of the loaders; their seed corpus is in testdata/fuzz
// (and runs with every go test). No input may panic a loader or keep it
// busy: it is accepted, or refused with input errors of bounded size.
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime=10s -fuzzminimizetime=5s ./harness
//	go test -run '^$' -fuzz '^FuzzTargetFile$' -fuzztime=10s -fuzzminimizetime=5s ./harness

// fuzzDir is where fuzzed files say they are: a folder that does not
// exist, so that no file they name can be read.
const fuzzDir = "/nonexistent/rehearse-fuzz/"

func FuzzParse(f *testing.F) {
	for _, s := range []string{"name: x\n", "operation: {manual: {pause: 1s}}\nexpect: [{invariant: sequences}]\n", "[", "a: *b", "probes: [{name: p, every: -1s}]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s *Scenario
		var err error
		quickly(t, func() { s, err = Parse(fuzzDir+"f.yaml", data) })
		if err != nil {
			checkInputError(t, err)
			return
		}
		// What validates, plans.
		if _, err := NewPlan(s, Overrides{}); err != nil {
			t.Fatalf("accepted, but cannot be planned: %v", err)
		}
	})
}

func FuzzTargetFile(f *testing.F) {
	f.Add([]byte("base_url: http://127.0.0.1:8000\nlogin: {path: /auth/token/}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var err error
		quickly(t, func() { _, err = parseTargetFile(fuzzDir+"t.yaml", data, fuzzDir) })
		if err != nil {
			checkInputError(t, err)
		}
	})
}

// quickly fails the test if f takes more than two seconds.
func quickly(t *testing.T, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the loader is still busy after 2s")
	}
}

// checkInputError fails unless err is input errors within the limits.
func checkInputError(t *testing.T, err error) {
	t.Helper()
	if !IsInputError(err) {
		t.Fatalf("error %T is not an input error: %v", err, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) > maxErrors+1 {
		t.Fatalf("%d errors", len(lines))
	}
	for _, l := range lines {
		if len(l) > len(fuzzDir)+len("t.yaml:1000000:1000000: ")+maxMessage*4 { // a character is at most 4 bytes
			t.Fatalf("an error of %d bytes: %.200s…", len(l), l)
		}
	}
}
