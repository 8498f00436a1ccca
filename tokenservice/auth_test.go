package tokenservice

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestLoginIssuesVerifiableToken(t *testing.T) {
	ts := startService(t, nil, nil)
	ts.addAccount(t, "alice", "s3cret pass", "analysts", "admins")

	cases := map[string]response{
		"form": ts.login(t, "alice", "s3cret pass", ""),
		"json": ts.post(t, "application/json", `{"username":"alice","password":"s3cret pass"}`, ""),
		"json with charset": ts.post(t, "application/json; charset=utf-8",
			`{"username":"alice","password":"s3cret pass"}`, ""),
	}
	jtis := map[string]bool{}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			token := tokenFrom(t, r)
			if got := r.header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			for _, path := range []string{"/.well-known/jwks.json", "/management/jwks.json"} {
				header, claims := verifyEdDSA(t, token, ts.fetchJWKS(t, path))
				if header["typ"] != "JWT" || header["alg"] != "EdDSA" || header["kid"] == "" {
					t.Errorf("header %v", header)
				}
				iat, nbf, exp := claims["iat"].(float64), claims["nbf"].(float64), claims["exp"].(float64)
				if exp-iat != 3600 {
					t.Errorf("exp - iat = %v, want exactly 3600", exp-iat)
				}
				if nbf != iat || time.Since(time.Unix(int64(iat), 0)) > time.Minute {
					t.Errorf("iat %v nbf %v: want now and equal", iat, nbf)
				}
				if claims["sub"] != "alice" || claims["iss"] != "taxiway" || claims["aud"] != "taxii" {
					t.Errorf("claims %v", claims)
				}
				if g, _ := json.Marshal(claims["groups"]); string(g) != `["admins","analysts"]` {
					t.Errorf("groups %s", g)
				}
				jti, _ := claims["jti"].(string)
				if len(jti) < 22 { // 16 bytes in unpadded base64url
					t.Errorf("jti %q shorter than 128 bits", jti)
				}
				jtis[jti] = true
			}
		})
	}
	if len(jtis) != len(cases) {
		t.Errorf("jtis not unique: %v", jtis)
	}
	// Logs carry username and jti, never the password or the token.
	logs := ts.logs.String()
	if !strings.Contains(logs, `"jti"`) || !strings.Contains(logs, `"username":"alice"`) {
		t.Errorf("issue not logged with username and jti: %s", logs)
	}
	if strings.Contains(logs, "s3cret") || strings.Contains(logs, "$argon2id$") || strings.Contains(logs, "eyJ") {
		t.Errorf("logs leak a secret: %s", logs)
	}
}

func TestGroupsLeftOutWhenEmptyAndTTLConfigurable(t *testing.T) {
	ts := startService(t, nil, func(c *Config) { c.TTL = 90 * time.Second; c.Issuer = ""; c.Audience = "" })
	ts.addAccount(t, "bob", "pw")
	token := tokenFrom(t, ts.login(t, "bob", "pw", ""))
	keys := ts.fetchJWKS(t, "/.well-known/jwks.json")
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		return keys[tok.Header["kid"].(string)], nil
	}, jwt.WithValidMethods([]string{"EdDSA"})); err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"groups", "iss", "aud"} {
		if _, has := claims[absent]; has {
			t.Errorf("claim %s present though empty: %v", absent, claims)
		}
	}
	if claims["exp"].(float64)-claims["iat"].(float64) != 90 {
		t.Errorf("lifetime %v, want 90", claims["exp"].(float64)-claims["iat"].(float64))
	}
}

