package caddymodule

import (
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/taxiway/taxiway/internal/identitysig"
)

// eventually polls cond every 20ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func revocationSite(ts *tokenService, b *backend, extra string) string {
	return standardSite(ts, b, "revocation_url "+ts.srv.URL+"/internal/revocations\n\t\t"+extra)
}

// TestRevocationFeed: revoking an account refuses its Bearer tokens within
// the bound and makes cached Basic credentials exchange again (which gets a
// token of the new version); a single revoked jti is refused; a feed that
// goes away keeps the last state.
func TestRevocationFeed(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	g := startGateway(t, revocationSite(ts, b, ""))

	// alice: a Bearer token (version 0) and cached Basic credentials.
	tok := signEd(key, validClaims("alice", "analysts"))
	if resp, body := get(t, g, "/x", bearer(tok)); resp.StatusCode != 200 {
		t.Fatalf("Bearer before revocation: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, g, "/x", basicAuth("alice", "correct horse")); resp.StatusCode != 200 {
		t.Fatalf("Basic before revocation: %d", resp.StatusCode)
	}
	get(t, g, "/x", basicAuth("alice", "correct horse"))
	if n := ts.exchanges.Load(); n != 1 {
		t.Fatalf("exchanges %d, want 1 (cached)", n)
	}

	ts.revokeAccount("alice")
	took := eventually(t, 2*time.Second, "Bearer refused after revocation", func() bool {
		resp, _ := get(t, g, "/x", bearer(tok))
		return resp.StatusCode == http.StatusUnauthorized
	})
	t.Logf("revocation reached the gateway in %v", took)
	resp, body := get(t, g, "/x", bearer(tok))
	assertRefused(t, resp, body)

	// Basic: the cached exchange is void, a new one is made and works (the
	// password did not change); it is then cached again.
	if resp, body := get(t, g, "/x", basicAuth("alice", "correct horse")); resp.StatusCode != 200 {
		t.Fatalf("Basic after revocation: %d %s", resp.StatusCode, body)
	}
	get(t, g, "/x", basicAuth("alice", "correct horse"))
	if n := ts.exchanges.Load(); n != 2 {
		t.Errorf("exchanges %d, want 2: one new exchange after the revocation, then the cache", n)
	}
	// A token of the new version works.
	fresh := validClaims("alice", "analysts")
	fresh["account_version"] = 1
	if resp, _ := get(t, g, "/x", bearer(signEd(key, fresh))); resp.StatusCode != 200 {
		t.Errorf("token of the new version: %d", resp.StatusCode)
	}

	// One token by jti; others of the same account still work.
	one := validClaims("bob")
	one["jti"] = "revoke-me"
	other := validClaims("bob")
	other["jti"] = "keep-me"
	if resp, _ := get(t, g, "/x", bearer(signEd(key, one))); resp.StatusCode != 200 {
		t.Fatal("bob's token refused before its revocation")
	}
	ts.revokeJTI("revoke-me")
	eventually(t, 2*time.Second, "jti refused", func() bool {
		resp, _ := get(t, g, "/x", bearer(signEd(key, one)))
		return resp.StatusCode == http.StatusUnauthorized
	})
	if resp, _ := get(t, g, "/x", bearer(signEd(key, other))); resp.StatusCode != 200 {
		t.Errorf("another token of bob: %d", resp.StatusCode)
	}

	// The feed goes away: the last state still holds, nothing else changes.
	ts.setFeedDown(true)
	if resp, _ := get(t, g, "/x", bearer(signEd(key, other))); resp.StatusCode != 200 {
		t.Errorf("feed down, valid token: %d", resp.StatusCode)
	}
	if resp, _ := get(t, g, "/x", bearer(tok)); resp.StatusCode != 401 {
		t.Errorf("feed down, revoked token: %d", resp.StatusCode)
	}
	ts.setFeedDown(false)
	log := readLog(t, g)
	for _, secret := range []string{tok, "correct horse"} {
		if strings.Contains(log, secret) {
			t.Error("a secret reached the log")
		}
	}
}

func readLog(t *testing.T, g gateway) string {
	t.Helper()
	b, _ := osReadFile(g.logFile)
	return string(b)
}

// TestDisabledAccountBasicExchanged: the feed says an account is
// disabled: its cached Basic credentials are refused at once, and every
// attempt after that goes to the token service like a wrong password, so
// it costs the same and counts against the same rate limits (the token
// service's 429 reaches the client). Enabled again, they work.
func TestDisabledAccountBasicExchanged(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	g := startGateway(t, revocationSite(ts, b, ""))
	if resp, _ := get(t, g, "/x", basicAuth("alice", "correct horse")); resp.StatusCode != 200 {
		t.Fatal("Basic before disable")
	}
	ts.setAccount("alice", true)
	eventually(t, 2*time.Second, "cached Basic refused", func() bool {
		resp, _ := get(t, g, "/x", basicAuth("alice", "correct horse"))
		return resp.StatusCode == http.StatusUnauthorized
	})
	for _, pw := range []string{"correct horse", "other guess", "correct horse"} {
		n := ts.exchanges.Load()
		resp, body := get(t, g, "/x", basicAuth("alice", pw))
		assertRefused(t, resp, body)
		if ts.exchanges.Load() != n+1 {
			t.Errorf("password %q of a disabled account: %d exchanges, want 1 (the token service decides and counts)", pw, ts.exchanges.Load()-n)
		}
	}
	ts.setStatus(http.StatusTooManyRequests, "30")
	if resp, _ := get(t, g, "/x", basicAuth("alice", "correct horse")); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("token service's rate limit for a disabled account: %d, want 429", resp.StatusCode)
	}
	ts.setStatus(0, "")
	ts.setAccount("alice", false)
	eventually(t, 2*time.Second, "Basic after enable", func() bool {
		resp, _ := get(t, g, "/x", basicAuth("alice", "correct horse"))
		return resp.StatusCode == http.StatusOK
	})
}

