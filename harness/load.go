package harness

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/rehearse-dev/rehearse/edms/server"
	"github.com/rehearse-dev/rehearse/fixtures"
	"github.com/rehearse-dev/rehearse/pg/provider"
	"github.com/rehearse-dev/rehearse/results"
)

// DefaultProbeInterval is how often a probe samples unless it says otherwise.
const DefaultProbeInterval = 10 * time.Millisecond

// DefaultTimeout bounds a scenario unless it says otherwise.
const DefaultTimeout = 60 * time.Second

// LoadFile reads, decodes and validates one scenario file. Every problem is
// reported with file:line:col; nothing is run.
func LoadFile(path string) (*Scenario, error) {
	data, err := readInput("", path, maxFileBytes)
	if err != nil {
		return nil, &InputError{Pos: Pos{File: path}, Message: fmt.Sprintf("cannot read scenario: %v", err)}
	}
	return Parse(path, data)
}

// Parse decodes and validates a scenario from data; file names it in
// errors, and the files the scenario names are looked for in its folder.
func Parse(file string, data []byte) (*Scenario, error) {
	root, err := parseYAML(file, data, "scenario")
	if err != nil {
		return nil, err
	}
	if root == nil {
		return nil, &InputError{Pos: Pos{File: file, Line: 1, Col: 1}, Message: "the file is empty; a scenario needs at least operation: and expect:"}
	}
	var s Scenario
	d := &decoder{file: file}
	d.decode(root, reflectValue(&s))
	if len(d.errs) == 0 {
		d.errs = validate(&s, d.durations)
	}
	if err := d.result(); err != nil {
		return nil, err
	}
	if s.Name == "" {
		s.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	}
	s.Pos = Pos{File: file, Line: 1, Col: 1}
	return &s, nil
}

// LoadPaths loads every .yaml/.yml file under the given files or folders, in
// sorted order. Problems in one file do not stop the others: the errors come
// back together.
func LoadPaths(paths []string) ([]*Scenario, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, &InputError{Pos: Pos{File: p}, Message: "no such file or folder"}
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		matches, _ := filepath.Glob(filepath.Join(p, "*.yaml"))
		more, _ := filepath.Glob(filepath.Join(p, "*.yml"))
		files = append(files, append(matches, more...)...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		return nil, &InputError{Pos: Pos{File: strings.Join(paths, ", ")}, Message: "no scenario files (*.yaml) found"}
	}
	var out []*Scenario
	var errs InputErrors
	names := map[string]string{}
	for _, f := range files {
		s, err := LoadFile(f)
		if err != nil {
			var ie InputErrors
			var one *InputError
			switch {
			case errors.As(err, &ie):
				errs = append(errs, ie...)
			case errors.As(err, &one):
				errs = append(errs, one)
			default:
				errs = append(errs, &InputError{Pos: Pos{File: f}, Message: err.Error()})
			}
			continue
		}
		if prev, dup := names[s.Name]; dup {
			errs = append(errs, &InputError{Pos: s.at("name"), Message: fmt.Sprintf("scenario name %q is also used by %s; names must be unique", clip(s.Name, maxQuoted), prev)})
			continue
		}
		names[s.Name] = f
		out = append(out, s)
	}
	if len(errs) > 0 {
		return out, errs
	}
	return out, nil
}

