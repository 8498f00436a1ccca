package caddymodule

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// The gateway's container health check: `caddy taxii-healthcheck`. Images
// without a shell or wget (docker-compose.yml's gateway) run it, and it needs
// no admin endpoint, which may be off.
func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "taxii-healthcheck",
		Usage: "[--site <address>] [--address <host>] [--path <path>] [--timeout <duration>]",
		Short: "Checks that the gateway on this machine answers on its site",
		Long: `
Sends GET <path> (default /taxii2/) to the site the root Caddyfile serves,
on this machine, without credentials, and exits 0 when the gateway answers
with a status below 500 (401 from taxii_auth: up and routing), 1 otherwise.

The site defaults to $TAXIWAY_GATEWAY_SITE (or :9000), read as the Caddyfile
reads it. An HTTPS site is checked over TLS with its host name, trusting the
system's roots and Caddy's own local CA (in Caddy's data directory), so a
certificate Caddy cannot serve counts as unhealthy. The connection goes to
--address (default $TAXIWAY_GATEWAY_BIND when it names one address, else
127.0.0.1).
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("site", envOrDefault("TAXIWAY_GATEWAY_SITE", ":9000"), "site address, as in the Caddyfile")
			cmd.Flags().String("address", "", "address to connect to (default: the bind address, or 127.0.0.1)")
			cmd.Flags().String("path", "/taxii2/", "path to request")
			cmd.Flags().Duration("timeout", 5*time.Second, "time allowed for the whole check")
			cmd.RunE = caddycmd.WrapCommandFuncForCobra(cmdHealthcheck)
		},
	})
}

func envOrDefault(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func cmdHealthcheck(fl caddycmd.Flags) (int, error) {
	address := fl.String("address")
	if address == "" {
		address = "127.0.0.1"
		if bind := net.ParseIP(os.Getenv("TAXIWAY_GATEWAY_BIND")); bind != nil && !bind.IsUnspecified() {
			address = bind.String()
		}
	}
	timeout, err := fl.GetDuration("timeout")
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	status, err := healthcheck(ctx, fl.String("site"), address, fl.String("path"), os.Getenv("TAXIWAY_GATEWAY_TLS") == "internal")
	if err != nil {
		return 1, err
	}
	if status >= 500 {
		return 1, fmt.Errorf("the gateway answered %d", status)
	}
	return 0, nil
}

// healthcheck requests path from the site at address and returns the status.
// tlsInternal is the Caddyfile's `tls internal`, which makes any site HTTPS.
func healthcheck(ctx context.Context, site, address, path string, tlsInternal bool) (int, error) {
	a, err := httpcaddyfile.ParseAddress(site)
	if err != nil {
		return 0, fmt.Errorf("parsing site %q: %w", site, err)
	}
	// As Caddy decides: https unless the scheme or port says http, or the
	// site names no host (":9000") and nothing asks for TLS.
	https := a.Scheme == "https" ||
		(a.Scheme == "" && a.Port != "80" && (a.Host != "" || tlsInternal))
	port := a.Port
	switch {
	case port != "":
	case https:
		port = "443"
	default:
		port = "80"
	}
	host := a.Host
	if host == "" {
		host = "localhost"
	}
	dialer := &net.Dialer{}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, net.JoinHostPort(address, port))
		},
	}
	scheme := "http"
	if https {
		scheme = "https"
		roots, err := x509.SystemCertPool()
		if err != nil {
			roots = x509.NewCertPool()
		}
		// Caddy's local CA (tls internal, localhost, IP addresses).
		if pem, err := os.ReadFile(filepath.Join(caddy.AppDataDir(), "pki", "authorities", "local", "root.crt")); err == nil {
			roots.AppendCertsFromPEM(pem)
		} else if !errors.Is(err, os.ErrNotExist) {
			return 0, fmt.Errorf("reading Caddy's local root certificate: %w", err)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
	}
	defer transport.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, port)+path, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return 0, fmt.Errorf("checking the gateway: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
