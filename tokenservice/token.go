package tokenservice

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/taxiway/taxiway/internal/tokenclaims"
)

// Claims are the JWT claims the service issues; the gateway module verifies
// the same type (internal/tokenclaims holds the contract).
type Claims = tokenclaims.Claims

// signer signs claims with the configured algorithm, through golang-jwt,
// the library the gateway verifies with.
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

// newClaims fills in the time and identity claims for a token issued now
// to an account at version.
func newClaims(cfg Config, username string, groups []string, version int64, now time.Time) (Claims, error) {
	jti := make([]byte, 16) // 128 bits
	if _, err := rand.Read(jti); err != nil {
		return Claims{}, fmt.Errorf("reading a token id: %w", err)
	}
	iat := time.Unix(now.Unix(), 0)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    cfg.Issuer,
			Subject:   username,
			IssuedAt:  jwt.NewNumericDate(iat),
			NotBefore: jwt.NewNumericDate(iat),
			ExpiresAt: jwt.NewNumericDate(iat.Add(cfg.TTL)),
			ID:        base64.RawURLEncoding.EncodeToString(jti),
		},
		Groups:         groups,
		AccountVersion: version,
	}
	if cfg.Audience != "" {
		c.Audience = jwt.ClaimStrings{cfg.Audience}
	}
	return c, nil
}

// sign returns the compact JWS of c, with kid and typ in the header.
func (s signer) sign(c Claims) (string, error) {
	method := tokenclaims.Method(s.alg)
	if method == nil {
		return "", fmt.Errorf("unknown algorithm %q", s.alg)
	}
	t := jwt.NewWithClaims(method, c)
	t.Header["kid"] = s.kid
	var key any = s.secret
	if s.alg == tokenclaims.AlgEdDSA {
		key = s.priv
	}
	token, err := t.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("signing a token: %w", err)
	}
	return token, nil
}
