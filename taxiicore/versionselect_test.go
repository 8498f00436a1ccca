package taxiicore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The version selection of TAXII 2.1 section 3.4.1 (query.go,
// versiontimes.go), checked against modelSelect, a direct reading of the
// rules over the stored rows.

// storedRow is one stored object version as the model sees it.
type storedRow struct {
	id, typ, version, versionKey, spec string
	added                              time.Time
}

func (r storedRow) label() string { return r.id + "@" + r.version }

func readStoredRows(t *testing.T, f *fixture, col string) []storedRow {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT id, type, version, version_key, spec_version, date_added
		FROM taxii_objects WHERE collection_id = $1 ORDER BY date_added`, col)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedRow
	for rows.Next() {
		var r storedRow
		if err := rows.Scan(&r.id, &r.typ, &r.version, &r.versionKey, &r.spec, &r.added); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// selReq is one listing request.
type selReq struct {
	ep       string // objects, manifest, object, versions
	oid      string
	version  string // match[version]; "" for the default
	spec     string // match[spec_version]
	types    string
	ids      string
	after    time.Time // added_after when not zero
	limit    int
	maxLimit int // the server's page size cap
}

func (q selReq) path(col string) string {
	p := "/api1/collections/" + col + "/"
	switch q.ep {
	case "objects":
		p += "objects/"
	case "manifest":
		p += "manifest/"
	case "object":
		p += "objects/" + q.oid + "/"
	case "versions":
		p += "objects/" + q.oid + "/versions/"
	}
	v := url.Values{}
	set := func(name, val string) {
		if val != "" {
			v.Set(name, val)
		}
	}
	if q.ep != "versions" {
		set("match[version]", q.version)
	}
	set("match[spec_version]", q.spec)
	if q.ep == "objects" || q.ep == "manifest" {
		set("match[type]", q.types)
		set("match[id]", q.ids)
	}
	if !q.after.IsZero() {
		set("added_after", formatTimestamp(q.after))
	}
	if q.limit > 0 {
		set("limit", fmt.Sprint(q.limit))
	}
	if len(v) == 0 {
		return p
	}
	return p + "?" + v.Encode()
}

// modelSelect applies section 3.4.1 to rows directly: per object, the
// versions added after added_after, then the spec versions
// (match[spec_version], else the latest one among them), then
// match[version] among what is left (default last; all on versions).
func modelSelect(rows []storedRow, q selReq) []storedRow {
	byID := map[string][]storedRow{}
	for _, r := range rows {
		switch {
		case q.oid != "" && r.id != q.oid,
			q.types != "" && !slices.Contains(strings.Split(q.types, ","), r.typ),
			q.ids != "" && !slices.Contains(strings.Split(q.ids, ","), r.id),
			!q.after.IsZero() && !r.added.After(q.after):
			continue
		}
		byID[r.id] = append(byID[r.id], r)
	}
	version := q.version
	if q.ep == "versions" {
		version = "all"
	} else if version == "" {
		version = "last"
	}
	var out []storedRow
	for _, vers := range byID {
		var narrowed []storedRow
		if q.spec != "" {
			for _, r := range vers {
				if slices.Contains(strings.Split(q.spec, ","), r.spec) {
					narrowed = append(narrowed, r)
				}
			}
		} else {
			top := ""
			for _, r := range vers {
				top = max(top, r.spec)
			}
			for _, r := range vers {
				if r.spec == top {
					narrowed = append(narrowed, r)
				}
			}
		}
		if len(narrowed) == 0 {
			continue
		}
		minKey, maxKey := narrowed[0].versionKey, narrowed[0].versionKey
		for _, r := range narrowed {
			minKey, maxKey = min(minKey, r.versionKey), max(maxKey, r.versionKey)
		}
		for _, r := range narrowed {
			keep := false
			for _, part := range strings.Split(version, ",") {
				switch part {
				case "all":
					keep = true
				case "last":
					keep = keep || r.versionKey == maxKey
				case "first":
					keep = keep || r.versionKey == minKey
				default:
					ts, err := parseTimestamp(part)
					keep = keep || err == nil && versionKey(ts) == r.versionKey
				}
			}
			if keep {
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b storedRow) int { return a.added.Compare(b.added) })
	return out
}

// listAll follows next from the first page of q to the last and checks
// every page against the model: its items, more, next and the
// X-TAXII-Date-Added headers. It returns the labels of everything listed.
func listAll(t *testing.T, f *fixture, col string, rows []storedRow, q selReq) []string {
	t.Helper()
	want := modelSelect(rows, q)
	page := q.maxLimit
	if q.limit > 0 {
		page = min(q.limit, q.maxLimit)
	}
	path := q.path(col)
	if q.oid != "" && !slices.ContainsFunc(rows, func(r storedRow) bool { return r.id == q.oid }) {
		f.expect(req{path: path}, http.StatusNotFound)
		return nil
	}
	var got []string
	for n := 0; ; n++ {
		if n > len(rows)+1 {
			t.Fatalf("%s: more pages than rows", path)
		}
		res := f.expect(req{path: path}, http.StatusOK)
		var body struct {
			More     bool   `json:"more"`
			Next     string `json:"next"`
			Versions []string
			Objects  []struct {
				ID        string `json:"id"`
				Modified  string `json:"modified"`
				Version   string `json:"version"`
				DateAdded string `json:"date_added"`
				MediaType string `json:"media_type"`
			} `json:"objects"`
		}
		if err := json.Unmarshal(res.body, &body); err != nil {
			t.Fatal(err)
		}
		var items []string
		switch q.ep {
		case "versions":
			for _, v := range body.Versions {
				items = append(items, q.oid+"@"+v)
			}
		case "manifest":
			for i, o := range body.Objects {
				items = append(items, o.ID+"@"+o.Version)
				if k := len(got) + i; k < len(want) && (o.DateAdded != formatTimestamp(want[k].added) ||
					o.MediaType != "application/stix+json;version="+want[k].spec) {
					t.Fatalf("%s: manifest record %+v, want %+v", path, o, want[k])
				}
			}
		default:
			for _, o := range body.Objects {
				items = append(items, o.ID+"@"+o.Modified)
			}
		}
		start := len(got)
		end := min(start+page, len(want))
		var wantItems []string
		for _, r := range want[start:end] {
			wantItems = append(wantItems, r.label())
		}
		if !reflect.DeepEqual(items, wantItems) || body.More != (end < len(want)) || (body.Next != "") != body.More {
			t.Fatalf("%s page %d: %v more %v next %q; want %v more %v (all: %v)", path, n, items, body.More, body.Next,
				wantItems, end < len(want), labels(want))
		}
		first, last := res.header.Get("X-TAXII-Date-Added-First"), res.header.Get("X-TAXII-Date-Added-Last")
		if len(items) == 0 && (first != "" || last != "") ||
			len(items) > 0 && (first != formatTimestamp(want[start].added) || last != formatTimestamp(want[end-1].added)) {
			t.Fatalf("%s page %d: X-TAXII-Date-Added-First %q, -Last %q", path, n, first, last)
		}
		got = append(got, items...)
		if !body.More {
			return got
		}
		sep := "?"
		if strings.Contains(q.path(col), "?") {
			sep = "&"
		}
		path = q.path(col) + sep + "next=" + url.QueryEscape(body.Next)
	}
}

func labels(rows []storedRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.label()
	}
	return out
}

func malwareObj(id, spec, modified string) map[string]any {
	o := map[string]any{"type": "malware", "id": id, "created": min("2017-01-27T13:49:53.997Z", modified), "modified": modified,
		"name": "Poison Ivy", "is_family": true}
	if spec != "" {
		o["spec_version"] = spec
	}
	return o
}

func indicatorIn(spec, id, modified string) map[string]any {
	o := indicator(id, "2016-01-01T00:00:00Z", modified)
	if spec == "2.0" {
		delete(o, "spec_version")
	}
	return o
}

// TestIssue17Requests sends the requests of issue 17 through the handler:
// an object with a STIX 2.1 version and a later version written as STIX
// 2.0 (no spec_version).
func TestIssue17Requests(t *testing.T) {
	f := newFixture(t, nil)
	id := "malware--2b2a1a52-0d9b-4a1a-9b57-1ab4a8e0b0f1"
	v21, v20 := "2017-01-27T13:49:53.997Z", "2018-02-23T18:30:00.000Z"
	f.post(colRW, malwareObj(id, "2.1", v21), malwareObj(id, "", v20))
	base := objectsPath(colRW) + id + "/"
	if got := versionsOf(t, f, colRW, id, ""); !reflect.DeepEqual(got, []string{v21}) {
		t.Fatalf("versions: %v, want only the 2.1 version", got)
	}
	cases := map[string]string{
		base + "?match[spec_version]=2.1":     v21,
		base:                                  v21,
		base + "?match[spec_version]=2.0":     v20,
		base + "?match[spec_version]=2.0,2.1": v20, // the latest version of those two spec versions
		objectsPath(colRW):                    v21,
	}
	for path, want := range cases {
		res := f.expect(req{path: path}, http.StatusOK)
		var env struct {
			Objects []map[string]any `json:"objects"`
		}
		if err := json.Unmarshal(res.body, &env); err != nil {
			t.Fatal(err)
		}
		if len(env.Objects) != 1 || env.Objects[0]["modified"] != want {
			t.Fatalf("%s: %s, want the version %s", path, res.body, want)
		}
	}
	if got := versionsOf(t, f, colRW, id, "?match[spec_version]=2.0,2.1"); !reflect.DeepEqual(got, []string{v21, v20}) {
		t.Fatalf("versions of both spec versions: %v", got)
	}
}

// versionHistory posts a fixed history: malware A as in issue 17; indicator
// B in three 2.1 versions arriving newest, oldest, middle; indicator C in a
// 2.0 version and then an older 2.1 one. Each post is its own request, so
// date_added follows the order below.
func versionHistory(t *testing.T, f *fixture) (a, b, c string, rows []storedRow) {
	a, b, c = newID("malware"), newID("indicator"), newID("indicator")
	for _, o := range []map[string]any{
		malwareObj(a, "2.1", "2017-01-01T00:00:00Z"), malwareObj(a, "", "2018-01-01T00:00:00Z"),
		indicatorIn("2.1", b, "2020-01-03T00:00:00Z"), indicatorIn("2.1", b, "2020-01-01T00:00:00Z"), indicatorIn("2.1", b, "2020-01-02T00:00:00Z"),
		indicatorIn("2.0", c, "2020-01-05T00:00:00Z"), indicatorIn("2.1", c, "2020-01-04T00:00:00Z"),
	} {
		f.post(colRW, o)
	}
	return a, b, c, readStoredRows(t, f, colRW)
}

// TestVersionSelectionTable states the rules on the fixed history, with
// the answers written out.
func TestVersionSelectionTable(t *testing.T) {
	f := newFixture(t, nil)
	a, b, c, rows := versionHistory(t, f)
	A1, A2 := a+"@2017-01-01T00:00:00Z", a+"@2018-01-01T00:00:00Z"
	B3, B1, B2 := b+"@2020-01-03T00:00:00Z", b+"@2020-01-01T00:00:00Z", b+"@2020-01-02T00:00:00Z"
	C5, C4 := c+"@2020-01-05T00:00:00Z", c+"@2020-01-04T00:00:00Z"
	addedOf := func(label string) time.Time {
		for _, r := range rows {
			if r.label() == label {
				return r.added
			}
		}
		t.Fatalf("no row %s", label)
		return time.Time{}
	}
	cases := []struct {
		name string
		q    selReq
		want []string
	}{
		{"default: the latest version of the latest spec version", selReq{ep: "objects"}, []string{A1, B3, C4}},
		{"2.1: the latest 2.1 version", selReq{ep: "objects", spec: "2.1"}, []string{A1, B3, C4}},
		{"2.0: the latest 2.0 version", selReq{ep: "objects", spec: "2.0"}, []string{A2, C5}},
		{"both: the latest of either", selReq{ep: "objects", spec: "2.0,2.1"}, []string{A2, B3, C5}},
		{"unknown spec version", selReq{ep: "objects", spec: "2.2"}, nil},
		{"all, latest spec version", selReq{ep: "objects", version: "all"}, []string{A1, B3, B1, B2, C4}},
		{"all, both", selReq{ep: "objects", version: "all", spec: "2.1,2.0"}, []string{A1, A2, B3, B1, B2, C5, C4}},
		{"first", selReq{ep: "objects", version: "first"}, []string{A1, B1, C4}},
		{"first, 2.0", selReq{ep: "objects", version: "first", spec: "2.0"}, []string{A2, C5}},
		{"first,last", selReq{ep: "objects", version: "first,last"}, []string{A1, B3, B1, C4}},
		{"a timestamp", selReq{ep: "objects", version: "2020-01-02T00:00:00.000Z"}, []string{B2}},
		{"a 2.0 timestamp is narrowed away", selReq{ep: "objects", version: "2018-01-01T00:00:00Z"}, nil},
		{"a 2.0 timestamp with 2.0", selReq{ep: "objects", version: "2018-01-01T00:00:00Z", spec: "2.0"}, []string{A2}},
		{"added_after: latest among the later ones", selReq{ep: "objects", after: addedOf(B3)}, []string{B2, C4}},
		{"added_after: first among the later ones", selReq{ep: "objects", after: addedOf(B3), version: "first"}, []string{B1, C4}},
		{"added_after: the latest spec version among the later ones", selReq{ep: "objects", after: addedOf(A1)}, []string{A2, B3, C4}},
		{"added_after: the older version alone", selReq{ep: "objects", after: addedOf(C5)}, []string{C4}},
		{"type", selReq{ep: "objects", types: "malware"}, []string{A1}},
		{"types and 2.0", selReq{ep: "objects", types: "indicator,malware", spec: "2.0"}, []string{A2, C5}},
		{"ids, all", selReq{ep: "objects", ids: b + "," + c, version: "all"}, []string{B3, B1, B2, C4}},
		{"limit 1", selReq{ep: "objects", limit: 1}, []string{A1, B3, C4}},
		{"manifest", selReq{ep: "manifest"}, []string{A1, B3, C4}},
		{"manifest, 2.0, limit 1", selReq{ep: "manifest", spec: "2.0", limit: 1}, []string{A2, C5}},
		{"object", selReq{ep: "object", oid: a}, []string{A1}},
		{"object, 2.0", selReq{ep: "object", oid: a, spec: "2.0"}, []string{A2}},
		{"object, all", selReq{ep: "object", oid: c, version: "all"}, []string{C4}},
		{"versions", selReq{ep: "versions", oid: a}, []string{A1}},
		{"versions, both", selReq{ep: "versions", oid: a, spec: "2.0,2.1"}, []string{A1, A2}},
		{"versions, added_after", selReq{ep: "versions", oid: b, after: addedOf(B3), limit: 1}, []string{B1, B2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.maxLimit = 50
			if got := listAll(t, f, colRW, rows, tc.q); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%s: %v, want %v", tc.q.path(colRW), got, tc.want)
			}
		})
	}
}

// TestVersionSelectionCombinations runs every combination of the
// parameters on the fixed history against the model, following next.
func TestVersionSelectionCombinations(t *testing.T) {
	f := newFixture(t, nil)
	a, b, c, rows := versionHistory(t, f)
	afters := []time.Time{{}, rows[0].added, rows[2].added, rows[5].added.Add(-time.Nanosecond)}
	versions := []string{"", "last", "first", "all", "first,last", "2020-01-02T00:00:00Z", "2018-01-01T00:00:00Z,last"}
	specs := []string{"", "2.1", "2.0", "2.0,2.1"}
	n := 0
	for _, after := range afters {
		for _, spec := range specs {
			for _, limit := range []int{0, 1} {
				for _, version := range versions {
					for _, ep := range []string{"objects", "manifest"} {
						for _, types := range []string{"", "malware", "indicator,malware"} {
							for _, ids := range []string{"", b + "," + c} {
								listAll(t, f, colRW, rows, selReq{ep: ep, version: version, spec: spec, types: types, ids: ids, after: after, limit: limit, maxLimit: 50})
								n++
							}
						}
					}
					for _, oid := range []string{a, b, c} {
						listAll(t, f, colRW, rows, selReq{ep: "object", oid: oid, version: version, spec: spec, after: after, limit: limit, maxLimit: 50})
						n++
					}
				}
				for _, oid := range []string{a, b, c} {
					listAll(t, f, colRW, rows, selReq{ep: "versions", oid: oid, spec: spec, after: after, limit: limit, maxLimit: 50})
					n++
				}
			}
		}
	}
	t.Logf("%d listings checked", n)
}

// TestVersionSelectionProperty compares the core with the model on random
// version histories: several objects, versions in either spec version
// posted in random order and envelopes, some re-posted, some deleted, then
// random listings followed to their end.
func TestVersionSelectionProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("TAXIWAY_TEST_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatal("TAXIWAY_TEST_SEED:", err)
		}
	}
	t.Logf("seed %d (rerun with TAXIWAY_TEST_SEED=%[1]d)", seed)
	rng := rand.New(rand.NewPCG(seed, 17))
	f := newFixture(t, func(c *Config) { c.MaxPageSize = 4 })
	const rounds, maxObjects, maxVersions, requests = 4, 5, 5, 60
	for round := range rounds {
		col := colRW
		if _, err := f.pool.Exec(context.Background(), `DELETE FROM taxii_objects WHERE collection_id = $1`, col); err != nil {
			t.Fatal(err)
		}
		var objs []map[string]any
		var oids []string
		for range 1 + rng.IntN(maxObjects) {
			typ := []string{"malware", "indicator"}[rng.IntN(2)]
			id := newID(typ)
			oids = append(oids, id)
			for range 1 + rng.IntN(maxVersions) {
				spec := []string{"2.0", "2.1"}[rng.IntN(2)]
				mod := fmt.Sprintf("2020-01-%02dT00:00:00Z", 1+rng.IntN(9)) // repeats are re-posts
				if typ == "malware" {
					if spec == "2.0" {
						spec = ""
					}
					objs = append(objs, malwareObj(id, spec, mod))
				} else {
					objs = append(objs, indicatorIn(spec, id, mod))
				}
			}
		}
		rng.Shuffle(len(objs), func(i, j int) { objs[i], objs[j] = objs[j], objs[i] })
		for len(objs) > 0 {
			k := 1 + rng.IntN(min(3, len(objs)))
			f.post(col, objs[:k]...)
			objs = objs[k:]
			if rng.IntN(4) == 0 {
				// Delete one stored version, as a client would.
				stored := readStoredRows(t, f, col)
				r := stored[rng.IntN(len(stored))]
				f.expect(req{method: http.MethodDelete, path: objectsPath(col) + r.id + "/?match[version]=" + r.version +
					"&match[spec_version]=" + r.spec}, http.StatusOK)
			}
		}
		checkVersionTimes(t, f, col)
		rows := readStoredRows(t, f, col)
		oids = append(oids, newID("indicator")) // not in the collection
		pick := func(list []string) string { return list[rng.IntN(len(list))] }
		for range requests {
			q := selReq{ep: pick([]string{"objects", "manifest", "object", "versions"}), maxLimit: 4}
			if q.ep == "object" || q.ep == "versions" {
				q.oid = pick(oids)
			}
			if len(rows) > 0 && rng.IntN(2) == 0 {
				q.after = rows[rng.IntN(len(rows))].added.Add(time.Duration(rng.IntN(3)-1) * time.Microsecond)
			}
			q.spec = pick([]string{"", "", "2.0", "2.1", "2.0,2.1", "2.1,2.0"})
			q.version = pick([]string{"", "last", "first", "all", "first,last", "2020-01-03T00:00:00Z", "first,2020-01-05T00:00:00Z"})
			if q.oid == "" {
				q.types = pick([]string{"", "", "malware", "indicator", "malware,indicator"})
				if rng.IntN(3) == 0 {
					q.ids = pick(oids) + "," + pick(oids)
				}
			}
			q.limit = []int{0, 1, 2, 10}[rng.IntN(4)]
			listAll(t, f, col, rows, q)
		}
		t.Logf("round %d: %d stored versions", round, len(rows))
	}
}
