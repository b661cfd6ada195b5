package local

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rehearse-dev/rehearse/internal/procowner"
)

// SweepStale removes cluster directories (rehearse-pg-* under /dev/shm and
// os.TempDir()) and half-built template caches whose owner process is dead,
// first killing a postmaster still running in them. It returns how many
// directories it removed. Directories of live owners, of owners it cannot
// check (another machine or PID namespace: see procowner), and anything it
// has no permission to touch are left alone. logf may be nil. Start calls it.
func SweepStale(logf func(format string, args ...any)) int {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	n := 0
	for _, base := range baseDirs() {
		entries, err := os.ReadDir(base)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := e.Name()
			if !e.IsDir() || !strings.HasPrefix(name, clusterPrefix) || strings.HasPrefix(name, cacheName) {
				continue
			}
			if sweepDir(filepath.Join(base, name), filepath.Join(base, name, "data"), logf) {
				n++
			}
		}
		cache := filepath.Join(base, cacheName)
		entries, _ = os.ReadDir(cache)
		for _, e := range entries {
			if e.IsDir() && strings.Contains(e.Name(), buildInfix) {
				d := filepath.Join(cache, e.Name())
				if sweepDir(d, filepath.Join(d, "data"), logf) {
					n++
				}
			}
		}
	}
	return n
}

// sweepDir removes dir if its owner is dead, killing a postmaster of dataDir first.
func sweepDir(dir, dataDir string, logf func(string, ...any)) bool {
	var why string
	o, err := readOwner(dir)
	if err != nil {
		fi, serr := os.Lstat(dir)
		if serr != nil || time.Since(fi.ModTime()) < ownerlessGrace {
			return false // probably being created right now
		}
		why = "no owner file and older than " + ownerlessGrace.String()
	} else {
		var verdict procowner.Liveness
		if verdict, why = procowner.Here().Check(o); verdict != procowner.Gone {
			return false // alive, or cannot be told from here: leave it
		}
	}
	if pid := stalePostmaster(dataDir); pid > 0 {
		logf("pglocal: killing stale postmaster pid %d of %s", pid, dataDir)
		killPostmaster(pid)
	}
	if err := os.RemoveAll(dir); err != nil {
		logf("pglocal: cannot remove stale %s (%s): %v", dir, why, err)
		return false
	}
	logf("pglocal: removed stale %s (%s)", dir, why)
	return true
}

// stalePostmaster returns the pid from dataDir/postmaster.pid when that
// process is alive and really is a postmaster of dataDir (its command line
// has "-D dataDir", or its cwd is dataDir). It never trusts the file alone.
func stalePostmaster(dataDir string) int {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || pid <= 1 || pid == os.Getpid() || !procowner.Running(pid) {
		return 0
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if cmd, err := os.ReadFile(proc + "/cmdline"); err == nil {
		args := bytes.Split(bytes.TrimRight(cmd, "\x00"), []byte{0})
		for i := 0; i+1 < len(args); i++ {
			if string(args[i]) == "-D" && filepath.Clean(string(args[i+1])) == filepath.Clean(dataDir) {
				return pid
			}
		}
	}
	if cwd, err := os.Readlink(proc + "/cwd"); err == nil && filepath.Clean(cwd) == filepath.Clean(dataDir) {
		return pid
	}
	return 0
}

// killPostmaster asks for an immediate shutdown (SIGQUIT), then SIGKILLs the
// postmaster and its process group (pglocal starts it as a group leader).
func killPostmaster(pid int) {
	group := false
	if pg, err := syscall.Getpgid(pid); err == nil && pg == pid {
		group = true
	}
	_ = syscall.Kill(pid, syscall.SIGQUIT)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !procowner.Running(pid) {
			break
		}
	}
	if group {
		_ = syscall.Kill(-pid, syscall.SIGKILL) // stray backends, if any
	}
	if procowner.Running(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
