package harness

import (
	"bytes"
	"cmp"
	"fmt"
	"path/filepath"

	"github.com/rehearse-dev/rehearse/edms/server"
	"github.com/rehearse-dev/rehearse/internal/loopback"
)

// TargetFile describes a running system to rehearse against: where it is,
// how it speaks, and optionally its database. Every key is optional; the
// defaults are the DRF + simplejwt contract (docs/targets/drf-simplejwt.yaml
// writes every one of them out).
type TargetFile struct {
	Pos Pos `yaml:"-" json:"-"`
	// Keys holds where each top-level value is, for errors about it.
	Keys map[string]Pos `yaml:"-" json:"-"`
	dir  string         // relative paths in the file start here
	// root is the folder the files it names must stay in: the scenario's
	// ("" for a target file named on the command line).
	root string
	// Base URL of the system; only loopback addresses are accepted.
	BaseURL string `yaml:"base_url" json:"base_url,omitempty"`
	// DSN of the system's database, for seeding and for the database invariants.
	DSN string `yaml:"dsn" json:"dsn,omitempty"`
	// The login endpoint.
	Login LoginEndpoint `yaml:"login" json:"login,omitempty"`
	// The endpoint that authenticates a token.
	Profile ProfileEndpoint `yaml:"profile" json:"profile,omitempty"`
	// The restore endpoint.
	Restore RestoreEndpoint `yaml:"restore" json:"restore,omitempty"`
	// The refresh endpoint (simplejwt's TokenRefreshView): POST {refresh} → {access}.
	Refresh RefreshEndpoint `yaml:"refresh" json:"refresh,omitempty"`
	// The session login, for tokens of kind session.
	SessionLogin SessionLoginEndpoint `yaml:"session_login" json:"session_login,omitempty"`
	// DRF's obtain_auth_token, for tokens of kind drf_token.
	DRFToken DRFTokenEndpoint `yaml:"drf_token" json:"drf_token,omitempty"`
	// How rehearse takes the backup it uploads (with a database): which models,
	// under which labels, or a command of the app's that writes it.
	Backup BackupSpec `yaml:"backup" json:"backup,omitempty"`
	// The admin account the reinit keeps.
	Admin AdminAccount `yaml:"admin" json:"admin,omitempty"`
	// The table of users (Django's AUTH_USER_MODEL table; default users_user).
	UsersTable string `yaml:"users_table" json:"users_table,omitempty"`
	// The users table's column a login matches: the user model's USERNAME_FIELD
	// (default username; "email" for a model that logs in by email, with
	// login.username_field: email).
	LoginColumn string `yaml:"login_column" json:"login_column,omitempty"`
	// The users table's column of the password hash (default password).
	PasswordColumn string `yaml:"password_column" json:"password_column,omitempty"`
	// The users table's flag that lets the account rehearse creates make the
	// restore call (default is_staff; with --dsn and no restore_from_file as:).
	StaffColumn string `yaml:"staff_column" json:"staff_column,omitempty"`
	// Name of an environment variable holding the HS256 signing key (simplejwt's
	// SIGNING_KEY, by default Django's SECRET_KEY), for tokens with mint: true.
	SigningKeyEnv string `yaml:"signing_key_env" json:"signing_key_env,omitempty"`
	// A file holding the signing key (relative to this file), instead of signing_key_env.
	SigningKeyFile string `yaml:"signing_key_file" json:"signing_key_file,omitempty"`
}

// LoginEndpoint: POST JSON {username_field, password_field}.
type LoginEndpoint struct {
	Pos           Pos    `yaml:"-" json:"-"`
	Path          string `yaml:"path" json:"path,omitempty"`
	UsernameField string `yaml:"username_field" json:"username_field,omitempty"`
	PasswordField string `yaml:"password_field" json:"password_field,omitempty"`
	// Where the access token is in the response (a dotted path such as "data.access").
	AccessField  string `yaml:"access_field" json:"access_field,omitempty"`
	RefreshField string `yaml:"refresh_field" json:"refresh_field,omitempty"`
}

// ProfileEndpoint: GET with "Authorization: <auth_scheme> <token>".
type ProfileEndpoint struct {
	Pos        Pos    `yaml:"-" json:"-"`
	Path       string `yaml:"path" json:"path,omitempty"`
	AuthScheme string `yaml:"auth_scheme" json:"auth_scheme,omitempty"`
	// Where the response names the authenticated user (default "username"; dotted paths work).
	UsernameField string `yaml:"username_field" json:"username_field,omitempty"`
	// Where the response gives the user's id (default "id").
	IDField string `yaml:"id_field" json:"id_field,omitempty"`
}

// RefreshEndpoint: POST JSON {<login.refresh_field>: token}; the new access
// token is at login.access_field.
type RefreshEndpoint struct {
	Pos  Pos    `yaml:"-" json:"-"`
	Path string `yaml:"path" json:"path,omitempty"`
}

// BackupSpec shapes the backup rehearse takes of a Django app's database.
// Labels come from django_content_type; tables that are no model
// (django_migrations) and what Django's docs leave out of a portable dump
// (contenttypes, auth.permission, sessions, admin.logentry) are left out.
type BackupSpec struct {
	Pos Pos `yaml:"-" json:"-"`
	// A model whose db_table is not <app_label>_<model>: table → app_label.model.
	Models map[string]string `yaml:"models" json:"models,omitempty"`
	// Keep only these models or apps ("auth.user", "documents"), as dumpdata takes them.
	Include []string `yaml:"include" json:"include,omitempty"`
	// Leave out these models or apps.
	Exclude []string `yaml:"exclude" json:"exclude,omitempty"`
	// A command that writes the app's own backup, with {file} for the path to write
	// (e.g. "python manage.py create_backup --output {file}"); run by sh in the
	// target file's folder. Instead of rehearse's own backup.
	Command string `yaml:"command" json:"command,omitempty"`
}

