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

	"github.com/taxiway/taxiway/internal/identitysig"
	"github.com/taxiway/taxiway/internal/tokenclaims"
)

func init() {
	caddy.RegisterModule(TaxiiAuth{})
}

// Defaults and limits of the configuration.
const (
	DefaultIssuer         = tokenclaims.DefaultIssuer
	DefaultAudience       = tokenclaims.DefaultAudience
	DefaultUserHeader     = "X-Authenticated-User"
	DefaultGroupsHeader   = "X-Authenticated-Groups"
	DefaultMaxLifetime    = 24 * time.Hour
	DefaultCacheTTL       = 5 * time.Minute
	DefaultCacheSize      = 10000
	DefaultMaxHeaderBytes = 8192
	// DefaultLeeway absorbs clock skew between the token service and the
	// gateway: a gateway whose clock lags sees fresh tokens' iat and nbf
	// in the future, and without leeway refuses them.
	DefaultLeeway = 30 * time.Second

	maxLeeway         = 60 * time.Second
	maxCacheTTL       = time.Hour
	maxCacheSize      = 10_000_000
	minMaxHeaderBytes = 256
	maxMaxHeaderBytes = 1 << 20
	minHS256Secret    = 32
)

// Algorithm names accepted in the algorithms option.
const (
	AlgEdDSA = tokenclaims.AlgEdDSA
	AlgHS256 = tokenclaims.AlgHS256
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

	// Clock skew tolerated on exp, nbf and iat, between 0 and 60s.
	// Default: 30s.
	Leeway *caddy.Duration `json:"leeway,omitempty"`

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

	// Requests matching any of these matcher sets may come without
	// credentials: one that carries no Authorization header at all passes
	// without identity (client-sent identity headers are deleted as always).
	// Credentials sent anyway are checked as everywhere: good ones pass with
	// their identity, bad ones get 401. Only a path spelled the one way a
	// backend cannot read differently (no dot segments, "//", backslashes or
	// encoded slashes) is matched; other spellings need credentials. Caddy's
	// path matcher ignores case.
	SkipRaw caddyhttp.RawMatcherSets `json:"skip,omitempty" caddy:"namespace=http.matchers"`

	// Longest Authorization header accepted, in bytes; longer ones get 401
	// before any parsing. Default: 8192.
	MaxHeaderBytes int `json:"max_header_bytes,omitempty"`

	// URL of the token service's revocation feed, for example
	// http://127.0.0.1:9020/internal/revocations. The gateway follows it in
	// the background (a long poll answered as soon as a revocation commits)
	// and refuses tokens it voids: those of accounts disabled, deleted or
	// changed (password, groups) since the token was issued, and single
	// revoked tokens; cached Basic exchanges of such accounts are redone.
	// Nothing per request leaves the process. Until the first answer,
	// tokens get 503. Empty: no revocation, tokens are valid until exp.
	RevocationURL string `json:"revocation_url,omitempty"`

	// When the feed has not answered for longer than this, refuse tokens
	// (503 with Retry-After) rather than serve from an old state. 0 (the
	// default) keeps serving from the last state however old: an outage of
	// the token service then stops new logins but not clients that hold a
	// token, whose life is bounded by its exp anyway. At least 30s.
	RevocationMaxAge caddy.Duration `json:"revocation_max_age,omitempty"`

	// Key shared with the backend for signing the identity headers (the
	// X-Authenticated-Signature header over user, groups, method, path and
	// time; see internal/identitysig), at least 32 bytes; several keys
	// separated by spaces sign with the first. Use a placeholder such as
	// {env.TAXIWAY_IDENTITY_KEY}, so the secret stays out of the saved
	// config. Empty (and no identity_key_file): no signature.
	IdentityKey string `json:"identity_key,omitempty"`

	// File holding the identity key, instead of identity_key.
	IdentityKeyFile string `json:"identity_key_file,omitempty"`

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

	revocations *revocations
	signer      *identitySigner
}

// CaddyModule returns the Caddy module information.
func (TaxiiAuth) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.taxii_auth",
		New: func() caddy.Module { return new(TaxiiAuth) },
	}
}

