package harness

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/edms"
	"github.com/rehearse-dev/rehearse/edms/password"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
	"github.com/rehearse-dev/rehearse/pg/provider"
	"github.com/rehearse-dev/rehearse/reinit"
	"github.com/rehearse-dev/rehearse/results"
)

// Accounts rehearse creates in a running system's database, so that the
// built-in rehearsal needs no list of the app's users: one per fixture user
// the scenario logs in as, and a staff account for the restore call.
const (
	probeAccountPrefix = "rehearse_probe_"
	staffAccount       = "rehearse_staff"
	// accountEmailDomain is reserved (RFC 2606): no mail can reach it.
	accountEmailDomain = "rehearse.invalid"
)

// withCreatedAccounts rewrites the built-in rehearsal to log in as accounts
// rehearse creates: every fixture user it names becomes rehearse_probe_N,
// a token of the admin (whose password is the system's, unknown) is left
// out with what uses it, and the restore call is made by a staff account.
// The passwords are random and live only in memory.
func withCreatedAccounts(s *Scenario, tf *TargetFile) (staff string, err error) {
	admin := cmp.Or(tf.Admin.Username, "admin")
	emailLogin := strings.Contains(tf.LoginColumn, "email")
	login := func(name string) string {
		if emailLogin {
			return name + "@" + accountEmailDomain
		}
		return name
	}
	names := map[string]string{}
	rename := func(u string) string {
		switch u {
		case "all":
			return u
		case "admin":
			return admin
		}
		if n, ok := names[u]; ok {
			return n
		}
		n := login(fmt.Sprintf("%s%d", probeAccountPrefix, len(names)+1))
		names[u] = n
		return n
	}
	dropped := map[string]bool{}
	for name, t := range s.Tokens {
		if t.User == "admin" {
			dropped[name] = true
			delete(s.Tokens, name)
			continue
		}
		t.User = rename(t.User)
		s.Tokens[name] = t
	}
	// drop renames the user a probe or check logs in as, and reports whether
	// it uses a token of the admin's (dropped above).
	drop := func(kind any) bool {
		switch k := kind.(type) {
		case *LoginProbe:
			k.User = rename(k.User)
		case *ExpectLogin:
			k.User = rename(k.User)
		case *ProfileProbe:
			return dropped[k.Token]
		case *RefreshProbe:
			return dropped[k.Token]
		case *ExpectProfile:
			return dropped[k.Token]
		case *ExpectRefresh:
			return dropped[k.Token]
		}
		return false
	}
	s.Probes = slices.DeleteFunc(s.Probes, func(p Probe) bool { return drop(p.Kind) })
	s.Expect = slices.DeleteFunc(s.Expect, func(e Expectation) bool { return drop(e.Check) })
	s.Users = nil
	staff = login(staffAccount)
	for _, n := range append(slices.Sorted(maps.Values(names)), staff) {
		pw, err := randomPassword()
		if err != nil {
			return "", err
		}
		s.Users = append(s.Users, Account{located: located{s.Pos}, Username: n, Password: pw})
	}
	return staff, nil
}

// randomPassword is 24 random bytes, URL-safe: never written anywhere.
func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// accountsFacts is what the results say of the plan's accounts.
func (p *Plan) accountsFacts() *results.AccountsFacts {
	a := &results.AccountsFacts{Source: p.AccountsSource, Count: len(p.Accounts)}
	switch p.AccountsSource {
	case results.AccountsFixture:
		a.Fixture = p.Fixture
	case results.AccountsScenario:
		a.File = p.File
	case results.AccountsCreated:
		for _, acc := range p.Accounts {
			a.Created = append(a.Created, acc.Username)
		}
		if p.Call != nil {
			a.Staff = p.Call.User
		}
	}
	return a
}

// reinitConfig addresses the users table as the target file describes it.
func (s System) reinitConfig() reinit.Config {
	return reinit.Config{UserTable: s.UsersTable, UsernameColumn: s.LoginColumn, PasswordColumn: s.PasswordColumn,
		AdminUsername: s.Admin, Protected: edms.Protected()}
}

