package caddymodule

import (
	"net/http"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestAnonymous: with the option on, a request without any Authorization
// header reaches the backend without identity headers (spoofed ones
// deleted); every request with credentials is authenticated as usual, and
// bad ones stay 401.
func TestAnonymous(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)

	// Off by default: no credentials, no entry.
	g := startGateway(t, standardSite(ts, b, ""))
	resp, body := get(t, g, "/taxii2/", nil)
	assertRefused(t, resp, body)

	g = startGatewayWith(t, standardSite(ts, b, "anonymous"), lettingSpoofsThrough)
	spoof := map[string]string{}
	for _, name := range spoofed {
		spoof[name] = "admin"
	}
	before := b.count()
	resp, body = get(t, g, "/taxii2/", spoof)
	if resp.StatusCode != http.StatusOK || body != "backend ok" || b.count() != before+1 {
		t.Fatalf("anonymous: %d %q", resp.StatusCode, body)
	}
	for k := range b.last() {
		if n := normalizeHeaderName(k); n == "x-authenticated-user" || n == "x-authenticated-groups" || n == "authorization" {
			t.Fatalf("anonymous request reached the backend with %s", k)
		}
	}

	// Credentials are checked as ever; a good token still names its user.
	resp, _ = get(t, g, "/taxii2/", bearer(signEd(key, validClaims("dave", "readers"))))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Bearer: %d", resp.StatusCode)
	}
	assertIdentity(t, b.last(), "dave", "readers")

	expired := validClaims("dave")
	expired["iat"] = time.Now().Add(-2 * time.Hour).Unix()
	expired["nbf"] = expired["iat"]
	expired["exp"] = time.Now().Add(-time.Hour).Unix()
	other := newSigningKey(t, "k1")
	before = b.count()
	for name, h := range map[string]map[string]string{
		"expired token":     bearer(signEd(key, expired)),
		"foreign signature": bearer(signEd(other, validClaims("dave"))),
		"garbage token":     bearer("not-a-jwt"),
		"empty bearer":      {"Authorization": "Bearer "},
		"empty header":      {"Authorization": ""},
		"unknown scheme":    {"Authorization": "Digest abc"},
		"wrong password":    basicAuth("alice", "wrong"),
		"malformed basic":   {"Authorization": "Basic %%%"},
		"alg none":          bearer(noneToken(t)),
	} {
		resp, body := get(t, g, "/taxii2/", h)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401 (never anonymous)", name, resp.StatusCode)
			continue
		}
		assertRefused(t, resp, body)
	}
	if b.count() != before {
		t.Fatalf("refused requests reached the backend")
	}
}

func noneToken(t *testing.T) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims("dave")).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
