package tokenservice

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Claims are the JWT claims the service issues, the contract with the
// gateway (caddymodule verifies them; README's security model lists them).
type Claims struct {
	Issuer    string   `json:"iss,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Audience  string   `json:"aud,omitempty"`
	Groups    []string `json:"groups,omitempty"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ExpiresAt int64    `json:"exp"`
	ID        string   `json:"jti"`
}

// header is the JOSE header, fields in a fixed order.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

// signer signs claims with the configured algorithm.
type signer struct {
	alg    string
	kid    string             // set for HS256; EdDSA takes it from the key
	secret []byte             // HS256
	priv   ed25519.PrivateKey // EdDSA
}

// hs256Kid names an HS256 secret without revealing it: a truncated hash
// under a fixed label, so verifiers holding several secrets can pick one.
func hs256Kid(secret []byte) string {
	sum := sha256.Sum256(append([]byte("taxiway hs256 kid\x00"), secret...))
	return base64.RawURLEncoding.EncodeToString(sum[:9])
}

// newClaims fills in the time and identity claims for a token issued now.
func newClaims(cfg Config, username string, groups []string, now time.Time) (Claims, error) {
	jti := make([]byte, 16) // 128 bits
	if _, err := rand.Read(jti); err != nil {
		return Claims{}, fmt.Errorf("reading a token id: %w", err)
	}
	iat := now.Unix()
	return Claims{
		Issuer:    cfg.Issuer,
		Subject:   username,
		Audience:  cfg.Audience,
		Groups:    groups,
		IssuedAt:  iat,
		NotBefore: iat,
		ExpiresAt: iat + int64(cfg.TTL/time.Second),
		ID:        base64.RawURLEncoding.EncodeToString(jti),
	}, nil
}

// sign returns the compact JWS of c.
func (s signer) sign(c Claims) (string, error) {
	h, err := json.Marshal(header{Alg: s.alg, Kid: s.kid, Typ: "JWT"})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("encoding claims: %w", err)
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, enc.EncodedLen(len(h))+enc.EncodedLen(len(p))+90)
	buf = enc.AppendEncode(buf, h)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, p)
	var sig []byte
	switch s.alg {
	case AlgEdDSA:
		sig = ed25519.Sign(s.priv, buf)
	case AlgHS256:
		mac := hmac.New(sha256.New, s.secret)
		mac.Write(buf)
		sig = mac.Sum(nil)
	default:
		return "", fmt.Errorf("unknown algorithm %q", s.alg)
	}
	buf = append(buf, '.')
	return string(enc.AppendEncode(buf, sig)), nil
}
