package gatewayerrors

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// freePorts returns n loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// TestTaxiiErrors runs a real Caddy with `taxii_errors`: a backend that is
// down gives 502 with Retry-After, other gateway-made errors their status,
// all with a TAXII body; a handle_errors block for one status still wins.
func TestTaxiiErrors(t *testing.T) {
	ports := freePorts(t, 2) // the site's and a closed backend's
	cf := fmt.Sprintf(`{
	admin off
	default_bind 127.0.0.1
	auto_https off
	persist_config off
}

http://127.0.0.1:%d {
	taxii_errors
	handle_errors 404 {
		respond "the site's own 404" 404
	}
	@e path_regexp code ^/e/([0-9]+)$
	handle @e {
		error {re.code.1} {re.code.1}
	}
	handle /missing {
		error 404
	}
	reverse_proxy 127.0.0.1:%d
}
`, ports[0], ports[1])
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	base := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	client := &http.Client{Timeout: 10 * time.Second}

	for path, want := range map[string]int{
		"/api1/collections/": http.StatusBadGateway, // reverse_proxy to the closed port
		"/e/503":             http.StatusServiceUnavailable,
		"/e/504":             http.StatusGatewayTimeout,
		"/e/405":             http.StatusMethodNotAllowed,
		"/e/413":             http.StatusRequestEntityTooLarge,
		"/e/500":             http.StatusInternalServerError,
	} {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e taxiierror.Error
		if resp.StatusCode != want || resp.Header.Get("Content-Type") != taxiierror.MediaType ||
			json.Unmarshal(body, &e) != nil || e.HTTPStatus != fmt.Sprint(want) || e.Title == "" || e.Description == "" || e.ErrorID == "" {
			t.Errorf("%s: %d %q %s, want %d with a TAXII error body", path, resp.StatusCode, resp.Header.Get("Content-Type"), body, want)
		}
		retry := want == http.StatusBadGateway || want == http.StatusServiceUnavailable || want == http.StatusGatewayTimeout
		if got := resp.Header.Get("Retry-After"); (got == RetryAfter) != retry {
			t.Errorf("%s: Retry-After %q", path, got)
		}
		if got := resp.Header.Get("Allow"); (got == Allow) != (want == http.StatusMethodNotAllowed) {
			t.Errorf("%s: Allow %q", path, got)
		}
	}

	resp, err := client.Get(base + "/missing")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "the site's own 404") {
		t.Errorf("handle_errors 404: %d %s", resp.StatusCode, body)
	}
}

func TestTaxiiErrorsTakesNoArguments(t *testing.T) {
	for _, directive := range []string{"taxii_errors 502", "taxii_errors {\n\t\tretry 5\n\t}"} {
		cf := "http://127.0.0.1:1 {\n\t" + directive + "\n}\n"
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), map[string]any{"filename": "Caddyfile"})
		if err == nil || !strings.Contains(err.Error(), "taxii_errors takes no arguments") {
			t.Errorf("%q: %v", directive, err)
		}
	}
}
