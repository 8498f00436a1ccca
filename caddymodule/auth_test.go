package caddymodule

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// spoofed are client-sent spellings of the identity headers, all of which
// must be deleted before the backend sees the request.
var spoofed = []string{
	"X-Authenticated-User", "x-authenticated-user", "X_Authenticated_User", "x.authenticated.user",
	"X-AUTHENTICATED_USER", "X-Authenticated-Groups", "x_authenticated_groups", "X.Authenticated.Groups",
}

// lettingSpoofsThrough makes Caddy's own filter (which drops headers with
// '_' or '.' by default) keep the spoofed spellings, so that the tests show
// taxii_auth removes them itself, for servers configured that way.
var lettingSpoofsThrough = map[string]any{
	"expected_underscore_headers": []string{"X_Authenticated_User", "X-AUTHENTICATED_USER", "x_authenticated_groups"},
	"expected_dot_headers":        []string{"x.authenticated.user", "X.Authenticated.Groups"},
}

// assertRefused checks a 401 with both challenges and a TAXII error body.
func assertRefused(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401; body %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="taxii", Basic realm="taxii"` {
		t.Errorf("WWW-Authenticate %q", got)
	}
	assertTAXIIError(t, resp, body, "401")
}

func assertTAXIIError(t *testing.T, resp *http.Response, body, status string) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != taxiierror.MediaType {
		t.Errorf("Content-Type %q, want %q", ct, taxiierror.MediaType)
	}
	var e taxiierror.Error
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.HTTPStatus != status || e.Title == "" {
		t.Errorf("body %q is not a TAXII error with http_status %q", body, status)
	}
}

// assertIdentity checks that the backend got exactly the identity headers
// for user and groups, no Authorization and no spoofed spelling.
func assertIdentity(t *testing.T, h http.Header, user, groups string) {
	t.Helper()
	if h == nil {
		t.Fatal("backend received nothing")
	}
	if got := h.Values("X-Authenticated-User"); len(got) != 1 || got[0] != user {
		t.Errorf("X-Authenticated-User %q, want [%q]", got, user)
	}
	gotGroups := h.Values("X-Authenticated-Groups")
	if groups == "" && len(gotGroups) != 0 || groups != "" && (len(gotGroups) != 1 || gotGroups[0] != groups) {
		t.Errorf("X-Authenticated-Groups %q, want %q", gotGroups, groups)
	}
	if v, ok := h["Authorization"]; ok {
		t.Errorf("backend received Authorization %q", v)
	}
	for k := range h {
		n := normalizeHeaderName(k)
		if (n == "x-authenticated-user" && k != "X-Authenticated-User") ||
			(n == "x-authenticated-groups" && k != "X-Authenticated-Groups") {
			t.Errorf("backend received spoofed header %q", k)
		}
	}
}

// TestSecurityRefusals: every bad token or header spelling gets 401 and
// reaches no backend.
func TestSecurityRefusals(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	g := startGatewayWith(t, standardSite(ts, b, "max_header_bytes 1024"), lettingSpoofsThrough)

	other := newSigningKey(t, "k1") // same kid, wrong key
	hsWithPublicKey := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims("mallory"))
		tok.Header["kid"] = key.kid
		s, err := tok.SignedString([]byte(key.pub))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, validClaims("mallory")).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	withClaim := func(k string, v any) string {
		c := validClaims("mallory")
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return signEd(key, c)
	}
	tampered := func() string {
		parts := strings.Split(signEd(key, validClaims("bob")), ".")
		c := validClaims("alice", "admins")
		payload, _ := json.Marshal(c)
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}
	now := time.Now()
	expired := withClaim("exp", now.Add(-time.Minute).Unix())
	cases := []struct {
		name    string
		headers map[string]string
	}{
		{"no credentials", nil},
		{"alg none", bearer(none())},
		{"HS256 signed with the public key", bearer(hsWithPublicKey())},
		{"expired", bearer(expired)},
		{"nbf in the future", bearer(withClaim("nbf", now.Add(10*time.Minute).Unix()))},
		{"iat in the future", bearer(withClaim("iat", now.Add(10*time.Minute).Unix()))},
		{"wrong iss", bearer(withClaim("iss", "evil"))},
		{"wrong aud", bearer(withClaim("aud", "other"))},
		{"no exp", bearer(withClaim("exp", nil))},
		{"lifetime above max_lifetime", bearer(withClaim("exp", now.Add(48*time.Hour).Unix()))},
		{"empty sub", bearer(withClaim("sub", ""))},
		{"tampered payload", bearer(tampered())},
		{"signed by another key with a known kid", bearer(signEd(other, validClaims("mallory")))},
		{"unknown kid", bearer(signEd(newSigningKey(t, "nope"), validClaims("mallory")))},
		{"garbage bearer", bearer("not.a.token")},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}},
		{"oversized header", bearer(signEd(key, validClaims("alice", strings.Repeat("g", 1200))))},
		{"unknown scheme", map[string]string{"Authorization": "Digest username=alice"}},
		{"malformed basic", map[string]string{"Authorization": "Basic !!!"}},
		{"wrong password", basicAuth("alice", "wrong")},
		{"unknown user", basicAuth("nobody", "x")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := b.count()
			resp, body := get(t, g, "/taxii2/", tc.headers)
			assertRefused(t, resp, body)
			if b.count() != before {
				t.Errorf("backend was reached")
			}
		})
	}

	// Spoofed identity headers alone, or with bad credentials, get 401.
	for _, name := range spoofed {
		for _, creds := range []map[string]string{nil, bearer(none()), basicAuth("alice", "wrong")} {
			h := map[string]string{name: "admin"}
			for k, v := range creds {
				h[k] = v
			}
			before := b.count()
			resp, body := get(t, g, "/taxii2/", h)
			assertRefused(t, resp, body)
			if b.count() != before {
				t.Errorf("%s: backend was reached", name)
			}
		}
	}

	// Two Authorization headers are ambiguous: refused.
	req, _ := http.NewRequest(http.MethodGet, g.url+"/taxii2/", nil)
	req.Header.Add("Authorization", "Bearer "+signEd(key, validClaims("alice")))
	req.Header.Add("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("bob:bobs password")))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("two Authorization headers: status %d, want 401", resp.StatusCode)
	}
	// No token, nor its signature, in the debug log.
	assertNoSecrets(t, g, expired, expired[strings.LastIndex(expired, ".")+1:], "wrong")
}

// TestHS256: a configured HS256 secret verifies HS256 tokens; HS512 with the
// same secret, and EdDSA tokens, are refused.
func TestHS256(t *testing.T) {
	secretFile := t.TempDir() + "/secret"
	secret := []byte("0123456789abcdef0123456789abcdef-shared")
	if err := os.WriteFile(secretFile, append(secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t)
	g := startGateway(t, `	taxii_auth {
		algorithms HS256
		hs256_secret_file `+secretFile+`
		basic off
	}
	reverse_proxy `+b.addr())

	sign := func(m jwt.SigningMethod, key any) string {
		s, err := jwt.NewWithClaims(m, validClaims("carol", "ops")).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	resp, body := get(t, g, "/x", bearer(sign(jwt.SigningMethodHS256, secret)))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HS256: status %d %s", resp.StatusCode, body)
	}
	assertIdentity(t, b.last(), "carol", "ops")

	before := b.count()
	for name, tok := range map[string]string{
		"HS512 with the right secret":  sign(jwt.SigningMethodHS512, secret),
		"HS256 with another secret":    sign(jwt.SigningMethodHS256, []byte("another secret that is long enough!!")),
		"EdDSA when only HS256 is set": signEd(newSigningKey(t, "k"), validClaims("carol")),
	} {
		resp, body := get(t, g, "/x", bearer(tok))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: status %d %s", name, resp.StatusCode, body)
		}
	}
	// basic off: Basic credentials are not exchanged.
	resp, _ = get(t, g, "/x", basicAuth("carol", "pw"))
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic with basic off: status %d", resp.StatusCode)
	}
	if b.count() != before {
		t.Error("backend reached by a refused request")
	}
}

// TestBearerAndBasicReachBackend: valid credentials reach the backend with
// exactly the right headers, spoofed ones removed, Authorization gone.
func TestBearerAndBasicReachBackend(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	accessLog := t.TempDir() + "/access.log"
	g := startGatewayWith(t, "\tlog {\n\t\toutput file "+accessLog+"\n\t}\n"+standardSite(ts, b, ""), lettingSpoofsThrough)

	spoof := map[string]string{}
	for _, name := range spoofed {
		spoof[name] = "admin"
	}
	with := func(creds map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range spoof {
			h[k] = v
		}
		for k, v := range creds {
			h[k] = v
		}
		return h
	}

	resp, body := get(t, g, "/taxii2/", with(bearer(signEd(key, validClaims("dave", "readers", "writers")))))
	if resp.StatusCode != http.StatusOK || body != "backend ok" {
		t.Fatalf("Bearer: %d %q", resp.StatusCode, body)
	}
	assertIdentity(t, b.last(), "dave", "readers,writers")

	resp, body = get(t, g, "/taxii2/", with(basicAuth("alice", "correct horse")))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Basic: %d %q", resp.StatusCode, body)
	}
	assertIdentity(t, b.last(), "alice", "analysts,admins")
	if got := ts.xff(); got != "127.0.0.1" {
		t.Errorf("exchange X-Forwarded-For %q, want the client's 127.0.0.1", got)
	}

	// A token without groups: no groups header at all.
	resp, _ = get(t, g, "/taxii2/", with(basicAuth("bob", "bobs password")))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Basic bob: %d", resp.StatusCode)
	}
	assertIdentity(t, b.last(), "bob", "")

	// Lower-case scheme names are accepted (RFC 9110: case-insensitive).
	resp, _ = get(t, g, "/taxii2/", map[string]string{"Authorization": "bearer " + signEd(key, validClaims("erin"))})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("lower-case bearer: %d", resp.StatusCode)
	}
	assertIdentity(t, b.last(), "erin", "")

	// The access log carries the user.
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs, _ := os.ReadFile(accessLog)
		if strings.Contains(string(logs), `"user_id":"alice"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("access log has no user_id alice:\n%s", logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertNoSecrets fails if the gateway's (debug-level) log holds any of
// secrets.
func assertNoSecrets(t *testing.T, g gateway, secrets ...string) {
	t.Helper()
	logs, err := os.ReadFile(g.logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logs), "authentication refused") {
		t.Fatalf("debug log has no refusal line; is the log captured?\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(string(logs), s) {
			t.Errorf("log contains a secret %q", s)
		}
	}
}

// TestBasicCache: a second Basic request makes no second exchange; a wrong
// password is never cached; the cache never outlives the token.
func TestBasicCache(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	g := startGateway(t, standardSite(ts, b, "cache_ttl 1m"))

	for i := range 3 {
		resp, body := get(t, g, "/", basicAuth("alice", "correct horse"))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
	}
	if n := ts.exchanges.Load(); n != 1 {
		t.Errorf("%d exchanges for 3 requests with the same credentials, want 1", n)
	}
	for i := range 2 {
		resp, body := get(t, g, "/", basicAuth("alice", "wrong"))
		assertRefused(t, resp, body)
		_ = i
	}
	if n := ts.exchanges.Load(); n != 3 {
		t.Errorf("%d exchanges after 2 wrong passwords, want 3 (failures are not cached)", n)
	}
	// The right password still works, from the cache, after the failures.
	resp, _ := get(t, g, "/", basicAuth("alice", "correct horse"))
	if resp.StatusCode != http.StatusOK || ts.exchanges.Load() != 3 {
		t.Errorf("cached login after failures: %d, %d exchanges", resp.StatusCode, ts.exchanges.Load())
	}
	assertNoSecrets(t, g, "correct horse", "wrong", base64.StdEncoding.EncodeToString([]byte("alice:wrong")))

	// Concurrent first logins with the same credentials share one exchange.
	ts.mu.Lock()
	ts.delay = 300 * time.Millisecond
	ts.mu.Unlock()
	before := ts.exchanges.Load()
	var wg sync.WaitGroup
	codes := make([]int, 8)
	for i := range codes {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, g.url+"/", nil)
			req.SetBasicAuth("bob", "bobs password")
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
				codes[i] = resp.StatusCode
			}
		})
	}
	wg.Wait()
	for i, c := range codes {
		if c != http.StatusOK {
			t.Errorf("concurrent login %d: %d", i, c)
		}
	}
	if n := ts.exchanges.Load() - before; n != 1 {
		t.Errorf("%d exchanges for 8 concurrent logins with the same credentials, want 1", n)
	}
}