// TestRevocationStateRequired: until the feed has answered once, tokens
// get 503 (the gateway cannot tell revoked ones); and revocation_max_age
// refuses them once the state is older.
func TestRevocationStateRequired(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	ts.setFeedDown(true)
	b := newBackend(t)
	g := startGateway(t, revocationSite(ts, b, ""))
	resp, body := get(t, g, "/x", bearer(signEd(key, validClaims("alice"))))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("before the first answer: %d %s, want 503 with Retry-After", resp.StatusCode, body)
	}
	assertTAXIIError(t, resp, body, "503")
	ts.setFeedDown(false)
	eventually(t, 10*time.Second, "accepted once the feed answers", func() bool {
		resp, _ := get(t, g, "/x", bearer(signEd(key, validClaims("alice"))))
		return resp.StatusCode == http.StatusOK
	})

	// The age bound, on the state itself (waiting 30s in a test is not
	// worth it): fresh passes, older than max age refuses.
	r := newRevocations("http://127.0.0.1:1/", time.Minute, nil, mustMetrics(t))
	now := time.Now()
	r.synced = now.Add(-59 * time.Second)
	if err := r.check(identity{User: "alice"}, now); err != nil {
		t.Errorf("state 59s old with max age 1m: %v", err)
	}
	r.synced = now.Add(-61 * time.Second)
	if err := r.check(identity{User: "alice"}, now); err != errRevocationsStale {
		t.Errorf("state 61s old with max age 1m: %v", err)
	}
	r.maxAge = 0
	if err := r.check(identity{User: "alice"}, now.Add(24*time.Hour)); err != nil {
		t.Errorf("no max age, old state: %v", err)
	}
}

// TestRevocationStateBounded: entries are dropped once their tokens have
// expired.
func TestRevocationStateBounded(t *testing.T) {
	r := newRevocations("http://127.0.0.1:1/", 0, nil, mustMetrics(t))
	now := time.Now()
	page := revocationPage{Cursor: 3}
	page.Entries = append(page.Entries,
		revocationEntry{Username: "old", MinVersion: 5, Until: now.Add(-time.Minute).Unix()},
		revocationEntry{Username: "new", MinVersion: 7, Until: now.Add(time.Hour).Unix()},
		revocationEntry{JTI: "gone", Until: now.Add(-time.Second).Unix()},
	)
	r.apply(page, now)
	if len(r.accounts) != 1 || len(r.tokens) != 0 || r.cursor != 3 {
		t.Fatalf("after apply: accounts %v tokens %v cursor %d", r.accounts, r.tokens, r.cursor)
	}
	if err := r.check(identity{User: "new", Version: 6}, now); err != errRevoked {
		t.Errorf("version below min: %v", err)
	}
	if err := r.check(identity{User: "new", Version: 7}, now); err != nil {
		t.Errorf("version at min: %v", err)
	}
	r.apply(revocationPage{Cursor: 0, Reset: true}, now)
	if len(r.accounts) != 0 {
		t.Errorf("reset kept %v", r.accounts)
	}
}

