package caddymodule

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestCaddyfileErrors: every bad option is refused at adaptation with the
// offending line.
func TestCaddyfileErrors(t *testing.T) {
	cases := []struct {
		name, block, want string
	}{
		{"unknown option", "frobnicate on", `unrecognized taxii_auth option "frobnicate"`},
		{"leeway above 60s", "leeway 90s", "leeway must be between 0 and 1m0s"},
		{"negative leeway", "leeway -1s", "leeway must be between"},
		{"short revocation_max_age", "revocation_max_age 5s", "at least 30s"},
		{"bad revocation_url", "revocation_url ftp://x", "revocation_url"},
		{"bad duration", "cache_ttl soon", `cache_ttl: "soon" is not a duration`},
		{"cache_ttl too long", "cache_ttl 2h", "cache_ttl must be between 1s and 1h0m0s"},
		{"max_lifetime zero", "max_lifetime 0s", "max_lifetime must be positive"},
		{"cache_size zero", "cache_size 0", "cache_size must be a whole number between 1 and"},
		{"cache_size text", "cache_size many", "cache_size must be a whole number"},
		{"max_header_bytes too small", "max_header_bytes 10", "max_header_bytes must be a whole number between 256"},
		{"unsupported algorithm", "algorithms EdDSA RS256", `algorithms: "RS256" is not supported`},
		{"no algorithm", "algorithms", "algorithms needs at least one"},
		{"token_url not http", "token_url ftp://x/auth", "must be an absolute http:// or https:// URL"},
		{"relative jwks_url", "jwks_url /jwks.json", "must be an absolute http:// or https:// URL"},
		{"missing value", "issuer", "issuer needs a value"},
		{"two values", "audience a b", `audience takes one value, got another: "b"`},
		{"option twice", "issuer a\n\t\tissuer b", "option issuer given twice"},
		{"bad header name", `user_header "X Bad"`, `user_header: "X Bad" is not a valid header name`},
		{"identity in Authorization", "groups_header Authorization", "cannot carry the identity"},
		{"basic without value", "basic", "basic needs on or off"},
		{"basic maybe", "basic maybe", `basic must be on or off, got "maybe"`},
		{"keep_authorization two values", "keep_authorization on off", "takes at most one value"},
		{"skip everything", "skip *", "would turn authentication off"},
		{"skip nothing", "skip", "skip needs a matcher"},
		{"skip not a matcher", "skip taxii2", `skip: "taxii2" is not a matcher`},
		{"skip unknown named matcher", "skip @nope", "unrecognized matcher name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cf := "http://127.0.0.1:1 {\n\ttaxii_auth {\n\t\t" + tc.block + "\n\t}\n}\n"
			_, err := adapt(cf)
			if err == nil {
				t.Fatalf("adapted without error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			line := "Caddyfile:3"
			if strings.Contains(tc.block, "\n") {
				line = "Caddyfile:4" // the repeated option's line
			}
			if !strings.Contains(err.Error(), line) {
				t.Errorf("error %q does not name the line (%s)", err, line)
			}
		})
	}
	// An argument on the directive line itself.
	if _, err := adapt("http://127.0.0.1:1 {\n\ttaxii_auth /x extra\n}\n"); err == nil || !strings.Contains(err.Error(), "takes no arguments") {
		t.Errorf("directive argument: %v", err)
	}
}

// TestCaddyfileAdapts: every option lands in the JSON config, and the
// directive needs no `order` line.
func TestCaddyfileAdapts(t *testing.T) {
	cf := `http://127.0.0.1:1 {
	@public path /taxii2/ /health
	taxii_auth {
		jwks_url http://127.0.0.1:9020/.well-known/jwks.json
		token_url http://127.0.0.1:9020/management/auth
		issuer iss1
		audience aud1
		algorithms EdDSA HS256
		public_key_file /k.pem
		hs256_secret_file /s
		leeway 30s
		max_lifetime 2h
		cache_ttl 2m
		cache_size 50
		user_header X-User
		groups_header X-Groups
		keep_authorization
		basic off
		jwt_in_basic_password on
		skip @public
		skip /metrics
		max_header_bytes 4096
	}
	reverse_proxy 127.0.0.1:2
}
`
	cfg, err := adapt(cf)
	if err != nil {
		t.Fatal(err)
	}
	js := string(cfg)
	for _, want := range []string{
		`"handler":"taxii_auth"`, `"jwks_url":"http://127.0.0.1:9020/.well-known/jwks.json"`,
		`"token_url":"http://127.0.0.1:9020/management/auth"`, `"issuer":"iss1"`, `"audience":"aud1"`,
		`"algorithms":["EdDSA","HS256"]`, `"public_key_file":"/k.pem"`, `"hs256_secret_file":"/s"`,
		`"leeway":30000000000`, `"max_lifetime":7200000000000`, `"cache_ttl":120000000000`,
		`"cache_size":50`, `"user_header":"X-User"`, `"groups_header":"X-Groups"`,
		`"keep_authorization":true`, `"basic":false`, `"jwt_in_basic_password":true`,
		`"skip":[{"path":["/taxii2/","/health"]},{"path":["/metrics"]}]`, `"max_header_bytes":4096`,
	} {
		if !strings.Contains(js, want) {
			t.Errorf("adapted config lacks %s:\n%s", want, js)
		}
	}
	// taxii_auth runs before reverse_proxy without an order line.
	if strings.Index(js, `"handler":"taxii_auth"`) > strings.Index(js, `"handler":"reverse_proxy"`) {
		t.Error("taxii_auth is ordered after reverse_proxy")
	}
}

// TestProvisionRefusals: configs that cannot work are refused at load, and
// the running config stays in place.
func TestProvisionRefusals(t *testing.T) {
	dir := t.TempDir()
	short := dir + "/short"
	if err := os.WriteFile(short, []byte("only-31-bytes-of-secret-0123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := dir + "/key.pem"
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Caddy calls Validate after Provision, which loads files: the cases
	// that test Validate give loadable files.
	pemFile := writePublicKeyPEM(t, dir, newSigningKey(t, "k"))
	good := dir + "/good"
	if err := os.WriteFile(good, []byte(strings.Repeat("s", 40)), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, block, want string }{
		{"short identity key", "public_key_file " + pemFile + "\n\t\tbasic off\n\t\tidentity_key short", "at least 32 are required"},
		{"unset identity key", "public_key_file " + pemFile + "\n\t\tbasic off\n\t\tidentity_key {env.TAXIWAY_TEST_UNSET_KEY}", "no identity key given"},
		{"both identity keys", "public_key_file " + pemFile + "\n\t\tbasic off\n\t\tidentity_key " + strings.Repeat("k", 32) + "\n\t\tidentity_key_file " + good, "alternatives"},
		{"short HS256 secret", "algorithms HS256\n\t\ths256_secret_file " + short + "\n\t\tbasic off", "at least 32 are required"},
		{"missing secret file", "algorithms HS256\n\t\ths256_secret_file " + dir + "/none\n\t\tbasic off", "no such file"},
		{"EdDSA without keys", "basic off", "needs jwks_url or public_key_file"},
		{"HS256 without secret", "algorithms HS256\n\t\tbasic off", "needs hs256_secret_file"},
		{"secret without HS256", "public_key_file " + pemFile + "\n\t\ths256_secret_file " + good + "\n\t\tbasic off", "algorithms do not include HS256"},
		{"basic without token_url", "public_key_file " + pemFile, "token_url is missing"},
		{"bad public key", "public_key_file " + notPEM + "\n\t\tbasic off", "no PEM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadGateway(t, "\ttaxii_auth {\n\t\t"+tc.block+"\n\t}\n\trespond ok", nil)
			if err == nil {
				t.Fatal("config loaded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestOptions: skip, keep_authorization, custom header names, a public key
// file, and a JWT as the Basic password.
func TestOptions(t *testing.T) {
	key := newSigningKey(t, "pem-key")
	pemFile := writePublicKeyPEM(t, t.TempDir(), key)
	b := newBackend(t)
	g := startGatewayWith(t, `	@public path /taxii2/
	taxii_auth {
		public_key_file `+pemFile+`
		basic off
		jwt_in_basic_password
		keep_authorization
		user_header X-User
		groups_header X-Groups
		skip @public
	}
	reverse_proxy `+b.addr(), lettingSpoofsThrough)

	tok := signEd(key, validClaims("hank", "g1"))
	resp, body := get(t, g, "/collections/", map[string]string{"Authorization": "Bearer " + tok, "x_user": "root", "X-Groups": "admins"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Bearer with public_key_file: %d %s", resp.StatusCode, body)
	}
	h := b.last()
	if h.Get("X-User") != "hank" || h.Get("X-Groups") != "g1" || h.Get("Authorization") != "Bearer "+tok {
		t.Errorf("backend headers %v", h)
	}

	// JWT as the Basic password (user name ignored).
	resp, body = get(t, g, "/collections/", basicAuth("anything", tok))
	if resp.StatusCode != http.StatusOK || b.last().Get("X-User") != "hank" {
		t.Fatalf("JWT in Basic password: %d %s", resp.StatusCode, body)
	}
	// basic off: a real password is refused.
	before := b.count()
	resp, body = get(t, g, "/collections/", basicAuth("hank", "password"))
	assertRefused(t, resp, body)
	if b.count() != before {
		t.Error("backend reached")
	}

	// Skipped path: no credentials needed, spoofed identity still removed.
	resp, _ = get(t, g, "/taxii2/", map[string]string{"X-User": "root", "x.user": "root"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("skipped path: %d", resp.StatusCode)
	}
	for k := range b.last() {
		if normalizeHeaderName(k) == "x-user" {
			t.Errorf("skipped path passed the client's %q", k)
		}
	}
}

// TestMetricsAndReload: two taxii_auth handlers in one config share the
// metrics (no duplicate registration), and counts are recorded.
func TestMetricsAndReload(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	site := `	handle /a/* {
` + standardSite(ts, b, "") + `
	}
	handle {
` + standardSite(ts, b, "issuer other") + `
	}`
	for range 2 { // and a reload of the same config
		startGateway(t, site)
	}
	g := startGateway(t, site)
	if resp, _ := get(t, g, "/a/x", bearer(signEd(key, validClaims("ivy")))); resp.StatusCode != http.StatusOK {
		t.Fatalf("first handler: %d", resp.StatusCode)
	}
	if resp, _ := get(t, g, "/b", bearer(signEd(key, validClaims("ivy")))); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("second handler (issuer other): %d", resp.StatusCode)
	}
	if resp, _ := get(t, g, "/a/x", basicAuth("alice", "correct horse")); resp.StatusCode != http.StatusOK {
		t.Fatalf("basic: %d", resp.StatusCode)
	}
	if resp, _ := get(t, g, "/a/x", basicAuth("alice", "correct horse")); resp.StatusCode != http.StatusOK {
		t.Fatalf("basic: %d", resp.StatusCode)
	}

	active := caddy.ActiveContext()
	reg := active.GetMetricsRegistry()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), "taxiway_gateway_") {
			continue
		}
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetName() + "=" + l.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				got[name] = c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				got[name] = float64(h.GetSampleCount())
			}
		}
	}
	for name, want := range map[string]float64{
		"taxiway_gateway_auth_attempts_total,method=bearer,result=ok":      1,
		"taxiway_gateway_auth_attempts_total,method=bearer,result=invalid": 1,
		"taxiway_gateway_auth_attempts_total,method=basic,result=ok":       2,
		"taxiway_gateway_cache_hits_total,cache=basic":                     1,
		"taxiway_gateway_cache_misses_total,cache=basic":                   1,
		"taxiway_gateway_exchange_duration_seconds,result=ok":              1,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
	if got["taxiway_gateway_jwks_refreshes_total,result=ok"] < 2 {
		t.Errorf("JWKS refreshes %v, want one per handler", got["taxiway_gateway_jwks_refreshes_total,result=ok"])
	}
}

// TestBackendCredentials: the directive order lets `request_header` give the
// backend its own credentials after taxii_auth removed the client's, with no
// `order` line, as when fronting a TAXII server that does its own Basic auth.
func TestBackendCredentials(t *testing.T) {
	key := newSigningKey(t, "k1")
	ts := newTokenService(t, key)
	b := newBackend(t)
	g := startGateway(t, `	request_header Authorization "Basic YmFja2VuZDpwdw=="
`+standardSite(ts, b, ""))
	resp, body := get(t, g, "/", basicAuth("alice", "correct horse"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	if got := b.last().Get("Authorization"); got != "Basic YmFja2VuZDpwdw==" {
		t.Errorf("backend Authorization %q, want the gateway's own credentials", got)
	}
	if got := b.last().Get("X-Authenticated-User"); got != "alice" {
		t.Errorf("X-Authenticated-User %q", got)
	}
	// Without credentials the header set for the backend does not log anyone in.
	before := b.count()
	resp, body = get(t, g, "/", nil)
	assertRefused(t, resp, body)
	if b.count() != before {
		t.Error("backend reached without credentials")
	}
}
