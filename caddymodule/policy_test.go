package caddymodule

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
)

func TestCanonicalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/api1/collections/":             "/api1/collections/",
		"/api1/collections":              "/api1/collections",
		"/%61pi1/collections/":           "/api1/collections/",
		"/api1/%63ollections/x/objects/": "/api1/collections/x/objects/",
		"/api1/collections/a-b.c_d~e/":   "/api1/collections/a-b.c_d~e/",
	} {
		if got, ok := canonicalPath(in); !ok || got != want {
			t.Errorf("canonicalPath(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"", "api1/", "/api1//collections/", "//api1/", "/api1/./collections/", "/api1/../admin/", "/api1/%2e%2e/x/",
		"/api1/%2E/x/", "/api1/collections%2Fx/", "/api1/collections%2fx/", "/api1/collections%5cx/", "/api1\\collections/",
		"/api1/%00/", "/api1/\x00/", "/api1/;x=1/", "/api1/collections;/", "/api1/%zz/", "/api1/%4", "/api1/é/", "/api1/%C3%A9/",
		"/api1/ x/", "/api1/..", "/..", "/api1/x%20y/", "/api1/@/", "/api1/:/",
	} {
		if got, ok := canonicalPath(in); ok {
			t.Errorf("canonicalPath(%q) = %q, accepted", in, got)
		}
	}
}

const (
	polShared   = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"
	polInternal = "edaca48c-eae6-47e0-82b3-18a87ff3692f"
	polPublic   = "0a1b2c3d-0000-4000-8000-000000000001"
	polUnlisted = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
)

// testPolicy is a taxii_policy with a fixed view: partners read shared,
// analysts read and write shared and internal, anonymous reads public on
// a public API root.
func testPolicy(t testing.TB) *TaxiiPolicy {
	t.Helper()
	var snap policySnapshot
	raw := `{"version": 3, "backends": [{"name": "legacy", "roots": [{"path": "/api1/", "public": true, "collections": [
		{"id": "` + polShared + `", "alias": "shared-iocs", "grants": [{"to": "group:partners", "read": true}, {"to": "group:analysts", "read": true, "write": true}]},
		{"id": "` + polInternal + `", "grants": [{"to": "group:analysts", "read": true, "write": true}, {"to": "user:writer", "write": true}]},
		{"id": "` + polPublic + `", "grants": [{"to": "anonymous", "read": true}]}]},
		{"path": "/private/api2/", "collections": [{"id": "` + polShared + `", "grants": [{"to": "authenticated", "read": true}]}]}]},
		{"name": "other", "public_discovery": true}]}`
	if err := json.Unmarshal([]byte(raw), &snap); err != nil {
		t.Fatal(err)
	}
	v, err := compilePolicy(&snap, "legacy", 100, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	p := &TaxiiPolicy{Backend: "legacy", DiscoveryPath: DefaultDiscoveryPath, AdminGroup: DefaultAdminGroup,
		MaxListBytes: 4096, MaxEntries: 100, metrics: m, view: new(atomic.Pointer[policyView]), decisions: map[string]prometheus.Counter{}}
	for _, d := range []string{decisionPass, decisionNotFound, decisionForbidden, decisionUnauthorized,
		decisionBadPath, decisionMethod, decisionUnavailable, decisionBackendTooMuch} {
		p.decisions[d] = m.policyDecisions.WithLabelValues(d)
	}
	p.view.Store(v)
	return p
}

// backendList is what the fronted server answers its service account.
var backendList = `{"collections":[` +
	`{"id":"` + polShared + `","title":"Shared","alias":"shared-iocs","can_read":true,"can_write":true,"media_types":["application/stix+json;version=2.1"]},` +
	`{"id":"` + polInternal + `","title":"Internal","can_read":true,"can_write":true},` +
	`{"id":"` + polPublic + `","title":"Public","can_read":true,"can_write":true},` +
	`{"id":"` + polUnlisted + `","title":"Unlisted","can_read":true,"can_write":true}]}`

// serve runs one request through p to a backend that records the path it
// saw and answers collection requests like a TAXII server.
func serve(t *testing.T, p *TaxiiPolicy, who *identity, method, rawPath string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	r := httptest.NewRequest(method, "http://gw"+rawPath, nil)
	ctx := context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{})
	r = r.WithContext(ctx)
	if who != nil {
		caddyhttp.SetVar(ctx, identityVar, *who)
	}
	var seen string
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		seen = r.URL.EscapedPath()
		w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
		w.Header().Set("ETag", `"backend"`)
		switch {
		case strings.HasSuffix(seen, "/collections/"):
			_, _ = w.Write([]byte(backendList))
		case strings.Contains(seen, "/collections/") && strings.Count(seen, "/") == 4:
			_, _ = w.Write([]byte(`{"id":"` + polShared + `","title":"Shared","can_read":true,"can_write":true}`))
		default:
			_, _ = w.Write([]byte(`{}`))
		}
		return nil
	})
	w := httptest.NewRecorder()
	if err := p.ServeHTTP(w, r, next); err != nil {
		t.Fatal(err)
	}
	return w, seen
}

