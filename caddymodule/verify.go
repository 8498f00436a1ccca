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

// verify checks raw and returns the identity it carries. Keys are tried
// by kid in the JWKS, then public_key_file. A token whose kid the JWKS does
// not hold, and that the static key does not verify either, triggers one
// rate-limited JWKS refresh and a second try: a freshly rotated key is
// found at once even when a static key is configured too, while tokens of
// the static key cause no refresh.
func (v *verifier) verify(ctx context.Context, raw string) (identity, error) {
	id, usedStatic, err := v.verifyOnce(raw)
	retry := errors.Is(err, errUnknownKid) || errors.Is(err, errNoKeys) ||
		(usedStatic && errors.Is(err, jwt.ErrTokenSignatureInvalid))
	if err != nil && retry && v.jwks != nil && v.jwks.refreshForUnknownKid(ctx) {
		id, _, err = v.verifyOnce(raw)
	}
	return id, err
}

// verifyOnce checks raw with the keys at hand; usedStatic says the static
// key was the one tried.
func (v *verifier) verifyOnce(raw string) (id identity, usedStatic bool, err error) {
	var c claims
	keyFunc := func(t *jwt.Token) (any, error) {
		k, static, err := v.keyFor(t)
		usedStatic = static
		return k, err
	}
	if _, err := v.parser.ParseWithClaims(raw, &c, keyFunc); err != nil {
		return identity{}, usedStatic, err
	}
	id, err = v.identityOf(&c)
	return id, usedStatic, err
}

// identityOf applies the checks golang-jwt does not make and returns the
// identity the claims carry.
func (v *verifier) identityOf(c *claims) (identity, error) {
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

// keyFor picks the verification key by algorithm and kid, and says whether
// it is the static key. It checks the key type against the algorithm
// itself, so that a key can never be used with another algorithm's method
// (for example the public key as an HMAC secret). jku and x5u are ignored:
// keys come only from the configuration.
func (v *verifier) keyFor(t *jwt.Token) (any, bool, error) {
	if typ, ok := t.Header["typ"]; ok {
		if s, _ := typ.(string); !strings.EqualFold(s, "JWT") {
			return nil, false, errors.New("token typ is not JWT")
		}
	}
	switch t.Method.(type) {
	case *jwt.SigningMethodEd25519:
		kid, _ := t.Header["kid"].(string)
		if v.jwks != nil {
			if k, ok := v.jwks.key(kid); ok {
				return k, false, nil
			}
		}
		if v.staticEd != nil {
			return v.staticEd, true, nil
		}
		if v.jwks != nil && v.jwks.loaded() {
			return nil, false, errUnknownKid
		}
		return nil, false, errNoKeys
	case *jwt.SigningMethodHMAC:
		if t.Method.Alg() == tokenclaims.AlgHS256 && v.hsSecret != nil {
			return v.hsSecret, false, nil
		}
	}
	return nil, false, fmt.Errorf("algorithm %q is not accepted", t.Method.Alg())
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
