package taxiicore

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var taxiiTimestamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func versionsOf(t *testing.T, f *fixture, col, id, query string) []string {
	t.Helper()
	var v struct {
		Versions []string `json:"versions"`
	}
	res := f.expect(req{path: objectsPath(col) + id + "/versions/" + query}, http.StatusOK)
	if err := json.Unmarshal(res.body, &v); err != nil {
		t.Fatal(err)
	}
	return v.Versions
}

func TestAddObjectsAndVersions(t *testing.T) {
	f := newFixture(t, nil)
	sdo := newID("indicator")
	mark := newID("marking-definition")
	sco := newID("ipv4-addr")
	v1, v2, v3 := "2020-01-01T00:00:00Z", "2020-02-01T00:00:00.5Z", "2020-03-01T00:00:00.123456789Z"
	markObj := map[string]any{"type": "marking-definition", "spec_version": "2.1", "id": mark, "created": "2019-05-05T05:05:05.000Z",
		"definition_type": "statement", "definition": map[string]any{"statement": "x"}}
	scoObj := map[string]any{"type": "ipv4-addr", "id": sco, "value": "198.51.100.7"}
	legacy := map[string]any{"type": "malware", "id": newID("malware"), "created": v1, "modified": v1, "name": "no spec_version"}

	st := f.post(colRW, indicator(sdo, v1, v2), indicator(sdo, v1, v1), markObj, scoObj, legacy)
	if st["status"] != "complete" || st["total_count"] != 5.0 || st["success_count"] != 5.0 || st["failure_count"] != 0.0 || st["pending_count"] != 0.0 {
		t.Fatalf("status %v", st)
	}
	if !taxiiTimestamp.MatchString(st["request_timestamp"].(string)) {
		t.Fatalf("request_timestamp %v", st["request_timestamp"])
	}
	f.post(colRW, indicator(sdo, v1, v3))

	// Versions ascend by date_added, and keep their strings as received.
	if got := versionsOf(t, f, colRW, sdo, ""); !reflect.DeepEqual(got, []string{v2, v1, v3}) {
		t.Fatalf("versions %v", got)
	}
	if got := versionsOf(t, f, colRW, mark, ""); !reflect.DeepEqual(got, []string{"2019-05-05T05:05:05.000Z"}) {
		t.Fatalf("created-only versions %v", got)
	}
	scoVersions := versionsOf(t, f, colRW, sco, "")
	if len(scoVersions) != 1 || !taxiiTimestamp.MatchString(scoVersions[0]) {
		t.Fatalf("SCO versions %v", scoVersions)
	}
	f.expect(req{path: objectsPath(colRW) + newID("indicator") + "/versions/"}, http.StatusNotFound)

	// Re-posting: exact duplicates (also with another spelling of the same
	// instant) are successes without new rows; an SCO is immutable.
	before := f.countRows(colRW)
	dupSCO := map[string]any{"type": "ipv4-addr", "id": sco, "value": "203.0.113.9"}
	st = f.post(colRW, indicator(sdo, v1, "2020-02-01T00:00:00.500Z"), dupSCO, indicator(sdo, v1, v3))
	if st["success_count"] != 3.0 || f.countRows(colRW) != before {
		t.Fatalf("duplicates: %v, rows %d -> %d", st, before, f.countRows(colRW))
	}
	succ := st["successes"].([]any)
	if succ[1].(map[string]any)["version"] != scoVersions[0] || succ[0].(map[string]any)["message"] == nil {
		t.Fatalf("duplicate details %v", succ)
	}

	// Get an Object: latest by default, then by keyword and value.
	get := func(query string) []map[string]any {
		t.Helper()
		var env struct {
			Objects []map[string]any `json:"objects"`
		}
		res := f.expect(req{path: objectsPath(colRW) + sdo + "/" + query}, http.StatusOK)
		if err := json.Unmarshal(res.body, &env); err != nil {
			t.Fatal(err)
		}
		return env.Objects
	}
	mods := func(objs []map[string]any) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o["modified"].(string))
		}
		return out
	}
	cases := map[string][]string{
		"":                           {v3},
		"?match[version]=last":       {v3},
		"?match[version]=first":      {v1},
		"?match[version]=all":        {v2, v1, v3},
		"?match[version]=first,last": {v1, v3},
		"?match[version]=2020-02-01T00:00:00.50Z":              {v2},
		"?match[version]=first,2020-02-01T00:00:00.5Z":         {v2, v1},
		"?match[version]=2021-01-01T00:00:00Z":                 nil,
		"?match[version]=all&match[spec_version]=2.1":          {v2, v1, v3},
		"?match[version]=all&match[spec_version]=2.0":          nil,
		"?match[version]=all&limit=2":                          {v2, v1},
		"?match[version]=all&added_after=2000-01-01T00:00:00Z": {v2, v1, v3},
	}
	for q, want := range cases {
		if got := mods(get(q)); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: %v, want %v", q, got, want)
		}
	}
	// The stored object comes back unchanged (no TAXII metadata added).
	obj := get("")[0]
	if !reflect.DeepEqual(obj, jsonRoundTrip(indicator(sdo, v1, v3))) {
		t.Fatalf("object changed: %v", obj)
	}
	// An unknown object id is a 404; a known one filtered empty is an empty 200.
	f.expect(req{path: objectsPath(colRW) + newID("indicator") + "/"}, http.StatusNotFound)
	res := f.expect(req{path: objectsPath(colRW) + sdo + "/?match[version]=1999-01-01T00:00:00Z"}, http.StatusOK)
	if string(res.body) != `{"more":false}` || res.header.Get("X-TAXII-Date-Added-First") != "" {
		t.Fatalf("empty object page: %s %v", res.body, res.header)
	}
	// Manifest records: one per version, with spec versions per AMBIG-28.
	var man struct {
		Objects []manifestRecord `json:"objects"`
	}
	mres := f.expect(req{path: "/api1/collections/" + colRW + "/manifest/?match[version]=all"}, http.StatusOK)
	if err := json.Unmarshal(mres.body, &man); err != nil {
		t.Fatal(err)
	}
	media := map[string]string{}
	for _, r := range man.Objects {
		if !taxiiTimestamp.MatchString(r.DateAdded) {
			t.Fatalf("date_added %q", r.DateAdded)
		}
		media[strings.Split(r.ID, "--")[0]] = r.MediaType
	}
	if len(man.Objects) != 6 || media["malware"] != "application/stix+json;version=2.0" || media["ipv4-addr"] != "application/stix+json;version=2.1" {
		t.Fatalf("manifest %s", mres.body)
	}
	if f.expect(req{path: objectsPath(colRW) + "?match[spec_version]=2.0"}, http.StatusOK); len(ids(t, f.do(req{path: objectsPath(colRW) + "?match[spec_version]=2.0"}))) != 1 {
		t.Fatal("spec_version 2.0 filter")
	}
}

