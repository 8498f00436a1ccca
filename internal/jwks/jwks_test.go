package jwks

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
)

func TestRoundTripAndRefusals(t *testing.T) {
	a, _, _ := ed25519.GenerateKey(rand.Reader)
	b, _, _ := ed25519.GenerateKey(rand.Reader)
	got, err := Parse(Marshal([]Key{{"new", a}, {"old", b}}))
	if err != nil || len(got) != 2 || !got["new"].Equal(a) || !got["old"].Equal(b) {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	if string(Marshal(nil)) != `{"keys":[]}` {
		t.Errorf("empty set = %s, want an empty keys list", Marshal(nil))
	}

	rsa := `{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}`
	enc := `{"kty":"OKP","crv":"Ed25519","kid":"e","use":"enc","x":"` + strings.Repeat("A", 43) + `"}`
	good := string(Marshal([]Key{{"k", a}}))
	good = good[len(`{"keys":[`) : len(good)-2]
	if keys, err := Parse([]byte(`{"keys":[` + rsa + `,` + enc + `,` + good + `]}`)); err != nil || len(keys) != 1 || keys["k"] == nil {
		t.Errorf("other key types and uses should be skipped: %v, %v", keys, err)
	}
	for name, body := range map[string]string{
		"not JSON":     `{"keys":`,
		"no key":       `{"keys":[]}`,
		"only RSA":     `{"keys":[` + rsa + `]}`,
		"short x":      `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"s","x":"AAAA"}]}`,
		"repeated kid": `{"keys":[` + good + `,` + good + `]}`,
	} {
		if keys, err := Parse([]byte(body)); err == nil {
			t.Errorf("%s: accepted as %v", name, keys)
		}
	}
}
