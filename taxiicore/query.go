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
	lower      int64 // exclusive date_added bound in Unix µs (added_after or next); valid when hasLower
	hasLower   bool
	// specDefault applies section 3.4.1's default when match[spec_version]
	// is absent: only each object's latest spec version (listings). DELETE
	// leaves it off: there no match[spec_version] means every spec version.
	specDefault bool
}

// storedSpecVersions are the spec versions parseSTIX stores, oldest first.
// A match[spec_version] naming all of them selects as if it named none
// without the default; the version times cover no finer subsets.
var storedSpecVersions = []string{"2.0", "2.1"}

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
//
// Section 3.4.1 selects among the versions of each object "matching the
// remainder of the request": first those added after added_after (not
// after a next position, which only resumes the same listing), then the
// spec versions (match[spec_version], or else the latest spec version
// among them), then match[version] among what is left. The version times
// (versiontimes.go) turn each step into a condition on the row itself.
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
	// unbeaten: no version outranking the row in col's sense was added
	// after added_after (at all, without it).
	after := ""
	unbeaten := func(col string) string {
		if !q.f.hasAfter {
			return col + " IS NULL"
		}
		if after == "" {
			after = add(fromMicros(q.f.after))
		}
		return "(" + col + " IS NULL OR " + col + " <= " + after + ")"
	}
	// inSpec: last and first are taken within one spec version, or else
	// across every spec version.
	inSpec := false
	switch {
	case len(q.f.specVersions) > 0:
		conds = append(conds, "spec_version = ANY("+add(q.f.specVersions)+")")
		named := 0
		for _, v := range storedSpecVersions {
			if contains(q.f.specVersions, v) {
				named++
			}
		}
		inSpec = named < len(storedSpecVersions)
	case q.specDefault:
		conds = append(conds, unbeaten("newer_spec_at"))
		inSpec = true
	}
	if v := q.f.versions; !v.all {
		var ors []string
		if v.last {
			if inSpec {
				ors = append(ors, unbeaten("newer_in_spec_at"))
			} else {
				ors = append(ors, unbeaten("newer_at"))
			}
		}
		if v.first {
			if inSpec {
				ors = append(ors, unbeaten("older_in_spec_at"))
			} else {
				ors = append(ors, unbeaten("older_at"))
			}
		}
		if len(v.keys) > 0 {
			ors = append(ors, "version_key = ANY("+add(v.keys)+")")
		}
		if len(ors) == 1 {
			conds = append(conds, ors[0])
		} else {
			conds = append(conds, "("+strings.Join(ors, " OR ")+")")
		}
		if v.last && !v.first && len(v.keys) == 0 {
			// Implied by the conditions above (the rows lie after
			// added_after); spelled out so that the planner can use the
			// partial index taxii_objects_latest.
			conds = append(conds, latestIndexPredicate)
		}
	}
	return strings.Join(conds, " AND "), args
}

// latestIndexPredicate is the predicate of the partial index
// taxii_objects_latest (migration 0004), as the planner must see it.
const latestIndexPredicate = "(newer_in_spec_at IS NULL OR newer_in_spec_at < date_added)"