// TestIdentitySignature: with identity_key the backend receives a
// signature over exactly the identity, method and path it got; a client's
// own signature header never passes, with or without authentication.
func TestIdentitySignature(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	var (
		got   []http.Header
		paths []string
	)
	bk := newBackend(t)
	secret := strings.Repeat("z", 40)
	t.Setenv("TAXIWAY_TEST_IDENTITY_KEY", secret)
	g := startGateway(t, standardSite(ts, bk, "identity_key {env.TAXIWAY_TEST_IDENTITY_KEY}\n\t\tskip /public/*"))
	h := bearer(signEd(key, validClaims("alice", "analysts", "admins")))
	h[identitysig.Header] = "v1;t=1;s=forged"
	for _, path := range []string{"/api1/collections/", "/a%2Fb/c/"} {
		if resp, body := get(t, g, path, h); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		got = append(got, bk.last())
		paths = append(paths, path)
	}
	for i, hdr := range got {
		err := identitysig.Verify([][]byte{[]byte(secret)}, hdr.Get(identitysig.Header), time.Now(), identitysig.Request{
			Method: "GET", Path: paths[i], User: hdr.Get("X-Authenticated-User"), Groups: hdr.Get("X-Authenticated-Groups"),
		})
		if err != nil || len(hdr.Values(identitysig.Header)) != 1 {
			t.Errorf("%s: signature %q does not verify: %v", paths[i], hdr.Values(identitysig.Header), err)
		}
	}
	// Skipped paths: no identity, no signature, the client's removed.
	if resp, _ := get(t, g, "/public/x", map[string]string{identitysig.Header: "v1;t=1;s=forged"}); resp.StatusCode != 200 {
		t.Fatalf("skip: %d", resp.StatusCode)
	}
	if v := bk.last().Values(identitysig.Header); len(v) != 0 {
		t.Errorf("skipped path passed a signature header %q", v)
	}
}

// TestClockSkew: a gateway whose clock is 5s behind or ahead of the token
// service's accepts fresh tokens, Bearer and Basic, with the default leeway.
func TestClockSkew(t *testing.T) {
	key := newSigningKey(t, "k1")
	for _, skew := range []time.Duration{5 * time.Second, -5 * time.Second} {
		ts := newTokenService(t, key)
		ts.skew = skew // the token service's clock, relative to the gateway's
		b := newBackend(t)
		g := startGateway(t, standardSite(ts, b, ""))
		c := validClaims("alice")
		now := time.Now().Add(skew)
		c["iat"], c["nbf"], c["exp"] = now.Unix(), now.Unix(), now.Add(time.Hour).Unix()
		if resp, body := get(t, g, "/x", bearer(signEd(key, c))); resp.StatusCode != 200 {
			t.Errorf("skew %v, Bearer: %d %s", skew, resp.StatusCode, body)
		}
		if resp, body := get(t, g, "/x", basicAuth("alice", "correct horse")); resp.StatusCode != 200 {
			t.Errorf("skew %v, Basic: %d %s", skew, resp.StatusCode, body)
		}
	}
}

// TestHopByHopTricks: a client naming identity headers in Connection
// cannot make the proxy drop the ones the gateway sets; declaring them as
// trailers is refused.
func TestHopByHopTricks(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	g := startGateway(t, standardSite(ts, b, ""))
	tok := signEd(key, validClaims("alice", "analysts"))
	for _, conn := range []string{"X-Authenticated-User", "x-authenticated-groups, keep-alive", "X_Authenticated_User,X-Authenticated-Groups"} {
		h := bearer(tok)
		h["Connection"] = conn
		if resp, body := get(t, g, "/x", h); resp.StatusCode != 200 {
			t.Fatalf("Connection %q: %d %s", conn, resp.StatusCode, body)
		}
		assertIdentity(t, b.last(), "alice", "analysts")
	}
	before := b.count()
	// Trailers exist only with a chunked body (Go drops the declaration
	// otherwise); the client sends one with a body of unknown length.
	for _, names := range [][]string{{"X-Authenticated-User"}, {"Foo", "X_Authenticated_Groups"}} {
		req, err := http.NewRequest(http.MethodPost, g.url+"/x", io.MultiReader(strings.NewReader("body")))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Trailer = http.Header{}
		for _, n := range names {
			req.Trailer[n] = []string{"admin"}
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("trailers %v: %d %s, want 400", names, resp.StatusCode, body)
		}
	}
	if b.count() != before {
		t.Error("a request declaring identity trailers reached the backend")
	}
}