func jsonRoundTrip(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func TestAddObjectsPerObjectFailures(t *testing.T) {
	f := newFixture(t, nil)
	good := newID("indicator")
	body := `{"objects":[` + strings.Join([]string{
		mustJSON(indicator(good, "2020-01-01T00:00:00Z", "")),
		`"a string"`,
		`{"type":"indicator","created":"2020-01-01T00:00:00Z"}`,
		`{"type":"indicator","id":"indicator--not-a-uuid","created":"2020-01-01T00:00:00Z"}`,
		`{"type":"malware","id":"` + newID("indicator") + `","created":"2020-01-01T00:00:00Z"}`,
		`{"type":"indicator","id":"` + newID("indicator") + `","modified":"2020-01-01T00:00:00Z"}`,
		`{"type":"indicator","id":"` + newID("indicator") + `","created":"yesterday"}`,
		`{"type":"indicator","id":"` + newID("indicator") + `","created":"2020-01-02T00:00:00Z","modified":"2020-01-01T00:00:00Z"}`,
		`{"type":"indicator","id":"` + newID("indicator") + `","created":"2020-01-01T00:00:00Z","spec_version":"3.0"}`,
		`{"type":"indicator","id":"` + newID("indicator") + `","created":"2020-01-01T00:00:00Z","name":"nul\u0000"}`,
		`{"type":"indicator","id":"` + newID("indicator") + `","created":"2020-01-01T00:00:00Z","name":"\ud800x"}`,
		`{"type":"indicator","id":42,"created":"2020-01-01T00:00:00Z"}`,
		`{"type":"indicator","id":"` + newID("indicator") + `","created":"2020-01-01T00:00:00Z","name":"not UTF-8: ` + "\xff" + `"}`,
	}, ",") + `]}`
	res := f.expect(req{method: http.MethodPost, path: objectsPath(colRW), body: body}, http.StatusAccepted)
	st := res.json(t)
	if st["total_count"] != 13.0 || st["success_count"] != 1.0 || st["failure_count"] != 12.0 {
		t.Fatalf("status %s", res.body)
	}
	for _, d := range st["failures"].([]any) {
		if d.(map[string]any)["message"] == "" || d.(map[string]any)["id"] == "" {
			t.Fatalf("failure without message or id: %v", d)
		}
	}
	if f.countRows(colRW) != 1 {
		t.Fatalf("rows %d", f.countRows(colRW))
	}
	// The status is kept and readable later.
	got := f.expect(req{path: "/api1/status/" + st["id"].(string) + "/"}, http.StatusOK).json(t)
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("stored status differs:\n%v\n%v", got, st)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestMalformedEnvelopesChangeNothing(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		body   string
		status int
	}{
		{``, http.StatusBadRequest},
		{`{"objects":[`, http.StatusBadRequest},
		{`{"objects":[{"id":1}]`, http.StatusBadRequest},
		{`not json`, http.StatusBadRequest},
		{`[]`, http.StatusUnprocessableEntity},
		{`"objects"`, http.StatusUnprocessableEntity},
		{`{}`, http.StatusUnprocessableEntity},
		{`{"objects":[]}`, http.StatusUnprocessableEntity},
		{`{"objects":{"id":"x"}}`, http.StatusUnprocessableEntity},
		{`{"objects":null}`, http.StatusUnprocessableEntity},
	}
	for _, c := range cases {
		f.expect(req{method: http.MethodPost, path: objectsPath(colRW), body: c.body}, c.status)
	}
	var statuses int
	_ = f.pool.QueryRow(t.Context(), `SELECT count(*) FROM taxii_statuses`).Scan(&statuses)
	if f.countRows(colRW) != 0 || statuses != 0 {
		t.Fatalf("malformed envelopes left %d rows, %d statuses", f.countRows(colRW), statuses)
	}
}

func TestOversizedBodies(t *testing.T) {
	f := newFixture(t, nil)
	limit := 64 << 10
	// Exactly the limit is accepted (AMBIG-14): pad a valid envelope with spaces.
	env := envelopeOf(indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))
	exact := env[:len(env)-1] + strings.Repeat(" ", limit-len(env)) + "}"
	f.expect(req{method: http.MethodPost, path: objectsPath(colRW), body: exact}, http.StatusAccepted)
	// One byte more: 413, by Content-Length and also when streamed without one.
	over := exact + " "
	f.expect(req{method: http.MethodPost, path: objectsPath(colRW), body: over}, http.StatusRequestEntityTooLarge)
	pr, pw := io.Pipe()
	go func() { _, _ = io.WriteString(pw, over); pw.Close() }()
	f.expect(req{method: http.MethodPost, path: objectsPath(colRW), bodyReader: pr}, http.StatusRequestEntityTooLarge)
	if f.countRows(colRW) != 1 {
		t.Fatalf("rows %d", f.countRows(colRW))
	}
}

