package local

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rehearse-dev/rehearse/internal/procowner"
)

const (
	clusterPrefix = "rehearse-pg-"      // os.MkdirTemp pattern is clusterPrefix + "*"
	cacheName     = "rehearse-pg-cache" // lives next to the cluster dirs, never swept as one
	ownerFile     = "rehearse-owner"
	buildInfix    = ".build-" // cache build dirs: <key>.build-*
	// A dir that has no owner file is only swept when it is older than this
	// (the owner file is written right after the dir is created).
	ownerlessGrace = 10 * time.Minute
)

// baseDirs returns where cluster dirs may live: /dev/shm first when it is
// usable (see preferredBase), then os.TempDir().
func baseDirs() []string {
	dirs := []string{"/dev/shm"}
	if t := os.TempDir(); t != "/dev/shm" {
		dirs = append(dirs, t)
	}
	return dirs
}

// preferredBase picks /dev/shm when it is a writable directory with at least
// minShmFree bytes free (Docker's default 64 MB /dev/shm is too small: a
// fresh cluster is ~40 MB and PostgreSQL's dynamic shared memory lives there
// too), else os.TempDir().
func preferredBase() string {
	const minShmFree = 512 << 20
	var st syscall.Statfs_t
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() &&
		syscall.Access("/dev/shm", 0x2|0x1 /* W_OK|X_OK */) == nil &&
		syscall.Statfs("/dev/shm", &st) == nil && st.Bavail*uint64(st.Bsize) >= minShmFree {
		return "/dev/shm"
	}
	return os.TempDir()
}

// owner identifies a process robustly against PID reuse: the start time in
// /proc/<pid>/stat is in clock ticks since boot, so the boot id is kept too.
type owner struct {
	pid   int
	start uint64
	boot  string
	pidns string
}

// Read from /proc by package procowner.
var (
	bootID   = procowner.BootID
	pidNS    = procowner.PIDNamespace
	procStat = procowner.Stat
)

// processAlive reports whether pid runs and is not a zombie. (Orphans are
// reparented to PID 1, which in some containers never reaps them.)
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	state, _, err := procStat(pid)
	return err == nil && state != 'Z' && state != 'X' && state != 'x'
}

func selfOwner() (owner, error) {
	pid := os.Getpid()
	_, start, err := procStat(pid)
	if err != nil {
		return owner{}, fmt.Errorf("pglocal: read own process start time (is /proc mounted?): %w", err)
	}
	return owner{pid: pid, start: start, boot: bootID(), pidns: pidNS()}, nil
}

func writeOwner(dir string, o owner) error {
	s := fmt.Sprintf("pid=%d\nstart=%d\nboot=%s\npidns=%s\ncreated=%s\n",
		o.pid, o.start, o.boot, o.pidns, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(s), 0o644); err != nil {
		return fmt.Errorf("pglocal: write owner file: %w", err)
	}
	return nil
}

func readOwner(dir string) (owner, error) {
	f, err := os.Open(filepath.Join(dir, ownerFile))
	if err != nil {
		return owner{}, err
	}
	defer f.Close()
	var o owner
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "pid":
			o.pid, _ = strconv.Atoi(v)
		case "start":
			o.start, _ = strconv.ParseUint(v, 10, 64)
		case "boot":
			o.boot = v
		case "pidns":
			o.pidns = v
		}
	}
	if o.pid <= 0 {
		return owner{}, fmt.Errorf("owner file without pid")
	}
	return o, nil
}

// ownerState says whether the owner recorded in an owner file still runs.
// It answers "alive" when it cannot tell (another PID namespace).
func ownerState(o owner) (alive bool, why string) {
	if o.boot != "" && o.boot != bootID() {
		return false, "the machine rebooted since"
	}
	if o.pidns != "" && o.pidns != pidNS() {
		return true, "owner is in another PID namespace"
	}
	state, start, err := procStat(o.pid)
	switch {
	case err != nil:
		return false, fmt.Sprintf("owner pid %d is gone", o.pid)
	case state == 'Z' || state == 'X' || state == 'x':
		return false, fmt.Sprintf("owner pid %d is a zombie", o.pid)
	case o.start != 0 && start != o.start:
		return false, fmt.Sprintf("owner pid %d was reused by another process", o.pid)
	}
	return true, ""
}