func TestWrongCredentialsLookIdentical(t *testing.T) {
	ts := startService(t, nil, nil)
	ts.addAccount(t, "alice", "right")
	unknown := ts.login(t, "mallory", "whatever", "")
	wrong := ts.login(t, "alice", "wrong", "")
	for _, r := range []response{unknown, wrong} {
		if r.status != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401: %s", r.status, r.body)
		}
		var e apiError
		if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error != "invalid_credentials" || e.HTTPStatus != "401" {
			t.Errorf("body %q", r.body)
		}
	}
	if unknown.body != wrong.body {
		t.Errorf("unknown user answers %q, wrong password %q", unknown.body, wrong.body)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "Content-Length"} {
		if unknown.header.Get(h) != wrong.header.Get(h) {
			t.Errorf("header %s differs: %q vs %q", h, unknown.header.Get(h), wrong.header.Get(h))
		}
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, `"reason":"unknown_user"`) || !strings.Contains(logs, `"reason":"bad_password"`) {
		t.Errorf("failure reasons not logged: %s", logs)
	}
	if strings.Contains(logs, "mallory") || strings.Contains(logs, "whatever") || strings.Contains(logs, `"wrong"`) {
		t.Errorf("logs carry an unknown username or a password: %s", logs)
	}
}

// TestUnknownUserRunsAHash checks that the unknown-user path pays for a
// password hash, as a wrong password does (timing cannot tell them apart).
func TestUnknownUserRunsAHash(t *testing.T) {
	ts := startService(t, nil, nil)
	ts.login(t, "nobody", "x", "")
	count := histogramCount(t, ts.srv, "argon2id")
	if count != 1 {
		t.Fatalf("hashes observed for an unknown user: %d, want 1", count)
	}
}

func histogramCount(t *testing.T, s *Server, scheme string) uint64 {
	t.Helper()
	families, err := s.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "taxiway_token_hash_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "scheme" && l.GetValue() == scheme {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestBadRequestsGetClear4xx(t *testing.T) {
	ts := startService(t, nil, nil)
	ts.addAccount(t, "alice", "pw")
	form := "application/x-www-form-urlencoded"
	cases := []struct {
		name        string
		method      string
		contentType string
		body        string
		path        string
		want        int
	}{
		{"missing password (form)", "POST", form, "username=alice", "", 400},
		{"missing username (json)", "POST", "application/json", `{"password":"pw"}`, "", 400},
		{"empty body", "POST", form, "", "", 400},
		{"malformed json", "POST", "application/json", `{"username":`, "", 400},
		{"json not strings", "POST", "application/json", `{"username":1,"password":2}`, "", 400},
		{"json array", "POST", "application/json", `["alice","pw"]`, "", 400},
		{"json trailing data", "POST", "application/json", `{"username":"alice","password":"pw"} {}`, "", 400},
		{"malformed form", "POST", form, "username=%zz&password=pw", "", 400},
		{"repeated field", "POST", form, "username=alice&username=bob&password=pw", "", 400},
		{"credentials in URL", "POST", form, "username=alice&password=pw", "?password=pw", 400},
		{"username too long", "POST", form, "password=pw&username=" + strings.Repeat("a", 300), "", 400},
		{"username not UTF-8 (form)", "POST", form, "username=%FF&password=pw", "", 400},
		{"username with NUL (form)", "POST", form, "username=a%00b&password=pw", "", 400},
		{"username with NUL (json)", "POST", "application/json", `{"username":"a\u0000b","password":"pw"}`, "", 400},
		{"no content type", "POST", "", "username=alice&password=pw", "", 415},
		{"text/plain", "POST", "text/plain", "username=alice&password=pw", "", 415},
		{"latin1 charset", "POST", "application/json; charset=iso-8859-1", `{"username":"alice","password":"pw"}`, "", 415},
		{"body over 4 KiB", "POST", form, "username=alice&password=" + strings.Repeat("p", 5000), "", 413},
		{"GET", "GET", "", "", "", 405},
		{"PUT", "PUT", form, "username=alice&password=pw", "", 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, ts.http.URL+"/management/auth"+c.path, strings.NewReader(c.body))
			if c.contentType != "" {
				req.Header.Set("Content-Type", c.contentType)
			}
			r := do(t, req)
			if r.status != c.want {
				t.Fatalf("status %d, want %d: %s", r.status, c.want, r.body)
			}
			var e apiError
			if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error == "" || e.HTTPStatus != strconv.Itoa(c.want) {
				t.Errorf("body %q: want a JSON error", r.body)
			}
			if c.want == 405 && r.header.Get("Allow") != "POST" {
				t.Errorf("Allow %q, want POST", r.header.Get("Allow"))
			}
		})
	}
	// None of these counted as a failed login: alice still logs in.
	tokenFrom(t, ts.login(t, "alice", "pw", ""))
	// Other paths and JWKS methods.
	req, _ := http.NewRequest("GET", ts.http.URL+"/management/other", nil)
	if r := do(t, req); r.status != 404 {
		t.Errorf("unknown path: %d", r.status)
	}
	req, _ = http.NewRequest("POST", ts.http.URL+"/.well-known/jwks.json", nil)
	if r := do(t, req); r.status != 405 || r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST jwks: %d Allow %q", r.status, r.header.Get("Allow"))
	}
}