// validate checks what the types cannot: references between sections,
// exactly-one-of choices, value ranges. It changes nothing but loading a
// target file into s.HTTP; NewPlan resolves the defaults.
func validate(s *Scenario, durations []timed) InputErrors {
	var errs InputErrors
	bad := func(p Pos, format string, args ...any) {
		errs = append(errs, &InputError{Pos: p, Message: fmt.Sprintf(format, args...)})
	}
	validateTimes(s, durations, bad)
	fx, err := fixtures.Get(cmp.Or(s.Fixture, defaultFixture))
	if err != nil {
		bad(s.at("fixture"), "%v", err)
		return errs
	}
	if len(s.Users) > 0 {
		fx = validateUsers(s, bad)
	}
	whose := "fixture " + fx.Name + " has"
	if len(s.Users) > 0 {
		whose = "users: lists"
	}
	sc := &scope{s: s, bad: bad, probes: map[string]*Probe{}, users: func(p Pos, u string) {
		if _, ok := fx.User(u); !ok {
			bad(p, "unknown user %q: %s %s", u, whose, userNames(fx))
		}
	}}
	validateTarget(s, bad, &errs)
	for name, t := range s.Tokens {
		if name == "" {
			bad(t.Pos, "a token needs a name")
		}
		sc.users(t.Pos, t.User)
	}
	validateTokenKinds(s, bad)
	validateOperation(s, sc)
	validateDuring(s, sc, fx, whose)
	for i := range s.Probes {
		p := &s.Probes[i]
		if sc.probes[p.Name] != nil {
			bad(p.Pos, "probe name %q is used twice", p.Name)
		}
		sc.probes[p.Name] = p
		if p.Every != 0 && p.Every.D() < time.Millisecond {
			bad(p.Pos, "probe %q: every must be at least 1ms", p.Name)
		}
		if p.Kind != nil {
			p.Kind.validate(sc)
		}
	}
	if len(s.Expect) == 0 {
		bad(s.at("expect"), "expect: is empty; a scenario must check something")
	}
	for _, e := range s.Expect {
		if e.Check != nil {
			e.Check.validate(sc)
		}
	}
	return errs
}

// Bounds of a scenario's timeout: below the minimum not even its database
// is ready.
const (
	minTimeout = time.Second
	maxTimeout = 24 * time.Hour
)

// validateTimes bounds every duration of the scenario by its timeout, and
// what the runner waits on its own (sampling before and after the
// operation, the pause, the sleeps) too: nothing may outlast the scenario.
func validateTimes(s *Scenario, durations []timed, bad func(Pos, string, ...any)) {
	timeout := cmp.Or(s.Timeout.D(), DefaultTimeout)
	if timeout < minTimeout || timeout > maxTimeout {
		bad(s.at("timeout"), "timeout %s is out of range: give between %s (setting up a scenario takes part of a second) and %s", timeout, minTimeout, maxTimeout)
		return
	}
	over := false
	for _, t := range durations {
		if t.d > timeout {
			over = true
			bad(t.pos, "%s: %s is longer than the scenario's timeout (%s), which ends everything; shorten it, or raise timeout:", t.key, t.d, timeout)
		}
	}
	if over {
		return // the sum below would only say it again
	}
	waits := 2 * probeLead(s.Probes)
	if m := s.Operation.Manual; m != nil {
		waits += m.Pause.D()
	}
	for _, a := range s.During {
		waits += a.Sleep.D()
	}
	if waits >= timeout {
		bad(s.at("timeout"), "the scenario waits %s on its own (3× the slowest probe's every: before and after the operation, the pause, the sleeps), which leaves nothing of its timeout (%s); raise timeout: or wait less", waits, timeout)
	}
}

// validateUsers checks users: and returns them as the scenario's accounts.
func validateUsers(s *Scenario, bad func(Pos, string, ...any)) *fixtures.Fixture {
	if s.Target != TargetHTTP || (s.Seed != "" && s.Seed != "present") {
		bad(s.at("users"), "users: names the accounts of a running system (target: http, seed: present); the embedded system and seed: restore use the fixture's users")
	}
	for _, a := range s.Users {
		if count(a.Password != "", a.PasswordEnv != "") != 1 {
			bad(a.Pos, "user %q: give exactly one of password or password_env", a.Username)
		} else if err := a.passwordSet(); err != nil {
			bad(a.Pos, "%v", err)
		}
	}
	return s.accountsFixture()
}

func validateTarget(s *Scenario, bad func(Pos, string, ...any), errs *InputErrors) {
	switch cmp.Or(s.Target, TargetEmbedded) {
	case TargetEmbedded:
		if s.TargetFile != "" || s.HTTP != nil || s.Seed != "" {
			bad(s.at("target"), "target_file, http and seed describe a running system: set target: http, or remove them")
		}
		oneOf(s.Strategy, strategies, s.at("strategy"), "strategy", bad)
		if _, err := server.ParseDefects(s.Defects); err != nil {
			bad(s.at("defects"), "defects: %v", err)
		}
		if s.Provider != "" && !slices.Contains(provider.Names(), s.Provider) {
			bad(s.at("provider"), "unknown provider %q; expected %s", s.Provider, strings.Join(provider.Names(), ", "))
		}
	case TargetHTTP:
		validateHTTP(s, bad, errs)
		if s.Provider != "" {
			bad(s.at("provider"), "provider: a running system brings its own database; remove it")
		}
	default:
		bad(s.at("target"), "unknown target %q; expected \"embedded\" or \"http\"", s.Target)
	}
}

