package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Misconfiguration and an unreachable database stop a service at once with
// a message that says what is wrong, instead of a hang or a half-started
// server.
func TestServicesRefuseToStartClearly(t *testing.T) {
	shortSecret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(shortSecret, []byte("only-20-bytes-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	nowhere := "postgres:///taxiway?host=" + t.TempDir() // no server listens there
	cases := []struct {
		name string
		run  func(context.Context, []string) error
		args []string
		want string
	}{
		{"core without database", runCore, nil, "database-url"},
		{"core with bad trusted proxies", runCore, []string{"-database-url", nowhere, "-trusted-proxies", "10.0.0.0/99"}, "10.0.0.0/99"},
		{"core with page size 0", runCore, []string{"-database-url", nowhere, "-max-page-size", "0"}, "page"},
		{"core with unreachable database", runCore, []string{"-database-url", nowhere}, "connecting to the database"},
		{"tokenservice with short HS256 secret", runTokenService, []string{"-database-url", nowhere, "-alg", "HS256", "-hs256-secret-file", shortSecret}, "32"},
		{"tokenservice with unknown algorithm", runTokenService, []string{"-database-url", nowhere, "-alg", "none"}, "none"},
		{"tokenservice with ttl 0", runTokenService, []string{"-database-url", nowhere, "-ttl", "0"}, "ttl"},
		{"tokenservice with unreachable database", runTokenService, []string{"-database-url", nowhere}, "connecting to the database"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			t.Setenv("TAXIWAY_DATABASE_URL", "")
			err := c.run(ctx, c.args)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.want)) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
