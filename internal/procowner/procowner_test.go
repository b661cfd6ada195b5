package procowner

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rehearse-dev/rehearse/internal/proctest"
)

func needProc(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("needs /proc")
	}
}

func TestSelf(t *testing.T) {
	needProc(t)
	o, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if o.PID != os.Getpid() || o.Start == 0 || o.Boot == "" || o.PIDNS == "" || o.Machine == "" {
		t.Errorf("Self() = %+v: a field is missing", o)
	}
	if strings.ContainsAny(o.Machine, " \t\n") {
		t.Errorf("machine %q has white space: String would not parse back", o.Machine)
	}
	back, err := Parse(o.String())
	if err != nil || back != o {
		t.Errorf("Parse(String()) = %+v, %v; want %+v", back, err, o)
	}
	// pglocal's owner file: one pair a line, with keys Parse does not know.
	back, err = Parse(strings.Join(o.Fields(), "\n") + "\ncreated=2026-01-02T03:04:05Z\n")
	if err != nil || back != o {
		t.Errorf("Parse(Fields one a line) = %+v, %v; want %+v", back, err, o)
	}
	for _, bad := range []string{"", "start=1 boot=b", "pid=x", "pid=-3", "pid=0"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted a record without a valid pid", bad)
		}
	}
}

// startChild starts a process that runs until the test ends.
func startChild(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// zombieChild starts a process that exits at once and is not reaped until
// the test ends.
func zombieChild(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Wait() })
	pid := cmd.Process.Pid
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if state, _, err := Stat(pid); err == nil && state == 'Z' {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d did not become a zombie", pid)
		}
	}
}

func owner(t *testing.T, pid int) Owner {
	t.Helper()
	_, start, err := Stat(pid)
	if err != nil {
		t.Fatal(err)
	}
	h := Here()
	return Owner{PID: pid, Start: start, Boot: h.Boot, Machine: h.Machine, PIDNS: h.PIDNS}
}

func TestCheck(t *testing.T) {
	needProc(t)
	here := Here()
	self, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	live := owner(t, startChild(t).Process.Pid)
	edit := func(o Owner, f func(*Owner)) Owner { f(&o); return o }
	for _, tc := range []struct {
		name string
		host Host
		o    Owner
		want Liveness
		why  string
	}{
		{"this process", here, self, Alive, ""},
		{"a running child", here, live, Alive, ""},
		{"start time not recorded", here, edit(live, func(o *Owner) { o.Start = 0 }), Alive, ""},
		{"machine not recorded", here, edit(live, func(o *Owner) { o.Machine = "" }), Alive, ""},
		{"a child that exited and was reaped", here, edit(self, func(o *Owner) { o.PID = proctest.ReapedPID(t) }), Gone, "is gone"},
		{"a zombie", here, edit(self, func(o *Owner) { o.PID = zombieChild(t); o.Start = 0 }), Gone, "zombie"},
		{"the pid reused by a process with another start time", here, edit(live, func(o *Owner) { o.Start++ }), Gone, "reused"},
		{"an earlier boot of this machine", here, edit(live, func(o *Owner) { o.Boot = "another-boot" }), Gone, "rebooted"},
		{"an earlier boot, machine not recorded", here, edit(live, func(o *Owner) { o.Boot = "another-boot"; o.Machine = "" }), Gone, "rebooted"},
		{"another machine", here, edit(live, func(o *Owner) { o.Boot = "another-boot"; o.Machine = "elsewhere" }), Unknown, "another machine"},
		{"another PID namespace", here, edit(live, func(o *Owner) { o.PIDNS = "pid:[1]"; o.PID = proctest.ReapedPID(t) }), Unknown, "another PID namespace"},
		{"no boot id recorded", here, edit(live, func(o *Owner) { o.Boot = ""; o.PID = proctest.ReapedPID(t) }), Unknown, "no owner pid"},
		{"no /proc here", Host{}, edit(self, func(o *Owner) { o.PID = proctest.ReapedPID(t) }), Unknown, "no /proc"},
	} {
		got, why := tc.host.Check(tc.o)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: Check(%+v) = %s (%q), want %s (%q)", tc.name, tc.o, got, why, tc.want, tc.why)
		}
	}
}

func TestRunning(t *testing.T) {
	needProc(t)
	for _, tc := range []struct {
		name string
		pid  int
		want bool
	}{
		{"this process", os.Getpid(), true},
		{"a running child", startChild(t).Process.Pid, true},
		{"a zombie", zombieChild(t), false},
		{"a reaped child", proctest.ReapedPID(t), false},
		{"pid 0", 0, false},
		{"a negative pid", -1, false},
	} {
		if got := Running(tc.pid); got != tc.want {
			t.Errorf("%s: Running(%d) = %v, want %v", tc.name, tc.pid, got, tc.want)
		}
	}
}