func validateOperation(s *Scenario, sc *scope) {
	op := s.Operation
	switch {
	case op.RestoreFromFile != nil && op.Manual != nil:
		sc.bad(op.Pos, "operation: give either restore_from_file or manual, not both")
	case op.RestoreFromFile != nil:
		c := op.RestoreFromFile
		if c.As != "" {
			sc.token(c.Pos, c.As)
		}
		if c.BackupFile != "" {
			if f, err := openInput(filepath.Dir(s.Pos.File), resolve(s.Pos.File, c.BackupFile)); err != nil {
				sc.bad(c.Pos, "backup_file: %s: %v", clip(c.BackupFile, maxQuoted), err)
			} else {
				f.Close()
			}
		}
		if s.Strategy == string(results.Atomic) && len(s.During) > 0 {
			sc.bad(s.During[0].Pos, "during: the atomic strategy has no window between reinit and restore, so these actions would never run; remove them or use two-phase")
		}
	case op.Manual != nil:
		oneOf(op.Manual.Strategy, strategies, op.Manual.Pos, "strategy", sc.bad)
	default:
		sc.bad(op.Pos, "operation: give restore_from_file (the API call) or manual (backup, reinit, restore as steps)")
	}
}

func validateDuring(s *Scenario, sc *scope, fx *fixtures.Fixture, whose string) {
	for _, a := range s.During {
		if count(a.CreateUser != nil, a.Profile != nil, a.Sleep != 0) != 1 {
			sc.bad(a.Pos, "an action is exactly one of create_user, profile, sleep")
			continue
		}
		if a.CreateUser != nil {
			if _, taken := fx.User(a.CreateUser.Username); taken {
				sc.bad(a.CreateUser.Pos, "user %q already exists (%s it); pick a new name", a.CreateUser.Username, whose)
			}
		}
		if a.Profile != nil {
			sc.token(a.Profile.Pos, a.Profile.Token)
		}
	}
}

// validateHTTP checks the parts of a scenario with target http and loads its
// target file.
func validateHTTP(s *Scenario, bad func(Pos, string, ...any), errs *InputErrors) {
	switch {
	case s.TargetFile != "" && s.HTTP != nil:
		bad(s.at("http"), "give target_file or http, not both")
	case s.TargetFile != "":
		dir, path := filepath.Dir(s.Pos.File), resolve(s.Pos.File, s.TargetFile)
		data, err := readInput(dir, path, maxFileBytes)
		if err != nil {
			bad(s.at("target_file"), "target_file: %s: cannot read target file: %v", clip(s.TargetFile, maxQuoted), err)
			return
		}
		tf, err := parseTargetFile(path, data, dir)
		if err != nil {
			var ie InputErrors
			var one *InputError
			switch {
			case errors.As(err, &ie):
				*errs = append(*errs, ie...)
			case errors.As(err, &one):
				*errs = append(*errs, one)
			default:
				bad(s.at("target_file"), "target_file: %v", err)
			}
			return
		}
		s.HTTP = tf
	case s.HTTP != nil:
		s.HTTP.dir, s.HTTP.root = filepath.Dir(s.Pos.File), filepath.Dir(s.Pos.File)
		s.HTTP.check(bad)
	default:
		// Everything defaults to the DRF + simplejwt contract; the base URL may come
		// from rehearse rehearse --target.
		s.HTTP = &TargetFile{dir: filepath.Dir(s.Pos.File), root: filepath.Dir(s.Pos.File)}
	}
	if s.Strategy != "" {
		bad(s.at("strategy"), "strategy: a running system's strategy is its own setting; remove it (the report says which behaviour was observed)")
	}
	if len(s.Defects) > 0 {
		bad(s.at("defects"), "defects: only the embedded system can be started with defects (for a server: rehearse serve --defect NAME)")
	}
	if s.Operation.Manual != nil {
		bad(s.Operation.Manual.Pos, "manual: the 3-step path runs rehearse's own engine on the database; a running system is rehearsed through its restore_from_file call")
	}
	oneOf(s.Seed, []string{"present", "restore"}, s.at("seed"), "seed", bad)
}

