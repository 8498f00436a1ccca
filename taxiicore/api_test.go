package taxiicore

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

func TestDiscoveryAndAPIRoot(t *testing.T) {
	f := newFixture(t, nil)
	d := f.expect(req{path: "/taxii2/"}, http.StatusOK).json(t)
	if d["title"] != "Test TAXII" || d["default"] != "/api1/" || d["contact"] != "ops@example.com" {
		t.Fatalf("discovery %v", d)
	}
	if !reflect.DeepEqual(d["api_roots"], []any{"/api1/", "/api2/"}) {
		t.Fatalf("api_roots %v", d["api_roots"])
	}
	root := f.expect(req{path: "/api1/"}, http.StatusOK).json(t)
	if root["title"] != "API one" || root["max_content_length"] != float64(64<<10) ||
		!reflect.DeepEqual(root["versions"], []any{taxiierror.MediaType}) {
		t.Fatalf("api root %v", root)
	}
	// An unknown API root is a 404 on every endpoint under it.
	f.expect(req{path: "/nope/"}, http.StatusNotFound)
	f.expect(req{path: "/nope/collections/"}, http.StatusNotFound)
	f.expect(req{path: "/nope/collections/" + colRW + "/objects/"}, http.StatusNotFound)
	// A collection of api1 is not reachable under api2.
	f.expect(req{path: "/api2/collections/" + colRW + "/"}, http.StatusNotFound)
	// api2 has no collections: the key is left out (COLS-03).
	if b := f.expect(req{path: "/api2/collections/"}, http.StatusOK).body; string(b) != "{}" {
		t.Fatalf("empty collections: %s", b)
	}
}

