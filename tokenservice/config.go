package tokenservice

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/taxiway/taxiway/internal/tokenclaims"
	"github.com/taxiway/taxiway/internal/trustedproxy"
)

// Signing algorithms the service can issue tokens with.
const (
	AlgEdDSA = tokenclaims.AlgEdDSA
	AlgHS256 = tokenclaims.AlgHS256
)

// MaxTTL bounds token lifetimes: a stolen Bearer token stays valid until
// exp, so lifetimes are kept short.
const MaxTTL = 24 * time.Hour

// MinHS256SecretLen is the shortest HS256 secret accepted (RFC 7518 3.2:
// a key at least as long as the hash output).
const MinHS256SecretLen = 32

// Config configures the token service. Start from DefaultConfig; New
// refuses a configuration that would be unsafe.
type Config struct {
	// Issuer is the iss claim ("taxiway" by default); left out when empty.
	Issuer string
	// Audience is the aud claim ("taxii" by default); left out when empty.
	Audience string
	// TTL is every token's lifetime: exp = iat + TTL, whole seconds,
	// greater than zero and at most 24h. The default is 3600 seconds.
	TTL time.Duration
	// Algorithm signs tokens: "EdDSA" (default; Ed25519 keys kept in
	// Postgres and published as a JWKS) or "HS256" (a shared secret, as
	// OpenTAXII does; nothing is published).
	Algorithm string
	// HS256Secret is the shared secret for HS256, at least 32 bytes.
	// Read it from a file; never pass it on a command line.
	HS256Secret []byte
	// KeyEncryptionKey, when set (32 bytes), seals Ed25519 private keys
	// with AES-256-GCM in Postgres, so a database dump alone cannot sign
	// tokens. Keys stored unsealed stay readable; keys sealed with it
	// need it to sign.
	KeyEncryptionKey []byte
	// TrustedProxies are the peers (the gateway) whose X-Forwarded-For is
	// believed for the client address that rate limits count against.
	// The zero Set trusts no one: the TCP peer is the client.
	TrustedProxies trustedproxy.Set
	// PasswordHash is the argon2id cost of new hashes. Logins re-hash a
	// password stored at another cost or in another format.
	PasswordHash Argon2Params
	// MaxConcurrentHashes bounds password hashes running at once (each
	// holds PasswordHash.Memory); 0 means the number of CPUs.
	MaxConcurrentHashes int
	// HashQueueWait is how long a login waits for a free hash slot before
	// getting 503 with Retry-After; 0 means do not wait.
	HashQueueWait time.Duration
	// RateLimit bounds failed logins.
	RateLimit RateLimit
	// KeyRefresh is how often a replica rereads the signing keys, so that
	// a rotation made elsewhere takes effect; default 30s.
	KeyRefresh time.Duration
}

// RateLimit bounds failed logins in fixed windows kept in Postgres, shared
// by every replica.
//
// Failures count per client address and per (username, client address)
// pair, never per username alone: an attacker failing against a victim's
// username from elsewhere exhausts their own address and pair, while the
// victim keeps logging in from theirs. The price is that a guesser with
// many addresses gets PerPair guesses per address per window at one
// username; the argon2id cost and MaxConcurrentHashes bound what that buys.
// IPv6 clients count per /64, since one host usually owns a whole /64.
type RateLimit struct {
	// Window is the length of a counting window; default 15 minutes.
	Window time.Duration
	// PerAddress is the number of failures allowed from one client
	// address per window, whatever the usernames; default 100.
	PerAddress int
	// PerPair is the number of failures allowed for one username from one
	// client address per window; default 10.
	PerPair int
}

// DefaultConfig is the configuration the taxiway tokenservice command
// starts from.
func DefaultConfig() Config {
	return Config{
		Issuer:         tokenclaims.DefaultIssuer,
		Audience:       tokenclaims.DefaultAudience,
		TTL:            time.Hour,
		Algorithm:      AlgEdDSA,
		PasswordHash:   DefaultArgon2Params(),
		HashQueueWait:  2 * time.Second,
		RateLimit:      RateLimit{Window: 15 * time.Minute, PerAddress: 100, PerPair: 10},
		KeyRefresh:     30 * time.Second,
		TrustedProxies: mustParse(trustedproxy.Default),
	}
}

func mustParse(list string) trustedproxy.Set {
	s, err := trustedproxy.Parse(list)
	if err != nil {
		panic(err)
	}
	return s
}

// Validate refuses a configuration New would refuse, without a database,
// so that commands fail on bad settings before connecting.
func (c Config) Validate() error {
	_, err := c.normalize()
	return err
}

// normalize fills unset fields with defaults and refuses unsafe values.
func (c Config) normalize() (Config, error) {
	def := DefaultConfig()
	if c.Algorithm == "" {
		c.Algorithm = AlgEdDSA
	}
	switch c.Algorithm {
	case AlgEdDSA:
		if len(c.HS256Secret) > 0 {
			return c, errors.New("an HS256 secret is set but the algorithm is EdDSA: remove the secret or choose HS256")
		}
	case AlgHS256:
		if len(c.HS256Secret) < MinHS256SecretLen {
			return c, fmt.Errorf("HS256 needs a secret of at least %d bytes, got %d", MinHS256SecretLen, len(c.HS256Secret))
		}
	default:
		return c, fmt.Errorf("unknown signing algorithm %q (want EdDSA or HS256)", c.Algorithm)
	}
	if len(c.KeyEncryptionKey) != 0 && len(c.KeyEncryptionKey) != 32 {
		return c, fmt.Errorf("the key encryption key must be 32 bytes, got %d", len(c.KeyEncryptionKey))
	}
	if c.TTL <= 0 || c.TTL > MaxTTL {
		return c, fmt.Errorf("token TTL %s out of range (more than 0, at most %s)", c.TTL, MaxTTL)
	}
	if c.TTL%time.Second != 0 {
		return c, fmt.Errorf("token TTL %s must be whole seconds", c.TTL)
	}
	if c.PasswordHash == (Argon2Params{}) {
		c.PasswordHash = def.PasswordHash
	}
	if err := c.PasswordHash.validate(); err != nil {
		return c, fmt.Errorf("password hash cost: %w", err)
	}
	if c.MaxConcurrentHashes == 0 {
		c.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	if c.MaxConcurrentHashes < 0 {
		return c, fmt.Errorf("max concurrent hashes %d must be positive", c.MaxConcurrentHashes)
	}
	if c.HashQueueWait < 0 {
		return c, fmt.Errorf("hash queue wait %s must not be negative", c.HashQueueWait)
	}
	rl := &c.RateLimit
	if rl.Window == 0 {
		rl.Window = def.RateLimit.Window
	}
	if rl.PerAddress == 0 {
		rl.PerAddress = def.RateLimit.PerAddress
	}
	if rl.PerPair == 0 {
		rl.PerPair = def.RateLimit.PerPair
	}
	if rl.Window < time.Second || rl.PerAddress < 0 || rl.PerPair < 0 {
		return c, fmt.Errorf("rate limit: window %s must be at least 1s and limits positive", rl.Window)
	}
	if c.KeyRefresh == 0 {
		c.KeyRefresh = def.KeyRefresh
	}
	if c.KeyRefresh < 0 {
		return c, fmt.Errorf("key refresh %s must be positive", c.KeyRefresh)
	}
	return c, nil
}
