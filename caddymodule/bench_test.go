package caddymodule

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// benchHandler provisions a taxii_auth with a static Ed25519 key, outside a
// running Caddy.
func benchHandler(b *testing.B, key signingKey) *TaxiiAuth {
	b.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	b.Cleanup(cancel)
	off := false
	a := &TaxiiAuth{Basic: &off}
	dir := b.TempDir()
	a.PublicKeyFile = writePublicKeyPEM(b, dir, key)
	if err := a.Provision(ctx); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Cleanup() })
	return a
}

// BenchmarkVerifyEdDSA is one full token check: parse, Ed25519 signature,
// claims. This is what a Bearer request costs on a cache miss.
func BenchmarkVerifyEdDSA(b *testing.B) {
	key := newSigningKey(b, "k1")
	a := benchHandler(b, key)
	tok := signEd(key, validClaims("alice", "analysts", "admins"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := a.verifier.verifyOnce(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServeHTTPBearer is the handler's whole per-request cost for a
// Bearer token already verified (the steady state): stripping, cache
// lookup, setting headers.
func BenchmarkServeHTTPBearer(b *testing.B) {
	key := newSigningKey(b, "k1")
	a := benchHandler(b, key)
	tok := signEd(key, validClaims("alice", "analysts", "admins"))
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	repl := caddy.NewReplacer()
	ctx := context.WithValue(context.Background(), caddy.ReplacerCtxKey, repl)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://gw/api1/collections/", nil)
		r.Header = benchHeaders()
		r.Header.Set("Authorization", "Bearer "+tok)
		if err := a.ServeHTTP(w, r, next); err != nil || r.Header.Get(DefaultUserHeader) != "alice" {
			b.Fatalf("not authenticated: %v", err)
		}
	}
}

// BenchmarkStripHeaders is the identity-header removal on a typical TAXII
// client's request.
func BenchmarkStripHeaders(b *testing.B) {
	s := newHeaderStripper(DefaultUserHeader, DefaultGroupsHeader)
	h := benchHeaders()
	b.ReportAllocs()
	for b.Loop() {
		h["X_authenticated_user"] = []string{"evil"}
		s.strip(h)
	}
	if len(h) != len(benchHeaders()) {
		b.Fatal("strip removed the wrong headers")
	}
}

func benchHeaders() http.Header {
	return http.Header{
		"Accept":          {"application/taxii+json;version=2.1"},
		"User-Agent":      {"taxii2-client/2.3"},
		"Accept-Encoding": {"gzip"},
		"Connection":      {"keep-alive"},
		"X-Request-Id":    {"0f8fad5b-d9cb-469f-a165-70867728950e"},
		"X-Forwarded-For": {"192.0.2.1"},
	}
}
