// Package tokenclaims is the one definition of Taxiway's JWT contract,
// shared by the token service (which signs) and the gateway module (which
// verifies): the claim names, the algorithms and the revocation claim.
package tokenclaims

import (
	"encoding/json"

	"github.com/golang-jwt/jwt/v5"
)

// Signing algorithms of the contract, as they appear in the JOSE "alg".
const (
	AlgEdDSA = "EdDSA"
	AlgHS256 = "HS256"
)

// Defaults of the iss and aud claims.
const (
	DefaultIssuer   = "taxiway"
	DefaultAudience = "taxii"
)

// Claims are the claims a Taxiway token carries: iss, aud, sub, iat, nbf,
// exp and jti (jwt.RegisteredClaims), the account's groups, and the
// account's version at issue time.
//
// AccountVersion grows whenever an admin changes the account in a way that
// must void its tokens (disable, delete, password, groups, "revoke all");
// the token service's revocation feed publishes, per account, the lowest
// version still valid. An integer rather than a time, so that revocation
// does not depend on the token service's clock agreeing with Postgres' to
// the second. Tokens without it (issued elsewhere) count as version 0.
type Claims struct {
	jwt.RegisteredClaims
	Groups         []string `json:"groups,omitempty"`
	AccountVersion int64    `json:"account_version,omitempty"`
}

// MarshalJSON writes a single audience as a plain string ("aud": "taxii"),
// as the contract documents, rather than golang-jwt's one-element array.
// Verifiers accept either form.
func (c Claims) MarshalJSON() ([]byte, error) {
	type plain Claims // without this method
	if len(c.Audience) != 1 {
		return json.Marshal(plain(c))
	}
	return json.Marshal(struct {
		plain
		Audience string `json:"aud"`
	}{plain(c), c.Audience[0]})
}

// Method returns the golang-jwt signing method of alg, or nil for an
// algorithm outside the contract.
func Method(alg string) jwt.SigningMethod {
	switch alg {
	case AlgEdDSA:
		return jwt.SigningMethodEdDSA
	case AlgHS256:
		return jwt.SigningMethodHS256
	}
	return nil
}