// TestTokenServiceDown: Basic gets 503 with Retry-After (429 passes through)
// while Bearer keeps working from the keys already fetched.
func TestTokenServiceDown(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	g := startGateway(t, standardSite(ts, b, ""))

	ts.setStatus(http.StatusTooManyRequests, "17")
	resp, body := get(t, g, "/", basicAuth("alice", "correct horse"))
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "17" {
		t.Errorf("rate limited: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	assertTAXIIError(t, resp, body, "429")

	ts.setStatus(http.StatusServiceUnavailable, "30")
	resp, body = get(t, g, "/", basicAuth("alice", "correct horse"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "30" {
		t.Errorf("overloaded: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	assertTAXIIError(t, resp, body, "503")

	ts.setStatus(http.StatusInternalServerError, "")
	resp, _ = get(t, g, "/", basicAuth("alice", "correct horse"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("500 from token service: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	ts.srv.Close() // unreachable
	resp, body = get(t, g, "/", basicAuth("alice", "correct horse"))
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("token service down: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	assertTAXIIError(t, resp, body, "503")
	if b.count() != 0 {
		t.Errorf("backend reached %d times while the exchange failed", b.count())
	}

	resp, body = get(t, g, "/", bearer(signEd(key, validClaims("dave"))))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Bearer with the token service down: %d %s", resp.StatusCode, body)
	}
	assertIdentity(t, b.last(), "dave", "")
}

// TestJWKSRotation: a token with a new kid makes the gateway fetch the key
// set again, and then verifies.
func TestJWKSRotation(t *testing.T) {
	k1 := newSigningKey(t, "k1")
	ts := newTokenService(t, k1)
	b := newBackend(t)
	g := startGateway(t, standardSite(ts, b, ""))
	hits := ts.jwksHits.Load()

	k2 := newSigningKey(t, "k2")
	ts.rotate(k2)
	resp, body := get(t, g, "/", bearer(signEd(k2, validClaims("frank"))))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token with the new kid: %d %s", resp.StatusCode, body)
	}
	assertIdentity(t, b.last(), "frank", "")
	if ts.jwksHits.Load() != hits+1 {
		t.Errorf("JWKS fetched %d times for the new kid, want 1", ts.jwksHits.Load()-hits)
	}
	// The old key still verifies; Basic logins signed with k2 work.
	if resp, _ := get(t, g, "/", bearer(signEd(k1, validClaims("frank")))); resp.StatusCode != http.StatusOK {
		t.Errorf("old key: %d", resp.StatusCode)
	}
	if resp, _ := get(t, g, "/", basicAuth("alice", "correct horse")); resp.StatusCode != http.StatusOK {
		t.Errorf("Basic after rotation: %d", resp.StatusCode)
	}
	// Unknown kids right after: refused without another fetch (rate bound).
	hits = ts.jwksHits.Load()
	for range 5 {
		resp, _ := get(t, g, "/", bearer(signEd(newSigningKey(t, "k3"), validClaims("mallory"))))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("unknown kid: %d", resp.StatusCode)
		}
	}
	if ts.jwksHits.Load() != hits {
		t.Errorf("unknown kids caused %d JWKS fetches within the rate bound, want 0", ts.jwksHits.Load()-hits)
	}
}

// TestJWKSLateStart: the gateway starts while the JWKS is unavailable, and
// Bearer works once it arrives.
func TestJWKSLateStart(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	ts.setJWKSDown(true)
	b := newBackend(t)
	g := startGateway(t, standardSite(ts, b, ""))

	tok := signEd(key, validClaims("gina"))
	resp, body := get(t, g, "/", bearer(tok))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("no keys yet: %d %s, want 503", resp.StatusCode, body)
	}
	ts.setJWKSDown(false)
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, _ := get(t, g, "/", bearer(tok))
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Bearer still %d after the JWKS came back", resp.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	assertIdentity(t, b.last(), "gina", "")
}
