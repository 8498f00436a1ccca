// Package jwks is the wire format between the token service, which
// publishes its Ed25519 public keys as an RFC 7517 key set (RFC 8037 OKP
// keys), and the gateway, which reads it. One codec keeps the two sides in
// agreement.
package jwks

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// Key is one published signature key.
type Key struct {
	ID     string
	Public ed25519.PublicKey
}

// jwk is the part of an RFC 7517 key that matters for Ed25519.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

type set struct {
	Keys []jwk `json:"keys"`
}

// Marshal writes keys, in the order given, as a JWK Set. It only ever sees
// public halves.
func Marshal(keys []Key) []byte {
	s := set{Keys: []jwk{}}
	for _, k := range keys {
		s.Keys = append(s.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Public),
			Kid: k.ID, Alg: "EdDSA", Use: "sig"})
	}
	b, _ := json.Marshal(s) // plain strings cannot fail
	return b
}

// Parse returns the usable Ed25519 signature keys of a key set by kid. Keys
// of other types or uses are skipped, not errors: a token service may
// publish more than a gateway needs. A malformed Ed25519 key, a repeated
// kid or a set with no usable key is an error.
func Parse(data []byte) (map[string]ed25519.PublicKey, error) {
	var s set
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decoding key set: %w", err)
	}
	keys := make(map[string]ed25519.PublicKey, len(s.Keys))
	for _, k := range s.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" {
			continue
		}
		if (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "EdDSA") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key %q: x is not a base64url Ed25519 public key", k.Kid)
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("key id %q appears twice", k.Kid)
		}
		keys[k.Kid] = ed25519.PublicKey(x)
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable Ed25519 signature key in the set")
	}
	return keys, nil
}
