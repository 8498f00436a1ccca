//go:build cluster

package cluster

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
	"github.com/taxiway/taxiway/internal/testbin"
)

// from is an HTTP client whose connections come from the loopback address
// addr (any 127.0.0.0/8 address binds on Linux), as a client on another
// host would.
func from(addr string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}, Timeout: 10 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// TestClusterTrust: in the clustered stack as `make cluster` runs it, the
// token service's login limits count the real client's address, through
// the front and straight at a gateway, on the Basic exchange and on
// /management/auth: ten wrong passwords from one address do not lock the
// account out for another address, while the attacker's address stays
// limited, whatever X-Forwarded-For it sends. And no gateway nor the front
// answers as Caddy's admin API on any TCP port.
func TestClusterTrust(t *testing.T) {
	c := startCluster(t, nil)

	t.Run("admin API", func(t *testing.T) {
		free, err := localstack.FreePorts(1)
		if err != nil {
			t.Fatal(err)
		}
		for instance, pid := range c.PIDs() {
			svc, _, _ := strings.Cut(instance, "-")
			if svc != localstack.Gateway && instance != localstack.Front {
				continue
			}
			ports, err := testbin.ListeningTCPPorts(pid)
			if err != nil {
				t.Skip(err)
			}
			host := "127.0.0.1"
			if instance != localstack.Front {
				n, _ := strconv.Atoi(strings.TrimPrefix(instance, "gateway-"))
				host = localstack.Host(localstack.Gateway, n)
			}
			for _, port := range ports {
				if got, err := testbin.CaddyAdminOn(host, port, free[0]); err != nil || got != "" {
					t.Errorf("%s port %d: %s %v", instance, port, got, err)
				}
			}
			if instance != localstack.Front {
				if msg := testbin.CheckPrivateSocket(c.AdminSocket(instance)); msg != "" {
					t.Errorf("%s's admin socket: %s", instance, msg)
				}
			}
		}
	})

	// The attempts of one address: Basic on /taxii2/, or a token request.
	type attempt func(client *http.Client, base, password string, spoof string) int
	basic := func(client *http.Client, base, password, spoof string) int {
		req, _ := http.NewRequest("GET", base+"/taxii2/", nil)
		req.Header.Set("Accept", taxiiType)
		req.SetBasicAuth("test", password)
		if spoof != "" {
			req.Header.Set("X-Forwarded-For", spoof)
		}
		return status(t, client, req)
	}
	token := func(client *http.Client, base, password, spoof string) int {
		req, _ := http.NewRequest("POST", base+"/management/auth", strings.NewReader("username=test&password="+password))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if spoof != "" {
			req.Header.Set("X-Forwarded-For", spoof)
		}
		return status(t, client, req)
	}
	cases := []struct {
		name             string
		base             string
		try              attempt
		attacker, victim string
	}{
		{"Basic through the front", c.FrontURL(), basic, "127.0.0.2", "127.0.0.3"},
		{"token through the front", c.FrontURL(), token, "127.0.0.4", "127.0.0.5"},
		{"Basic at a gateway", c.GatewayURL(1), basic, "127.0.0.6", "127.0.0.7"},
		{"token at a gateway", c.GatewayURL(2), token, "127.0.0.8", "127.0.0.9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			attacker, victim := from(tc.attacker), from(tc.victim)
			// The attacker also claims other addresses; none is believed.
			for i := range 10 {
				// Passwords of its own: the gateway makes one exchange for
				// identical credentials arriving at once (singleflight),
				// which would count for one of the parallel cases only.
				if got := tc.try(attacker, tc.base, "wrong-"+tc.attacker+"-"+strconv.Itoa(i), "10.9.8."+strconv.Itoa(i)); got != http.StatusUnauthorized {
					t.Fatalf("wrong password %d from %s: %d, want 401", i+1, tc.attacker, got)
				}
			}
			// (A wrong password: the right one may be in a gateway's cache
			// of successful exchanges, which rate limits do not guard.)
			if got := tc.try(attacker, tc.base, "wrong-again-"+tc.attacker, "10.9.8.77"); got != http.StatusTooManyRequests {
				t.Errorf("the attacker's address after 10 failures: %d, want 429", got)
			}
			if got := tc.try(victim, tc.base, "test", ""); got != http.StatusOK {
				t.Errorf("the right password from %s: %d, want 200 (locked out by %s?)", tc.victim, got, tc.attacker)
			}
		})
	}
}

func status(t *testing.T, client *http.Client, req *http.Request) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := client.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}
