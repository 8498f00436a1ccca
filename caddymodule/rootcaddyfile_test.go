package caddymodule

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	// The root Caddyfile uses taxii_client_body too.
	_ "github.com/taxiway/taxiway/caddymodule/clientbody"
)

// TestRootCaddyfile adapts the stack's Caddyfile with the local defaults and
// with compose-style environment, and checks the routing contract.
func TestRootCaddyfile(t *testing.T) {
	src, err := os.ReadFile("../Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ listen, admin, token, core string }
	cases := []struct {
		name string
		env  map[string]string
		want want
		tls  bool
	}{
		{"local defaults", nil, want{"127.0.0.1:9000", "", "127.0.0.1:9020", "127.0.0.1:9010"}, false},
		{"compose", map[string]string{
			"TAXIWAY_GATEWAY_SITE": "https://localhost:9000", "TAXIWAY_GATEWAY_BIND": "0.0.0.0",
			"TAXIWAY_GATEWAY_TLS": "internal", "TAXIWAY_GATEWAY_ADMIN": "off",
			"TAXIWAY_TOKEN_UPSTREAM": "tokenservice:9020", "TAXIWAY_CORE_UPSTREAM": "taxiicore:9010",
		}, want{"0.0.0.0:9000", "", "tokenservice:9020", "taxiicore:9010"}, true},
		{"empty bind listens everywhere", map[string]string{"TAXIWAY_GATEWAY_BIND": ""},
			want{":9000", "", "127.0.0.1:9020", "127.0.0.1:9010"}, false},
		{"admin on a private socket", map[string]string{"TAXIWAY_GATEWAY_ADMIN": "unix//run/taxiway/admin.sock|0600"},
			want{"127.0.0.1:9000", "unix//run/taxiway/admin.sock|0600", "127.0.0.1:9020", "127.0.0.1:9010"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"TAXIWAY_GATEWAY_SITE", "TAXIWAY_GATEWAY_BIND", "TAXIWAY_GATEWAY_TLS", "TAXIWAY_GATEWAY_OPS_BIND", "TAXIWAY_GATEWAY_OPS_PORT",
				"TAXIWAY_GATEWAY_ADMIN", "TAXIWAY_TOKEN_UPSTREAM", "TAXIWAY_CORE_UPSTREAM", "TAXIWAY_TOKEN_ALG",
				"TAXIWAY_TOKEN_ISSUER", "TAXIWAY_TOKEN_AUDIENCE", "TAXIWAY_USER_HEADER", "TAXIWAY_GROUPS_HEADER"} {
				t.Setenv(k, tc.env[k])
				if _, ok := tc.env[k]; !ok {
					os.Unsetenv(k)
				}
			}
			cfg, err := adapt(string(src))
			if err != nil {
				t.Fatalf("adapting the root Caddyfile: %v", err)
			}
			js := string(cfg)
			var doc struct {
				Admin struct {
					Listen   string `json:"listen"`
					Disabled bool   `json:"disabled"`
				} `json:"admin"`
				Apps struct {
					HTTP struct {
						Metrics *struct{}                  `json:"metrics"`
						Servers map[string]json.RawMessage `json:"servers"`
					} `json:"http"`
					TLS json.RawMessage `json:"tls"`
				} `json:"apps"`
			}
			if err := json.Unmarshal(cfg, &doc); err != nil {
				t.Fatal(err)
			}
			if tc.want.admin == "" && !doc.Admin.Disabled || tc.want.admin != "" && doc.Admin.Listen != tc.want.admin {
				t.Errorf("admin %+v, want %q", doc.Admin, tc.want.admin)
			}
			if doc.Apps.HTTP.Metrics == nil {
				t.Error("metrics are off")
			}
			// The site, and the ops listener on loopback whatever the
			// site's bind: metrics, and nothing that changes the config.
			if len(doc.Apps.HTTP.Servers) != 2 {
				t.Fatalf("servers: %d", len(doc.Apps.HTTP.Servers))
			}
			opsFound := false
			for _, srv := range doc.Apps.HTTP.Servers {
				if o := string(srv); strings.Contains(o, `"listen":["127.0.0.1:2019"]`) {
					opsFound = strings.Contains(o, `{"path":["/metrics"]}],"handle":[{"handler":"subroute","routes":[{"handle":[{"handler":"metrics"}]}]}]`) &&
						strings.Count(o, `"handler":`) == 4 // two subroutes, metrics, a 404
				}
			}
			if !opsFound {
				t.Errorf("no ops listener serving only /metrics on 127.0.0.1:2019: %s", js)
			}
			if !strings.Contains(js, `"listen":["`+tc.want.listen+`"]`) {
				t.Errorf("listen address is not %s: %s", tc.want.listen, js)
			}
			if got := strings.Contains(string(doc.Apps.TLS), `"internal"`); got != tc.tls {
				t.Errorf("tls internal = %v, want %v", got, tc.tls)
			}
			for _, s := range []string{
				`"path":["/management/*"]`, `"path":["/.well-known/jwks.json"]`,
				`"dial":"` + tc.want.token + `"`, `"dial":"` + tc.want.core + `"`,
				`"token_url":"http://` + tc.want.token + `/management/auth"`,
				`"jwks_url":"http://` + tc.want.token + `/.well-known/jwks.json"`,
				`"max_idle_conns_per_host":`, `"logs":{`,
				// Client body errors are 400s; the gateway's own errors have TAXII bodies.
				`"handler":"taxii_client_body"`, `"errors":{`, `"Content-Type":["application/taxii+json;version=2.1"]`,
			} {
				if !strings.Contains(js, s) {
					t.Errorf("adapted config lacks %s", s)
				}
			}
			// taxii_auth comes right before the proxy to the core.
			auth := strings.Index(js, `"handler":"taxii_auth"`)
			core := strings.Index(js, `"dial":"`+tc.want.core+`"`)
			if auth < 0 || core < auth {
				t.Error("taxii_auth does not precede the proxy to the core")
			}
		})
	}
}

