package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rehearse-dev/rehearse/edms/server"
	"github.com/rehearse-dev/rehearse/fixtures"
	"gopkg.in/yaml.v3"
)

// DefaultProbeInterval is how often a probe samples unless it says otherwise.
const DefaultProbeInterval = 10 * time.Millisecond

// DefaultTimeout bounds a scenario unless it says otherwise.
const DefaultTimeout = 60 * time.Second

// Invariants a scenario can expect.
var invariants = []string{"foreign_keys", "sequences", "ids_unchanged", "counts_match_backup", "hashes_match_backup"}

// LoadFile reads, decodes and validates one scenario file. Every problem is
// reported with file:line:col; nothing is run.
func LoadFile(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &InputError{Pos: Pos{File: path}, Message: fmt.Sprintf("cannot read scenario: %v", err)}
	}
	return Parse(path, data)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse decodes and validates a scenario from data; file names it in errors.
func Parse(file string, data []byte) (*Scenario, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil && err != io.EOF {
		msg := err.Error()
		pos := Pos{File: file, Line: 1, Col: 1} // when the parser names no line
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			pos.Line, _ = strconv.Atoi(m[1])
			pos.Col = 1
			msg = m[2]
		}
		return nil, &InputError{Pos: pos, Message: "not valid YAML: " + msg}
	}
	if len(root.Content) == 0 {
		return nil, &InputError{Pos: Pos{File: file, Line: 1, Col: 1}, Message: "the file is empty; a scenario needs at least operation: and expect:"}
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		return nil, &InputError{Pos: Pos{File: file, Line: max(second.Line, 1), Col: 1}, Message: "a scenario file holds one YAML document; move this one to a file of its own"}
	}
	var s Scenario
	d := &decoder{file: file}
	d.decode(&root, reflectValue(&s))
	if len(d.errs) == 0 {
		d.errs = validate(&s)
	}
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool {
			a, b := d.errs[i].Pos, d.errs[j].Pos
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Col < b.Col
		})
		return nil, d.errs
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
			errs = append(errs, &InputError{Pos: s.at("name"), Message: fmt.Sprintf("scenario name %q is also used by %s; names must be unique", s.Name, prev)})
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
// exactly-one-of choices, value ranges. It also fills defaults.
func validate(s *Scenario) InputErrors {
	var errs InputErrors
	bad := func(p Pos, format string, args ...any) {
		errs = append(errs, &InputError{Pos: p, Message: fmt.Sprintf(format, args...)})
	}
	if s.Fixture == "" {
		s.Fixture = "edms-small"
	}
	fx, err := fixtures.Get(s.Fixture)
	if err != nil {
		bad(s.at("fixture"), "%v", err)
		return errs
	}
	if len(s.Users) > 0 {
		if s.Target != TargetHTTP || (s.Seed != "" && s.Seed != "present") {
			bad(s.at("users"), "users: names the accounts of a running system (target: http, seed: present); the embedded system and seed: restore use the fixture's users")
		}
		fx = s.accountsFixture()
		for _, a := range s.Users {
			if count(a.Password != "", a.PasswordEnv != "") != 1 {
				bad(a.Pos, "user %q: give exactly one of password or password_env", a.Username)
			}
		}
	}
	whose := "fixture " + fx.Name + " has"
	if len(s.Users) > 0 {
		whose = "users: lists"
	}
	userOK := func(p Pos, u string) {
		if _, ok := fx.User(u); !ok {
			bad(p, "unknown user %q: %s %s", u, whose, userNames(fx))
		}
	}
	if s.Target == "" {
		s.Target = TargetEmbedded
	}
	switch s.Target {
	case TargetEmbedded:
		if s.TargetFile != "" || s.HTTP != nil || s.Seed != "" {
			bad(s.at("target"), "target_file, http and seed describe a running system: set target: http, or remove them")
		}
		choose(&s.Strategy, strategies, s.at("strategy"), "strategy", bad)
		if _, err := server.ParseDefects(s.Defects); err != nil {
			bad(s.at("defects"), "defects: %v", err)
		}
		if s.Provider != "" && !contains(ProviderNames(), s.Provider) {
			bad(s.at("provider"), "unknown provider %q; expected %s", s.Provider, strings.Join(ProviderNames(), ", "))
		}
	case TargetHTTP:
		validateHTTP(s, bad, &errs)
		if s.Provider != "" {
			bad(s.at("provider"), "provider: a running system brings its own database; remove it")
		}
	default:
		bad(s.at("target"), "unknown target %q; expected \"embedded\" or \"http\"", s.Target)
	}
	if s.Timeout == 0 {
		s.Timeout = Duration(DefaultTimeout)
	}
	for name, t := range s.Tokens {
		if name == "" {
			bad(t.Pos, "a token needs a name")
		}
		userOK(t.Pos, t.User)
	}
	tokenOK := func(p Pos, name string) {
		if _, ok := s.Tokens[name]; !ok {
			bad(p, "unknown token %q; define it under tokens: (known: %s)", name, strings.Join(sortedKeys(s.Tokens), ", "))
		}
	}
	op := s.Operation
	switch {
	case op.RestoreFromFile != nil && op.Manual != nil:
		bad(op.Pos, "operation: give either restore_from_file or manual, not both")
	case op.RestoreFromFile != nil:
		c := op.RestoreFromFile
		if c.As != "" {
			tokenOK(c.Pos, c.As)
		}
		if c.BackupFile != "" {
			c.BackupFile = resolve(s.Pos.File, c.BackupFile)
			if _, err := os.Stat(c.BackupFile); err != nil {
				bad(c.Pos, "backup_file: %v", err)
			}
		}
		if c.WithReinit == nil {
			t := true
			c.WithReinit = &t
		}
		if s.Strategy == "atomic" && len(s.During) > 0 {
			bad(s.During[0].Pos, "during: the atomic strategy has no window between reinit and restore, so these actions would never run; remove them or use two-phase")
		}
	case op.Manual != nil:
		choose(&op.Manual.Strategy, strategies, op.Manual.Pos, "strategy", bad)
	default:
		bad(op.Pos, "operation: give restore_from_file (the API call) or manual (backup, reinit, restore as steps)")
	}
	for _, a := range s.During {
		n := count(a.CreateUser != nil, a.Profile != nil, a.Sleep != 0)
		if n != 1 {
			bad(a.Pos, "an action is exactly one of create_user, profile, sleep")
			continue
		}
		if a.CreateUser != nil {
			if _, taken := fx.User(a.CreateUser.Username); taken {
				bad(a.CreateUser.Pos, "user %q already exists (%s it); pick a new name", a.CreateUser.Username, whose)
			}
			if a.CreateUser.Password == "" {
				a.CreateUser.Password = a.CreateUser.Username + "_pw"
			}
		}
		if a.Profile != nil {
			tokenOK(a.Profile.Pos, a.Profile.Token)
		}
	}
	probes := map[string]*Probe{}
	for i := range s.Probes {
		p := &s.Probes[i]
		if probes[p.Name] != nil {
			bad(p.Pos, "probe name %q is used twice", p.Name)
		}
		probes[p.Name] = p
		if count(p.Login != nil, p.Profile != nil) != 1 {
			bad(p.Pos, "probe %q: give exactly one of login or profile", p.Name)
			continue
		}
		if p.Every == 0 {
			p.Every = Duration(DefaultProbeInterval)
		}
		if p.Every.D() < time.Millisecond {
			bad(p.Pos, "probe %q: every must be at least 1ms", p.Name)
		}
		if p.Login != nil {
			userOK(p.Login.Pos, p.Login.User)
			passwordKind(&p.Login.Password, p.Login.Pos, bad)
		}
		if p.Profile != nil {
			tokenOK(p.Profile.Pos, p.Profile.Token)
		}
	}
	probeOK := func(p Pos, name string) {
		if probes[name] == nil {
			bad(p, "unknown probe %q (known: %s)", name, strings.Join(sortedKeys(probes), ", "))
		}
	}
	if len(s.Expect) == 0 {
		bad(s.at("expect"), "expect: is empty; a scenario must check something")
	}
	for i := range s.Expect {
		e := &s.Expect[i]
		n := count(e.Profile != nil, e.Login != nil, e.Window != nil, e.Probe != nil, e.DuringWindow != nil, e.Invariant != "", e.AdminID != nil, e.PKReuse != nil)
		if n != 1 {
			bad(e.Pos, "an expectation is exactly one of profile, login, window, probe, during_window, invariant, admin_id, pk_reuse (found %d)", n)
			continue
		}
		switch {
		case e.Profile != nil:
			tokenOK(e.Profile.Pos, e.Profile.Token)
			statusOK(e.Profile.Pos, e.Profile.Status, bad)
		case e.Login != nil:
			if e.Login.User != "all" {
				userOK(e.Login.Pos, e.Login.User)
			}
			passwordKind(&e.Login.Password, e.Login.Pos, bad)
			statusOK(e.Login.Pos, e.Login.Status, bad)
		case e.Window != nil:
			probeOK(e.Window.Pos, e.Window.Probe) // max: 0s (or no bounds) means no failure at all
			if e.Window.Min > e.Window.Max && e.Window.Max != 0 {
				bad(e.Window.Pos, "min %s is larger than max %s", e.Window.Min.D(), e.Window.Max.D())
			}
		case e.Probe != nil:
			probeOK(e.Probe.Pos, e.Probe.Name)
		case e.DuringWindow != nil:
			probeOK(e.DuringWindow.Pos, e.DuringWindow.Probe)
			if s.Strategy == "atomic" && s.Operation.RestoreFromFile != nil {
				bad(e.DuringWindow.Pos, "during_window: the atomic strategy has no window to look into")
			}
		case e.Invariant != "":
			if !contains(invariants, e.Invariant) {
				bad(e.Pos, "unknown invariant %q%s; expected one of: %s", e.Invariant, suggest(e.Invariant, invariants), strings.Join(invariants, ", "))
			}
			if c := s.Operation.RestoreFromFile; c != nil && c.BackupFile != "" && backupRelative(e.Invariant) {
				bad(e.Pos, "invariant %s compares with the backup the harness takes just before; with backup_file (another backup) it cannot be judged: remove one of them", e.Invariant)
			}
		}
	}
	return errs
}