func TestRateLimitPerAddressAndPair(t *testing.T) {
	ts := startService(t, nil, func(c *Config) {
		c.RateLimit = RateLimit{Window: time.Minute, PerAddress: 6, PerPair: 3}
	})
	ts.addAccount(t, "victim", "victim-pw")
	ts.addAccount(t, "other", "other-pw")
	attacker, victimHome := "198.51.100.7", "203.0.113.9"

	for i := 0; i < 3; i++ {
		if r := ts.login(t, "victim", "guess"+strconv.Itoa(i), attacker); r.status != 401 {
			t.Fatalf("guess %d: %d, want 401", i, r.status)
		}
	}
	// The pair is exhausted: even the right password gets 429 from there.
	r := ts.login(t, "victim", "victim-pw", attacker)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("after PerPair failures: %d, want 429: %s", r.status, r.body)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
		t.Errorf("Retry-After %q, want 1..60 seconds", r.header.Get("Retry-After"))
	}
	// The victim, from their own address, is not locked out.
	tokenFrom(t, ts.login(t, "victim", "victim-pw", victimHome))

	// The attacker's address runs out after PerAddress failures over any names.
	for i := 0; i < 3; i++ {
		if r := ts.login(t, "user"+strconv.Itoa(i), "x", attacker); r.status != 401 {
			t.Fatalf("spray %d: %d, want 401", i, r.status)
		}
	}
	if r := ts.login(t, "other", "other-pw", attacker); r.status != 429 {
		t.Fatalf("after PerAddress failures: %d, want 429", r.status)
	}
	// ...but the same IPv4 behind another address, and other users elsewhere, are fine.
	tokenFrom(t, ts.login(t, "other", "other-pw", "192.0.2.1"))

	// IPv6 counts per /64: rotating the interface id does not help.
	for i := 0; i < 3; i++ {
		ts.login(t, "victim", "nope", "2001:db8:1:2::"+strconv.Itoa(i+1))
	}
	if r := ts.login(t, "victim", "victim-pw", "2001:db8:1:2::99"); r.status != 429 {
		t.Errorf("IPv6 same /64: %d, want 429", r.status)
	}
	tokenFrom(t, ts.login(t, "victim", "victim-pw", "2001:db8:1:3::1"))

	// A peer that is not a trusted proxy cannot pick its address with
	// X-Forwarded-For: with no trusted proxies, the loopback peer counts.
	ts2 := startService(t, ts.pool, func(c *Config) {
		c.RateLimit = RateLimit{Window: time.Minute, PerAddress: 100, PerPair: 2}
		c.TrustedProxies = mustParse("")
	})
	for i := 0; i < 2; i++ {
		ts2.login(t, "other", "nope", "10.0.0."+strconv.Itoa(i+1))
	}
	if r := ts2.login(t, "other", "other-pw", "10.0.0.50"); r.status != 429 {
		t.Errorf("spoofed X-Forwarded-For from an untrusted peer: %d, want 429", r.status)
	}
	if n := counterValue(t, ts.srv, "taxiway_token_rate_limited_total"); n < 3 {
		t.Errorf("rate-limited metric %v, want at least 3", n)
	}
}

