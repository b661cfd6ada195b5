package reinit

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// DeleteUsers deletes, inside tx, the users whose cfg.UsernameColumn holds
// one of names and every row that hangs off them, by the rules the reinit
// follows (a NOT NULL foreign key deletes the row, a nullable one is set to
// NULL, a row of a protected table refuses). A rehearsal removes the
// accounts it created this way; the admin is never among them.
func DeleteUsers(ctx context.Context, tx pgx.Tx, cfg Config, names []string) ([]TableEffect, error) {
	cfg = cfg.withDefaults()
	cat, users, err := usersOf(ctx, tx, cfg)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == cfg.AdminUsername {
			return nil, fmt.Errorf("reinit: refusing to delete the admin %q", n)
		}
	}
	w := newWalker(ctx, tx, cat, cfg.Protected)
	seed := fmt.Sprintf("SELECT %s FROM %s WHERE %s = ANY($1)", pgcatalog.Ident(users.PK()), cat.QualifiedIdent(users.Name), pgcatalog.Ident(cfg.UsernameColumn))
	return deleteCollected(w, users.Name, seed, names)
}

// CreateUsers inserts, inside tx, one user per element of values (column →
// value; columns the table lacks are left out) into cfg.UserTable, every
// other NOT NULL column without a default set to a zero value, and returns
// their ids. The table must have cfg.UsernameColumn and cfg.PasswordColumn.
func CreateUsers(ctx context.Context, tx pgx.Tx, cfg Config, values []map[string]any) ([]int64, error) {
	cfg = cfg.withDefaults()
	cat, users, err := usersOf(ctx, tx, cfg)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, v := range values {
		id, err := insertUser(ctx, tx, cat, users, v)
		if err != nil {
			return nil, fmt.Errorf("create user %v: %w", v[cfg.UsernameColumn], err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// usersOf reads the catalog and finds cfg's users table in it.
func usersOf(ctx context.Context, tx pgx.Tx, cfg Config) (*pgcatalog.Catalog, *pgcatalog.Table, error) {
	cat, err := pgcatalog.Load(ctx, tx, cfg.Schema)
	if err != nil {
		return nil, nil, err
	}
	users, err := userTable(cat, cfg)
	return cat, users, err
}