// Files a scenario names are read only if they are regular files (a FIFO
// or a device is refused before it is opened, so nothing waits on it), of
// bounded size, and only inside the scenario's folder: one elsewhere (by an
// absolute path, .. or a symlink) must be named on the command line.

// openInput opens path for reading if it is a regular file and, unless root
// is "", inside the folder root. Its errors name no path: the caller does.
func openInput(root, path string) (*os.File, error) {
	name, stat := path, os.Stat
	open := func(name string) (*os.File, error) { return os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0) }
	if root != "" {
		rel, err := within(root, path)
		if err != nil {
			return nil, err
		}
		r, err := os.OpenRoot(root)
		if err != nil {
			return nil, reason(err)
		}
		defer r.Close()
		name, stat = rel, r.Stat // and the root refuses symlinks that lead out
		open = func(name string) (*os.File, error) { return r.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0) }
	}
	st, err := stat(name)
	if err != nil {
		return nil, reason(err)
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(st.Mode())
	}
	f, err := open(name)
	if err != nil {
		return nil, reason(err)
	}
	if st, err = f.Stat(); err != nil || !st.Mode().IsRegular() { // replaced in between
		f.Close()
		return nil, errors.New("it changed while it was opened; it must be a regular file")
	}
	return f, nil
}

// readInput reads a file openInput accepts, of at most limit bytes.
func readInput(root, path string, limit int64) ([]byte, error) {
	f, err := openInput(root, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, reason(err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("it is larger than %d KiB, the most such a file may hold", limit>>10)
	}
	return b, nil
}

// within returns path relative to root, if it stays in root's tree both
// as written and through symlinks.
func within(root, path string) (string, error) {
	absRoot, err1 := filepath.Abs(root)
	absPath, err2 := filepath.Abs(path)
	if err := cmp.Or(err1, err2); err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absRoot, absPath)
	if err == nil && filepath.IsLocal(rel) {
		realRoot, err1 := filepath.EvalSymlinks(absRoot)
		realPath, err2 := filepath.EvalSymlinks(absPath)
		if err1 != nil || err2 != nil {
			return rel, nil // a missing file: stat says so
		}
		if r, err := filepath.Rel(realRoot, realPath); err == nil && filepath.IsLocal(r) {
			return rel, nil
		}
	}
	return "", fmt.Errorf("it is outside the scenario's folder %s; name a file in that folder, or give this one on the command line (rehearse rehearse --backup FILE, --target-file FILE)", clip(absRoot, maxQuoted))
}

// reason is what went wrong with a file, without its path.
func reason(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func notRegular(m fs.FileMode) error {
	what := "not a regular file"
	switch {
	case m.IsDir():
		what = "a folder"
	case m&fs.ModeNamedPipe != 0:
		what = "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeDevice != 0:
		what = "a device"
	}
	return fmt.Errorf("it is %s; only a regular file is read", what)
}

// resolve makes a path given in a file relative to that file's folder.
func resolve(from, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(from), path)
}

// strategies of the engine; the first is the default.
var strategies = []string{"two-phase", "atomic"}

// oneOf reports a value outside allowed ("" is allowed: it means the
// first, the default).
func oneOf(v string, allowed []string, p Pos, what string, bad func(Pos, string, ...any)) {
	if v != "" && !slices.Contains(allowed, v) {
		bad(p, "unknown %s %q; expected %s", what, v, strings.Join(allowed, " or "))
	}
}

func count(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func userNames(f *fixtures.Fixture) string {
	var names []string
	for i, u := range f.Users {
		if i == 8 {
			names = append(names, "...")
			break
		}
		names = append(names, u.Username)
	}
	return strings.Join(names, ", ")
}
