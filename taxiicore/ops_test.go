package taxiicore

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/taxiway/taxiway/internal/pgtest"
)

func newRecorderRequest(srv *Server, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.RemoteAddr = "127.0.0.1:5000"
	r.Header.Set("X-Authenticated-User", "alice")
	r.Header.Set("Accept", "application/taxii+json;version=2.1")
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, r)
	return rec
}

func TestOpsEndpoints(t *testing.T) {
	f := newFixture(t, nil)
	ops := httptest.NewServer(f.srv.OpsHandler())
	defer ops.Close()
	get := func(path string) (int, string) {
		res, err := http.Get(ops.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, body := get("/readyz"); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	f.post(colRW, indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""), indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))
	f.expect(req{path: objectsPath(colWO)}, http.StatusForbidden)
	f.expect(req{method: "FROB", path: "/taxii2/"}, http.StatusMethodNotAllowed)
	_, metrics := get("/metrics")
	for _, want := range []string{
		`taxiway_core_requests_total{code="202",method="POST",route="/{root}/collections/{id}/objects/"} 1`,
		`taxiway_core_requests_total{code="403",method="GET",route="/{root}/collections/{id}/objects/"} 1`,
		`taxiway_core_objects_ingested_total 2`,
		`taxiway_core_requests_total{code="405",method="OTHER",route="/taxii2/"} 1`,
		`taxiway_core_request_duration_seconds_bucket{method="POST",route="/{root}/collections/{id}/objects/"`,
	} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, colRW) {
		t.Fatal("metrics labels hold a collection id")
	}
	// A page of two objects, and the pool behind it.
	f.expect(req{path: objectsPath(colRW)}, http.StatusOK)
	metrics = scrapeMetrics(t, f.srv)
	if v := metricValue(t, metrics, `taxiway_core_page_objects_sum{endpoint="objects"}`); v != 2 {
		t.Errorf("page objects sum %g, want 2", v)
	}
	if v := metricValue(t, metrics, `taxiway_core_page_bytes_sum{endpoint="objects"}`); v < 100 {
		t.Errorf("page bytes sum %g, want the two indicators' size", v)
	}
	if v := metricValue(t, metrics, `taxiway_core_db_pool_max_connections{pool="primary"}`); v != float64(f.pool.Stat().MaxConns()) {
		t.Errorf("pool max connections %g, want %d", v, f.pool.Stat().MaxConns())
	}
	if v := metricValue(t, metrics, `taxiway_core_db_pool_acquires_total{pool="primary"}`); v == 0 {
		t.Error("no acquire counted on the primary pool")
	}
	if v := metricValue(t, metrics, `taxiway_core_db_unavailable_total{cause="connect"}`); v != 0 {
		t.Errorf("db unavailable %g with the database up", v)
	}
	if strings.Contains(metrics, "taxiway_core_db_standby_replay_lag_seconds") {
		t.Error("standby lag exported without a read pool")
	}
	// Not ready once the database is gone.
	f.pool.Close()
	if code, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a closed pool: %d", code)
	}
}

// scrapeMetrics is what the server's /metrics answers.
func scrapeMetrics(t *testing.T, srv *Server) string {
	t.Helper()
	rec := httptest.NewRecorder()
	srv.OpsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

// metricValue is the value of one series (name and labels exactly as
// exposed) in a scrape; a missing series fails the test.
func metricValue(t *testing.T, metrics, series string) float64 {
	t.Helper()
	for line := range strings.Lines(metrics) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	t.Fatalf("no series %s in the scrape", series)
	return 0
}

func TestNewRefusesBadConfig(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	bad := map[string]func(*Config){
		"trusted proxies": func(c *Config) { c.TrustedProxies = "10.0.0.0/33" },
		"max page size":   func(c *Config) { c.MaxPageSize = 0 },
		"user header":     func(c *Config) { c.UserHeader = "X User" },
		"cursor key":      func(c *Config) { c.CursorKey = "short" },
		"must differ":     func(c *Config) { c.GroupsHeader = "x-authenticated-user" },
	}
	for want, mutate := range bad {
		cfg := DefaultConfig()
		mutate(&cfg)
		if _, err := New(ctx, pool, cfg, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: got %v", want, err)
		}
	}
	// A database without the schema is refused with a hint.
	empty := pgtest.NewPool(t)
	if _, err := New(ctx, empty, DefaultConfig(), nil); err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Fatalf("stale schema: %v", err)
	}
	if _, err := New(ctx, pool, DefaultConfig(), nil); err != nil {
		t.Fatal(err)
	}
}
