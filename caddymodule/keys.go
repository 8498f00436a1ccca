package caddymodule

import (
	"bytes"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// loadEd25519PublicKey reads a PEM "PUBLIC KEY" block holding an Ed25519 key.
func loadEd25519PublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: no PEM \"PUBLIC KEY\" block", path)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	key, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: %T is not an Ed25519 public key", path, pub)
	}
	return key, nil
}

// loadHS256Secret reads the shared secret; shorter than 32 bytes is refused,
// since such a secret can be brute-forced from any token.
func loadHS256Secret(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	data = bytes.TrimRight(data, "\r\n")
	if len(data) < minHS256Secret {
		return nil, fmt.Errorf("%s: the HS256 secret has %d bytes, at least %d are required", path, len(data), minHS256Secret)
	}
	return data, nil
}
