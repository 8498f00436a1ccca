// Package e2e runs the whole stack the way `make run` does (localstack.Start:
// private Postgres, token service, core, Caddy gateway as real processes on
// free loopback ports) and drives it over HTTP like TAXII clients do.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
	"github.com/taxiway/taxiway/internal/testbin"
)

// tokenTTL is short so that a test can watch a token expire; gatewayLeeway
// is the clock leeway the stack's gateways get, short for the same reason.
const (
	tokenTTL      = 4
	gatewayLeeway = 2 * time.Second
)

// The stack is shared by every test of this binary: starting it costs
// seconds. taxiwayBin is the binary the stack runs, for admin commands.
var (
	stack      *localstack.Stack
	taxiwayBin string
	corePort   int
	// gatewayOpsPort serves the gateway's metrics on loopback.
	gatewayOpsPort int
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	flag.Parse()
	root, err := filepath.Abs("..")
	if err != nil {
		return 1, err
	}
	tmp, err := os.MkdirTemp("", "taxiway-e2e-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(tmp)
	// Postgres runs as an unprivileged user when the tests run as root.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return 1, err
	}

	cfg := localstack.Defaults(root)
	cfg.DataDir = filepath.Join(tmp, "data")
	if cfg.TaxiwayBin, err = testbin.Taxiway(root, tmp); err != nil {
		return 1, err
	}
	if cfg.GatewayBin, err = testbin.Gateway(root, tmp); err != nil {
		return 1, err
	}
	ports, err := localstack.FreePorts(6)
	if err != nil {
		return 1, err
	}
	cfg.GatewayPort, cfg.GatewayOpsPort = ports[0], ports[1]
	cfg.CorePort, cfg.CoreOpsPort = ports[2], ports[3]
	cfg.TokenPort, cfg.TokenOpsPort = ports[4], ports[5]
	cfg.TokenTTL = tokenTTL
	// Public collections: requests without credentials pass the gateway as
	// anonymous; the core still answers 401 wherever nothing is public.
	cfg.Env = append(cfg.Env, "TAXIWAY_GATEWAY_ANONYMOUS=on", "TAXIWAY_GATEWAY_LEEWAY="+gatewayLeeway.String())
	taxiwayBin = cfg.TaxiwayBin
	corePort, gatewayOpsPort = cfg.CorePort, cfg.GatewayOpsPort
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}

	stack, err = localstack.Start(context.Background(), cfg)
	if err != nil {
		return 1, fmt.Errorf("starting the stack: %w", err)
	}
	code := m.Run()
	if code != 0 {
		for _, name := range []string{"gateway", "core", "tokenservice", "postgres"} {
			b, _ := os.ReadFile(filepath.Join(cfg.DataDir, "logs", name+".log"))
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			fmt.Fprintf(os.Stderr, "---- end of %s.log ----\n%s\n", name, b)
		}
	}
	if err := stack.Stop(); err != nil {
		return code, fmt.Errorf("stopping the stack: %w", err)
	}
	return code, nil
}