func TestPolicyDecisions(t *testing.T) {
	p := testPolicy(t)
	partner := &identity{User: "pat", Groups: "partners"}
	analyst := &identity{User: "ann", Groups: "staff, analysts"}
	writer := &identity{User: "writer"}
	admin := &identity{User: "root", Groups: DefaultAdminGroup}
	outsider := &identity{User: "out"}
	objects := func(col string) string { return "/api1/collections/" + col + "/objects/" }
	for _, c := range []struct {
		who    *identity
		method string
		path   string
		status int
	}{
		{nil, "GET", "/taxii2/", 401},
		{outsider, "GET", "/taxii2/", 200},
		{nil, "GET", "/api1/", 200}, // a public root
		{nil, "GET", "/private/api2/", 401},
		{outsider, "GET", "/private/api2/", 200},
		{partner, "GET", objects(polShared), 200},
		{partner, "GET", objects("shared-iocs"), 200},
		{partner, "GET", objects("SHARED-IOCS"), 200},
		{partner, "GET", objects(strings.ToUpper(polShared)), 200},
		{partner, "POST", objects(polShared), 403},
		{partner, "GET", objects(polInternal), 404},
		{partner, "POST", objects(polInternal), 404},
		{partner, "GET", objects(polUnlisted), 404},
		{analyst, "POST", objects(polInternal), 200},
		{analyst, "DELETE", objects(polInternal) + "indicator--1/", 200},
		{writer, "POST", objects(polInternal), 200},
		{writer, "GET", objects(polInternal), 403},
		{writer, "DELETE", objects(polInternal) + "indicator--1/", 403},
		{writer, "GET", "/api1/collections/" + polInternal + "/manifest/", 403},
		{admin, "POST", objects(polUnlisted), 200},
		{nil, "GET", objects(polPublic), 200},
		{nil, "POST", objects(polPublic), 403},
		{nil, "GET", objects(polShared), 401},
		{outsider, "GET", objects(polPublic), 200},
		{partner, "GET", "/api1/collections/" + polShared + "/objects/indicator--1/versions/", 200},
		{partner, "GET", "/api1/collections/" + polShared + "/manifest/", 200},
		{partner, "GET", "/api1/status/" + polUnlisted + "/", 404},
		{writer, "GET", "/api1/status/" + polUnlisted + "/", 200},
		{admin, "GET", "/private/api2/status/" + polUnlisted + "/", 200},
		{nil, "GET", "/api1/status/" + polUnlisted + "/", 401},
		{partner, "PUT", objects(polShared), 405},
		{partner, "GET", "/api1/collections/" + polShared + "/secret/", 404},
		{partner, "GET", "/api1/Collections/" + polShared + "/objects/", 404},
		{partner, "GET", "/API1/collections/" + polShared + "/objects/", 404},
		{partner, "GET", "/elsewhere/", 404},
		{admin, "GET", "/elsewhere/", 404},
		{partner, "GET", "/api1/collections/" + polInternal + "%2F..%2F" + polShared + "/objects/", 400},
		{partner, "GET", "/api1/collections/x/../" + polShared + "/objects/", 400},
		{partner, "GET", "/api1//collections/" + polShared + "/objects/", 400},
		{partner, "GET", "/api1/collections/" + polShared + "%00/objects/", 400},
		{partner, "GET", "/api1/collections/" + polShared + ";x/objects/", 400},
	} {
		w, _ := serve(t, p, c.who, c.method, c.path)
		if w.Code != c.status {
			t.Errorf("%v %s %s: %d, want %d: %s", c.who, c.method, c.path, w.Code, c.status, w.Body)
		}
		if w.Code >= 400 && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/taxii+json") {
			t.Errorf("%s %s: error without a TAXII body", c.method, c.path)
		}
	}

	// A collection the caller may not see and one that does not exist
	// answer alike.
	a, _ := serve(t, p, partner, "GET", objects(polInternal))
	b, _ := serve(t, p, partner, "GET", objects("91a7b528-0000-4000-8000-000000000000"))
	if a.Body.String() != b.Body.String() {
		t.Errorf("invisible %s vs unknown %s", a.Body, b.Body)
	}
	// The backend sees the spelling that was judged.
	if _, seen := serve(t, p, partner, "GET", "/%61pi1/collections/shared-iocs/objects/"); seen != "/api1/collections/shared-iocs/objects/" {
		t.Errorf("backend saw %q", seen)
	}
}

