package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rehearse-dev/rehearse/internal/procowner"
)

// initdbArgs are the fixed initdb flags; the locale is tried in order.
var (
	initdbArgs    = []string{"--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8"}
	initdbLocales = []string{"C.UTF-8", "C"}
)

// runAs is the identity the server runs as. cred is nil when we are not root
// (the server then runs as ourselves).
type runAs struct {
	cred     *syscall.Credential
	uid, gid int
}

// serverUser: PostgreSQL refuses to run as root, so as root we switch to the
// "postgres" user for initdb and postgres.
func serverUser() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{uid: os.Geteuid(), gid: os.Getegid()}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runAs{}, fmt.Errorf("pglocal: running as root, but PostgreSQL refuses to run as root and there is no "+
			"\"postgres\" user to run it as (%v); create one (useradd --system --user-group --home-dir /var/lib/postgresql postgres) "+
			"or run as a non-root user", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil || uid == 0 {
		return runAs{}, fmt.Errorf("pglocal: running as root, and the \"postgres\" user (uid %s gid %s) is not usable "+
			"to run the server; give it a non-zero numeric uid or run as a non-root user", u.Uid, u.Gid)
	}
	return runAs{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}, nil
}

func (r runAs) chown(path string) error {
	if r.cred == nil {
		return nil
	}
	return os.Lchown(path, r.uid, r.gid)
}

// checkReachable makes sure the server user may enter every ancestor of dir
// (e.g. TMPDIR=/root/tmp would fail with a cryptic "Permission denied").
func (r runAs) checkReachable(dir string) error {
	if r.cred == nil {
		return nil
	}
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("pglocal: %w", err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := uint32(fi.Mode().Perm())
			var need uint32 = 0o001
			switch {
			case int(st.Uid) == r.uid:
				need = 0o100
			case int(st.Gid) == r.gid:
				need = 0o010
			}
			if mode&need == 0 {
				return fmt.Errorf("pglocal: the server runs as the postgres user (uid %d), which cannot enter %s (mode %#o); "+
					"set TMPDIR to a directory it can reach, such as /tmp", r.uid, d, mode)
			}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// command builds an exec.Cmd for a PostgreSQL program run as the server user.
func (r runAs) command(ctx context.Context, path, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir // as another user, a cwd like /root would make initdb/postgres fail
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	return cmd
}

// childEnv keeps our environment but forces English server messages, which
// the "could not bind" retry relies on.
func childEnv() []string {
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LC_ALL", "LC_MESSAGES", "LANGUAGE":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_MESSAGES=C")
}

// templateDir returns a ready, initdb'd data directory to copy from, building
// and caching it when needed: <base>/rehearse-pg-cache/<version>-<hash>. The
// cache dir is sticky and world-writable like /tmp so that root and other
// users share it; entries are only used when owned by the server uid.
// fresh reports that it was built just now.
func templateDir(ctx context.Context, base, binDir string, v binVersion, r runAs, self procowner.Owner, logf func(string, ...any)) (dir string, fresh bool, err error) {
	final := templatePath(base, binDir, v, r)
	root := filepath.Dir(final)
	if err := os.Mkdir(root, 0o777); err == nil {
		_ = os.Chmod(root, 0o777|os.ModeSticky)
	} else if !errors.Is(err, fs.ErrExist) {
		return "", false, fmt.Errorf("pglocal: create template cache: %w", err)
	}

	if usableTemplate(final, r.uid) {
		logf("pglocal: initdb (cached template %s)", final)
		return final, false, nil
	}
	// Serialize builders (other goroutines and processes): the loser waits
	// and then finds the template ready.
	if unlock, err := lockFile(ctx, final+".lock"); err != nil {
		if ctx.Err() != nil {
			return "", false, fmt.Errorf("pglocal: waiting for another process to build %s: %w", final, ctx.Err())
		}
		logf("pglocal: cannot lock %s.lock (%v); building without the lock", final, err)
	} else {
		defer unlock()
		if usableTemplate(final, r.uid) {
			logf("pglocal: initdb (cached template %s, built by a concurrent Start)", final)
			return final, false, nil
		}
	}
	if exists(final) {
		// Incomplete (e.g. a tmp cleaner ate files) or not ours.
		logf("pglocal: cached template %s is incomplete or not owned by uid %d; rebuilding it", final, r.uid)
		if discardTemplate(final); exists(final) {
			return "", false, fmt.Errorf("pglocal: template cache %s is unusable (incomplete or not owned by uid %d) and cannot be removed; remove it by hand", final, r.uid)
		}
	}

	build, err := os.MkdirTemp(root, filepath.Base(final)+buildInfix+"*")
	if err != nil {
		return "", false, fmt.Errorf("pglocal: create template build dir in %s: %w (remove %s if it belongs to another user)", root, err, root)
	}
	defer os.RemoveAll(build)
	if err := writeOwner(build, self); err != nil {
		return "", false, err
	}
	if err := r.chown(build); err != nil {
		return "", false, fmt.Errorf("pglocal: chown %s to the postgres user: %w", build, err)
	}
	data := filepath.Join(build, "data")
	t0 := time.Now()
	logf("pglocal: initdb %s (first run for PostgreSQL %s; cached for later runs) ...", final, v.short)
	if err := initdb(ctx, binDir, data, build, r); err != nil {
		return "", false, err
	}
	logf("pglocal: initdb done in %v", time.Since(t0).Round(time.Millisecond))
	if err := writeManifest(data, r); err != nil {
		return "", false, err
	}
	if err := os.Rename(data, final); err != nil {
		if usableTemplate(final, r.uid) {
			return final, false, nil // a concurrent process won the race
		}
		return "", false, fmt.Errorf("pglocal: store template %s: %w", final, err)
	}
	return final, true, nil
}

// lockFile takes an exclusive flock on path (created if needed), polling so
// that ctx can interrupt the wait.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o644) // flock works on read-only fds
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// templatePath is <base>/rehearse-pg-cache/<version>-<hash of everything
// that shapes the initdb result>.
func templatePath(base, binDir string, v binVersion, r runAs) string {
	h := sha256.New()
	fmt.Fprintf(h, "layout=2\x00%s\x00%s\x00%s\x00%s\x00uid=%d", binDir, v.full,
		strings.Join(initdbArgs, " "), strings.Join(initdbLocales, ","), r.uid)
	return filepath.Join(base, cacheName, v.short+"-"+hex.EncodeToString(h.Sum(nil))[:12])
}

// discardTemplate moves a damaged template aside and then removes it. If the
// rename fails, another process got there first (and may already have put a
// fresh template in its place), so nothing is removed.
func discardTemplate(dir string) {
	aside := fmt.Sprintf("%s.damaged-%d", dir, os.Getpid())
	if os.Rename(dir, aside) == nil {
		_ = os.RemoveAll(aside)
	}
}

// initdb runs initdb into data (which must not exist), trying each locale.
func initdb(ctx context.Context, binDir, data, cwd string, r runAs) error {
	// Kill initdb if we die: Pdeathsig is tied to the forking thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var msgs []string
	for _, loc := range initdbLocales {
		args := append([]string{"-D", data}, initdbArgs...)
		args = append(args, "--locale="+loc)
		cmd := r.command(ctx, filepath.Join(binDir, "initdb"), cwd, args...)
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("pglocal: initdb: %w", ctx.Err())
		}
		msgs = append(msgs, fmt.Sprintf("--locale=%s: %v: %s", loc, err, tail(string(out), 1500)))
		_ = os.RemoveAll(data)
	}
	return fmt.Errorf("pglocal: initdb failed (%s); check that %s is a complete PostgreSQL installation", strings.Join(msgs, "; "), binDir)
}

