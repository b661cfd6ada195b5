package restore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// contentTypeTable is where Django records every installed model
// (app_label, model); its presence makes a schema a Django one.
const contentTypeTable = "django_content_type"

// djangoOwnTables are the db_tables Django's contrib apps set themselves
// (Meta.db_table), so no default name finds them.
var djangoOwnTables = map[string]string{
	"django_content_type": "contenttypes.contenttype",
	"django_session":      "sessions.session",
	"django_admin_log":    "admin.logentry",
	"django_site":         "sites.site",
	"django_redirect":     "redirects.redirect",
	"django_flatpage":     "flatpages.flatpage",
}

// migrationsTable is Django's record of applied migrations: no model.
const migrationsTable = "django_migrations"

// Where a backup's model labels came from.
const (
	LabelsFromContentTypes = "django_content_type"
	LabelsFromTableNames   = "table names"
)

// SkipReason says why Backup left a table or a model out.
type SkipReason string

const (
	SkipExcludedTable SkipReason = "excluded_table" // BackupOptions.Exclude
	SkipNoPrimaryKey  SkipReason = "no_primary_key" // dumpdata names rows by one pk
	SkipNotAModel     SkipReason = "not_a_model"    // no content type (django_migrations)
	SkipDjangoDefault SkipReason = "django_default" // DjangoDefaultExcludes
	SkipExcluded      SkipReason = "excluded"       // BackupOptions.ExcludeModels
	SkipNotIncluded   SkipReason = "not_included"   // BackupOptions.IncludeModels
	SkipOwnerLeftOut  SkipReason = "owner_left_out" // many-to-many table of a model left out
	SkipNoTable       SkipReason = "no_table"       // a content type with no table of its name
)

// Skipped is one table or model a backup left out, and why.
type Skipped struct {
	Table  string     `json:"table,omitempty"`
	Model  string     `json:"model,omitempty"`
	Reason SkipReason `json:"reason"`
	Detail string     `json:"detail"` // one sentence for people
}

// djangoDefaults are what Django's docs leave out of a dump meant for
// another database (dumpdata -e contenttypes -e auth.Permission, plus the
// per-install state), with why.
var djangoDefaults = []struct{ entry, why string }{
	{"contenttypes", "left out of portable dumps, as Django's docs advise: migrate recreates content types, and loading them over the target's clashes"},
	{"auth.permission", "left out of portable dumps, as Django's docs advise: migrate recreates permissions"},
	{"sessions", "left out of portable dumps: sessions are per-install state, and restoring them logs people back in"},
	{"admin.logentry", "left out of portable dumps: admin history points at content type ids of the source"},
}

// DjangoDefaultExcludes lists the models (or whole apps) a backup of a
// Django schema leaves out unless IncludeModels names them.
func DjangoDefaultExcludes() []string {
	out := make([]string, len(djangoDefaults))
	for i, d := range djangoDefaults {
		out[i] = d.entry
	}
	return out
}

// djangoTableName is Django's default db_table for a model: app_label and
// model name joined by "_", shortened as django.db.backends.utils.truncate_name
// does when longer than PostgreSQL's 63-character identifiers.
func djangoTableName(app, model string) string {
	name := app + "_" + model
	const maxLen, hashLen = 63, 4
	if r := []rune(name); len(r) > maxLen {
		sum := md5.Sum([]byte(name))
		return string(r[:maxLen-hashLen]) + hex.EncodeToString(sum[:])[:hashLen]
	}
	return name
}

// normLabel lowercases the model part of "app.model", as Django's labels
// (label_lower) and dumpdata's model lookup do; app labels keep their case.
func normLabel(s string) string {
	s = strings.TrimSpace(s)
	if app, model, ok := strings.Cut(s, "."); ok {
		return app + "." + strings.ToLower(model)
	}
	return s
}

