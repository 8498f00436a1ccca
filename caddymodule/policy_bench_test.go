package caddymodule

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// BenchmarkGatewayPolicy is a gateway's whole request path on loopback:
// taxii_auth with a verified Bearer token, then taxii_policy or not, then a
// reverse proxy to a real HTTP backend that answers like a TAXII server.
// objects is a Get Objects request (a page of 10 indicators), passed
// through; collections is the collections list, which the policy buffers
// and rewrites for the caller.
//
//	go test ./caddymodule -run '^$' -bench GatewayPolicy -count 5
func BenchmarkGatewayPolicy(b *testing.B) {
	objects := `{"more":false,"objects":[` + strings.TrimSuffix(strings.Repeat(`{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"},`, 10), ",") + `]}`
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/taxii+json;version=2.1")
		if strings.HasSuffix(r.URL.Path, "/collections/") {
			_, _ = io.WriteString(w, backendList)
			return
		}
		_, _ = io.WriteString(w, objects)
	}))
	b.Cleanup(backend.Close)
	u, _ := url.Parse(backend.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = &http.Transport{MaxIdleConnsPerHost: 64}
	toBackend := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		proxy.ServeHTTP(w, r)
		return nil
	})

	key := newSigningKey(b, "k1")
	auth := benchHandler(b, key)
	tok := signEd(key, validClaims("alice", "analysts", "admins"))
	policy := testPolicy(b)
	withPolicy := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return policy.ServeHTTP(w, r, toBackend)
	})

	one := func(b *testing.B, path string, next caddyhttp.Handler) time.Duration {
		// What Caddy's server gives every request: a replacer and vars.
		ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, caddy.NewReplacer())
		ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
		r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://gw"+path, nil)
		r.Header = benchHeaders()
		r.Header.Del("Accept-Encoding")
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		start := time.Now()
		err := auth.ServeHTTP(w, r, next)
		d := time.Since(start)
		if err != nil || w.Code != http.StatusOK {
			b.Fatalf("status %d (%v): %s", w.Code, err, w.Body)
		}
		return d
	}
	// Each iteration sends one request through each chain, in alternating
	// order, so that both see the same machine: the ratio holds on a
	// loaded one too. throughput_ratio is with / without requests per
	// second (1 = free).
	run := func(b *testing.B, path string) {
		var without, with time.Duration
		i := 0
		for b.Loop() {
			if i%2 == 0 {
				without += one(b, path, toBackend)
				with += one(b, path, withPolicy)
			} else {
				with += one(b, path, withPolicy)
				without += one(b, path, toBackend)
			}
			i++
		}
		b.ReportMetric(float64(without.Nanoseconds())/float64(i), "without-ns/req")
		b.ReportMetric(float64(with.Nanoseconds())/float64(i), "with-ns/req")
		b.ReportMetric(float64(without)/float64(with), "throughput_ratio")
	}
	b.Run("objects", func(b *testing.B) { run(b, "/api1/collections/"+polShared+"/objects/") })
	b.Run("collections", func(b *testing.B) { run(b, "/api1/collections/") })
}

// BenchmarkPolicyDecision is taxii_policy's own work on an objects
// request, without the backend: path, route, grants.
func BenchmarkPolicyDecision(b *testing.B) {
	policy := testPolicy(b)
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	ctx := context.WithValue(context.Background(), caddyhttp.VarsCtxKey, map[string]any{identityVar: identity{User: "alice", Groups: "analysts,admins"}})
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://gw/api1/collections/"+polShared+"/objects/", nil)
		if err := policy.ServeHTTP(w, r, next); err != nil || w.Code != http.StatusOK {
			b.Fatalf("refused: %d", w.Code)
		}
	}
}
