package e2e

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
	"github.com/taxiway/taxiway/internal/testbin"
)

// TestGatewayAdminAPIIsPrivate: the gateway as `make run` runs it listens on
// TCP for its site and its ops listener (metrics) only; neither loads a config (the way a
// local process could otherwise read the identity key and claim any
// user); Caddy's admin API is a Unix socket of mode 0600 owned by the
// stack's user, in a folder of mode 0700; the metrics still tell whether
// taxii_auth is ready.
func TestGatewayAdminAPIIsPrivate(t *testing.T) {
	site, _ := strconv.Atoi(strings.TrimPrefix(stack.GatewayURL(), "http://127.0.0.1:"))
	ports, err := testbin.ListeningTCPPorts(stack.PID(localstack.Gateway))
	if err != nil {
		t.Skip(err)
	}
	want := []int{site, gatewayOpsPort}
	slices.Sort(want)
	if !slices.Equal(ports, want) {
		t.Fatalf("the gateway listens on TCP ports %v, want only its site and ops ports %v", ports, want)
	}
	free, err := localstack.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range ports {
		if got, err := testbin.CaddyAdminOn("127.0.0.1", port, free[0]); err != nil || got != "" {
			t.Errorf("port %d: %s %v", port, got, err)
		}
	}
	sock := stack.AdminSocket(localstack.Gateway)
	if msg := testbin.CheckPrivateSocket(sock); msg != "" {
		t.Errorf("the admin socket: %s", msg)
	}
	// Its owner can use it (caddy reload --address unix/PATH would).
	owner := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	res, err := owner.Get("http://localhost/config/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(b), `"taxii_auth"`) || !strings.Contains(string(b), "{env.TAXIWAY_IDENTITY_KEY}") {
		t.Errorf("GET /config/ on the admin socket: %d %.300s", res.StatusCode, b)
	}

	res, err = httpClient.Get("http://127.0.0.1:" + strconv.Itoa(gatewayOpsPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`taxiway_gateway_revocation_polls_total{result="ok"}`, "caddy_http_requests_total", "go_goroutines"} {
		if res.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
			t.Errorf("the gateway's metrics lack %s: %d", want, res.StatusCode)
		}
	}
}

// TestGatewayReadyWhateverTheData: a gateway starts and counts as ready
// when discovery is public and anonymous access is on (so /taxii2/ answers
// 200, not 401), as `taxiway local` runs it.
func TestGatewayReadyWhateverTheData(t *testing.T) {
	demo, err := os.ReadFile("../deploy/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	public := strings.Replace(string(demo), "  default: api1\n", "  default: api1\n  public: true\n", 1)
	if public == string(demo) {
		t.Fatal("deploy/demo.yaml no longer has discovery's default: api1")
	}
	syncYAML(t, public)
	t.Cleanup(func() { syncYAML(t, string(demo)) })
	ports, err := localstack.FreePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := stack.StartGateway(ctx, "gateway-public", ports[0], ports[1]); err != nil {
		t.Fatalf("a gateway in front of public discovery: %v", err)
	}
	t.Cleanup(func() { _ = stack.StopService("gateway-public") })
	req, _ := http.NewRequest("GET", stack.GatewayURLOf("gateway-public")+"/taxii2/", nil)
	req.Header.Set("Accept", taxiiType)
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("anonymous discovery: %d, want 200 (the case this test is about)", res.StatusCode)
	}
}