func TestDiscoveryDefaultsWhenNeverSynced(t *testing.T) {
	pool := newPool(t)
	cfg := DefaultConfig()
	srv, err := New(context.Background(), pool, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorderRequest(srv, "/taxii2/")
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != `{"title":"Taxiway"}` {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestIdentity(t *testing.T) {
	f := newFixture(t, nil)
	for _, path := range []string{"/taxii2/", "/api1/", "/api1/collections/", objectsPath(colRW), "/api1/status/" + colRW + "/"} {
		res := f.expect(req{path: path, user: "-"}, http.StatusUnauthorized)
		if got := res.header.Get("WWW-Authenticate"); got != `Bearer realm="taxii", Basic realm="taxii"` {
			t.Fatalf("WWW-Authenticate %q", got)
		}
	}
	// An empty user header is no identity, nor is one that is not UTF-8.
	f.expect(req{path: "/taxii2/", user: " "}, http.StatusUnauthorized)
	f.expect(req{path: "/taxii2/", user: "\xff"}, http.StatusUnauthorized)
	// POST without identity: 401, nothing stored.
	f.expect(req{method: http.MethodPost, path: objectsPath(colRW), user: "-",
		body: envelopeOf(indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))}, http.StatusUnauthorized)
	if n := f.countRows(colRW); n != 0 {
		t.Fatalf("%d rows stored without identity", n)
	}
}

func TestIdentityHeadersFromUntrustedPeerIgnored(t *testing.T) {
	// Loopback is not trusted here, so the test client is an outsider.
	f := newFixture(t, func(c *Config) { c.TrustedProxies = "192.0.2.0/24" })
	f.expect(req{path: "/api1/collections/", user: "alice", groups: "taxiway-admin"}, http.StatusUnauthorized)
	f.expect(req{path: "/taxii2/", user: "alice"}, http.StatusUnauthorized)
}

func TestNegotiation(t *testing.T) {
	f := newFixture(t, nil)
	ok := []string{
		taxiierror.MediaType,
		"application/taxii+json",
		"application/taxii+json; version=2.1",
		"Application/TAXII+JSON;Version=2.1",
		"application/taxii+json;version=2.1;q=0.5",
		"text/html;q=0.9, application/taxii+json;version=2.1;q=0.1",
		"application/taxii+json;version=2.1,application/stix+json;version=2.1", // the manifest table's Accept
		"application/vnd.oasis.taxii+json;version=2.1",
	}
	for _, a := range ok {
		f.expect(req{path: "/api1/collections/" + colRW + "/manifest/", accept: a}, http.StatusOK)
	}
	bad := []string{"-", "*/*", "application/*", "application/json", "application/taxii+json;version=2.0",
		"application/taxii+json;version=2.1;q=0", "application/stix+json;version=2.1", "application/taxii+json;q=abc"}
	for _, a := range bad {
		f.expect(req{path: "/taxii2/", accept: a}, http.StatusNotAcceptable)
	}
	// POST Content-Type: TAXII (with or without version) is accepted; others get 415.
	obj := envelopeOf(indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))
	f.expect(req{method: http.MethodPost, path: objectsPath(colRW), contentType: "application/taxii+json", body: obj}, http.StatusAccepted)
	for _, ct := range []string{"application/json", "application/stix+json;version=2.1", "application/taxii+json;version=2.0", "text/plain", "garbage;;"} {
		f.expect(req{method: http.MethodPost, path: objectsPath(colRW), contentType: ct, body: obj}, http.StatusUnsupportedMediaType)
	}
	if n := f.countRows(colRW); n != 1 {
		t.Fatalf("415s stored objects: %d rows", n)
	}
}

func TestRoutesMethodsAndSlashes(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		method, path, allow string
	}{
		{http.MethodPost, "/taxii2/", "GET, HEAD"},
		{http.MethodDelete, "/api1/", "GET, HEAD"},
		{http.MethodPut, objectsPath(colRW), "GET, HEAD, POST"},
		{http.MethodPost, objectsPath(colRW) + "indicator--" + colRW + "/", "GET, HEAD, DELETE"},
		{http.MethodPost, "/api1/collections/" + colRW + "/manifest/", "GET, HEAD"},
	}
	for _, c := range cases {
		res := f.expect(req{method: c.method, path: c.path, body: "{}"}, http.StatusMethodNotAllowed)
		if got := res.header.Get("Allow"); got != c.allow {
			t.Fatalf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
	// Paths without their trailing slash are redirected with 308, query kept.
	res := f.do(req{path: "/api1/collections/" + colRW + "/objects?limit=1"})
	if res.status != http.StatusPermanentRedirect || res.header.Get("Location") != objectsPath(colRW)+"?limit=1" {
		t.Fatalf("redirect: %d %q", res.status, res.header.Get("Location"))
	}
	for _, p := range []string{"/", "/api1/nothing/", "/api1/collections/" + colRW + "/objects/x/y/", "//", "/api1//"} {
		f.expect(req{path: p}, http.StatusNotFound)
	}
	if id := f.do(req{path: "/taxii2/"}).header.Get("X-Request-Id"); len(id) != 24 {
		t.Fatalf("X-Request-Id %q", id)
	}
}

func TestGrants(t *testing.T) {
	f := newFixture(t, nil)
	type perm struct{ read, write bool }
	list := func(user, groups string) map[string]perm {
		t.Helper()
		var out struct {
			Collections []struct {
				ID       string `json:"id"`
				CanRead  bool   `json:"can_read"`
				CanWrite bool   `json:"can_write"`
			} `json:"collections"`
		}
		res := f.expect(req{path: "/api1/collections/", user: user, groups: groups}, http.StatusOK)
		if err := json.Unmarshal(res.body, &out); err != nil {
			t.Fatal(err)
		}
		m := map[string]perm{}
		prev := ""
		for _, c := range out.Collections {
			if c.ID <= prev {
				t.Fatalf("collections not sorted by id: %s", res.body)
			}
			prev = c.ID
			m[c.ID] = perm{c.CanRead, c.CanWrite}
		}
		return m
	}
	want := map[string]perm{colRW: {true, true}, colRO: {true, false}, colWO: {false, true}, colAuth: {true, false}}
	if got := list("alice", ""); !reflect.DeepEqual(got, want) {
		t.Fatalf("alice sees %v", got)
	}
	// Group grant: carol is an analyst, so she reads colRW.
	if got := list("carol", "other, analysts"); !reflect.DeepEqual(got, map[string]perm{colRW: {true, false}, colAuth: {true, false}}) {
		t.Fatalf("carol sees %v", got)
	}
	// "authenticated" alone.
	if got := list("dave", ""); !reflect.DeepEqual(got, map[string]perm{colAuth: {true, false}}) {
		t.Fatalf("dave sees %v", got)
	}
	// The admin group sees and may do everything.
	admin := list("root", "taxiway-admin")
	if len(admin) != 5 || admin[colNone] != (perm{true, true}) {
		t.Fatalf("admin sees %v", admin)
	}

	// Invisible (alice on bob's) and unknown collections answer the same 404 body,
	// apart from the per-request error_id.
	strip := func(b []byte) map[string]any {
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		delete(m, "error_id")
		return m
	}
	for _, suffix := range []string{"", "objects/", "manifest/", "objects/indicator--" + colRW + "/", "objects/indicator--" + colRW + "/versions/"} {
		invisible := f.expect(req{path: "/api1/collections/" + colNone + "/" + suffix}, http.StatusNotFound)
		unknown := f.expect(req{path: "/api1/collections/66666666-6666-4666-8666-666666666666/" + suffix}, http.StatusNotFound)
		if !reflect.DeepEqual(strip(invisible.body), strip(unknown.body)) {
			t.Fatalf("invisible and unknown differ:\n%s\n%s", invisible.body, unknown.body)
		}
	}
	f.expect(req{method: http.MethodPost, path: objectsPath(colNone), body: envelopeOf(indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))}, http.StatusNotFound)
	f.expect(req{path: "/api1/collections/not-a-uuid/"}, http.StatusNotFound)

	// Visible but not allowed: 403.
	f.expect(req{path: objectsPath(colWO)}, http.StatusForbidden)
	f.expect(req{path: "/api1/collections/" + colWO + "/manifest/"}, http.StatusForbidden)
	f.expect(req{path: objectsPath(colWO) + "indicator--" + colRW + "/versions/"}, http.StatusForbidden)
	f.expect(req{method: http.MethodPost, path: objectsPath(colRO), body: envelopeOf(indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))}, http.StatusForbidden)
	// Allowed: write-only may post, read-only may read.
	f.post(colWO, indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))
	f.expect(req{path: objectsPath(colRO)}, http.StatusOK)
	// The collection resource reflects the caller and resolves the alias.
	c := f.expect(req{path: "/api1/collections/rw/", user: "carol", groups: "analysts"}, http.StatusOK).json(t)
	if c["id"] != colRW || c["can_read"] != true || c["can_write"] != false || c["alias"] != "rw" {
		t.Fatalf("collection %v", c)
	}
}

