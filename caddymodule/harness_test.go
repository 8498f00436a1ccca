package caddymodule

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/golang-jwt/jwt/v5"
)

// One Caddy per test binary: tests run sequentially and each loads its own
// config, replacing the previous one.
func TestMain(m *testing.M) {
	code := m.Run()
	_ = caddy.Stop()
	os.Exit(code)
}

// signingKey is an Ed25519 key with its kid.
type signingKey struct {
	kid  string
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
}

func newSigningKey(t testing.TB, kid string) signingKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, priv: priv, pub: pub}
}

// account is a token-service user.
type account struct {
	password string
	groups   []string
	version  int64
	disabled bool
}

// tokenService is a small real HTTP token service implementing the contract:
// POST /management/auth (form) and GET /.well-known/jwks.json.
type tokenService struct {
	srv *httptest.Server

	mu        sync.Mutex
	keys      []signingKey // published; the last one signs
	accounts  map[string]account
	status    int    // when non-zero, /auth answers this status
	retry     string // Retry-After with status
	jwksDown  bool
	delay     time.Duration // before answering /auth
	lastXFF   string
	exchanges atomic.Int64
	jwksHits  atomic.Int64
	skew      time.Duration // added to the clock of issued tokens
	jtiSeq    atomic.Int64

	// The revocation feed: entries in order, a long poll woken by changed.
	feed     []map[string]any
	feedDown bool
	changed  chan struct{}
	quit     chan struct{} // closed before the server, ending long polls
}

func newTokenService(t testing.TB, key signingKey) *tokenService {
	t.Helper()
	ts := &tokenService{
		keys: []signingKey{key},
		accounts: map[string]account{
			"alice": {password: "correct horse", groups: []string{"analysts", "admins"}},
			"bob":   {password: "bobs password"},
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /management/auth", ts.auth)
	mux.HandleFunc("GET /.well-known/jwks.json", ts.jwks)
	mux.HandleFunc("GET /internal/revocations", ts.revocations)
	ts.changed = make(chan struct{})
	ts.quit = make(chan struct{})
	ts.srv = httptest.NewServer(mux)
	t.Cleanup(ts.srv.Close)
	t.Cleanup(func() { close(ts.quit) })
	return ts
}

func (ts *tokenService) authURL() string { return ts.srv.URL + "/management/auth" }
func (ts *tokenService) jwksURL() string { return ts.srv.URL + "/.well-known/jwks.json" }

func (ts *tokenService) setStatus(status int, retryAfter string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.status, ts.retry = status, retryAfter
}

func (ts *tokenService) setJWKSDown(down bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.jwksDown = down
}

// rotate publishes k and signs with it from now on.
func (ts *tokenService) rotate(k signingKey) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.keys = append(ts.keys, k)
}

func (ts *tokenService) xff() string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.lastXFF
}

func (ts *tokenService) auth(w http.ResponseWriter, r *http.Request) {
	ts.exchanges.Add(1)
	ts.mu.Lock()
	status, retry, delay := ts.status, ts.retry, ts.delay
	key := ts.keys[len(ts.keys)-1]
	ts.lastXFF = r.Header.Get("X-Forwarded-For")
	ts.mu.Unlock()
	time.Sleep(delay)
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		if retry != "" {
			w.Header().Set("Retry-After", retry)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"error":"unavailable"}`)
		return
	}
	if r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, `{"error":"form expected"}`, http.StatusBadRequest)
		return
	}
	user, password := r.PostFormValue("username"), r.PostFormValue("password")
	ts.mu.Lock()
	acct, ok := ts.accounts[user]
	ts.mu.Unlock()
	if !ok || acct.password != password || acct.disabled {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"invalid credentials"}`)
		return
	}
	ts.mu.Lock()
	now := time.Now().Add(ts.skew)
	ts.mu.Unlock()
	c := jwt.MapClaims{
		"iss": "taxiway", "aud": "taxii", "sub": user,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": fmt.Sprintf("j-%s-%d", user, ts.jtiSeq.Add(1)), "account_version": acct.version,
	}
	if len(acct.groups) > 0 {
		c["groups"] = acct.groups
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"token": signEd(key, c)})
}

// revokeAccount voids user's tokens: a new account version, published.
func (ts *tokenService) revokeAccount(user string) { ts.setAccount(user, false) }

// setAccount gives user a new version, disabled or not, and publishes it.
func (ts *tokenService) setAccount(user string, disabled bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	a := ts.accounts[user]
	a.version++
	a.disabled = disabled
	ts.accounts[user] = a
	ts.publishLocked(map[string]any{"sub": user, "min_version": a.version, "disabled": disabled,
		"until": time.Now().Add(2 * time.Hour).Unix()})
}

// revokeJTI voids one token.
func (ts *tokenService) revokeJTI(jti string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.publishLocked(map[string]any{"jti": jti, "until": time.Now().Add(2 * time.Hour).Unix()})
}

func (ts *tokenService) publishLocked(e map[string]any) {
	e["seq"] = len(ts.feed) + 1
	ts.feed = append(ts.feed, e)
	close(ts.changed)
	ts.changed = make(chan struct{})
}

