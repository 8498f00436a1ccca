package caddymodule

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestHealthcheck: the container health check reaches the site on the given
// address, over HTTP for ":PORT" and http:// sites, and refuses a TLS
// certificate that neither the system nor Caddy's local CA vouches for.
func TestHealthcheck(t *testing.T) {
	var gotHost string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotHost = r.Host
		if r.URL.Path != "/taxii2/" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, site := range []string{":" + port, "http://taxii.example:" + port} {
		status, err := healthcheck(ctx, site, "127.0.0.1", "/taxii2/", false)
		if err != nil || status != http.StatusUnauthorized {
			t.Errorf("site %s: %d, %v; want 401", site, status, err)
		}
	}
	if gotHost != "taxii.example:"+port {
		t.Errorf("Host %q, want the site's host name", gotHost)
	}

	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer tlsSrv.Close()
	_, tlsPort, _ := net.SplitHostPort(tlsSrv.Listener.Addr().String())
	for _, tc := range []struct {
		site        string
		tlsInternal bool
	}{
		{"https://localhost:" + tlsPort, false},
		{"localhost:" + tlsPort, false},
		{":" + tlsPort, true},
	} {
		if status, err := healthcheck(ctx, tc.site, "127.0.0.1", "/taxii2/", tc.tlsInternal); err == nil {
			t.Errorf("site %s (tls internal %v): %d from an untrusted certificate, want an error", tc.site, tc.tlsInternal, status)
		}
	}
}
