package caddymodule

import (
	"net/http"
	"testing"
	"time"
)

// TestSkipChecksCredentials is the fronting setup: the backend answers with
// its own service account (request_header), so nothing but a request
// without credentials on the skipped path, spelled plainly, may reach it
// unauthenticated. Credentials on a skipped path are checked as anywhere
// (bad: 401, good: the identity goes on), and other spellings of the path
// need credentials.
func TestSkipChecksCredentials(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	const service = "Basic c3ZjOnNlcnZpY2U="
	g := startGateway(t, `	request_header Authorization "`+service+`"
`+standardSite(ts, b, "skip /taxii2/"))

	// No credentials, plain spelling: passes without identity.
	for _, path := range []string{"/taxii2/", "/TAXII2/"} { // Caddy's path matcher ignores case
		resp, body := get(t, g, path, map[string]string{"X-Authenticated-User": "admin"})
		if resp.StatusCode != http.StatusOK || body != "backend ok" {
			t.Fatalf("%s without credentials: %d %s", path, resp.StatusCode, body)
		}
		if h := b.last(); h.Get("X-Authenticated-User") != "" || h.Get("Authorization") != service {
			t.Errorf("%s: backend headers %v", path, h)
		}
	}

	// Other spellings of the skipped path need credentials.
	before := b.count()
	for _, path := range []string{"/taxii2/./", "/taxii2/%2e/", "/taxii2/%2E/", "//taxii2/", "/taxii2//",
		"/x/../taxii2/", "/x/%2e%2e/taxii2/", "/x%2f..%2ftaxii2/", "/taxii2%2f", "/taxii2%5c", "/taxii2/%2e%2e/taxii2/"} {
		resp, body := get(t, g, path, nil)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d %s, want 401", path, resp.StatusCode, body)
			continue
		}
		assertRefused(t, resp, body)
	}
	if b.count() != before {
		t.Fatalf("unusual spellings of the skipped path reached the backend %d times", b.count()-before)
	}

	// Bad credentials on the skipped path, in any spelling: 401.
	expired := validClaims("dave")
	expired["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	expired["nbf"] = expired["iat"]
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	for name, h := range map[string]map[string]string{
		"wrong password":  basicAuth("alice", "wrong"),
		"garbage token":   bearer("not-a-valid-token"),
		"expired token":   bearer(signEd(key, expired)),
		"alg none":        bearer(noneToken(t)),
		"empty header":    {"Authorization": ""},
		"malformed basic": {"Authorization": "Basic %%%"},
		"unknown scheme":  {"Authorization": "Digest abc"},
	} {
		for _, path := range []string{"/taxii2/", "/TAXII2/", "/taxii2/./", "/taxii2/%2e/", "//taxii2/"} {
			resp, body := get(t, g, path, h)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s on %s: %d, want 401", name, path, resp.StatusCode)
				continue
			}
			assertRefused(t, resp, body)
		}
	}
	if b.count() != before {
		t.Fatalf("bad credentials reached the backend %d times", b.count()-before)
	}

	// Good credentials on the skipped path: the identity goes on.
	resp, body := get(t, g, "/taxii2/", bearer(signEd(key, validClaims("dave", "readers"))))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Bearer on the skipped path: %d %s", resp.StatusCode, body)
	}
	if h := b.last(); h.Get("X-Authenticated-User") != "dave" || h.Get("X-Authenticated-Groups") != "readers" || h.Get("Authorization") != service {
		t.Errorf("backend headers %v", h)
	}
}

// TestSkipSpelling: the spellings the skip matchers are consulted for
// (canonicalPath of the escaped path).
func TestSkipSpelling(t *testing.T) {
	for raw, want := range map[string]bool{
		"/taxii2/": true, "/": true, "/api1/collections/x/objects/": true, "/t%61xii2/": true,
		"/taxii2/./": false, "/taxii2/../": false, "//taxii2/": false, "/taxii2//x": false, "/taxii2/%2e/": false,
		"/a%2fb": false, "/a%2Fb": false, "/a%5cb": false, "*": false, "/a%20b/": false, "/taxii2;x/": false,
		"/taxii2/%00/": false, "/t%C3%A4xii2/": false,
	} {
		req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1"+raw, nil)
		if raw == "*" {
			req, err = http.NewRequest(http.MethodOptions, "http://127.0.0.1", nil)
			req.URL.Path = "*"
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, got := canonicalPath(req.URL.EscapedPath()); got != want {
			t.Errorf("%q: plain %v, want %v", raw, got, want)
		}
	}
}