func (ts *tokenService) setFeedDown(down bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.feedDown = down
}

// revocations is the feed: entries after the cursor, long-polling up to wait.
func (ts *tokenService) revocations(w http.ResponseWriter, r *http.Request) {
	after, _ := strconv.Atoi(r.URL.Query().Get("after"))
	wait, _ := strconv.Atoi(r.URL.Query().Get("wait"))
	deadline := time.After(time.Duration(wait) * time.Second)
	for {
		ts.mu.Lock()
		down, n, changed := ts.feedDown, len(ts.feed), ts.changed
		entries := slices.Clone(ts.feed[min(after, n):])
		ts.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if len(entries) > 0 || wait == 0 {
			_ = json.NewEncoder(w).Encode(map[string]any{"cursor": max(after, n), "entries": entries})
			return
		}
		select {
		case <-changed:
		case <-deadline:
			wait = 0
		case <-r.Context().Done():
			return
		case <-ts.quit:
			return
		}
	}
}

func (ts *tokenService) jwks(w http.ResponseWriter, r *http.Request) {
	ts.jwksHits.Add(1)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.jwksDown {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	var keys []map[string]string
	for _, k := range ts.keys {
		keys = append(keys, map[string]string{
			"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(k.pub),
			"kid": k.kid, "alg": "EdDSA", "use": "sig",
		})
	}
	w.Header().Set("Content-Type", "application/jwk-set+json")
	_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// validClaims are the contract's claims for sub, valid for an hour.
func validClaims(sub string, groups ...string) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": "taxiway", "aud": "taxii", "sub": sub,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "jti-1",
	}
	if len(groups) > 0 {
		c["groups"] = groups
	}
	return c
}

func signEd(k signingKey, c jwt.Claims) string {
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = k.kid
	s, err := t.SignedString(k.priv)
	if err != nil {
		panic(err)
	}
	return s
}

// backend is the real upstream; it records what it receives.
type backend struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []http.Header
}

func newBackend(t testing.TB) *backend {
	t.Helper()
	b := &backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.reqs = append(b.reqs, r.Header.Clone())
		b.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "backend ok")
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

func (b *backend) last() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.reqs) == 0 {
		return nil
	}
	return b.reqs[len(b.reqs)-1]
}

func (b *backend) addr() string { return strings.TrimPrefix(b.srv.URL, "http://") }

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// gateway is a running Caddy config.
type gateway struct {
	url     string
	logFile string
}

// adapt turns a Caddyfile into JSON.
func adapt(caddyfile string) ([]byte, error) {
	adapter := caddyconfig.GetAdapter("caddyfile")
	cfg, _, err := adapter.Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	return cfg, err
}

// startGateway loads a Caddy config with site block body on a fresh
// loopback port, debug logs going to a file.
func startGateway(t testing.TB, body string) gateway {
	t.Helper()
	g, err := loadGateway(t, body, nil)
	if err != nil {
		t.Fatalf("loading gateway config: %v", err)
	}
	return g
}

// startGatewayWith is startGateway with extra fields for the HTTP server's
// JSON config.
func startGatewayWith(t testing.TB, body string, server map[string]any) gateway {
	t.Helper()
	g, err := loadGateway(t, body, server)
	if err != nil {
		t.Fatalf("loading gateway config: %v", err)
	}
	return g
}

func loadGateway(t testing.TB, body string, server map[string]any) (gateway, error) {
	t.Helper()
	port := freePort(t)
	logFile := t.TempDir() + "/caddy.log"
	cf := fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	metrics
	log {
		output file %s
		level DEBUG
	}
}

http://127.0.0.1:%d {
%s
}
`, logFile, port, body)
	cfg, err := adapt(cf)
	if err != nil {
		return gateway{}, fmt.Errorf("adapting: %w", err)
	}
	if server != nil {
		var doc map[string]any
		if err := json.Unmarshal(cfg, &doc); err != nil {
			return gateway{}, err
		}
		srv := doc["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)["srv0"].(map[string]any)
		for k, v := range server {
			srv[k] = v
		}
		if cfg, err = json.Marshal(doc); err != nil {
			return gateway{}, err
		}
	}
	if err := caddy.Load(cfg, true); err != nil {
		return gateway{}, err
	}
	return gateway{url: fmt.Sprintf("http://127.0.0.1:%d", port), logFile: logFile}, nil
}

// standardSite is taxii_auth with the token service ts (extra options
// appended) in front of backend b.
func standardSite(ts *tokenService, b *backend, extra string) string {
	return fmt.Sprintf(`	taxii_auth {
		jwks_url %s
		token_url %s
		%s
	}
	reverse_proxy %s`, ts.jwksURL(), ts.authURL(), extra, b.addr())
}

var client = &http.Client{Timeout: 10 * time.Second}

// get sends GET path with the given headers and returns the response with
// its body read.
func get(t testing.TB, g gateway, path string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, g.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header[k] = []string{v} // raw keys: spellings are part of the test
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func basicAuth(user, password string) map[string]string {
	return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))}
}

// writePublicKeyPEM writes k's public key as PEM into dir.
func writePublicKeyPEM(t testing.TB, dir string, k signingKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	path := dir + "/pub.pem"
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
