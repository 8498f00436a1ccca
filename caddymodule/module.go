// Package caddymodule is Taxiway's gateway: the Caddy v2 HTTP handler
// http.handlers.taxii_auth (Caddyfile directive taxii_auth). It checks
// `Authorization: Bearer <JWT>` first, then `Basic` (exchanged for a token at
// the token service), and turns either into trusted identity headers for the
// handler that follows, usually reverse_proxy. Build it into Caddy with
//
//	xcaddy build --with github.com/taxiway/taxiway=.
package caddymodule

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/net/http/httpguts"
)

func init() {
	caddy.RegisterModule(TaxiiAuth{})
}

// Defaults and limits of the configuration.
const (
	DefaultIssuer         = "taxiway"
	DefaultAudience       = "taxii"
	DefaultUserHeader     = "X-Authenticated-User"
	DefaultGroupsHeader   = "X-Authenticated-Groups"
	DefaultMaxLifetime    = 24 * time.Hour
	DefaultCacheTTL       = 5 * time.Minute
	DefaultCacheSize      = 10000
	DefaultMaxHeaderBytes = 8192

	maxLeeway         = 60 * time.Second
	maxCacheTTL       = time.Hour
	maxCacheSize      = 10_000_000
	minMaxHeaderBytes = 256
	maxMaxHeaderBytes = 1 << 20
	minHS256Secret    = 32
)

// Algorithm names accepted in the algorithms option.
const (
	AlgEdDSA = "EdDSA"
	AlgHS256 = "HS256"
)

// TaxiiAuth authenticates TAXII clients in a fixed order: a Bearer JWT, then
// HTTP Basic credentials (exchanged at the token service for a JWT, which is
// then verified like a Bearer token). Anything else gets 401 with a TAXII
// error body and both challenges. On success it deletes every client-sent
// variant of the identity headers, sets them from the verified token, drops
// the Authorization header and calls the next handler. The placeholder
// {http.auth.user.id} then holds the user, so access logs show it.
type TaxiiAuth struct {
	// URL of the token service's JSON Web Key Set (RFC 7517), for example
	// http://127.0.0.1:9020/.well-known/jwks.json. Fetched at start (retried
	// in the background while the token service is down), refreshed
	// periodically and when a token names an unknown key id, at a bounded rate.
	// Ed25519 keys only. Needed for EdDSA unless public_key_file is given.
	JWKSURL string `json:"jwks_url,omitempty"`

	// URL where Basic credentials are exchanged for a token: a form POST of
	// username and password answered by {"token": "<JWT>"}, for example
	// http://127.0.0.1:9020/management/auth. Required while basic is on.
	TokenURL string `json:"token_url,omitempty"`

	// Required `iss` claim. Default: taxiway.
	Issuer string `json:"issuer,omitempty"`

	// Required `aud` claim (one of the token's audiences). Default: taxii.
	Audience string `json:"audience,omitempty"`

	// Signature algorithms accepted: EdDSA and/or HS256. Default: EdDSA.
	// Tokens with any other `alg` (including `none`) are refused.
	Algorithms []string `json:"algorithms,omitempty"`

	// PEM file holding an Ed25519 public key (PKIX "PUBLIC KEY"), used for
	// EdDSA tokens whose key id is not in the JWKS, or instead of a JWKS.
	PublicKeyFile string `json:"public_key_file,omitempty"`

	// File holding the shared HS256 secret (at least 32 bytes; a trailing
	// newline is ignored). Required when algorithms include HS256.
	HS256SecretFile string `json:"hs256_secret_file,omitempty"`

	// Clock skew tolerated on exp, nbf and iat. At most 60s. Default: 0.
	Leeway caddy.Duration `json:"leeway,omitempty"`

	// Longest token lifetime accepted (exp - iat, or exp - now when iat is
	// absent). Longer-lived tokens are refused. Default: 24h.
	MaxLifetime caddy.Duration `json:"max_lifetime,omitempty"`

	// How long a successful Basic exchange, and a verified Bearer token, is
	// remembered; never past the token's exp. Between 1s and 1h. Default: 5m.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`

	// Most entries in each of the Basic and Bearer caches; the least recently
	// used entry goes first. Default: 10000.
	CacheSize int `json:"cache_size,omitempty"`

	// Header that carries the verified `sub` to the backend.
	// Default: X-Authenticated-User.
	UserHeader string `json:"user_header,omitempty"`

	// Header that carries the verified `groups`, comma-separated, to the
	// backend; left out when the token has no groups.
	// Default: X-Authenticated-Groups.
	GroupsHeader string `json:"groups_header,omitempty"`

	// Pass the client's Authorization header on to the backend. Default:
	// false (removed), so that credentials reach only the gateway.
	KeepAuthorization bool `json:"keep_authorization,omitempty"`

	// Accept HTTP Basic credentials and exchange them at token_url.
	// Default: true.
	Basic *bool `json:"basic,omitempty"`

	// Accept a JWT given as the Basic password (the user name is ignored),
	// for clients that can only send Basic. Default: false.
	JWTInBasicPassword bool `json:"jwt_in_basic_password,omitempty"`

	// Let requests that carry no Authorization header at all pass as
	// anonymous: without identity headers (client-sent ones are deleted as
	// always), so the backend sees no identity and applies what it grants
	// anonymous callers (taxiicore: grants to `anonymous`, public discovery
	// and API roots). Wrong, expired or malformed credentials still get 401.
	// Default: false.
	Anonymous bool `json:"anonymous,omitempty"`

	// Requests matching any of these matcher sets pass without
	// authentication (identity headers are still deleted, and Authorization
	// unless keep_authorization).
	SkipRaw caddyhttp.RawMatcherSets `json:"skip,omitempty" caddy:"namespace=http.matchers"`

	// Longest Authorization header accepted, in bytes; longer ones get 401
	// before any parsing. Default: 8192.
	MaxHeaderBytes int `json:"max_header_bytes,omitempty"`

	skip      caddyhttp.MatcherSets
	logger    *slog.Logger
	metrics   *metrics
	verifier  *verifier
	jwks      *jwksSource
	exchanger *exchanger
	basicKeys *identityCache
	bearerKey *identityCache
	strip     headerStripper
	stop      context.CancelFunc
}

