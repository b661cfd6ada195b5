// Package reinit empties a system down to its admin user, as the original
// system's `system_reinit --confirm` does: keep (or recreate) the admin with a default
// password, delete every other user and every row that hangs off them, and
// reset the sequences of the emptied tables.
//
// "Hangs off" is learnt from the catalog, the way Django's deletion collector
// follows on_delete: a row whose NOT NULL foreign key points at a deleted row
// is deleted too (CASCADE); a nullable foreign key is set to NULL (SET_NULL);
// rows of a protected table are never touched, so a row they point at cannot
// be deleted and the reinit is refused (PROTECT). Deletion is done with
// explicit, set-wise statements, so it does not depend on ON DELETE clauses
// (Django creates none) and takes time linear in the rows.
package reinit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rehearse-dev/rehearse/internal/rate"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// Config says which table holds users and how the admin is kept.
type Config struct {
	Schema          string // "" = public
	UserTable       string // default "users_user"
	UsernameColumn  string // default "username"
	PasswordColumn  string // default "password"
	AdminUsername   string // default "admin"
	AdminEmail      string // default "admin@edms.local"
	DefaultPassword string // default "test123"
	// Hash turns the default password into what the password column stores.
	Hash func(plain string) (string, error)
	// KeepSequences leaves sequences where they are. The original reinit resets
	// them (the default), which lets the next new row reuse a deleted id.
	KeepSequences bool
	// Protected tables are never touched (token bookkeeping).
	Protected []string
	// AfterApply runs last, in the same transaction: the reference system
	// revokes every token issued so far here.
	AfterApply func(ctx context.Context, tx pgx.Tx) error
	// StatementTimeout and LockTimeout bound, on the server, each statement
	// and each lock wait of the transaction Run or DryRun opens, so that the
	// server ends them even when rehearse is gone. 0 means the default
	// (DefaultStatementTimeout, DefaultLockTimeout), a negative value leaves
	// the server's setting. Apply runs in its caller's transaction and
	// leaves its settings alone.
	StatementTimeout time.Duration
	LockTimeout      time.Duration
	// Progress, when set, is called after each table's rows are deleted
	// and after each foreign key is set to NULL, in the reinit's order.
	Progress func(Progress)
}

// Progress steps reported through Config.Progress.
const (
	StepDeleted = "deleted" // Rows rows of Table deleted
	StepNulled  = "nulled"  // Rows rows of Table had Column set to NULL
)

// Progress is one step of a reinit: what it did to one table, and how long
// it took.
type Progress struct {
	Step   string
	Table  string
	Column string // StepNulled: the foreign key column
	Rows   int64
	Took   time.Duration
}

// RowsPerSecond is the step's rate (0 when it took no measurable time).
func (p Progress) RowsPerSecond() float64 { return rate.PerSecond(p.Rows, p.Took) }

func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.UserTable, "users_user")
	def(&c.UsernameColumn, "username")
	def(&c.PasswordColumn, "password")
	def(&c.AdminUsername, "admin")
	def(&c.AdminEmail, "admin@edms.local")
	def(&c.DefaultPassword, "test123")
	return c
}

// TableEffect is what the reinit does to one table.
type TableEffect struct {
	Table   string `json:"table"`
	Before  int64  `json:"rows_before"`
	Deleted int64  `json:"deleted"`
	Nulled  int64  `json:"nulled,omitempty"` // rows whose nullable FK was set to NULL
}

// SequenceReset records a sequence moved back to max(id)+1.
type SequenceReset struct {
	Sequence string `json:"sequence"`
	Before   int64  `json:"next_before"`
	After    int64  `json:"next_after"`
}

// Plan is the outcome of a reinit (or, for a dry run, what it would do).
type Plan struct {
	DryRun      bool            `json:"dry_run"`
	Tables      []TableEffect   `json:"tables"`
	AdminAction string          `json:"admin_action"` // "kept" or "recreated"
	AdminID     int64           `json:"admin_id"`
	AdminIDWas  *int64          `json:"admin_id_before"`
	Sequences   []SequenceReset `json:"sequences"`
	Took        time.Duration   `json:"took_ns"`
}

// DryRun computes the plan in a transaction that is rolled back: nothing changes.
func DryRun(ctx context.Context, conn *pgx.Conn, cfg Config) (*Plan, error) {
	p, err := inTx(ctx, conn, cfg, false)
	if p != nil {
		p.DryRun = true
	}
	return p, err
}

