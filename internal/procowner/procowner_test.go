package procowner

import (
	"os"
	"os/exec"
	"testing"
)

func TestSelfAndGone(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
	state, start, err := Stat(os.Getpid())
	if err != nil || start == 0 || state == 'Z' {
		t.Fatalf("self: state %c start %d err %v", state, start, err)
	}
	if BootID() == "" || PIDNamespace() == "" {
		t.Errorf("boot id %q, pid namespace %q", BootID(), PIDNamespace())
	}
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Stat(cmd.Process.Pid); err == nil {
		t.Errorf("a reaped process still has a stat")
	}
}
