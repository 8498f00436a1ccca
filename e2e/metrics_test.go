package e2e

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestGatewayMetricsListener: with TAXIWAY_GATEWAY_METRICS=on the root
// Caddyfile serves Caddy's and taxii_auth's metrics on a port of their own,
// and nothing of the admin API there.
func TestGatewayMetricsListener(t *testing.T) {
	base := "http://127.0.0.1:" + strconv.Itoa(metricsPort)
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{`taxiway_gateway_revocation_polls_total{result="ok"}`, "caddy_http_requests_total", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("the metrics listener's /metrics lacks %s", want)
		}
	}
	for _, path := range []string{"/config/", "/load", "/id/x"} {
		if code, _ := get(path); code == http.StatusOK {
			t.Errorf("%s answers 200 on the metrics listener", path)
		}
	}
}