// Run applies the reinit in its own transaction and commits it.
func Run(ctx context.Context, conn *pgx.Conn, cfg Config) (*Plan, error) {
	return inTx(ctx, conn, cfg, true)
}

// inTx runs Apply in a guarded transaction: when ctx is done the running
// statement is cancelled on the server, not only abandoned by the client.
func inTx(ctx context.Context, conn *pgx.Conn, cfg Config, commit bool) (*Plan, error) {
	defer cancelOnDone(ctx, conn)()
	tx, err := beginGuarded(ctx, conn, cfg.StatementTimeout, cfg.LockTimeout)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.Background())
	p, err := Apply(ctx, tx, cfg)
	if err == nil && commit {
		if err = tx.Commit(ctx); err != nil {
			err = fmt.Errorf("reinit: commit: %w", err)
		}
	}
	if err != nil {
		return nil, explainLimit(ctx, err, cfg.StatementTimeout, cfg.LockTimeout)
	}
	return p, nil
}

// Apply runs the reinit inside tx (the caller commits or rolls back).
func Apply(ctx context.Context, tx pgx.Tx, cfg Config) (*Plan, error) {
	start := time.Now()
	cfg = cfg.withDefaults()
	if cfg.Hash == nil {
		return nil, errors.New("reinit: no password hasher configured")
	}
	cat, err := pgcatalog.Load(ctx, tx, cfg.Schema)
	if err != nil {
		return nil, err
	}
	users, err := userTable(cat, cfg)
	if err != nil {
		return nil, err
	}
	plan := &Plan{}
	var adminWas int64
	err = tx.QueryRow(ctx, fmt.Sprintf("SELECT %s FROM %s WHERE %s = $1", pgcatalog.Ident(users.PK()), cat.QualifiedIdent(users.Name), pgcatalog.Ident(cfg.UsernameColumn)), cfg.AdminUsername).Scan(&adminWas)
	if err == nil {
		plan.AdminIDWas = &adminWas
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	w := newWalker(ctx, tx, cat, cfg.Protected)
	w.progress = cfg.Progress
	if plan.Tables, err = deleteAllBut(w, users, cfg); err != nil {
		return nil, err
	}
	if !cfg.KeepSequences {
		if plan.Sequences, err = resetSequences(ctx, tx, cat, w.order); err != nil {
			return nil, err
		}
	}
	if err := keepAdmin(ctx, tx, cat, users, cfg, plan); err != nil {
		return nil, err
	}
	if cfg.AfterApply != nil {
		if err := cfg.AfterApply(ctx, tx); err != nil {
			return nil, err
		}
	}
	plan.Took = time.Since(start)
	return plan, nil
}

func userTable(cat *pgcatalog.Catalog, cfg Config) (*pgcatalog.Table, error) {
	users, ok := cat.Table(cfg.UserTable)
	if !ok {
		return nil, fmt.Errorf("reinit: no user table %q in schema %q; is this the right database? (set the user table with --user-table)", cfg.UserTable, cat.Schema)
	}
	for _, col := range []string{cfg.UsernameColumn, cfg.PasswordColumn} {
		if _, ok := users.Column(col); !ok {
			return nil, fmt.Errorf("reinit: table %q has no column %q", users.Name, col)
		}
	}
	if users.PK() == "" {
		return nil, fmt.Errorf("reinit: table %q has no single-column primary key", users.Name)
	}
	return users, nil
}

// deleteAllBut deletes every user but the admin and what hangs off them.
func deleteAllBut(w *walker, users *pgcatalog.Table, cfg Config) ([]TableEffect, error) {
	seed := fmt.Sprintf("SELECT %s FROM %s WHERE %s IS DISTINCT FROM $1", pgcatalog.Ident(users.PK()), w.cat.QualifiedIdent(users.Name), pgcatalog.Ident(cfg.UsernameColumn))
	return deleteCollected(w, users.Name, seed, cfg.AdminUsername)
}

// deleteCollected deletes the rows of table that seed selects and what
// hangs off them.
func deleteCollected(w *walker, table, seed string, args ...any) ([]TableEffect, error) {
	if err := w.collect(table, seed, args...); err != nil {
		return nil, err
	}
	off, err := w.skipTriggers()
	if err != nil {
		return nil, err
	}
	// With the triggers off, the deletes fire no per-row foreign-key
	// trigger; checkLeftovers then checks the foreign keys set-wise.
	role := func(r string) error {
		if !off {
			return nil
		}
		_, err := w.tx.Exec(w.ctx, "SET LOCAL session_replication_role = "+r)
		return err
	}
	if err := role("replica"); err != nil {
		return nil, err
	}
	effects, err := w.apply()
	if err == nil {
		err = role("origin")
	}
	if err != nil {
		return nil, err
	}
	if err := w.checkLeftovers(off); err != nil {
		return nil, err
	}
	return effects, w.dropTemps()
}

// keepAdmin resets the admin's password and flags, or recreates the admin.
func keepAdmin(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, users *pgcatalog.Table, cfg Config, plan *Plan) error {
	hash, err := cfg.Hash(cfg.DefaultPassword)
	if err != nil {
		return fmt.Errorf("reinit: hash the default password: %w", err)
	}
	if plan.AdminIDWas != nil {
		plan.AdminAction, plan.AdminID = "kept", *plan.AdminIDWas
		return updateAdmin(ctx, tx, cat, users, cfg, hash)
	}
	plan.AdminAction = "recreated"
	plan.AdminID, err = createAdmin(ctx, tx, cat, users, cfg, hash)
	return err
}

// resetSequences moves each sequence of the emptied tables back to
// max(id)+1, as the original reinit does ("Database sequence was reset!").
func resetSequences(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, tables []string) ([]SequenceReset, error) {
	var out []SequenceReset
	sorted := append([]string(nil), tables...)
	sort.Strings(sorted)
	for _, table := range sorted {
		for _, s := range cat.Tables[table].Sequences {
			r := SequenceReset{Sequence: s.Name}
			err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM %s), (SELECT COALESCE(max(%s)::bigint, 0) + 1 FROM %s)`,
				s.Name, pgcatalog.Ident(s.Column), cat.QualifiedIdent(table))).Scan(&r.Before, &r.After)
			if err != nil {
				return nil, err
			}
			// ALTER SEQUENCE is transactional (setval is not): a reinit that
			// rolls back leaves the sequence where it was.
			if _, err := tx.Exec(ctx, fmt.Sprintf(`ALTER SEQUENCE %s RESTART WITH %d`, s.Name, r.After)); err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func updateAdmin(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, users *pgcatalog.Table, cfg Config, hash string) error {
	set := fmt.Sprintf("%s = $1", pgcatalog.Ident(cfg.PasswordColumn))
	for _, flag := range []string{"is_staff", "is_superuser", "is_active"} {
		if _, ok := users.Column(flag); ok {
			set += fmt.Sprintf(", %s = true", pgcatalog.Ident(flag))
		}
	}
	_, err := tx.Exec(ctx, fmt.Sprintf("UPDATE %s SET %s WHERE %s = $2", cat.QualifiedIdent(users.Name), set, pgcatalog.Ident(cfg.UsernameColumn)), hash, cfg.AdminUsername)
	return err
}

func createAdmin(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, users *pgcatalog.Table, cfg Config, hash string) (int64, error) {
	id, err := insertUser(ctx, tx, cat, users, map[string]any{
		"email":            cfg.AdminEmail,
		"is_staff":         true,
		"is_superuser":     true,
		"is_active":        true,
		cfg.UsernameColumn: cfg.AdminUsername,
		cfg.PasswordColumn: hash,
	})
	if err != nil {
		return 0, fmt.Errorf("reinit: recreate admin: %w", err)
	}
	return id, nil
}

// insertUser inserts a user with the values given for its columns (those
// the table lacks are left out) and a zero value for every other NOT NULL
// column without a default, as Django's model defaults would fill them.
func insertUser(ctx context.Context, tx pgx.Tx, cat *pgcatalog.Catalog, users *pgcatalog.Table, known map[string]any) (int64, error) {
	var cols []string
	var vals []any
	var ph []string
	for _, c := range users.Columns {
		v, ok := known[c.Name]
		if !ok {
			if !c.NotNull || c.HasDefault {
				continue
			}
			v = zeroFor(c.Type)
		}
		cols = append(cols, c.Name)
		vals = append(vals, v)
		ph = append(ph, fmt.Sprintf("$%d", len(vals)))
	}
	var id int64
	err := tx.QueryRow(ctx, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) RETURNING %s::bigint", cat.QualifiedIdent(users.Name), pgcatalog.ColumnList(cols), joinComma(ph), pgcatalog.Ident(users.PK())), vals...).Scan(&id)
	return id, err
}

func zeroFor(typ string) any {
	switch typ {
	case "bool":
		return false
	case "int2", "int4", "int8", "float4", "float8", "numeric":
		return 0
	case "timestamptz", "timestamp", "date":
		return time.Now().UTC()
	}
	return ""
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