// createAccounts inserts the plan's accounts into the target's database,
// hashed as Django's pbkdf2_sha256 with the iteration count the system's
// own hashes use (so that Django does not re-hash them at a login), and
// returns what removes them again. The removal runs on a connection of its
// own, so that it works after a cancelled run too.
func (ru *run) createAccounts(ctx context.Context) (remove func(), err error) {
	sys := ru.plan.System
	if err := checkAccountColumns(ctx, ru.conn, sys); err != nil {
		return nil, err
	}
	iter, err := appIterations(ctx, ru.conn, sys)
	if err != nil {
		return nil, err
	}
	var rows []map[string]any
	var names []string
	for _, a := range ru.plan.Accounts {
		hash, err := password.Make(a.password, password.NewSalt(), iter)
		if err != nil {
			return nil, err
		}
		rows = append(rows, sys.accountRow(a.Username, hash, a.Username == ru.plan.Call.user()))
		names = append(names, a.Username)
	}
	err = pgx.BeginFunc(ctx, ru.conn, func(tx pgx.Tx) error {
		_, err := reinit.CreateUsers(ctx, tx, sys.reinitConfig(), rows)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("create the rehearsal's accounts in %s: %w (or give the accounts to log in as under users: of a scenario, --scenario)", sys.UsersTable, err)
	}
	return func() { ru.res.Accounts.Removal = removeAccounts(sys, names) }, nil
}

// accountRow is the users-table row of an account whose login (the value of
// the login column) is login: Django's AbstractUser columns a user model
// usually keeps, then the target's login, password and staff columns over
// them. CreateUsers leaves out the columns the table lacks.
func (s System) accountRow(login, hash string, staff bool) map[string]any {
	name, _, _ := strings.Cut(login, "@")
	return map[string]any{"username": name, "email": name + "@" + accountEmailDomain, "is_superuser": false, "is_active": true,
		"date_joined": time.Now().UTC(), s.StaffColumn: staff, s.LoginColumn: login, s.PasswordColumn: hash}
}

// removeAccounts deletes the accounts rehearse created and the rows that
// hang off them (the app's tokens of them, say), with the reinit's rules.
func removeAccounts(sys System, names []string) *results.AccountsRemoval {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := &results.AccountsRemoval{}
	conn, err := connectDB(ctx, sys.dsn)
	if err != nil {
		out.Error = provider.Redact(err.Error(), sys.dsn)
		return out
	}
	defer conn.Close(context.Background())
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		effects, err := reinit.DeleteUsers(ctx, tx, sys.reinitConfig(), names)
		for _, e := range effects {
			switch {
			case e.Table == sys.UsersTable:
				out.Removed = int(e.Deleted)
			case e.Deleted > 0:
				out.Deleted = append(out.Deleted, results.TableRows{Table: e.Table, Rows: e.Deleted})
			}
			if e.Nulled > 0 {
				out.Nulled = append(out.Nulled, results.TableRows{Table: e.Table, Rows: e.Nulled})
			}
		}
		return err
	})
	if err != nil {
		*out = results.AccountsRemoval{Error: err.Error()}
	}
	return out
}

// checkAccountColumns says which target-file key to set when the users
// table lacks what an account needs.
func checkAccountColumns(ctx context.Context, conn *pgx.Conn, sys System) error {
	cat, err := pgcatalog.Load(ctx, conn, "")
	if err != nil {
		return err
	}
	t, ok := cat.Table(sys.UsersTable)
	if !ok {
		return fmt.Errorf("rehearse creates its accounts in the users table, and the database has no table %q: set users_table in the target file (Django's AUTH_USER_MODEL table)", sys.UsersTable)
	}
	for _, c := range []struct{ col, key, what string }{
		{sys.LoginColumn, "login_column", "the column a login matches (USERNAME_FIELD)"},
		{sys.PasswordColumn, "password_column", "the column of the password hash"},
		{sys.StaffColumn, "staff_column", "the flag that lets an account make the restore call"},
	} {
		if _, ok := t.Column(c.col); !ok {
			return fmt.Errorf("rehearse creates its accounts in %s, which has no column %q, %s: set %s in the target file", sys.UsersTable, c.col, c.what, c.key)
		}
	}
	return nil
}

// appIterations is the PBKDF2 iteration count of the system's own
// pbkdf2_sha256 hashes (the admin's first), or Django's fixture default.
func appIterations(ctx context.Context, conn *pgx.Conn, sys System) (int, error) {
	var hash string
	q := `SELECT ` + sys.passwordColumn() + ` FROM ` + sys.usersTable() + ` WHERE ` + sys.passwordColumn() + ` LIKE 'pbkdf2_sha256$%' ORDER BY (` + sys.loginColumn() + ` = $1) DESC LIMIT 1`
	err := conn.QueryRow(ctx, q, sys.Admin).Scan(&hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return password.DefaultIterations, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the system's password hashes: %w", err)
	}
	h, err := password.Parse(hash)
	if err != nil {
		return password.DefaultIterations, nil
	}
	return h.Iterations, nil
}
