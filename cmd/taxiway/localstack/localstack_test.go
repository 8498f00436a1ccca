package localstack

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The checks that run before anything starts: each gives a message that
// says what to do. (The stack itself is exercised by the e2e tests.)
func TestStartRefusesClearly(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port

	base := Defaults(t.TempDir())
	base.TaxiwayBin, base.GatewayBin = self, self
	base.GatewayPort = busy

	missing := base
	missing.GatewayBin = filepath.Join(t.TempDir(), "no-such-gateway")
	if _, err := Start(context.Background(), missing); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("missing gateway binary: err = %v, want a hint to build it", err)
	}
	if _, err := Start(context.Background(), base); err == nil || !strings.Contains(err.Error(), "port "+strconv.Itoa(busy)) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("busy port: err = %v, want it to name port %d as in use", err, busy)
	}
	if _, err := os.Stat(base.DataDir); !os.IsNotExist(err) {
		t.Errorf("a refused start created %s (err %v)", base.DataDir, err)
	}
}
