package tokenservice

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// cheapArgon2 keeps tests fast; the default cost is measured in benchmarks.
var cheapArgon2 = Argon2Params{Memory: 256, Time: 1, Threads: 1}

// migratedPool is a fresh, migrated database.
func migratedPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if _, err := Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.PasswordHash = cheapArgon2
	return cfg
}

type testService struct {
	srv  *Server
	http *httptest.Server
	pool *pgxpool.Pool
	logs *logBuffer
}

// startService runs a Server on loopback, with cfg changed by adjust.
func startService(t *testing.T, pool *pgxpool.Pool, adjust func(*Config)) *testService {
	t.Helper()
	if pool == nil {
		pool = migratedPool(t)
	}
	cfg := testConfig()
	if adjust != nil {
		adjust(&cfg)
	}
	logs := &logBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil))
	// The revocation feed's goroutines stop before the database goes.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, err := New(ctx, pool, cfg, logger)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &testService{srv: srv, http: hs, pool: pool, logs: logs}
}

func (ts *testService) addAccount(t *testing.T, username, password string, groups ...string) {
	t.Helper()
	h, err := HashPassword(password, cheapArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if err := CreateAccount(context.Background(), ts.pool, username, h, groups); err != nil {
		t.Fatal(err)
	}
}

type response struct {
	status int
	header http.Header
	body   string
}

// post sends body with contentType as client address xff (through the
// trusted loopback peer).
func (ts *testService) post(t *testing.T, contentType, body, xff string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.http.URL+"/management/auth", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return do(t, req)
}

func (ts *testService) login(t *testing.T, username, password, xff string) response {
	t.Helper()
	form := url.Values{"username": {username}, "password": {password}}
	return ts.post(t, "application/x-www-form-urlencoded", form.Encode(), xff)
}

func do(t *testing.T, req *http.Request) response {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

func tokenFrom(t *testing.T, r response) string {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	var out struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || out.Token == "" {
		t.Fatalf("body %q: want {\"token\": ...}", r.body)
	}
	return out.Token
}

// fetchJWKS reads the published keys by kid.
func (ts *testService) fetchJWKS(t *testing.T, path string) map[string]ed25519.PublicKey {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, ts.http.URL+path, nil)
	r := do(t, req)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, r.status, r.body)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(r.body), &set); err != nil {
		t.Fatalf("JWKS %q: %v", r.body, err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if _, has := k["d"]; has {
			t.Fatalf("JWKS publishes private material: %v", k)
		}
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["kid"] == "" {
			t.Fatalf("unexpected JWK %v", k)
		}
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		if err != nil || len(x) != ed25519.PublicKeySize {
			t.Fatalf("JWK x %q malformed", k["x"])
		}
		keys[k["kid"]] = x
	}
	return keys
}

// verifyEdDSA verifies token independently (golang-jwt) against keys, with
// the checks the gateway makes, and returns its header and claims.
func verifyEdDSA(t *testing.T, token string, keys map[string]ed25519.PublicKey) (map[string]any, jwt.MapClaims) {
	t.Helper()
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(token, claims, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, jwt.ErrTokenUnverifiable
		}
		return k, nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer("taxiway"), jwt.WithAudience("taxii"),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(time.Minute))
	if err != nil || !parsed.Valid {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	return parsed.Header, claims
}

// logBuffer collects the logs of concurrent handlers.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type recorded struct {
	status int
	body   string
}

func httptestRecorder(h http.Handler, path string) recorded {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return recorded{status: rec.Code, body: rec.Body.String()}
}