// TestRootCaddyfileHS256: TAXIWAY_TOKEN_ALG=HS256 switches the gateway to
// the token service's shared secret, with the same variables.
func TestRootCaddyfileHS256(t *testing.T) {
	src, err := os.ReadFile("../Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TAXIWAY_TOKEN_ALG", "HS256")
	t.Setenv("TAXIWAY_TOKEN_HS256_SECRET_FILE", "/run/secrets/hs256")
	t.Setenv("TAXIWAY_TOKEN_ISSUER", "iss-x")
	t.Setenv("TAXIWAY_USER_HEADER", "X-User")
	cfg, err := adapt(string(src))
	if err != nil {
		t.Fatal(err)
	}
	js := string(cfg)
	for _, want := range []string{`"algorithms":["HS256"]`, `"hs256_secret_file":"/run/secrets/hs256"`,
		`"issuer":"iss-x"`, `"user_header":"X-User"`} {
		if !strings.Contains(js, want) {
			t.Errorf("adapted config lacks %s", want)
		}
	}
	if strings.Contains(js, `"jwks_url"`) {
		t.Error("HS256 config still fetches a JWKS")
	}
}

// TestRootCaddyfileStripsIdentityEverywhere runs the root Caddyfile: client
// identity headers (and a forged signature) reach neither the token service
// (/management/*, the JWKS) nor the core, and the core's requests carry a
// signature.
func TestRootCaddyfileStripsIdentityEverywhere(t *testing.T) {
	src, err := os.ReadFile("../Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	tokenSvc, core := newBackend(t), newBackend(t)
	port := freePort(t)
	for k, v := range map[string]string{
		"TAXIWAY_GATEWAY_SITE": "http://127.0.0.1:" + strconv.Itoa(port), "TAXIWAY_GATEWAY_BIND": "127.0.0.1",
		"TAXIWAY_GATEWAY_ADMIN": "off", "TAXIWAY_TOKEN_UPSTREAM": tokenSvc.addr(), "TAXIWAY_CORE_UPSTREAM": core.addr(),
		"TAXIWAY_IDENTITY_KEY": strings.Repeat("i", 32),
		"XDG_CONFIG_HOME":      t.TempDir(), "XDG_DATA_HOME": t.TempDir(),
	} {
		t.Setenv(k, v)
	}
	for _, k := range []string{"TAXIWAY_GATEWAY_TLS", "TAXIWAY_TOKEN_ALG", "TAXIWAY_USER_HEADER", "TAXIWAY_GROUPS_HEADER"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	cfg, err := adapt(string(src))
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatalf("loading the root Caddyfile: %v", err)
	}
	g := gateway{url: "http://127.0.0.1:" + strconv.Itoa(port)}
	spoof := map[string]string{
		"X-Authenticated-User": "mallory", "x_authenticated_groups": "taxiway-admin",
		"X-Authenticated-Signature": "v1;t=1;s=forged", "Connection": "X-Authenticated-User",
	}
	for _, path := range []string{"/management/auth", "/.well-known/jwks.json"} {
		n := tokenSvc.count()
		resp, body := get(t, g, path, spoof)
		if resp.StatusCode != 200 || tokenSvc.count() != n+1 {
			t.Fatalf("%s: %d %s, not proxied to the token service", path, resp.StatusCode, body)
		}
		for k := range tokenSvc.last() {
			if strings.HasPrefix(normalizeHeaderName(k), "x-authenticated") {
				t.Errorf("%s: the token service received %s", path, k)
			}
		}
	}
	// Without credentials the core is not reached.
	if resp, _ := get(t, g, "/taxii2/", spoof); resp.StatusCode != 401 || core.count() != 0 {
		t.Errorf("unauthenticated: %d, core reached %d times", resp.StatusCode, core.count())
	}
}