func TestDeleteAuthorizationTable(t *testing.T) {
	f := newFixture(t, nil)
	id := newID("indicator")
	// Put the same object in every collection (as the admin), so only rights differ.
	for _, col := range []string{colRW, colRO, colWO, colNone} {
		f.expect(req{method: http.MethodPost, path: objectsPath(col), user: "root", groups: "taxiway-admin",
			body: envelopeOf(indicator(id, "2020-01-01T00:00:00Z", ""))}, http.StatusAccepted)
	}
	del := func(col string) string { return objectsPath(col) + id + "/" }
	f.expect(req{method: http.MethodDelete, path: del(colNone)}, http.StatusNotFound) // false/false
	f.expect(req{method: http.MethodDelete, path: del(colRO)}, http.StatusForbidden)  // true/false
	f.expect(req{method: http.MethodDelete, path: del(colWO)}, http.StatusForbidden)  // false/true
	f.expect(req{method: http.MethodDelete, path: del(colRW)}, http.StatusOK)         // true/true
	for _, col := range []string{colRO, colWO, colNone} {
		if n := f.countRows(col); n != 1 {
			t.Fatalf("refused DELETE removed rows from %s", col)
		}
	}
}

// TestRoutesUnderTaxii2 checks that every resource of a root answers under
// /taxii2/<root>/ as OpenTAXII serves it, the same as at /<root>/.
func TestRoutesUnderTaxii2(t *testing.T) {
	f := newFixture(t, nil)
	obj := indicator(newID("indicator"), "2020-01-01T00:00:00Z", "")
	st := f.expect(req{method: http.MethodPost, path: "/taxii2" + objectsPath(colRW), body: envelopeOf(obj)}, http.StatusAccepted).json(t)
	oid := obj["id"].(string)
	for _, p := range []string{"/api1/", "/api1/collections/", "/api1/collections/" + colRW + "/", "/api1/collections/" + colRW + "/manifest/",
		objectsPath(colRW), objectsPath(colRW) + oid + "/", objectsPath(colRW) + oid + "/versions/", "/api1/status/" + st["id"].(string) + "/"} {
		want := f.expect(req{path: p}, http.StatusOK).body
		if got := f.expect(req{path: "/taxii2" + p}, http.StatusOK).body; string(got) != string(want) {
			t.Fatalf("/taxii2%s answers %s, %s answers %s", p, got, p, want)
		}
	}
	f.expect(req{method: http.MethodDelete, path: "/taxii2" + objectsPath(colRW) + oid + "/"}, http.StatusOK)
	for _, p := range []string{"/taxii2/taxii2/", "/taxii2/taxii2/api1/", "/taxii2/nosuchroot/", "/taxii2/api1/nothing/"} {
		f.expect(req{path: p}, http.StatusNotFound)
	}
	res := f.do(req{path: "/taxii2/api1/collections"})
	if res.status != http.StatusPermanentRedirect || res.header.Get("Location") != "/taxii2/api1/collections/" {
		t.Fatalf("redirect: %d %q", res.status, res.header.Get("Location"))
	}
}
