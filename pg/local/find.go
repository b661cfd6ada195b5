package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// EnvBinDir names the environment variable that, when set, is the only place
// FindBinDir looks for the PostgreSQL server binaries.
const EnvBinDir = "REHEARSE_PG_BIN"

// debianRoot is where Debian/Ubuntu packages install one bin dir per major version.
const debianRoot = "/usr/lib/postgresql"

// requiredBins are the programs pglocal executes. (pg_ctl is not needed: the
// postmaster is exec'd directly.)
var requiredBins = []string{"initdb", "postgres"}

const installHint = "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql-15; " +
	"Fedora: dnf install postgresql-server; macOS: brew install postgresql@15) " +
	"or set " + EnvBinDir + " to the directory holding initdb and postgres"

// FindBinDir returns the directory holding the PostgreSQL server binaries
// (initdb and postgres). If $REHEARSE_PG_BIN is set it is the only candidate.
// Otherwise it looks at the postgres found in $PATH (symlinks resolved), then
// at /usr/lib/postgresql/*/bin, newest major version first. The error lists
// every place it looked and says how to install PostgreSQL.
func FindBinDir() (string, error) {
	if d := os.Getenv(EnvBinDir); d != "" {
		if err := checkBinDir(d); err != nil {
			return "", fmt.Errorf("pglocal: %s=%q is not usable: %v; point it at the directory "+
				"holding initdb and postgres (for example %s/15/bin), or unset it to search $PATH and %s/*/bin",
				EnvBinDir, d, err, debianRoot, debianRoot)
		}
		return filepath.Abs(d)
	}

	var looked []string
	if p, err := exec.LookPath("postgres"); err == nil {
		cands := []string{filepath.Dir(p)}
		if r, err := filepath.EvalSymlinks(p); err == nil && filepath.Dir(r) != cands[0] {
			// Prefer the real directory: a stable cache key, and initdb may
			// only live next to the real binary.
			cands = append([]string{filepath.Dir(r)}, cands...)
		}
		for _, d := range cands {
			err := checkBinDir(d)
			if err == nil {
				return filepath.Abs(d)
			}
			looked = append(looked, fmt.Sprintf("$PATH: %s (%v)", d, err))
		}
	} else {
		looked = append(looked, "$PATH: no postgres executable")
	}

	dirs := debianBinDirs()
	if len(dirs) == 0 {
		looked = append(looked, debianRoot+"/*/bin: none")
	}
	for _, d := range dirs {
		err := checkBinDir(d)
		if err == nil {
			return d, nil
		}
		looked = append(looked, fmt.Sprintf("%s (%v)", d, err))
	}
	return "", fmt.Errorf("pglocal: PostgreSQL server binaries not found (looked in $%s: unset; %s); %s",
		EnvBinDir, strings.Join(looked, "; "), installHint)
}

// debianBinDirs lists /usr/lib/postgresql/*/bin, newest version first.
func debianBinDirs() []string {
	dirs, _ := filepath.Glob(filepath.Join(debianRoot, "*", "bin"))
	return newestFirst(dirs)
}

// newestFirst sorts <root>/<version>/bin directories by version, newest
// first (15.2 before 15 before 10 before 9.6).
func newestFirst(dirs []string) []string {
	key := func(d string) []int {
		var v []int
		for _, p := range strings.Split(filepath.Base(filepath.Dir(d)), ".") {
			n, err := strconv.Atoi(p)
			if err != nil {
				break
			}
			v = append(v, n)
		}
		return v
	}
	slices.SortStableFunc(dirs, func(a, b string) int { return slices.Compare(key(b), key(a)) })
	return dirs
}

func checkBinDir(d string) error {
	fi, err := os.Stat(d)
	if err != nil {
		return errors.Unwrap(err) // "no such file or directory", without repeating the path
	}
	if !fi.IsDir() {
		return errors.New("not a directory")
	}
	var missing []string
	for _, name := range requiredBins {
		fi, err := os.Stat(filepath.Join(d, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no executable %s in it", strings.Join(missing, " or "))
	}
	return nil
}

type binVersion struct {
	short string // "15.18"
	full  string // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
}

var versions sync.Map // bin dir -> binVersion

// versionOf runs `postgres -V` once per bin dir per process. (--version is
// answered before postgres' refuse-to-run-as-root check.)
func versionOf(ctx context.Context, binDir string) (binVersion, error) {
	if v, ok := versions.Load(binDir); ok {
		return v.(binVersion), nil
	}
	out, err := exec.CommandContext(ctx, filepath.Join(binDir, "postgres"), "-V").CombinedOutput()
	if err != nil {
		return binVersion{}, fmt.Errorf("pglocal: %s -V failed: %v: %s; check the PostgreSQL installation or set %s",
			filepath.Join(binDir, "postgres"), err, strings.TrimSpace(string(out)), EnvBinDir)
	}
	v := binVersion{full: strings.TrimSpace(string(out))}
	fields := strings.Fields(v.full)
	for i, f := range fields {
		if f == "(PostgreSQL)" && i+1 < len(fields) {
			v.short = fields[i+1]
			break
		}
	}
	if v.short == "" {
		for _, f := range fields {
			if f != "" && f[0] >= '0' && f[0] <= '9' {
				v.short = f
				break
			}
		}
	}
	if v.short == "" {
		return binVersion{}, fmt.Errorf("pglocal: cannot parse the version from %q (%s -V)", v.full, filepath.Join(binDir, "postgres"))
	}
	versions.Store(binDir, v)
	return v, nil
}
