package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/taxiway/taxiway/internal/identitysig"
)

// identitySigner adds the gateway's signature over the identity it vouches
// for (internal/identitysig): the user, the groups, the method, the path
// and a timestamp, under a key shared with the backend. A backend that
// requires it (taxiway core with an identity key) refuses identity headers
// from anyone without the key, such as another process on the same host.
type identitySigner struct {
	key []byte
}

// loadIdentityKeys resolves identity_key or identity_key_file. The value
// may hold several keys separated by white space: the first signs (the
// backend accepts any of its own), so keys rotate without a flag day.
func loadIdentityKeys(value, file string) (*identitySigner, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("identity_key_file: %w", err)
		}
		value = string(b)
	}
	keys, err := identitysig.ParseKeys(value)
	if err != nil {
		if file != "" {
			return nil, fmt.Errorf("identity_key_file %s: %w", file, err)
		}
		return nil, fmt.Errorf("identity_key: %w (is its environment variable set?)", err)
	}
	return &identitySigner{key: keys[0]}, nil
}

// sign sets the signature header for the identity headers just set.
func (s *identitySigner) sign(r *http.Request, user, groups string, now time.Time) {
	r.Header.Set(identitysig.Header, identitysig.Sign(s.key, now, identitysig.Request{
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, User: user, Groups: groups,
	}))
}
