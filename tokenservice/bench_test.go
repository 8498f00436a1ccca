package tokenservice

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"
)

// BenchmarkSignEdDSA is the cost of signing one token with Ed25519.
func BenchmarkSignEdDSA(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	sg := signer{alg: AlgEdDSA, kid: "bench", priv: priv}
	benchmarkSign(b, sg)
}

// BenchmarkSignHS256 is the cost of signing one token with HMAC-SHA256.
func BenchmarkSignHS256(b *testing.B) {
	sg := signer{alg: AlgHS256, kid: "bench", secret: make([]byte, 32)}
	benchmarkSign(b, sg)
}

func benchmarkSign(b *testing.B, sg signer) {
	cfg := DefaultConfig()
	for b.Loop() {
		c, err := newClaims(cfg, "alice", []string{"analysts", "admins"}, 1, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sg.sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyArgon2idDefault is one login's password check at the
// default cost.
func BenchmarkVerifyArgon2idDefault(b *testing.B) {
	h, err := HashPassword("correct horse battery staple", DefaultArgon2Params())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, err := VerifyPassword(h, "correct horse battery staple"); !ok || err != nil {
			b.Fatal("verify failed", err)
		}
	}
}
