package tokenclaims

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestClaimsRoundTrip: a single audience is written as a string, and what
// the token service signs parses back into the same claims.
func TestClaimsRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: DefaultIssuer, Subject: "alice", Audience: jwt.ClaimStrings{DefaultAudience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)), ID: "j1",
		},
		Groups: []string{"analysts"}, AccountVersion: 42,
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"aud":"taxii"`, `"account_version":42`, `"groups":["analysts"]`, `"iat":1800000000`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tok, err := jwt.NewWithClaims(Method(AlgEdDSA), c).SignedString(priv)
	if err != nil {
		t.Fatal(err)
	}
	var got Claims
	_, err = jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithAudience(DefaultAudience)).
		ParseWithClaims(tok, &got, func(*jwt.Token) (any, error) { return pub, nil })
	if err != nil || got.AccountVersion != 42 || got.Subject != "alice" || got.ID != "j1" {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	if Method("none") != nil || Method(AlgHS256) != jwt.SigningMethodHS256 {
		t.Error("Method maps algorithms outside the contract")
	}
}
