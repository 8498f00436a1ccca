package taxiicore

import (
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// listQuery is one page of object versions in a collection. Every shape it
// builds is an index range scan ordered by date_added: the primary key
// (collection_id, date_added), the partial index on latest versions, the
// per-type indexes, or the (collection_id, id, version_key) index for
// match[id] and single objects.
type listQuery struct {
	collection uuid.UUID
	oid        string // single-object endpoints
	f          filters
	lower      int64 // exclusive date_added bound in Unix µs; valid when hasLower
	hasLower   bool
}

// sql selects columns (which must begin with date_added) for at most limit
// rows. Several match[type] values become one ordered scan per type merged
// by UNION ALL, since "type = ANY(...)" cannot use the index order.
func (q listQuery) sql(columns string, limit int) (string, []any) {
	where, args := q.where()
	add := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	lim := add(limit)
	if q.oid != "" || len(q.f.types) == 0 {
		return "SELECT " + columns + " FROM taxii_objects WHERE " + where + " ORDER BY date_added LIMIT " + lim, args
	}
	if len(q.f.types) == 1 {
		return "SELECT " + columns + " FROM taxii_objects WHERE " + where + " AND type = " + add(q.f.types[0]) +
			" ORDER BY date_added LIMIT " + lim, args
	}
	parts := make([]string, len(q.f.types))
	for i, t := range q.f.types {
		parts[i] = "(SELECT " + columns + " FROM taxii_objects WHERE " + where + " AND type = " + add(t) +
			" ORDER BY date_added LIMIT " + lim + ")"
	}
	return "SELECT * FROM (" + strings.Join(parts, " UNION ALL ") + ") u ORDER BY date_added LIMIT " + lim, args
}

// where is the filter condition shared by listings and DELETE; match[type]
// is left to sql.
func (q listQuery) where() (string, []any) {
	args := []any{q.collection}
	add := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	conds := []string{"collection_id = $1"}
	switch {
	case q.oid != "":
		conds = append(conds, "id = "+add(q.oid))
	case len(q.f.ids) == 1:
		conds = append(conds, "id = "+add(q.f.ids[0]))
	case len(q.f.ids) > 1:
		conds = append(conds, "id = ANY("+add(q.f.ids)+")")
	}
	if q.hasLower {
		conds = append(conds, "date_added > "+add(fromMicros(q.lower)))
	}
	if len(q.f.specVersions) > 0 {
		conds = append(conds, "spec_version = ANY("+add(q.f.specVersions)+")")
	}
	if v := q.f.versions; !v.all {
		var ors []string
		if v.last {
			ors = append(ors, "is_latest")
		}
		if v.first {
			ors = append(ors, "is_first")
		}
		if len(v.keys) > 0 {
			ors = append(ors, "version_key = ANY("+add(v.keys)+")")
		}
		if len(ors) == 1 {
			conds = append(conds, ors[0])
		} else {
			conds = append(conds, "("+strings.Join(ors, " OR ")+")")
		}
	}
	return strings.Join(conds, " AND "), args
}
