// Package testbin gives tests the project's binaries. `make test` builds
// each once (bin/taxiway, bin/gateway) and names them in the environment, so
// that no test package links Caddy or the taxiway binary again; a test run
// on its own (go test ./e2e) builds what it needs into a folder of its own.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The variables `make test` sets to the binaries it built.
const (
	EnvTaxiway = "TAXIWAY_TEST_TAXIWAY_BIN"
	EnvGateway = "TAXIWAY_TEST_GATEWAY_BIN"
)

// Taxiway returns the taxiway binary (./cmd/taxiway), building it into dir
// from the checkout at root unless the environment names one.
func Taxiway(root, dir string) (string, error) {
	return binary(EnvTaxiway, root, dir, "taxiway", "./cmd/taxiway")
}

// Gateway returns Caddy with the taxii_auth module (./cmd/gateway), as
// Taxiway does.
func Gateway(root, dir string) (string, error) {
	return binary(EnvGateway, root, dir, "gateway", "./cmd/gateway")
}

func binary(env, root, dir, name, pkg string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s names %s: %w", env, p, err)
		}
		return p, nil
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", pkg, err, b)
	}
	return out, nil
}
