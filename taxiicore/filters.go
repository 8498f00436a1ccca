package taxiicore

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Query parameters each endpoint understands (the endpoint tables of
// section 5; AMBIG-6). Others are ignored (FIL-05).
var (
	listParams    = []string{"added_after", "limit", "next", "match[id]", "match[type]", "match[version]", "match[spec_version]"}
	objectParams  = []string{"added_after", "limit", "next", "match[version]", "match[spec_version]"}
	versionParams = []string{"added_after", "limit", "next", "match[spec_version]"}
	deleteParams  = []string{"match[version]", "match[spec_version]"}
)

// maxMatchValues bounds a comma list, so that one request cannot ask for an
// unbounded number of index scans.
const maxMatchValues = 100

// versionSel is a parsed match[version]: the union of its parts (FIL-74).
type versionSel struct {
	all, first, last bool
	keys             []string // version_key values of exact versions
}

// filters is a parsed, validated query string.
type filters struct {
	after        int64 // exclusive date_added lower bound in Unix µs; valid when hasAfter
	hasAfter     bool
	limit        int
	next         string
	ids          []string
	types        []string
	specVersions []string
	versions     versionSel
	// normalized is the canonical form of every parameter but next and
	// limit; cursors are bound to it.
	normalized string
}

// badRequest is a client error in the query string, answered with 400.
type badRequest struct{ msg string }

func (e badRequest) Error() string { return e.msg }

func badf(format string, args ...any) error { return badRequest{fmt.Sprintf(format, args...)} }

// parseFilters validates the parameters in allowed. defaultVersion applies
// when match[version] is absent ("last" on listings; "all" on DELETE,
// AMBIG-7). maxPage caps limit.
func parseFilters(rawQuery string, allowed []string, defaultVersion string, maxPage int) (filters, error) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return filters{}, badf("the query string is malformed: %v", err)
	}
	f := filters{limit: maxPage}
	var norm strings.Builder
	for _, name := range allowed {
		vals, present := q[name]
		if !present {
			continue
		}
		if len(vals) != 1 {
			return filters{}, badf("%s may appear only once", name)
		}
		v := vals[0]
		switch name {
		case "added_after":
			t, err := parseAddedAfter(v)
			if err != nil {
				return filters{}, badf("added_after: %v", err)
			}
			f.after, f.hasAfter = microsAfter(t), true
			fmt.Fprintf(&norm, "added_after=%d\x00", f.after)
		case "limit":
			n, err := strconv.Atoi(v)
			if errors.Is(err, strconv.ErrRange) && v[0] != '-' {
				n, err = maxPage, nil // a huge limit is still a positive integer
			}
			if err != nil || n < 1 {
				return filters{}, badf("limit must be a positive integer")
			}
			f.limit = min(n, maxPage)
		case "next":
			if v == "" {
				return filters{}, badf("next must not be empty")
			}
			f.next = v
		case "match[id]", "match[type]", "match[spec_version]":
			list, err := splitList(name, v)
			if err != nil {
				return filters{}, err
			}
			switch name {
			case "match[id]":
				f.ids = list
			case "match[type]":
				f.types = list
			default:
				f.specVersions = list
			}
			fmt.Fprintf(&norm, "%s=%s\x00", name, v)
		case "match[version]":
			sel, err := parseVersionSel(v)
			if err != nil {
				return filters{}, err
			}
			f.versions = sel
			fmt.Fprintf(&norm, "%s=%s\x00", name, v)
		}
	}
	if _, present := q["match[version]"]; !present || !contains(allowed, "match[version]") {
		switch defaultVersion {
		case "all":
			f.versions = versionSel{all: true}
		case "last":
			f.versions = versionSel{last: true}
		}
	}
	f.normalized = norm.String()
	return f, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func splitList(name, v string) ([]string, error) {
	items := strings.Split(v, ",")
	if len(items) > maxMatchValues {
		return nil, badf("%s lists more than %d values", name, maxMatchValues)
	}
	for _, it := range items {
		if it == "" {
			return nil, badf("%s has an empty value (values are separated by a comma, without spaces)", name)
		}
	}
	return items, nil
}

// parseVersionSel applies FIL-72: keywords and exact values may be mixed,
// but none may repeat, and "all" stands alone.
func parseVersionSel(v string) (versionSel, error) {
	items, err := splitList("match[version]", v)
	if err != nil {
		return versionSel{}, err
	}
	var sel versionSel
	seen := map[string]bool{}
	for _, it := range items {
		key := it
		switch it {
		case "all", "first", "last":
		default:
			t, err := parseTimestamp(it)
			if err != nil {
				return versionSel{}, badf("match[version] value %q is neither first, last, all nor a timestamp", it)
			}
			key = versionKey(t)
		}
		if seen[key] {
			return versionSel{}, badf("match[version] repeats %q", it)
		}
		seen[key] = true
		switch it {
		case "all":
			sel.all = true
		case "first":
			sel.first = true
		case "last":
			sel.last = true
		default:
			sel.keys = append(sel.keys, key)
		}
	}
	if sel.all && len(items) > 1 {
		return versionSel{}, badf("match[version]=all cannot be combined with other values")
	}
	return sel, nil
}
