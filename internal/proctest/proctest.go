// Package proctest is what tests about processes share.
package proctest

import (
	"os/exec"
	"testing"
)

// ReapedPID is the pid of a process that ran and was reaped: one that no
// process has, until the kernel hands it out again.
func ReapedPID(t testing.TB) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}