// CaddyModule returns the Caddy module information.
func (TaxiiAuth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.taxii_auth",
		New: func() caddy.Module { return new(TaxiiAuth) },
	}
}

// Provision applies defaults, loads keys and matchers, and starts fetching
// the JWKS in the background.
func (a *TaxiiAuth) Provision(ctx caddy.Context) error {
	a.logger = ctx.Slogger()
	// Runtime placeholders such as {env.TOKEN_URL} in URLs and file names.
	repl := caddy.NewReplacer()
	for _, f := range []*string{&a.JWKSURL, &a.TokenURL, &a.PublicKeyFile, &a.HS256SecretFile} {
		*f = repl.ReplaceKnown(*f, "")
	}
	a.applyDefaults()
	// Check before touching files or the network, so that a bad config
	// fails fast and says why.
	if err := a.Validate(); err != nil {
		return err
	}

	if a.SkipRaw != nil {
		mods, err := ctx.LoadModule(a, "SkipRaw")
		if err != nil {
			return fmt.Errorf("loading skip matchers: %w", err)
		}
		if err := a.skip.FromInterface(mods); err != nil {
			return fmt.Errorf("loading skip matchers: %w", err)
		}
	}

	m, err := newMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	a.metrics = m

	var static ed25519.PublicKey
	if a.PublicKeyFile != "" {
		static, err = loadEd25519PublicKey(a.PublicKeyFile)
		if err != nil {
			return fmt.Errorf("loading public_key_file: %w", err)
		}
	}
	var secret []byte
	if a.HS256SecretFile != "" {
		secret, err = loadHS256Secret(a.HS256SecretFile)
		if err != nil {
			return fmt.Errorf("loading hs256_secret_file: %w", err)
		}
	}

	cacheKey, err := newCacheKey()
	if err != nil {
		return fmt.Errorf("creating cache key: %w", err)
	}
	a.basicKeys = newIdentityCache(cacheKey, "basic", a.CacheSize, time.Duration(a.CacheTTL))
	a.bearerKey = newIdentityCache(cacheKey, "bearer", a.CacheSize, time.Duration(a.CacheTTL))
	a.strip = newHeaderStripper(a.UserHeader, a.GroupsHeader)

	runCtx, stop := context.WithCancel(context.Background())
	a.stop = stop
	if a.JWKSURL != "" {
		a.jwks = newJWKSSource(a.JWKSURL, a.logger, a.metrics, a.bearerKey.purge)
		a.jwks.start(runCtx)
		if !a.jwks.waitReady(ctx, jwksStartWait) {
			a.logger.Warn("JWKS not available yet; Bearer tokens are refused until it is, retrying in the background",
				slog.String("jwks_url", a.JWKSURL))
		}
	}

	a.verifier = &verifier{
		issuer:      a.Issuer,
		audience:    a.Audience,
		algorithms:  a.Algorithms,
		leeway:      time.Duration(a.Leeway),
		maxLifetime: time.Duration(a.MaxLifetime),
		jwks:        a.jwks,
		staticEd:    static,
		hsSecret:    secret,
	}
	a.verifier.init()

	if a.basicEnabled() {
		a.exchanger = newExchanger(a.TokenURL)
	}
	return nil
}

