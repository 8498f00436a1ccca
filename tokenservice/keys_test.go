package tokenservice

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"
)

func TestKeyRotationKeepsOldKeyPublished(t *testing.T) {
	ts := startService(t, nil, func(c *Config) { c.KeyRefresh = time.Millisecond })
	ctx := context.Background()
	ts.addAccount(t, "alice", "pw")
	oldToken := tokenFrom(t, ts.login(t, "alice", "pw", ""))
	oldHeader, _ := verifyEdDSA(t, oldToken, ts.fetchJWKS(t, "/.well-known/jwks.json"))

	newKid, err := RotateSigningKey(ctx, ts.pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldHeader["kid"] {
		t.Fatal("rotation kept the kid")
	}
	time.Sleep(5 * time.Millisecond) // past KeyRefresh
	newToken := tokenFrom(t, ts.login(t, "alice", "pw", ""))
	keys := ts.fetchJWKS(t, "/.well-known/jwks.json")
	if len(keys) != 2 {
		t.Fatalf("JWKS after rotation has %d keys, want 2", len(keys))
	}
	newHeader, _ := verifyEdDSA(t, newToken, keys)
	if newHeader["kid"] != newKid {
		t.Errorf("new token signed with %v, want %s", newHeader["kid"], newKid)
	}
	// The token signed before the rotation still verifies.
	verifyEdDSA(t, oldToken, keys)

	// The retired private key is erased; only its public half remains.
	var priv []byte
	if err := ts.pool.QueryRow(ctx, "SELECT private_key FROM token_signing_keys WHERE kid = $1", oldHeader["kid"]).Scan(&priv); err != nil || len(priv) != 0 {
		t.Errorf("retired private key kept (%d bytes, %v)", len(priv), err)
	}

	// Once every token the old key signed has expired, it leaves the JWKS.
	if _, err := ts.pool.Exec(ctx, "UPDATE token_signing_keys SET retired_at = now() - interval '2 hours' WHERE kid = $1", oldHeader["kid"]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	keys = ts.fetchJWKS(t, "/.well-known/jwks.json")
	if _, still := keys[oldHeader["kid"].(string)]; still || len(keys) != 1 {
		t.Errorf("old key still published %v after TTL+refresh+leeway", keys)
	}
}

func TestConcurrentFirstStartMakesOneKey(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	kids := make([]string, 6)
	errs := make([]error, 6)
	for i := range kids {
		wg.Go(func() { kids[i], errs[i] = EnsureSigningKey(ctx, pool, nil) })
	}
	wg.Wait()
	for i := range kids {
		if errs[i] != nil || kids[i] != kids[0] {
			t.Fatalf("replica %d: kid %q err %v, want %q", i, kids[i], errs[i], kids[0])
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM token_signing_keys").Scan(&n); err != nil || n != 1 {
		t.Errorf("%d keys after concurrent starts, want 1", n)
	}
}

func TestSealedSigningKeys(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	ts := startService(t, pool, func(c *Config) { c.KeyEncryptionKey = kek })
	ts.addAccount(t, "alice", "pw")
	token := tokenFrom(t, ts.login(t, "alice", "pw", ""))
	verifyEdDSA(t, token, ts.fetchJWKS(t, "/.well-known/jwks.json"))

	var stored []byte
	var sealed bool
	if err := pool.QueryRow(ctx, "SELECT private_key, encrypted FROM token_signing_keys WHERE retired_at IS NULL").Scan(&stored, &sealed); err != nil {
		t.Fatal(err)
	}
	if !sealed || len(stored) == 32 {
		t.Errorf("key stored unsealed (%d bytes, encrypted=%v)", len(stored), sealed)
	}
	// Without the key encryption key, or with another, the service refuses to start.
	for name, k := range map[string][]byte{"none": nil, "wrong": bytes.Repeat([]byte{1}, 32)} {
		cfg := testConfig()
		cfg.KeyEncryptionKey = k
		if _, err := New(ctx, pool, cfg, nil); err == nil {
			t.Errorf("%s key encryption key: New succeeded on a sealed key", name)
		}
	}
}
