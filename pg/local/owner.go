package local

import (
	"fmt"
	"os"
	"path/filepath"
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

func selfOwner() (procowner.Owner, error) {
	o, err := procowner.Self()
	if err != nil {
		return o, fmt.Errorf("pglocal: %w", err)
	}
	return o, nil
}

func writeOwner(dir string, o procowner.Owner) error {
	s := strings.Join(append(o.Fields(), "created="+time.Now().UTC().Format(time.RFC3339)), "\n") + "\n"
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(s), 0o644); err != nil {
		return fmt.Errorf("pglocal: write owner file: %w", err)
	}
	return nil
}

func readOwner(dir string) (procowner.Owner, error) {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return procowner.Owner{}, err
	}
	return procowner.Parse(string(b))
}