func (a *TaxiiAuth) applyDefaults() {
	if a.Issuer == "" {
		a.Issuer = DefaultIssuer
	}
	if a.Audience == "" {
		a.Audience = DefaultAudience
	}
	if len(a.Algorithms) == 0 {
		a.Algorithms = []string{AlgEdDSA}
	}
	if a.MaxLifetime == 0 {
		a.MaxLifetime = caddy.Duration(DefaultMaxLifetime)
	}
	if a.CacheTTL == 0 {
		a.CacheTTL = caddy.Duration(DefaultCacheTTL)
	}
	if a.CacheSize == 0 {
		a.CacheSize = DefaultCacheSize
	}
	if a.UserHeader == "" {
		a.UserHeader = DefaultUserHeader
	}
	if a.GroupsHeader == "" {
		a.GroupsHeader = DefaultGroupsHeader
	}
	if a.MaxHeaderBytes == 0 {
		a.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
}

func (a *TaxiiAuth) basicEnabled() bool { return a.Basic == nil || *a.Basic }

// Validate refuses a configuration that cannot authenticate anyone safely.
// It expects defaults applied (Provision does that first).
func (a *TaxiiAuth) Validate() error {
	var ed, hs bool
	for _, alg := range a.Algorithms {
		switch alg {
		case AlgEdDSA:
			ed = true
		case AlgHS256:
			hs = true
		default:
			return fmt.Errorf("algorithms: %q is not supported (use %s and/or %s)", alg, AlgEdDSA, AlgHS256)
		}
	}
	if ed && a.JWKSURL == "" && a.PublicKeyFile == "" {
		return fmt.Errorf("algorithm %s needs jwks_url or public_key_file", AlgEdDSA)
	}
	if hs && a.HS256SecretFile == "" {
		return fmt.Errorf("algorithm %s needs hs256_secret_file", AlgHS256)
	}
	if !hs && a.HS256SecretFile != "" {
		return fmt.Errorf("hs256_secret_file is set but algorithms do not include %s", AlgHS256)
	}
	if a.JWKSURL != "" {
		if err := checkHTTPURL(a.JWKSURL); err != nil {
			return fmt.Errorf("jwks_url: %w", err)
		}
	}
	if a.basicEnabled() {
		if a.TokenURL == "" {
			return fmt.Errorf("basic is on but token_url is missing (set token_url or turn basic off)")
		}
	}
	if a.TokenURL != "" {
		if err := checkHTTPURL(a.TokenURL); err != nil {
			return fmt.Errorf("token_url: %w", err)
		}
	}
	if err := checkLeeway(time.Duration(a.Leeway)); err != nil {
		return err
	}
	if a.MaxLifetime <= 0 {
		return fmt.Errorf("max_lifetime must be positive")
	}
	if err := checkCacheTTL(time.Duration(a.CacheTTL)); err != nil {
		return err
	}
	if a.CacheSize < 1 || a.CacheSize > maxCacheSize {
		return fmt.Errorf("cache_size must be between 1 and %d", maxCacheSize)
	}
	if err := checkHeaderName("user_header", a.UserHeader); err != nil {
		return err
	}
	if err := checkHeaderName("groups_header", a.GroupsHeader); err != nil {
		return err
	}
	if normalizeHeaderName(a.UserHeader) == normalizeHeaderName(a.GroupsHeader) {
		return fmt.Errorf("user_header and groups_header must differ")
	}
	if a.MaxHeaderBytes < minMaxHeaderBytes || a.MaxHeaderBytes > maxMaxHeaderBytes {
		return fmt.Errorf("max_header_bytes must be between %d and %d", minMaxHeaderBytes, maxMaxHeaderBytes)
	}
	return nil
}

// Cleanup stops the JWKS refresher; Caddy calls it when the config is
// replaced or provisioning fails.
func (a *TaxiiAuth) Cleanup() error {
	if a.stop != nil {
		a.stop()
	}
	if a.jwks != nil {
		a.jwks.wait()
	}
	return nil
}

func checkHTTPURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q must be an absolute http:// or https:// URL", raw)
	}
	return nil
}

func checkLeeway(d time.Duration) error {
	if d < 0 || d > maxLeeway {
		return fmt.Errorf("leeway must be between 0 and %s, got %s", maxLeeway, d)
	}
	return nil
}

func checkCacheTTL(d time.Duration) error {
	if d < time.Second || d > maxCacheTTL {
		return fmt.Errorf("cache_ttl must be between 1s and %s, got %s", maxCacheTTL, d)
	}
	return nil
}

func checkHeaderName(option, name string) error {
	if !httpguts.ValidHeaderFieldName(name) {
		return fmt.Errorf("%s: %q is not a valid header name", option, name)
	}
	switch normalizeHeaderName(name) {
	case "authorization", "host", "content-length", "transfer-encoding", "connection":
		return fmt.Errorf("%s: %q cannot carry the identity", option, name)
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*TaxiiAuth)(nil)
	_ caddy.Validator             = (*TaxiiAuth)(nil)
	_ caddy.CleanerUpper          = (*TaxiiAuth)(nil)
	_ caddyhttp.MiddlewareHandler = (*TaxiiAuth)(nil)
	_ caddyfile.Unmarshaler       = (*TaxiiAuth)(nil)
)