func TestRateLimitWindowsAreSharedAndExpire(t *testing.T) {
	pool := migratedPool(t)
	limit := func(c *Config) { c.RateLimit = RateLimit{Window: time.Minute, PerAddress: 50, PerPair: 2} }
	a := startService(t, pool, limit)
	b := startService(t, pool, limit) // another replica on the same database
	a.addAccount(t, "carol", "pw")
	a.login(t, "carol", "x", "192.0.2.10")
	b.login(t, "carol", "y", "192.0.2.10")
	if r := a.login(t, "carol", "pw", "192.0.2.10"); r.status != 429 {
		t.Fatalf("failures across replicas: %d, want 429", r.status)
	}
	// Age the window past its end: the pair may try again.
	if _, err := pool.Exec(context.Background(), `UPDATE token_login_failures SET window_start = window_start - interval '2 minutes'`); err != nil {
		t.Fatal(err)
	}
	tokenFrom(t, b.login(t, "carol", "pw", "192.0.2.10"))
	// A success clears the pair's count: two more failures are needed.
	a.login(t, "carol", "x", "192.0.2.10")
	tokenFrom(t, a.login(t, "carol", "pw", "192.0.2.10"))
}

func counterValue(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	families, err := s.metrics.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() == name {
			for _, m := range f.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestHashConcurrencyBound(t *testing.T) {
	ts := startService(t, nil, func(c *Config) { c.MaxConcurrentHashes = 1; c.HashQueueWait = 300 * time.Millisecond })
	ts.addAccount(t, "dave", "pw")
	// Occupy the only slot, as a long-running hash would.
	ts.srv.hashSlots <- struct{}{}
	r := ts.login(t, "dave", "pw", "")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" {
		t.Fatalf("with every slot busy: %d Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	// A 503 is not a failed login: it does not count against the pair.
	var n int
	if err := ts.pool.QueryRow(context.Background(), "SELECT count(*) FROM token_login_failures WHERE failures > 0").Scan(&n); err != nil || n != 0 {
		t.Errorf("failure rows after 503: %d (%v), want 0", n, err)
	}
	// A slot freed while waiting is taken.
	go func() { time.Sleep(10 * time.Millisecond); <-ts.srv.hashSlots }()
	tokenFrom(t, ts.login(t, "dave", "pw", ""))
	if len(ts.srv.hashSlots) != 0 {
		t.Errorf("slots held after the login: %d", len(ts.srv.hashSlots))
	}
}

func TestDisabledAndNotBefore(t *testing.T) {
	ts := startService(t, nil, nil)
	ctx := context.Background()
	ts.addAccount(t, "erin", "pw")
	tokenFrom(t, ts.login(t, "erin", "pw", ""))

	if err := SetDisabled(ctx, ts.pool, "erin", true); err != nil {
		t.Fatal(err)
	}
	r := ts.login(t, "erin", "pw", "")
	if r.status != 401 || !strings.Contains(r.body, "invalid_credentials") {
		t.Fatalf("disabled account: %d %s, want 401", r.status, r.body)
	}
	if !strings.Contains(ts.logs.String(), `"reason":"disabled"`) {
		t.Error("disabled refusal not logged with its reason")
	}
	if err := SetDisabled(ctx, ts.pool, "erin", false); err != nil {
		t.Fatal(err)
	}
	tokenFrom(t, ts.login(t, "erin", "pw", "192.0.2.77"))

	// not_before in the future (a replica's clock behind a change) refuses tokens.
	if _, err := ts.pool.Exec(ctx, `UPDATE token_accounts SET not_before = now() + interval '1 hour' WHERE username = 'erin'`); err != nil {
		t.Fatal(err)
	}
	if r := ts.login(t, "erin", "pw", "192.0.2.78"); r.status != 401 {
		t.Fatalf("before not_before: %d, want 401", r.status)
	}
	// A password change moves not_before to now and voids the old password.
	var before time.Time
	_ = ts.pool.QueryRow(ctx, `UPDATE token_accounts SET not_before = now() - interval '1 day' WHERE username = 'erin' RETURNING not_before`).Scan(&before)
	h, _ := HashPassword("new-pw", cheapArgon2)
	if err := SetPasswordHash(ctx, ts.pool, "erin", h); err != nil {
		t.Fatal(err)
	}
	var after time.Time
	_ = ts.pool.QueryRow(ctx, `SELECT not_before FROM token_accounts WHERE username = 'erin'`).Scan(&after)
	if !after.After(before.Add(23 * time.Hour)) {
		t.Errorf("not_before %v not moved forward from %v by the password change", after, before)
	}
	if r := ts.login(t, "erin", "pw", "192.0.2.79"); r.status != 401 {
		t.Errorf("old password after change: %d", r.status)
	}
	token := tokenFrom(t, ts.login(t, "erin", "new-pw", "192.0.2.79"))
	_, claims := verifyEdDSA(t, token, ts.fetchJWKS(t, "/.well-known/jwks.json"))
	if int64(claims["iat"].(float64)) < after.Unix() {
		t.Errorf("token iat %v before not_before %v", claims["iat"], after.Unix())
	}
}

func TestHS256Mode(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	ts := startService(t, nil, func(c *Config) { c.Algorithm = AlgHS256; c.HS256Secret = secret })
	ts.addAccount(t, "frank", "pw")
	token := tokenFrom(t, ts.login(t, "frank", "pw", ""))
	parsed, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithAudience("taxii"), jwt.WithIssuer("taxiway"), jwt.WithExpirationRequired())
	if err != nil {
		t.Fatalf("HS256 token does not verify: %v", err)
	}
	if parsed.Header["kid"] == "" || parsed.Header["typ"] != "JWT" {
		t.Errorf("header %v", parsed.Header)
	}
	if keys := ts.fetchJWKS(t, "/.well-known/jwks.json"); len(keys) != 0 {
		t.Errorf("HS256 mode publishes keys: %v", keys)
	}
	if _, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte("another secret of at least 32 bytes!!"), nil },
		jwt.WithValidMethods([]string{"HS256"})); err == nil {
		t.Error("token verifies with a different secret")
	}
}

