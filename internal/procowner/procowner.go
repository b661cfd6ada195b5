// Package procowner answers one question for every sweep in rehearse: is the
// process that created this cluster directory, container or database gone?
// pglocal, pgcontainer and the dsn provider label what they leave behind
// with an Owner (Self), and a later run asks Here().Check(owner).
//
// The rule, in order:
//
//   - nothing to check against (no pid or boot id recorded, or no /proc
//     here): Unknown;
//   - recorded on another machine: Unknown (a shared Docker engine or
//     database server may serve a live run elsewhere);
//   - recorded in an earlier boot of this machine: Gone;
//   - recorded in another PID namespace: Unknown (its pids mean nothing here);
//   - the pid does not exist, is a zombie, or belongs to a process that
//     started at another time (the pid was reused): Gone;
//   - otherwise: Alive.
//
// What a sweep does with Unknown is its own policy (leave it alone, or wait
// until it is old); Gone and Alive are not open to interpretation.
package procowner

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Owner identifies a process robustly against PID reuse: the start time is in
// clock ticks since boot, so the boot id and the machine come with it.
type Owner struct {
	PID     int
	Start   uint64 // clock ticks since boot; 0 = not recorded (reuse goes unnoticed)
	Boot    string // kernel boot id
	Machine string // see MachineID
	PIDNS   string // PID namespace, e.g. "pid:[4026531836]"
}

// Self describes this process. It fails without /proc.
func Self() (Owner, error) {
	pid := os.Getpid()
	_, start, err := Stat(pid)
	if err != nil {
		return Owner{}, fmt.Errorf("read this process's start time (is /proc mounted?): %w", err)
	}
	h := Here()
	return Owner{PID: pid, Start: start, Boot: h.Boot, Machine: h.Machine, PIDNS: h.PIDNS}, nil
}

// String is the text form Parse reads: "pid=1 start=2 boot=… machine=… pidns=…".
func (o Owner) String() string { return strings.Join(o.Fields(), " ") }

// Fields are the key=value pairs of String, for a file with one a line.
// Empty values are left out.
func (o Owner) Fields() []string {
	f := []string{"pid=" + strconv.Itoa(o.PID)}
	if o.Start != 0 {
		f = append(f, "start="+strconv.FormatUint(o.Start, 10))
	}
	for _, kv := range [][2]string{{"boot", o.Boot}, {"machine", o.Machine}, {"pidns", o.PIDNS}} {
		if kv[1] != "" {
			f = append(f, kv[0]+"="+kv[1])
		}
	}
	return f
}

// Parse reads key=value pairs separated by white space (String, or Fields
// one a line); other keys are ignored. It fails when there is no valid pid.
func Parse(text string) (Owner, error) {
	var o Owner
	for _, kv := range strings.Fields(text) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "pid":
			o.PID, _ = strconv.Atoi(v)
		case "start":
			o.Start, _ = strconv.ParseUint(v, 10, 64)
		case "boot":
			o.Boot = v
		case "machine":
			o.Machine = v
		case "pidns":
			o.PIDNS = v
		}
	}
	if o.PID <= 0 {
		return Owner{}, errors.New("no owner pid recorded")
	}
	return o, nil
}

// Host is where an owner is checked: this machine, boot and PID namespace.
type Host struct {
	Machine, Boot, PIDNS string
}

// Here is the host this process runs on.
func Here() Host { return Host{Machine: MachineID(), Boot: BootID(), PIDNS: PIDNamespace()} }

// Liveness is the verdict on an owner.
type Liveness int

const (
	// Unknown: the owner cannot be checked from here.
	Unknown Liveness = iota
	// Alive: the owner runs.
	Alive
	// Gone: the owner has certainly exited.
	Gone
)

func (l Liveness) String() string {
	return [...]string{"unknown", "alive", "gone"}[l]
}

// Check applies the package's rule to o and says why.
func (h Host) Check(o Owner) (Liveness, string) {
	switch {
	case o.PID <= 0 || o.Boot == "":
		return Unknown, "no owner pid and boot id recorded"
	case h.Boot == "":
		return Unknown, "no /proc here to check the owner"
	case o.Machine != "" && o.Machine != h.Machine:
		return Unknown, fmt.Sprintf("owner pid %d ran on another machine (%s)", o.PID, o.Machine)
	case o.Boot != h.Boot:
		return Gone, fmt.Sprintf("owner pid %d ran before the machine rebooted", o.PID)
	case o.PIDNS != h.PIDNS:
		return Unknown, fmt.Sprintf("owner pid %d is in another PID namespace (%s)", o.PID, o.PIDNS)
	}
	state, start, err := Stat(o.PID)
	switch {
	case err != nil && syscall.Kill(o.PID, 0) == syscall.ESRCH:
		return Gone, fmt.Sprintf("owner pid %d is gone", o.PID)
	case err != nil:
		return Unknown, fmt.Sprintf("owner pid %d exists but cannot be read: %v", o.PID, err)
	case zombie(state):
		return Gone, fmt.Sprintf("owner pid %d is a zombie", o.PID)
	case o.Start != 0 && start != o.Start:
		return Gone, fmt.Sprintf("owner pid %d was reused by another process", o.PID)
	}
	return Alive, ""
}

// Running reports whether pid exists and is not a zombie. (Orphans are
// reparented to PID 1, which in some containers never reaps them.)
func Running(pid int) bool {
	if pid <= 0 {
		return false
	}
	state, _, err := Stat(pid)
	return err == nil && !zombie(state)
}

// zombie: exited, not reaped yet ('Z'), or dead ('X', 'x' on old kernels).
func zombie(state byte) bool { return state == 'Z' || state == 'X' || state == 'x' }

// BootID is the kernel's boot id ("" without /proc).
func BootID() string {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(b))
}

// MachineID names this machine: the systemd machine id and the host name,
// so that two machines (or containers) built from one image with the same
// baked-in machine id still differ. "" when neither is known.
func MachineID() string {
	var id []byte
	for _, f := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(f); err == nil && len(bytes.TrimSpace(b)) > 0 {
			id = bytes.TrimSpace(b)
			break
		}
	}
	host, _ := os.Hostname()
	if len(id) == 0 && host == "" {
		return ""
	}
	return strings.Join(strings.Fields(string(id)+"/"+host), "_")
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
