package e2e

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestOpenTAXIIAuthWalkthrough follows OpenTAXII's authentication
// documentation: a token from /management/auth (form and JSON bodies), then
// TAXII requests with it, and Basic as the alternative.
func TestOpenTAXIIAuthWalkthrough(t *testing.T) {
	// A wrong password: its answer is padded to a password hash's time
	// and more, which could outlast the short-lived token (4 s) below.
	resp, err := httpClient.PostForm(stack.GatewayURL()+"/management/auth", url.Values{"username": {"test"}, "password": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password: status %d, want 401", resp.StatusCode)
	}

	resp, err = httpClient.Post(stack.GatewayURL()+"/management/auth", "application/json",
		strings.NewReader(`{"username": "test", "password": "test"}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || body.Token == "" {
		t.Fatalf("JSON login: status %d, token %q", resp.StatusCode, body.Token)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "no-store") {
		t.Errorf("token response Cache-Control = %q, want no-store", cc)
	}

	token := login(t, "test", "test")
	for name, c := range map[string]client{"bearer": bearer(t, token), "basic": basic(t, "test", "test")} {
		disc, _ := c.json("GET", "/taxii2/", nil, http.StatusOK)
		if roots, _ := disc["api_roots"].([]any); !slices.Contains(roots, any(demoRoot)) {
			t.Errorf("%s: discovery api_roots = %v, want %s in it", name, disc["api_roots"], demoRoot)
		}
	}

	r, b := anonymous(t).do("GET", "/taxii2/", nil)
	if r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credentials: status %d, want 401", r.StatusCode)
	}
	if ch := r.Header.Get("WWW-Authenticate"); !strings.Contains(ch, "Bearer") || !strings.Contains(ch, "Basic") {
		t.Errorf("401 WWW-Authenticate = %q, want Bearer and Basic challenges", ch)
	}
	var e map[string]any
	if err := json.Unmarshal(b, &e); err != nil || e["http_status"] != "401" {
		t.Errorf("401 body = %s, want a TAXII error with http_status \"401\"", b)
	}
}

// TestTAXIIClientFlow is what a TAXII 2.1 client does, end to end, once
// with Basic credentials and once with Bearer tokens.
func TestTAXIIClientFlow(t *testing.T) {
	t.Run("basic", func(t *testing.T) { clientFlow(t, basic(t, "test", "test")) })
	t.Run("bearer", func(t *testing.T) { clientFlow(t, freshBearer(t, "test", "test")) })
}

func clientFlow(t *testing.T, c client) {

	root, _ := c.json("GET", demoRoot, nil, http.StatusOK)
	if v, _ := root["versions"].([]any); !slices.Contains(v, any(taxiiType)) {
		t.Errorf("API root versions = %v, want %s", root["versions"], taxiiType)
	}
	cols, _ := c.json("GET", demoRoot+"collections/", nil, http.StatusOK)
	var demo map[string]any
	for _, col := range cols["collections"].([]any) {
		if m := col.(map[string]any); m["id"] == demoCol {
			demo = m
		}
	}
	if demo == nil || demo["can_read"] != true || demo["can_write"] != true {
		t.Fatalf("collections = %v, want %s readable and writable", cols, demoCol)
	}

	// Add a bundle: five indicators, the first in two versions.
	objs := []map[string]any{}
	ids := []string{}
	for i := range 5 {
		o := indicator(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		objs = append(objs, o)
		ids = append(ids, o["id"].(string))
		if i == 0 {
			v2 := clone(o)
			v2["modified"] = "2026-02-01T00:00:00.123Z"
			objs = append(objs, v2)
		}
	}
	status, _ := c.json("POST", demoObjects, map[string]any{"objects": objs}, http.StatusAccepted)
	if status["status"] != "complete" || status["success_count"] != float64(len(objs)) || status["failure_count"] != float64(0) {
		t.Fatalf("add objects status = %v", status)
	}
	polled, _ := c.json("GET", fmt.Sprintf("%sstatus/%s/", demoRoot, status["id"]), nil, http.StatusOK)
	if polled["id"] != status["id"] || polled["total_count"] != float64(len(objs)) {
		t.Errorf("polled status = %v, want the POST's status", polled)
	}

	// Read back with filters: AND across fields, latest version by default.
	q := url.Values{"match[id]": {strings.Join(ids, ",")}, "match[type]": {"indicator"}}
	env, resp := c.json("GET", demoObjects+"?"+q.Encode(), nil, http.StatusOK)
	got := env["objects"].([]any)
	if len(got) != len(ids) {
		t.Fatalf("match[id] of %d objects returned %d", len(ids), len(got))
	}
	if resp.Header.Get("X-TAXII-Date-Added-First") == "" || resp.Header.Get("X-TAXII-Date-Added-Last") == "" {
		t.Errorf("objects page without X-TAXII-Date-Added headers: %v", resp.Header)
	}
	for _, o := range got {
		if m := o.(map[string]any); m["id"] == ids[0] && m["modified"] != "2026-02-01T00:00:00.123Z" {
			t.Errorf("default version of %s = %v, want the latest, kept as sent", ids[0], m["modified"])
		}
	}
	if env, _ := c.json("GET", demoObjects+"?"+url.Values{"match[id]": {ids[0]}, "match[type]": {"malware"}}.Encode(), nil, http.StatusOK); env["objects"] != nil {
		t.Errorf("match[type]=malware on an indicator returned %v", env["objects"])
	}

	// Page through with next, two at a time: every object once.
	seen := map[string]int{}
	q.Set("limit", "2")
	q.Set("match[version]", "all")
	path := demoObjects + "?" + q.Encode()
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("pagination did not end")
		}
		env, _ := c.json("GET", path, nil, http.StatusOK)
		for _, o := range env["objects"].([]any) {
			m := o.(map[string]any)
			seen[m["id"].(string)+"/"+m["modified"].(string)]++
		}
		if env["more"] != true {
			break
		}
		next, _ := env["next"].(string)
		if next == "" {
			t.Fatal("more without next")
		}
		path = demoObjects + "?" + q.Encode() + "&next=" + url.QueryEscape(next)
	}
	if len(seen) != len(objs) {
		t.Errorf("paging saw %d versions, want %d: %v", len(seen), len(objs), seen)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("paging returned %s %d times", k, n)
		}
	}

	man, _ := c.json("GET", demoManifest+"?"+url.Values{"match[id]": {ids[0]}, "match[version]": {"all"}}.Encode(), nil, http.StatusOK)
	if recs, _ := man["objects"].([]any); len(recs) != 2 {
		t.Errorf("manifest of %s with all versions = %v, want 2 records", ids[0], man)
	}
	vers, _ := c.json("GET", demoObjects+ids[0]+"/versions/", nil, http.StatusOK)
	if v, _ := vers["versions"].([]any); len(v) != 2 || v[0] != "2026-01-01T00:00:00.000Z" || v[1] != "2026-02-01T00:00:00.123Z" {
		t.Errorf("versions = %v, want both, oldest first", vers)
	}
	one, _ := c.json("GET", demoObjects+ids[1]+"/", nil, http.StatusOK)
	if o, _ := one["objects"].([]any); len(o) != 1 {
		t.Errorf("get an object = %v", one)
	}

	if r, b := c.do("DELETE", demoObjects+ids[1]+"/", nil); r.StatusCode != http.StatusOK {
		t.Fatalf("delete: status %d %s", r.StatusCode, b)
	}
	c.json("GET", demoObjects+ids[1]+"/", nil, http.StatusNotFound)
}

// TestSpoofedIdentityHeadersIgnored: the gateway drops client-sent identity
// headers in every spelling, with or without credentials.
func TestSpoofedIdentityHeadersIgnored(t *testing.T) {
	outsider := ensureOutsider(t)
	for _, name := range []string{"X-Authenticated-User", "x-authenticated-user", "X_Authenticated_User", "X.Authenticated.User"} {
		h := http.Header{name: {"test"}}
		if r, _ := anonymous(t).with(h).do("GET", demoRoot+"collections/", nil); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: test without credentials: status %d, want 401", name, r.StatusCode)
		}
		// The outsider claiming to be test, or to be an admin, stays the outsider.
		h.Set("X-Authenticated-Groups", "taxiway-admin")
		outsider.with(h).json("GET", demoRoot+"collections/"+demoCol+"/", nil, http.StatusNotFound)
	}
}

// TestUserWithoutGrantSeesNoCollection: a collection one cannot read or
// write does not exist for them.
func TestUserWithoutGrantSeesNoCollection(t *testing.T) {
	c := ensureOutsider(t)
	cols, _ := c.json("GET", demoRoot+"collections/", nil, http.StatusOK)
	if _, listed := cols["collections"]; listed {
		t.Errorf("outsider's collections = %v, want none (and no empty list)", cols)
	}
	c.json("GET", demoRoot+"collections/"+demoCol+"/", nil, http.StatusNotFound)
	c.json("GET", demoObjects, nil, http.StatusNotFound)
	c.json("POST", demoObjects, map[string]any{"objects": []any{indicator(time.Now())}}, http.StatusNotFound)
}

// ensureOutsider creates (idempotently) an account with no grant.
func ensureOutsider(t *testing.T) client {
	t.Helper()
	syncYAML(t, fmt.Sprintf("accounts:\n  - username: outsider\n    password_hash: %q\n", passwordHash(t, "outsider-pw")))
	return basic(t, "outsider", "outsider-pw")
}

func indicator(modified time.Time) map[string]any {
	ts := modified.UTC().Format("2006-01-02T15:04:05.000Z")
	return map[string]any{
		"type": "indicator", "spec_version": "2.1", "id": "indicator--" + uuid4(),
		"created": ts, "modified": ts, "valid_from": ts,
		"pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix",
	}
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func uuid4() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