// validateHTTP checks the parts of a scenario with target http and loads its
// target file.
func validateHTTP(s *Scenario, bad func(Pos, string, ...any), errs *InputErrors) {
	switch {
	case s.TargetFile != "" && s.HTTP != nil:
		bad(s.at("http"), "give target_file or http, not both")
	case s.TargetFile != "":
		tf, err := LoadTargetFile(resolve(s.Pos.File, s.TargetFile))
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
		s.HTTP.dir = filepath.Dir(s.Pos.File)
		if s.HTTP.BaseURL != "" {
			if err := CheckLoopback(s.HTTP.BaseURL); err != nil {
				bad(s.HTTP.Pos, "%v", err)
			}
		}
	default:
		// Everything defaults to DESIGN.md's contract; the base URL may come
		// from rehearse rehearse --target.
		s.HTTP = &TargetFile{dir: filepath.Dir(s.Pos.File)}
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
	choose(&s.Seed, []string{"present", "restore"}, s.at("seed"), "seed", bad)
}

// resolve makes a path given in a file relative to that file's folder.
func resolve(from, path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(from), path)
}

// backupRelative invariants compare the state after with the backup the
// harness took of the state before.
func backupRelative(invariant string) bool {
	return invariant == "counts_match_backup" || invariant == "hashes_match_backup"
}

// strategies of the engine; the first is the default.
var strategies = []string{"two-phase", "atomic"}

// choose fills an empty *v with the first of allowed and reports any other
// value outside them.
func choose(v *string, allowed []string, p Pos, what string, bad func(Pos, string, ...any)) {
	switch {
	case *v == "":
		*v = allowed[0]
	case !contains(allowed, *v):
		bad(p, "unknown %s %q; expected %s", what, *v, strings.Join(allowed, " or "))
	}
}

func passwordKind(p *string, pos Pos, bad func(Pos, string, ...any)) {
	switch *p {
	case "":
		*p = "original"
	case "original", "default":
	default:
		bad(pos, "password must be \"original\" (the fixture's) or \"default\" (the reinit's test123), got %q", *p)
	}
}

func statusOK(p Pos, status int, bad func(Pos, string, ...any)) {
	if status < 100 || status > 599 {
		bad(p, "status must be an HTTP status code such as 200 or 401, got %d", status)
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

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
