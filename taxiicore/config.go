package taxiicore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/taxiway/taxiway/internal/identitysig"
	"github.com/taxiway/taxiway/internal/trustedproxy"
)

// Config tunes the core. The zero value is not usable (MaxPageSize must be
// set); start from DefaultConfig.
type Config struct {
	// TrustedProxies is a comma-separated list of CIDRs or addresses whose
	// identity headers are believed (normally the gateway). Identity headers
	// from any other peer get 401; requests without them are anonymous (see
	// AnonymousPrincipal). Empty means loopback
	// only (127.0.0.0/8,::1/128).
	TrustedProxies string

	// UserHeader carries the authenticated user name set by the gateway.
	// Empty means X-Authenticated-User.
	UserHeader string

	// GroupsHeader carries the user's groups, comma-separated. Empty means
	// X-Authenticated-Groups.
	GroupsHeader string

	// AdminGroup names the group whose members may read and write every
	// collection. Empty means taxiway-admin.
	AdminGroup string

	// MaxPageSize caps how many objects, manifest records or versions one
	// response holds; it is also the page size when the client sends no
	// limit. Must be at least 1.
	MaxPageSize int

	// MaxPageBytes caps the objects of one Get Objects page by their size
	// too, so that a request's memory stays bounded however large the
	// objects: a page always holds its first object, and further ones while
	// their total stays within the cap; a page cut by it has more: true
	// and a next. 0 means DefaultMaxPageBytes.
	MaxPageBytes int64

	// CursorKey, when set, signs paging cursors instead of the key the core
	// generates once and keeps in Postgres. At least 32 bytes; every replica
	// must use the same value.
	CursorKey string

	// IdentityKey, when set, makes the core require the gateway's signature
	// (X-Authenticated-Signature, see internal/identitysig) on the identity
	// headers, so that a process that can reach the core without being the
	// gateway cannot claim an identity. One or more keys of at least 32
	// bytes separated by white space, shared with the gateway; any of them
	// verifies. Empty: the identity headers are believed from any trusted
	// proxy.
	IdentityKey string

	// StatusRetention is how long Add Objects statuses stay readable; older
	// ones are deleted in the background, hourly. At least 24h (the TAXII
	// recommendation, 4.3); 0 keeps them forever.
	StatusRetention time.Duration
}

// DefaultMaxPageBytes is the page byte cap when none is given: 4 MiB, some
// thousands of ordinary STIX objects, so only pages of large objects are cut.
const DefaultMaxPageBytes = 4 << 20

// DefaultConfig is the configuration `taxiway core` starts from.
func DefaultConfig() Config {
	return Config{
		TrustedProxies:  trustedproxy.Default,
		UserHeader:      "X-Authenticated-User",
		GroupsHeader:    "X-Authenticated-Groups",
		AdminGroup:      "taxiway-admin",
		MaxPageSize:     1000,
		MaxPageBytes:    DefaultMaxPageBytes,
		StatusRetention: 7 * 24 * time.Hour,
	}
}

// checked is a validated Config with defaults filled in.
type checked struct {
	Config
	proxies      trustedproxy.Set
	identityKeys [][]byte
}

// Validate reports the first problem with c, so that a command can refuse a
// bad configuration before it connects to anything. New checks it again.
func (c Config) Validate() error {
	_, err := c.check()
	return err
}

func (c Config) check() (checked, error) {
	def := DefaultConfig()
	if strings.TrimSpace(c.TrustedProxies) == "" {
		c.TrustedProxies = def.TrustedProxies
	}
	set, err := trustedproxy.Parse(c.TrustedProxies)
	if err != nil {
		return checked{}, fmt.Errorf("trusted proxies: %w", err)
	}
	if set.String() == "" {
		return checked{}, errors.New("trusted proxies: no network listed")
	}
	for _, h := range []struct {
		name string
		val  *string
		def  string
	}{{"user header", &c.UserHeader, def.UserHeader}, {"groups header", &c.GroupsHeader, def.GroupsHeader}} {
		if *h.val == "" {
			*h.val = h.def
		}
		if !httpguts.ValidHeaderFieldName(*h.val) {
			return checked{}, fmt.Errorf("%s %q is not a valid HTTP header name", h.name, *h.val)
		}
	}
	if strings.EqualFold(c.UserHeader, c.GroupsHeader) {
		return checked{}, errors.New("user header and groups header must differ")
	}
	if c.AdminGroup == "" {
		c.AdminGroup = def.AdminGroup
	}
	if strings.Contains(c.AdminGroup, ",") {
		return checked{}, fmt.Errorf("admin group %q must not contain a comma", c.AdminGroup)
	}
	if c.MaxPageSize < 1 {
		return checked{}, fmt.Errorf("max page size must be at least 1 (got %d)", c.MaxPageSize)
	}
	if c.MaxPageBytes == 0 {
		c.MaxPageBytes = DefaultMaxPageBytes
	}
	if c.MaxPageBytes < 1 {
		return checked{}, fmt.Errorf("max page bytes must be positive (got %d)", c.MaxPageBytes)
	}
	if c.StatusRetention != 0 && c.StatusRetention < minStatusRetention {
		return checked{}, fmt.Errorf("status retention must be 0 (forever) or at least %s (got %s)", minStatusRetention, c.StatusRetention)
	}
	if c.CursorKey != "" && len(c.CursorKey) < 32 {
		return checked{}, fmt.Errorf("cursor key must be at least 32 bytes (got %d)", len(c.CursorKey))
	}
	var keys [][]byte
	if strings.TrimSpace(c.IdentityKey) != "" {
		if keys, err = identitysig.ParseKeys(c.IdentityKey); err != nil {
			return checked{}, fmt.Errorf("identity key: %w", err)
		}
	}
	return checked{Config: c, proxies: set, identityKeys: keys}, nil
}