// TestAuthorizationSpaces: extra spaces after the scheme are accepted for
// Basic as for Bearer.
func TestAuthorizationSpaces(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	g := startGateway(t, standardSite(ts, b, ""))
	basic := basicAuth("alice", "correct horse")["Authorization"]
	for _, v := range []string{
		"Basic   " + strings.TrimPrefix(basic, "Basic "),
		"Basic " + strings.TrimPrefix(basic, "Basic ") + "  ",
		"Bearer   " + signEd(key, validClaims("alice")),
	} {
		if resp, body := get(t, g, "/x", map[string]string{"Authorization": v}); resp.StatusCode != 200 {
			t.Errorf("%.20q...: %d %s", v, resp.StatusCode, body)
		}
	}
	if resp, body := get(t, g, "/x", map[string]string{"Authorization": "Basic   !!notbase64"}); resp.StatusCode != 401 {
		t.Errorf("bad base64: %d %s", resp.StatusCode, body)
	}
}

// TestUnknownKidRefreshesWithStaticKey: with jwks_url and public_key_file,
// a token signed with a key rotated into the JWKS is accepted at once (the
// unknown kid refreshes the JWKS before the static key is tried), and the
// change purges cached Basic exchanges too.
func TestUnknownKidRefreshesWithStaticKey(t *testing.T) {
	k1, k2, static := newSigningKey(t, "k1"), newSigningKey(t, "k2"), newSigningKey(t, "static")
	ts := newTokenService(t, k1)
	b := newBackend(t)
	pem := writePublicKeyPEM(t, t.TempDir(), static)
	g := startGateway(t, standardSite(ts, b, "public_key_file "+pem))
	if resp, _ := get(t, g, "/x", bearer(signEd(static, validClaims("alice")))); resp.StatusCode != 200 {
		t.Fatalf("static key: %d", resp.StatusCode)
	}
	if resp, _ := get(t, g, "/x", basicAuth("alice", "correct horse")); resp.StatusCode != 200 {
		t.Fatal("Basic")
	}
	if n := ts.exchanges.Load(); n != 1 {
		t.Fatalf("exchanges %d", n)
	}
	ts.rotate(k2)
	if resp, body := get(t, g, "/x", bearer(signEd(k2, validClaims("alice")))); resp.StatusCode != 200 {
		t.Fatalf("freshly rotated key with a static key configured: %d %s", resp.StatusCode, body)
	}
	// The key set changed: the Basic cache was emptied.
	get(t, g, "/x", basicAuth("alice", "correct horse"))
	if n := ts.exchanges.Load(); n != 2 {
		t.Errorf("exchanges %d after a JWKS change, want 2 (Basic cache purged)", n)
	}
}

// TestHS256WithPublicKeyBytes: with algorithms EdDSA HS256, a token signed
// HS256 with the Ed25519 public key (raw, base64url as in the JWKS, or PEM)
// as the HMAC secret is refused.
func TestHS256WithPublicKeyBytes(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	dir := t.TempDir()
	secretFile := dir + "/secret"
	if err := osWriteFile(secretFile, []byte(strings.Repeat("s", 40))); err != nil {
		t.Fatal(err)
	}
	pemFile := writePublicKeyPEM(t, dir, key)
	pemBytes, _ := osReadFile(pemFile)
	g := startGateway(t, standardSite(ts, b, "algorithms EdDSA HS256\n\t\ths256_secret_file "+secretFile))
	if resp, _ := get(t, g, "/x", bearer(signEd(key, validClaims("alice")))); resp.StatusCode != 200 {
		t.Fatal("EdDSA refused")
	}
	for name, secret := range map[string][]byte{
		"raw public key":     key.pub,
		"base64url (JWK x)":  []byte(b64url(key.pub)),
		"PEM of the key":     pemBytes,
		"PEM without header": []byte(strings.TrimSpace(string(pemBytes))),
	} {
		for _, kid := range []string{"", "k1"} {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims("mallory", "taxiway-admin"))
			if kid != "" {
				tok.Header["kid"] = kid
			}
			s, err := tok.SignedString(secret)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := get(t, g, "/x", bearer(s))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("HS256 with %s (kid %q): %d %s", name, kid, resp.StatusCode, body)
			}
		}
	}
}

func TestCacheKeyUnambiguous(t *testing.T) {
	c := newIdentityCache([]byte("k"), "basic", 10, time.Minute)
	pairs := [][2]string{{"a\x00b", "c"}, {"a", "b\x00c"}, {"a\x00", "bc"}, {"", "a\x00bc"}}
	seen := map[[32]byte]int{}
	for i, p := range pairs {
		k := c.key(p[0], p[1])
		if j, dup := seen[k]; dup {
			t.Errorf("pairs %q and %q share a cache key", pairs[j], p)
		}
		seen[k] = i
	}
}

func osReadFile(p string) ([]byte, error) { return os.ReadFile(p) }

func osWriteFile(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustMetrics(t *testing.T) *metrics {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}