func TestStatusAccess(t *testing.T) {
	f := newFixture(t, nil)
	// The creator, admins and writers of the collection read a status;
	// readers (carol) and outsiders (bob) get 404.
	st := f.post(colRW, indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))
	path := "/api1/status/" + st["id"].(string) + "/"
	f.expect(req{path: path}, http.StatusOK)
	f.expect(req{path: path, user: "carol", groups: "analysts"}, http.StatusNotFound)
	f.expect(req{path: path, user: "bob"}, http.StatusNotFound)
	f.expect(req{path: path, user: "root", groups: "taxiway-admin"}, http.StatusOK)
	if _, err := f.pool.Exec(t.Context(), `INSERT INTO taxii_grants VALUES ($1, 'user:erin', false, true)`, colRW); err != nil {
		t.Fatal(err)
	}
	f.expect(req{path: path, user: "erin"}, http.StatusOK)
	f.expect(req{path: "/api2/status/" + st["id"].(string) + "/"}, http.StatusNotFound)
	f.expect(req{path: "/api1/status/" + colRW + "/"}, http.StatusNotFound)
	f.expect(req{path: "/api1/status/nope/"}, http.StatusNotFound)
}

func TestDeleteObject(t *testing.T) {
	f := newFixture(t, nil)
	id := newID("indicator")
	other := newID("indicator")
	v1, v2, v3 := "2020-01-01T00:00:00Z", "2020-01-02T00:00:00Z", "2020-01-03T00:00:00Z"
	f.post(colRW, indicator(id, v1, v1), indicator(id, v1, v2), indicator(id, v1, v3), indicator(other, v1, ""))
	path := objectsPath(colRW) + id + "/"
	// match[version]=last removes only the latest; the previous one becomes latest.
	f.expect(req{method: http.MethodDelete, path: path + "?match[version]=last"}, http.StatusOK)
	if got := versionsOf(t, f, colRW, id, ""); !reflect.DeepEqual(got, []string{v1, v2}) {
		t.Fatalf("after deleting last: %v", got)
	}
	latest := ids(t, f.expect(req{path: objectsPath(colRW) + "?match[id]=" + id}, http.StatusOK))
	if len(latest) != 1 {
		t.Fatalf("latest after delete: %v", latest)
	}
	if o := f.expect(req{path: path}, http.StatusOK).json(t)["objects"].([]any)[0].(map[string]any); o["modified"] != v2 {
		t.Fatalf("latest is %v", o["modified"])
	}
	// A version filter that matches nothing is a 404; bad filters are 400.
	f.expect(req{method: http.MethodDelete, path: path + "?match[version]=2019-01-01T00:00:00Z"}, http.StatusNotFound)
	f.expect(req{method: http.MethodDelete, path: path + "?match[version]=all,last"}, http.StatusBadRequest)
	// Without match[version], every version goes (AMBIG-7).
	f.expect(req{method: http.MethodDelete, path: path}, http.StatusOK)
	f.expect(req{path: path}, http.StatusNotFound)
	f.expect(req{path: path + "versions/"}, http.StatusNotFound)
	f.expect(req{method: http.MethodDelete, path: path}, http.StatusNotFound)
	if got := ids(t, f.expect(req{path: objectsPath(colRW) + "?match[version]=all"}, http.StatusOK)); !slices.Equal(got, []string{other}) {
		t.Fatalf("remaining %v", got)
	}
	// The manifest of the id is empty, not 404.
	res := f.expect(req{path: "/api1/collections/" + colRW + "/manifest/?match[id]=" + id}, http.StatusOK)
	if string(res.body) != `{"more":false}` {
		t.Fatalf("manifest after delete: %s", res.body)
	}
}

