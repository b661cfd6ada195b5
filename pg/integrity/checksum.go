package integrity

import (
	"context"
	"fmt"
	"strings"

	pgcatalog "github.com/rehearse-dev/rehearse/pg/catalog"
)

// Checksum fingerprints a table's contents.
type Checksum struct {
	Rows int64  `json:"rows"`
	MD5  string `json:"md5"`
}

// TableChecksums fingerprints every table except those in exclude, ordering
// rows so that equal contents give equal sums. Many-to-many through tables are
// summed without their own id: a restore re-creates those rows (as Django's
// loaddata does) and only the pairs are data.
func TableChecksums(ctx context.Context, q pgcatalog.Querier, cat *pgcatalog.Catalog, exclude []string) (map[string]Checksum, error) {
	skip := map[string]bool{}
	for _, t := range exclude {
		skip[t] = true
	}
	out := map[string]Checksum{}
	for _, name := range cat.TableNames() {
		if skip[name] {
			continue
		}
		t := cat.Tables[name]
		var cols []string
		mm, isM2M := cat.ManyToManyOf(t)
		for _, c := range t.Columns {
			if isM2M && c.Name != mm.OwnerCol && c.Name != mm.TgtCol {
				continue
			}
			cols = append(cols, "t."+pgcatalog.Ident(c.Name))
		}
		row := "ROW(" + strings.Join(cols, ", ") + ")::text"
		var sum Checksum
		err := q.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), COALESCE(md5(string_agg(%s, E'\n' ORDER BY %s)), '') FROM %s t`, row, row, cat.QualifiedIdent(name))).Scan(&sum.Rows, &sum.MD5)
		if err != nil {
			return nil, fmt.Errorf("checksum %s: %w", name, err)
		}
		out[name] = sum
	}
	return out, nil
}