// loadContentTypes returns the default table name → label of every model in
// django_content_type, and every label it knows; ok is false without the table.
func loadContentTypes(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog) (byTable map[string]string, labels map[string]bool, ok bool, err error) {
	if _, ok := cat.Table(contentTypeTable); !ok {
		return nil, nil, false, nil
	}
	rows, err := q.Query(ctx, "SELECT app_label, model FROM "+cat.QualifiedIdent(contentTypeTable))
	if err != nil {
		return nil, nil, false, fmt.Errorf("read Django's model labels from %s: %w", contentTypeTable, err)
	}
	defer rows.Close()
	byTable, labels = map[string]string{}, map[string]bool{}
	for rows.Next() {
		var app, model string
		if err := rows.Scan(&app, &model); err != nil {
			return nil, nil, false, err
		}
		byTable[djangoTableName(app, model)] = app + "." + model
		labels[app+"."+model] = true
	}
	for table, label := range djangoOwnTables {
		if labels[label] {
			byTable[table] = label
		}
	}
	return byTable, labels, true, rows.Err()
}

// selection decides which labelled models a backup keeps.
type selection struct {
	include, exclude []string
	django           bool
}

func matchesLabel(entry, label string) bool {
	return entry == label || strings.HasPrefix(label, entry+".")
}

// why returns the reason a model is left out, or "" to keep it. An explicit
// include overrides Django's defaults; an explicit exclude overrides both.
func (s selection) why(label string) (SkipReason, string) {
	for _, e := range s.exclude {
		if matchesLabel(e, label) {
			return SkipExcluded, fmt.Sprintf("excluded by %q", e)
		}
	}
	named := false
	for _, e := range s.include {
		named = named || matchesLabel(e, label)
	}
	if len(s.include) > 0 && !named {
		return SkipNotIncluded, "not among the models to include"
	}
	if s.django && !named {
		for _, d := range djangoDefaults {
			if matchesLabel(d.entry, label) {
				return SkipDjangoDefault, d.why + "; include it to keep it"
			}
		}
	}
	return "", ""
}

// checkEntries refuses include/exclude entries that are not "app" or
// "app.model" or that name nothing in the database: a typo would otherwise
// silently keep (or drop) data.
func checkEntries(option string, entries []string, known map[string]bool) ([]string, error) {
	out := make([]string, 0, len(entries))
	for _, raw := range entries {
		e := normLabel(raw)
		if e == "" || strings.Count(e, ".") > 1 || strings.HasPrefix(e, ".") || strings.HasSuffix(e, ".") {
			return nil, fmt.Errorf("%s: %q is not a model label: write app_label or app_label.model (auth or auth.user)", option, raw)
		}
		found := false
		for l := range known {
			found = found || matchesLabel(e, l)
		}
		if !found {
			return nil, fmt.Errorf("%s: %q names no model in this database (it has %s)", option, raw, strings.Join(sortedKeys(known), ", "))
		}
		out = append(out, e)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// explicitLabels returns table → label for the tables whose label is known:
// from django_content_type by Django's default table names, then from the
// caller's mapping, which wins. A mapping that names no table, or (in a
// Django schema) no model, is an error: it would silently leave data out.
func explicitLabels(cat *pgcatalog.Catalog, mapping, cts map[string]string, ctLabels map[string]bool, django bool) (map[string]string, error) {
	out := map[string]string{}
	for table, label := range cts {
		if _, ok := cat.Table(table); ok {
			out[table] = label
		}
	}
	for _, table := range sortedKeys(mapping) {
		label := normLabel(mapping[table])
		app, model, ok := strings.Cut(label, ".")
		if !ok || app == "" || model == "" || strings.Contains(model, ".") {
			return nil, fmt.Errorf("models: table %s: %q is not a model label: write app_label.model (people.person)", table, mapping[table])
		}
		if _, ok := cat.Table(table); !ok {
			return nil, fmt.Errorf("models: schema %s has no table %s (mapped to %s)", cat.Schema, table, label)
		}
		if django && !ctLabels[label] {
			return nil, fmt.Errorf("models: table %s is mapped to %s, which %s does not know (it has %s)", table, label, contentTypeTable, strings.Join(sortedKeys(ctLabels), ", "))
		}
		out[table] = label
	}
	return out, nil
}