func usableTemplate(dir string, uid int) bool {
	fi, err := os.Lstat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid {
		return false
	}
	for _, f := range []string{manifestFile, "PG_VERSION", "global/pg_control", "postgresql.conf", "pg_hba.conf", "base/1/PG_VERSION"} {
		if !exists(filepath.Join(dir, f)) {
			return false
		}
	}
	return !exists(filepath.Join(dir, "postmaster.pid"))
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// manifestFile, in a cached template, records how many files and bytes it
// holds, so that a template partly eaten by a tmp cleaner is detected at
// copy time. It is not copied into clusters.
const manifestFile = "rehearse-manifest"

type manifest struct {
	files int
	bytes int64
}

func (m manifest) String() string { return fmt.Sprintf("files=%d bytes=%d", m.files, m.bytes) }

func writeManifest(dir string, r runAs) error {
	var m manifest
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			m.files++
			m.bytes += info.Size()
		}
		return nil
	})
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, manifestFile), []byte(m.String()+"\n"), 0o600)
	}
	if err == nil {
		err = r.chown(filepath.Join(dir, manifestFile)) // readable when the same server user runs us non-root
	}
	if err != nil {
		return fmt.Errorf("pglocal: write template manifest: %w", err)
	}
	return nil
}

func readManifest(dir string) (manifest, error) {
	var m manifest
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err == nil {
		_, err = fmt.Sscanf(string(b), "files=%d bytes=%d", &m.files, &m.bytes)
	}
	return m, err
}

// errDamagedTemplate: the copy does not match the template's manifest.
var errDamagedTemplate = errors.New("cached template is incomplete")

// copyTemplate copies the data directory src to dst (which must not exist),
// preserving permission bits (PostgreSQL insists on 0700/0750) and symlinks,
// chowning everything to the server user, and checks the result against
// src's manifest.
func copyTemplate(src, dst string, r runAs) error {
	want, err := readManifest(src)
	if err != nil {
		return fmt.Errorf("%w: %v", errDamagedTemplate, err)
	}
	var got manifest
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == manifestFile {
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		perm := info.Mode().Perm()
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, perm); err != nil {
				return err
			}
			if err := os.Chmod(target, perm); err != nil { // undo umask
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := copyFile(path, target, perm); err != nil {
				return err
			}
			got.files++
			got.bytes += info.Size()
		default:
			return nil // sockets, fifos: nothing PostgreSQL needs
		}
		return r.chown(target)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %v", errDamagedTemplate, err) // or moved away meanwhile
	}
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: %s has %v, its manifest says %v", errDamagedTemplate, src, got, want)
	}
	return nil
}

func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil { // copy_file_range where possible
		out.Close()
		return err
	}
	if err := out.Chmod(perm); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// tail returns the last max bytes of s, starting at a line boundary.
func tail(s string, max int) string {
	s = strings.TrimSpace(s)
	if len(s) <= max {
		return s
	}
	s = s[len(s)-max:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "..." + s
}
