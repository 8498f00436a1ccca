package tokenservice

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestNewRefusesMisconfiguration(t *testing.T) {
	pool := migratedPool(t)
	cases := map[string]func(*Config){
		"short HS256 secret":     func(c *Config) { c.Algorithm = AlgHS256; c.HS256Secret = []byte("0123456789abcdef0123456789abcde") },
		"HS256 without secret":   func(c *Config) { c.Algorithm = AlgHS256 },
		"secret with EdDSA":      func(c *Config) { c.HS256Secret = make([]byte, 32) },
		"unknown algorithm":      func(c *Config) { c.Algorithm = "none" },
		"RS256":                  func(c *Config) { c.Algorithm = "RS256" },
		"zero TTL":               func(c *Config) { c.TTL = 0 },
		"negative TTL":           func(c *Config) { c.TTL = -time.Hour },
		"TTL over 24h":           func(c *Config) { c.TTL = 25 * time.Hour },
		"fractional TTL":         func(c *Config) { c.TTL = 1500 * time.Millisecond },
		"short KEK":              func(c *Config) { c.KeyEncryptionKey = make([]byte, 16) },
		"argon2 too cheap":       func(c *Config) { c.PasswordHash = Argon2Params{Memory: 1, Time: 1, Threads: 1} },
		"negative hash slots":    func(c *Config) { c.MaxConcurrentHashes = -1 },
		"negative rate limit":    func(c *Config) { c.RateLimit.PerPair = -1 },
		"sub-second rate window": func(c *Config) { c.RateLimit.Window = time.Millisecond },
	}
	for name, adjust := range cases {
		cfg := testConfig()
		adjust(&cfg)
		if _, err := New(context.Background(), pool, cfg, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	// A 32-byte secret is enough.
	cfg := testConfig()
	cfg.Algorithm, cfg.HS256Secret = AlgHS256, []byte("0123456789abcdef0123456789abcdef")
	if _, err := New(context.Background(), pool, cfg, nil); err != nil {
		t.Errorf("32-byte HS256 secret refused: %v", err)
	}
}

func TestNewRefusesUnmigratedDatabase(t *testing.T) {
	pool := migratedPool(t)
	if _, err := pool.Exec(context.Background(), "DELETE FROM schema_migrations WHERE component = $1", Component); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), pool, testConfig(), nil)
	if err == nil || !strings.Contains(err.Error(), "migrate") {
		t.Errorf("New on an unmigrated schema: %v, want an error naming migrate", err)
	}
}

func TestDefaultConfigIsSound(t *testing.T) {
	cfg, err := DefaultConfig().normalize()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TTL != time.Hour || cfg.Algorithm != AlgEdDSA || cfg.Issuer != "taxiway" || cfg.Audience != "taxii" {
		t.Errorf("defaults %+v", cfg)
	}
	if cfg.MaxConcurrentHashes < 1 || cfg.RateLimit.PerPair < 1 {
		t.Errorf("bounds not filled in: %+v", cfg)
	}
}
