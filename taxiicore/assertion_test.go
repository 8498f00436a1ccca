package taxiicore

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/taxiway/taxiway/internal/identitysig"
	"github.com/taxiway/taxiway/internal/taxiierror"
)

// TestIdentitySignatureRequired: with an identity key, the core believes
// identity headers only with the gateway's signature over exactly them,
// the method, the path and the query, made recently; a trusted peer alone
// is not enough.
func TestIdentitySignatureRequired(t *testing.T) {
	oldKey, key := strings.Repeat("o", 32), strings.Repeat("k", 40)
	f := newFixture(t, func(c *Config) { c.IdentityKey = key + " " + oldKey })
	send := func(method, path, user, groups, sig string) int {
		t.Helper()
		r, err := http.NewRequest(method, f.ts.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Accept", taxiierror.MediaType)
		r.Header.Set("X-Authenticated-User", user)
		if groups != "" {
			r.Header.Set("X-Authenticated-Groups", groups)
		}
		if sig != "" {
			r.Header.Set(identitysig.Header, sig)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	sign := func(k, method, target, user, groups string, at time.Time) string {
		path, query, _ := strings.Cut(target, "?")
		return identitysig.Sign([]byte(k), at, identitysig.Request{Method: method, Path: path, Query: query, User: user, Groups: groups})
	}
	now := time.Now()
	const path = "/api1/collections/"
	cases := []struct {
		name   string
		user   string
		groups string
		sig    string
		want   int
		target string // path and query sent; path when empty
	}{
		{"signed", "alice", "", sign(key, "GET", path, "alice", "", now), 200, ""},
		{"signed with the old key", "alice", "", sign(oldKey, "GET", path, "alice", "", now), 200, ""},
		{"signed admin", "test", "taxiway-admin", sign(key, "GET", path, "test", "taxiway-admin", now), 200, ""},
		{"no signature", "test", "taxiway-admin", "", 401, ""},
		{"groups added", "test", "taxiway-admin", sign(key, "GET", path, "test", "", now), 401, ""},
		{"other user", "root", "", sign(key, "GET", path, "test", "", now), 401, ""},
		{"other path", "test", "", sign(key, "GET", "/api1/", "test", "", now), 401, ""},
		{"other method", "test", "", sign(key, "DELETE", path, "test", "", now), 401, ""},
		{"unknown key", "test", "", sign(strings.Repeat("x", 32), "GET", path, "test", "", now), 401, ""},
		{"too old", "test", "", sign(key, "GET", path, "test", "", now.Add(-2*identitysig.MaxSkew)), 401, ""},
		{"signed with its query", "alice", "", sign(key, "GET", path+"?limit=1", "alice", "", now), 200, path + "?limit=1"},
		// A signature made for a narrow request (say DELETE with
		// match[version]) replayed without its query, or with another.
		{"query dropped", "alice", "", sign(key, "GET", path+"?limit=1", "alice", "", now), 401, path},
		{"query changed", "alice", "", sign(key, "GET", path+"?limit=1", "alice", "", now), 401, path + "?limit=2"},
		{"query added", "alice", "", sign(key, "GET", path, "alice", "", now), 401, path + "?limit=1"},
		{"version 1 (no query covered)", "alice", "", strings.Replace(sign(key, "GET", path, "alice", "", now), "v2;", "v1;", 1), 401, ""},
	}
	for _, tc := range cases {
		target := tc.target
		if target == "" {
			target = path
		}
		if got := send("GET", target, tc.user, tc.groups, tc.sig); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestIdentityKeyTooShortRefused(t *testing.T) {
	cfg := DefaultConfig()
	cfg.IdentityKey = "short"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "identity key") {
		t.Fatalf("short identity key: %v", err)
	}
}