func TestStatusRetention(t *testing.T) {
	f := newFixture(t, nil)
	old := f.post(colRW, indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))["id"].(string)
	fresh := f.post(colRW, indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))["id"].(string)
	if _, err := f.pool.Exec(t.Context(), `UPDATE taxii_statuses SET request_timestamp = now() - interval '8 days' WHERE id = $1`, old); err != nil {
		t.Fatal(err)
	}
	n, err := f.srv.pruneStatuses(t.Context(), time.Now().Add(-DefaultConfig().StatusRetention))
	if err != nil || n != 1 {
		t.Fatalf("pruned %d statuses (%v), want exactly the 8-day-old one", n, err)
	}
	f.expect(req{path: "/api1/status/" + old + "/"}, http.StatusNotFound)
	f.expect(req{path: "/api1/status/" + fresh + "/"}, http.StatusOK)

	for _, bad := range []time.Duration{time.Hour, 23 * time.Hour, -time.Hour} {
		cfg := DefaultConfig()
		cfg.StatusRetention = bad
		if err := cfg.Validate(); err == nil {
			t.Errorf("status retention %s accepted; under 24h must be refused", bad)
		}
	}
	cfg := DefaultConfig()
	cfg.StatusRetention = 0
	if err := cfg.Validate(); err != nil {
		t.Errorf("status retention 0 (forever) refused: %v", err)
	}
}