func TestOpsHandler(t *testing.T) {
	ts := startService(t, nil, nil)
	ts.addAccount(t, "gina", "pw")
	tokenFrom(t, ts.login(t, "gina", "pw", ""))
	ts.login(t, "gina", "bad", "")
	if res, err := http.Get(ts.http.URL + "/nope"); err != nil {
		t.Fatal(err)
	} else {
		res.Body.Close()
	}
	ops := ts.srv.OpsHandler()
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200} {
		rec := httptestRecorder(ops, path)
		if rec.status != want {
			t.Errorf("%s: %d, want %d", path, rec.status, want)
		}
		if path == "/metrics" {
			for _, m := range []string{"taxiway_token_issued_total 1", `taxiway_token_login_failures_total{reason="bad_password"} 1`,
				`taxiway_token_requests_total{code="200",route="/management/auth"} 1`,
				`taxiway_token_requests_total{code="401",route="/management/auth"} 1`,
				`taxiway_token_requests_total{code="404",route="other"} 1`,
				`taxiway_token_rate_limited_total{scope="pair"} 0`,
				`taxiway_token_hash_seconds_count{scheme="argon2id"} 2`, "go_goroutines"} {
				if !strings.Contains(rec.body, m) {
					t.Errorf("metrics lack %q", m)
				}
			}
		}
	}
	ts.pool.Close()
	if rec := httptestRecorder(ops, "/readyz"); rec.status != 503 {
		t.Errorf("readyz with Postgres gone: %d, want 503", rec.status)
	}
	// Postgres away is a 503 with Retry-After for logins, never a 500.
	r := ts.login(t, "gina", "pw", "")
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("login with Postgres gone: %d %q", r.status, r.header.Get("Retry-After"))
	}
	if rec := httptestRecorder(ops, "/metrics"); !strings.Contains(rec.body, `taxiway_token_requests_total{code="503",route="/management/auth"} 1`) {
		t.Error("the 503 was not counted")
	}
}