func TestPolicyRewritesCollections(t *testing.T) {
	p := testPolicy(t)
	list := func(who *identity) (ids []string, canWrite map[string]bool, w *httptest.ResponseRecorder) {
		w, _ = serve(t, p, who, "GET", "/api1/collections/")
		if w.Code != 200 || w.Header().Get("ETag") != "" || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/taxii+json") {
			t.Fatalf("list: %d %v %s", w.Code, w.Header(), w.Body)
		}
		var body struct {
			Collections []struct {
				ID       string `json:"id"`
				CanRead  bool   `json:"can_read"`
				CanWrite bool   `json:"can_write"`
			} `json:"collections"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		canWrite = map[string]bool{}
		for _, c := range body.Collections {
			ids = append(ids, c.ID)
			canWrite[c.ID] = c.CanWrite
			if !c.CanRead && !c.CanWrite {
				t.Errorf("listed %s without access", c.ID)
			}
		}
		return ids, canWrite, w
	}
	ids, cw, _ := list(&identity{User: "pat", Groups: "partners"})
	if strings.Join(ids, ",") != polShared+","+polPublic || cw[polShared] {
		t.Errorf("partner sees %v (write %v)", ids, cw)
	}
	ids, cw, _ = list(&identity{User: "ann", Groups: "analysts"})
	if strings.Join(ids, ",") != polShared+","+polInternal+","+polPublic || !cw[polShared] || !cw[polInternal] || cw[polPublic] {
		t.Errorf("analyst sees %v (write %v)", ids, cw)
	}
	ids, _, _ = list(nil)
	if strings.Join(ids, ",") != polPublic {
		t.Errorf("anonymous sees %v", ids)
	}
	// Other members are kept as the backend sent them, in order.
	_, _, w := list(&identity{User: "pat", Groups: "partners"})
	if !strings.HasPrefix(w.Body.String(), `{"collections":[{"id":"`+polShared+`","title":"Shared","alias":"shared-iocs","can_read":true,"can_write":false,"media_types":[`) {
		t.Errorf("rewritten list %s", w.Body)
	}
	// Nobody's collections: the key goes (TAXII never sends an empty list).
	p2 := testPolicy(t)
	for _, r := range p2.view.Load().roots {
		r.public = true
	}
	if w, _ := serve(t, p2, nil, "GET", "/private/api2/collections/"); w.Body.String() != "{}" {
		t.Errorf("nothing visible: %s", w.Body)
	}
	// One collection: the caller's flags; HEAD gets the rewritten length.
	w, _ = serve(t, p, &identity{User: "pat", Groups: "partners"}, "GET", "/api1/collections/shared-iocs/")
	if !strings.Contains(w.Body.String(), `"can_read":true,"can_write":false`) {
		t.Errorf("collection %s", w.Body)
	}
	h, _ := serve(t, p, &identity{User: "pat", Groups: "partners"}, "HEAD", "/api1/collections/shared-iocs/")
	if h.Body.Len() != 0 || h.Header().Get("Content-Length") != w.Header().Get("Content-Length") {
		t.Errorf("HEAD: %q, length %s vs %s", h.Body, h.Header().Get("Content-Length"), w.Header().Get("Content-Length"))
	}
	// Past max_list_bytes: refused, not passed unfiltered.
	p.MaxListBytes = 100
	if w, _ := serve(t, p, &identity{User: "pat", Groups: "partners"}, "GET", "/api1/collections/"); w.Code != http.StatusBadGateway || strings.Contains(w.Body.String(), polInternal) {
		t.Errorf("oversized list: %d %s", w.Code, w.Body)
	}
}

// Until the first answer of the feed, and past max_age, requests get 503.
func TestPolicyUnavailable(t *testing.T) {
	p := testPolicy(t)
	p.MaxAge = 30_000_000_000
	v := *p.view.Load()
	v.synced = time.Now().Add(-time.Minute)
	p.view.Store(&v)
	if w, _ := serve(t, p, &identity{User: "ann", Groups: "analysts"}, "GET", "/api1/"); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("stale: %d", w.Code)
	}
	p.view.Store(nil)
	if w, _ := serve(t, p, &identity{User: "ann", Groups: "analysts"}, "GET", "/api1/"); w.Code != 503 {
		t.Errorf("unknown: %d", w.Code)
	}
}