// RestoreEndpoint: POST multipart with the backup and the reinit fields.
type RestoreEndpoint struct {
	Pos              Pos    `yaml:"-" json:"-"`
	Path             string `yaml:"path" json:"path,omitempty"`
	FileField        string `yaml:"file_field" json:"file_field,omitempty"`
	RestoreTypeField string `yaml:"restore_type_field" json:"restore_type_field,omitempty"`
	WithReinitField  string `yaml:"with_reinit_field" json:"with_reinit_field,omitempty"`
	ConfirmField     string `yaml:"confirm_field" json:"confirm_field,omitempty"`
	ConfirmPhrase    string `yaml:"confirm_phrase" json:"confirm_phrase,omitempty"`
}

// AdminAccount is the user the reinit keeps and its default password.
type AdminAccount struct {
	Pos             Pos    `yaml:"-" json:"-"`
	Username        string `yaml:"username" json:"username,omitempty"`
	DefaultPassword string `yaml:"default_password" json:"default_password,omitempty"`
}

// Routes converts the file's endpoint settings (defaults filled in).
func (t *TargetFile) Routes() server.Routes {
	d := server.DefaultRoutes()
	return server.Routes{
		Login: cmp.Or(t.Login.Path, d.Login), Profile: cmp.Or(t.Profile.Path, d.Profile), Restore: cmp.Or(t.Restore.Path, d.Restore),
		Refresh:       cmp.Or(t.Refresh.Path, d.Refresh),
		UsernameField: cmp.Or(t.Login.UsernameField, d.UsernameField), PasswordField: cmp.Or(t.Login.PasswordField, d.PasswordField),
		AccessField: cmp.Or(t.Login.AccessField, d.AccessField), RefreshField: cmp.Or(t.Login.RefreshField, d.RefreshField),
		BackupFileField: cmp.Or(t.Restore.FileField, d.BackupFileField), RestoreTypeField: cmp.Or(t.Restore.RestoreTypeField, d.RestoreTypeField),
		WithReinitField: cmp.Or(t.Restore.WithReinitField, d.WithReinitField), ConfirmField: cmp.Or(t.Restore.ConfirmField, d.ConfirmField),
		ConfirmPhrase: cmp.Or(t.Restore.ConfirmPhrase, d.ConfirmPhrase), AuthScheme: cmp.Or(t.Profile.AuthScheme, d.AuthScheme),
		SessionLogin: cmp.Or(t.SessionLogin.Path, d.SessionLogin), SessionCookie: cmp.Or(t.SessionLogin.Cookie, d.SessionCookie),
		TokenLogin: cmp.Or(t.DRFToken.Path, d.TokenLogin), TokenField: cmp.Or(t.DRFToken.TokenField, d.TokenField),
		TokenScheme: cmp.Or(t.DRFToken.AuthScheme, d.TokenScheme),
	}
}

// LoadTargetFile reads a target file strictly (unknown keys are errors with
// file:line:col). It is named on the command line, so the files it names
// may be anywhere.
func LoadTargetFile(path string) (*TargetFile, error) {
	data, err := readInput("", path, maxFileBytes)
	if err != nil {
		return nil, &InputError{Pos: Pos{File: path}, Message: fmt.Sprintf("cannot read target file: %v", err)}
	}
	return parseTargetFile(path, data, "")
}

// parseTargetFile decodes a target file (path names it in errors); the
// files it names must stay in the folder root ("" for anywhere).
func parseTargetFile(path string, data []byte, root string) (*TargetFile, error) {
	node, err := parseYAML(path, data, "target")
	if err != nil {
		return nil, err
	}
	t := TargetFile{dir: filepath.Dir(path), root: root}
	d := &decoder{file: path}
	if node != nil {
		d.decode(node, reflectValue(&t))
	}
	if len(d.errs) == 0 {
		t.check(func(p Pos, format string, args ...any) {
			d.errs = append(d.errs, &InputError{Pos: p, Message: fmt.Sprintf(format, args...)})
		})
	}
	if err := d.result(); err != nil {
		return nil, err
	}
	return &t, nil
}

// check validates what the types cannot: the base URL is on loopback, the
// signing key file can be read.
func (t *TargetFile) check(bad func(Pos, string, ...any)) {
	if t.BaseURL != "" {
		if err := CheckLoopback(t.BaseURL); err != nil {
			bad(keyPos(t.Keys, "base_url", t.Pos), "%v", err)
		}
	}
	if t.Backup.Command != "" && t.root != "" {
		bad(keyPos(t.Keys, "backup", t.Pos), "backup.command runs a program, so rehearse takes it only from a target file given on the command line (rehearse rehearse --target-file FILE), never from one a scenario names")
	}
	if t.SigningKeyFile != "" {
		if _, err := t.signingKeyFile(); err != nil {
			bad(keyPos(t.Keys, "signing_key_file", t.Pos), "%v", err)
		}
	}
}

// signingKeyFile reads the key in signing_key_file.
func (t *TargetFile) signingKeyFile() ([]byte, error) {
	path := t.SigningKeyFile
	if !filepath.IsAbs(path) {
		path = filepath.Join(t.dir, path)
	}
	b, err := readInput(t.root, path, maxKeyBytes)
	if err != nil {
		return nil, fmt.Errorf("signing_key_file: %s: %v", clip(t.SigningKeyFile, maxQuoted), err)
	}
	return bytes.TrimSpace(b), nil
}

// CheckLoopback refuses any URL whose host is not a loopback address: a
// rehearsal never sends traffic anywhere else.
func CheckLoopback(raw string) error { return loopback.URL(raw) }
