// Package procowner reads what identifies a process on Linux robustly
// against PID reuse: its start time since boot, the boot id and its PID
// namespace. pglocal and pgcontainer label what they leave behind with it,
// so that a later run can tell whether the owner is gone.
package procowner

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// BootID is the kernel's boot id ("" without /proc).
func BootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// PIDNamespace names this process's PID namespace, e.g. "pid:[4026531836]".
func PIDNamespace() string {
	s, _ := os.Readlink("/proc/self/ns/pid")
	return s
}

// Stat returns the state letter and start time (clock ticks since boot) of
// pid from /proc/<pid>/stat.
func Stat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	i := bytes.LastIndexByte(b, ')') // comm may contain spaces and parens
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64) // field 22 of stat(5)
	return f[0][0], start, err
}