// Provision applies defaults, loads keys and matchers, and starts fetching
// the JWKS and following the revocation feed in the background, on the
// config's context. Caddy calls Validate afterwards, and Cleanup if that
// fails or the config is replaced.
func (a *TaxiiAuth) Provision(ctx caddy.Context) error {
	a.logger = ctx.Slogger()
	// Runtime placeholders such as {env.TOKEN_URL} in URLs and file names.
	repl := caddy.NewReplacer()
	for _, f := range []*string{&a.JWKSURL, &a.TokenURL, &a.PublicKeyFile, &a.HS256SecretFile, &a.RevocationURL, &a.IdentityKeyFile} {
		*f = repl.ReplaceKnown(*f, "")
	}
	a.applyDefaults()

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
	if a.IdentityKey != "" || a.IdentityKeyFile != "" {
		// Resolved here and kept only in memory: the config keeps the
		// placeholder.
		if a.signer, err = loadIdentityKeys(repl.ReplaceKnown(a.IdentityKey, ""), a.IdentityKeyFile); err != nil {
			return err
		}
	}

	cacheKey, err := newCacheKey()
	if err != nil {
		return fmt.Errorf("creating cache key: %w", err)
	}
	a.basicKeys = newIdentityCache(cacheKey, "basic", a.CacheSize, time.Duration(a.CacheTTL))
	a.bearerKey = newIdentityCache(cacheKey, "bearer", a.CacheSize, time.Duration(a.CacheTTL))
	a.strip = newHeaderStripper(a.UserHeader, a.GroupsHeader, identitysig.Header)

	// Background work ends with the config (ctx) or at Cleanup.
	runCtx, stop := context.WithCancel(ctx)
	a.stop = stop
	if a.JWKSURL != "" {
		// A key set that changes voids every cached verification, Basic
		// exchanges included: their tokens were checked with the old keys.
		purge := func() { a.bearerKey.purge(); a.basicKeys.purge() }
		a.jwks = newJWKSSource(a.JWKSURL, a.logger, a.metrics, purge)
		a.jwks.start(runCtx)
	}
	if a.RevocationURL != "" {
		a.revocations = newRevocations(a.RevocationURL, time.Duration(a.RevocationMaxAge), a.logger, a.metrics)
		a.revocations.start(runCtx)
	}
	// Both fetch at once, so they share one start-up wait: where they come
	// through this Caddy's own listeners (the cluster's token pool), which
	// listen only once provisioning is over, two waits in a row would delay
	// every start by both.
	waitStart := time.Now()
	if a.jwks != nil && !a.jwks.waitReady(ctx, jwksStartWait) {
		a.logger.Warn("JWKS not available yet; Bearer tokens are refused until it is, retrying in the background",
			slog.String("jwks_url", a.JWKSURL))
	}
	if a.revocations != nil && !a.revocations.waitReady(ctx, feedStartWait-time.Since(waitStart)) {
		a.logger.Warn("revocation feed not available yet; tokens get 503 until it answers, retrying in the background",
			slog.String("revocation_url", a.RevocationURL))
	}

	a.verifier = &verifier{
		issuer:      a.Issuer,
		audience:    a.Audience,
		algorithms:  a.Algorithms,
		leeway:      time.Duration(*a.Leeway),
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
	if a.Leeway == nil {
		d := caddy.Duration(DefaultLeeway)
		a.Leeway = &d
	}
}

func (a *TaxiiAuth) basicEnabled() bool { return a.Basic == nil || *a.Basic }

// Validate refuses a configuration that cannot authenticate anyone safely.
// Caddy calls it after Provision, which applies the defaults.
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
	if a.Leeway != nil {
		if err := checkLeeway(time.Duration(*a.Leeway)); err != nil {
			return err
		}
	}
	if a.RevocationURL != "" {
		if err := checkHTTPURL(a.RevocationURL); err != nil {
			return fmt.Errorf("revocation_url: %w", err)
		}
	}
	if err := checkFeedMaxAge("revocation_max_age", time.Duration(a.RevocationMaxAge)); err != nil {
		return err
	}
	if a.RevocationMaxAge != 0 && a.RevocationURL == "" {
		return fmt.Errorf("revocation_max_age needs revocation_url")
	}
	if a.IdentityKey != "" && a.IdentityKeyFile != "" {
		return fmt.Errorf("identity_key and identity_key_file are alternatives; set one")
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

// Cleanup stops the JWKS refresher and the revocation follower; Caddy
// calls it when the config is replaced or provisioning fails.
func (a *TaxiiAuth) Cleanup() error {
	if a.stop != nil {
		a.stop()
	}
	if a.jwks != nil {
		a.jwks.wait()
	}
	if a.revocations != nil {
		a.revocations.wait()
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
	case "authorization", "host", "content-length", "transfer-encoding", "connection", "trailer",
		normalizeHeaderName(identitysig.Header):
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
