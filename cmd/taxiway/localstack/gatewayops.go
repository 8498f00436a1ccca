package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Caddy's admin API can load a config that reads the gateway's environment,
// the identity key included, so the local stacks never put it on TCP: it
// listens on a Unix socket that only the stack's user may open (mode 0600,
// in a folder of mode 0700). Metrics and readiness come from the gateway's
// ops listener instead, which changes nothing.

// adminSocket is the admin API's socket in a gateway's state folder.
func adminSocket(dir string) string { return filepath.Join(dir, "admin.sock") }

// maxSocketPath is what fits in sockaddr_un's sun_path (108 bytes on
// Linux, 104 on the BSDs), with its terminating NUL.
const maxSocketPath = 103

// adminListen is the TAXIWAY_GATEWAY_ADMIN value for the socket sock: the
// socket, after making its folder private, or "off" when the path is too
// long for a socket or the folder cannot be made.
func adminListen(sock string) string {
	if len(sock) > maxSocketPath || os.MkdirAll(filepath.Dir(sock), 0o700) != nil || os.Chmod(filepath.Dir(sock), 0o700) != nil {
		return "off"
	}
	return "unix/" + sock + "|0600"
}

// siteAnswers checks that a gateway or the front serves its site, whatever
// the data says: any status under 500 to GET /taxii2/ (401 without
// credentials, or 200 where discovery is public and anonymous access is on).
func siteAnswers(siteURL string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		status, _, err := get(ctx, client, siteURL+"/taxii2/")
		if err == nil && status >= 500 {
			err = fmt.Errorf("%s/taxii2/ answered %d", siteURL, status)
		}
		return err
	}
}

// gatewayReady checks that a gateway serves its site and is able to
// authenticate: its metrics show that taxii_auth holds the revocation state
// and (when it uses one) a JWKS; until then it answers credentials with
// 503. Its first fetches may go through the gateway's own listeners, so
// they succeed a retry or two later than the site answers.
func gatewayReady(siteURL, metricsURL string) func(context.Context) error {
	site := siteAnswers(siteURL)
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		if err := site(ctx); err != nil {
			return err
		}
		status, m, err := get(ctx, client, metricsURL)
		if err != nil {
			return err
		}
		if status != http.StatusOK {
			return fmt.Errorf("%s answered %d", metricsURL, status)
		}
		if !strings.Contains(m, `taxiway_gateway_revocation_polls_total{result="ok"}`) {
			return errors.New("the gateway has not read the revocation feed yet")
		}
		if strings.Contains(m, "taxiway_gateway_jwks_refreshes_total") && !strings.Contains(m, `taxiway_gateway_jwks_refreshes_total{result="ok"}`) {
			return errors.New("the gateway has no JWKS yet")
		}
		return nil
	}
}

// get fetches url as a TAXII client would, returning status and body.
func get(ctx context.Context, client *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Accept", "application/taxii+json;version=2.1")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
