package caddymodule

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/taxiway/taxiway/internal/tokenclaims"
)

// Verification failures that are not the client's fault: the gateway has
// no key to check the token with yet (JWKS not loaded).
var errNoKeys = errors.New("no verification keys available")

// errUnknownKid is returned by the key function when the token names a key
// id the JWKS does not (yet) hold.
var errUnknownKid = errors.New("unknown key id")

// claims are the JWT claims of the token contract, as the token service
// signs them.
type claims = tokenclaims.Claims

// verifier checks tokens: signature with a configured algorithm and key,
// exp required, iss, aud, nbf, iat, leeway and a maximum lifetime.
type verifier struct {
	issuer      string
	audience    string
	algorithms  []string
	leeway      time.Duration
	maxLifetime time.Duration
	jwks        *jwksSource       // nil without jwks_url
	staticEd    ed25519.PublicKey // nil without public_key_file
	hsSecret    []byte            // nil without HS256
	now         func() time.Time  // for tests; time.Now otherwise

	parser *jwt.Parser
}

func (v *verifier) init() {
	if v.now == nil {
		v.now = time.Now
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(v.algorithms),
		jwt.WithIssuer(v.issuer),
		jwt.WithAudience(v.audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(v.now),
	)
}

// verify checks raw and returns the identity it carries. A token naming a
// key id the JWKS does not hold triggers one rate-limited JWKS refresh and
// a second try; only that second try may fall back to public_key_file, so
// a freshly rotated key is found even when a static key is configured too.
func (v *verifier) verify(ctx context.Context, raw string) (identity, error) {
	id, err := v.verifyOnce(raw, v.jwks == nil)
	if err != nil && (errors.Is(err, errUnknownKid) || errors.Is(err, errNoKeys)) && v.jwks != nil {
		v.jwks.refreshForUnknownKid(ctx)
		id, err = v.verifyOnce(raw, true)
	}
	return id, err
}

func (v *verifier) verifyOnce(raw string, allowStatic bool) (identity, error) {
	var c claims
	keyFunc := func(t *jwt.Token) (any, error) { return v.keyFor(t, allowStatic) }
	if _, err := v.parser.ParseWithClaims(raw, &c, keyFunc); err != nil {
		return identity{}, err
	}
	now := v.now()
	// Bound the lifetime: a stolen long-lived token, or one minted with a
	// leaked key, is worth less.
	start := now
	if c.IssuedAt != nil {
		start = c.IssuedAt.Time
	}
	if c.ExpiresAt.Sub(start) > v.maxLifetime {
		return identity{}, fmt.Errorf("token lifetime exceeds max_lifetime %s", v.maxLifetime)
	}
	if !headerSafe(c.Subject) {
		return identity{}, errors.New("token has no usable sub")
	}
	for _, g := range c.Groups {
		if !headerSafe(g) || strings.Contains(g, ",") {
			return identity{}, errors.New("token has an unusable group name")
		}
	}
	return identity{
		User:    c.Subject,
		Groups:  strings.Join(c.Groups, ","),
		Expiry:  c.ExpiresAt.Time,
		JTI:     c.ID,
		Version: c.AccountVersion,
	}, nil
}

// keyFor picks the verification key by algorithm and kid. It checks the key
// type against the algorithm itself, so that a key can never be used with
// another algorithm's method (for example the public key as an HMAC secret).
// jku and x5u are ignored: keys come only from the configuration. The static
// Ed25519 key is used only when allowStatic is set (see verify).
func (v *verifier) keyFor(t *jwt.Token, allowStatic bool) (any, error) {
	if typ, ok := t.Header["typ"]; ok {
		if s, _ := typ.(string); !strings.EqualFold(s, "JWT") {
			return nil, errors.New("token typ is not JWT")
		}
	}
	switch t.Method.(type) {
	case *jwt.SigningMethodEd25519:
		kid, _ := t.Header["kid"].(string)
		if v.jwks != nil {
			if k, ok := v.jwks.key(kid); ok {
				return k, nil
			}
		}
		if v.staticEd != nil && allowStatic {
			return v.staticEd, nil
		}
		if v.jwks != nil && v.jwks.loaded() {
			return nil, errUnknownKid
		}
		return nil, errNoKeys
	case *jwt.SigningMethodHMAC:
		if t.Method.Alg() == tokenclaims.AlgHS256 && v.hsSecret != nil {
			return v.hsSecret, nil
		}
	}
	return nil, fmt.Errorf("algorithm %q is not accepted", t.Method.Alg())
}

// headerSafe reports whether s is non-empty UTF-8 without control
// characters or surrounding spaces, so it reaches the backend unchanged.
func headerSafe(s string) bool {
	if s == "" || s[0] == ' ' || s[len(s)-1] == ' ' || !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}
