package caddymodule

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	caddy.RegisterModule(TaxiiPolicy{})
}

// Defaults of taxii_policy.
const (
	DefaultPolicyBackend   = "default"
	DefaultDiscoveryPath   = "/taxii2/"
	DefaultAdminGroup      = "taxiway-admin"
	DefaultMaxListBytes    = 1 << 20
	DefaultMaxEntries      = 100_000
	maxMaxListBytes        = 64 << 20
	maxMaxPolicyEntries    = 10_000_000
	policyRetryAfter       = "2"
	identityVar            = "taxiway.identity"
	decisionPass           = "pass"
	decisionNotFound       = "not_found"
	decisionForbidden      = "forbidden"
	decisionUnauthorized   = "unauthorized"
	decisionBadPath        = "bad_path"
	decisionMethod         = "method"
	decisionUnavailable    = "unavailable"
	decisionBackendTooMuch = "backend_too_large"
)

// backendNameRE is a backend's name, as the token service stores it.
var backendNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// TaxiiPolicy enforces Taxiway's per-collection grants in front of a TAXII
// 2.1 server that knows nothing of them (http.handlers.taxii_policy,
// Caddyfile directive taxii_policy). It follows the token service's policy
// feed in the background, takes the caller from taxii_auth earlier in the
// route (no identity: anonymous), and judges each request by its method
// and the path the backend will see: discovery and API root resources by
// the root's public setting, collections by the caller's grants (a
// collection it may neither read nor write answers 404, as an unknown one
// does), writes by write grants. Paths it does not know, and spellings it
// does not judge, are refused. Collection lists and resources coming back
// are rewritten to what the caller may see, with its can_read/can_write.
// Nothing per request leaves the process.
type TaxiiPolicy struct {
	// URL of the token service's policy feed, for example
	// http://127.0.0.1:9020/internal/policy. Required.
	PolicyURL string `json:"policy_url,omitempty"`

	// Name of the backend whose grants apply (`taxiway grant add -backend`,
	// the sync YAML's fronted section). Default: default.
	Backend string `json:"backend,omitempty"`

	// Path of the backend's discovery resource, as the backend sees it.
	// Default: /taxii2/.
	DiscoveryPath string `json:"discovery_path,omitempty"`

	// Members of this group may read and write every collection, as in
	// the core. Default: taxiway-admin.
	AdminGroup string `json:"admin_group,omitempty"`

	// When the feed has not answered for longer than this, refuse requests
	// (503 with Retry-After) rather than judge them by an old policy. 0 (the
	// default) keeps judging by the last policy however old, as
	// revocation_max_age does. Until the first answer every request gets
	// 503. At least 30s.
	MaxAge caddy.Duration `json:"max_age,omitempty"`

	// Largest collections list or collection resource the gateway buffers
	// to rewrite, in bytes; a larger one is refused (502). Default: 1 MiB.
	MaxListBytes int `json:"max_list_bytes,omitempty"`

	// Most collections and grants of the backend held in memory; a larger
	// policy is refused and the last one kept. Default: 100000.
	MaxEntries int `json:"max_entries,omitempty"`

	logger    *slog.Logger
	metrics   *metrics
	loop      *feedLoop
	client    *http.Client
	stop      context.CancelFunc
	view      *atomic.Pointer[policyView] // set by fetch; nil until the first answer
	decisions map[string]prometheus.Counter
}

// CaddyModule returns the Caddy module information.
func (TaxiiPolicy) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.taxii_policy",
		New: func() caddy.Module { return new(TaxiiPolicy) },
	}
}

// Provision applies defaults and starts following the policy feed on the
// config's context, waiting briefly for its first answer.
func (p *TaxiiPolicy) Provision(ctx caddy.Context) error {
	p.logger = ctx.Slogger()
	p.view = new(atomic.Pointer[policyView])
	p.PolicyURL = caddy.NewReplacer().ReplaceKnown(p.PolicyURL, "")
	if p.Backend == "" {
		p.Backend = DefaultPolicyBackend
	}
	if p.DiscoveryPath == "" {
		p.DiscoveryPath = DefaultDiscoveryPath
	}
	if p.AdminGroup == "" {
		p.AdminGroup = DefaultAdminGroup
	}
	if p.MaxListBytes == 0 {
		p.MaxListBytes = DefaultMaxListBytes
	}
	if p.MaxEntries == 0 {
		p.MaxEntries = DefaultMaxEntries
	}
	m, err := newMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	p.metrics = m
	p.decisions = map[string]prometheus.Counter{}
	for _, d := range []string{decisionPass, decisionNotFound, decisionForbidden, decisionUnauthorized,
		decisionBadPath, decisionMethod, decisionUnavailable, decisionBackendTooMuch} {
		p.decisions[d] = m.policyDecisions.WithLabelValues(d)
	}
	if p.PolicyURL == "" {
		return nil // Validate refuses it
	}
	runCtx, stop := context.WithCancel(ctx)
	p.stop = stop
	p.client = feedClient()
	p.loop = newFeedLoop("policy", p.PolicyURL, p.logger, m.policyPolls, m.policyAge)
	p.loop.poll, p.loop.syncedAt = p.fetch, p.lastSynced
	p.loop.start(runCtx)
	if !p.loop.waitReady(ctx, feedStartWait) {
		p.logger.Warn("policy feed not available yet; requests get 503 until it answers, retrying in the background",
			slog.String("policy_url", p.PolicyURL))
	}
	return nil
}

// fetch polls the policy feed once and installs a new view.
func (p *TaxiiPolicy) fetch(ctx context.Context, wait time.Duration) (bool, error) {
	cur := p.view.Load()
	var after int64
	if cur != nil {
		after = cur.version
	}
	var snap policySnapshot
	if err := getFeed(ctx, p.client, p.PolicyURL, after, wait, &snap); err != nil {
		return false, fmt.Errorf("policy: %w", err)
	}
	now := time.Now()
	if snap.Unchanged && cur != nil && snap.Version == cur.version {
		fresh := *cur
		fresh.synced = now
		p.view.Store(&fresh)
		return false, nil
	}
	v, err := compilePolicy(&snap, p.Backend, p.MaxEntries, now)
	if err != nil {
		return false, err
	}
	p.view.Store(v)
	p.metrics.policyEntries.WithLabelValues(p.Backend).Set(float64(v.entries))
	return false, nil
}

func (p *TaxiiPolicy) lastSynced() time.Time {
	if v := p.view.Load(); v != nil {
		return v.synced
	}
	return time.Time{}
}

// Validate refuses a configuration that cannot enforce anything.
func (p *TaxiiPolicy) Validate() error {
	if p.PolicyURL == "" {
		return fmt.Errorf("taxii_policy needs policy_url (the token service's /internal/policy)")
	}
	if err := checkHTTPURL(p.PolicyURL); err != nil {
		return fmt.Errorf("policy_url: %w", err)
	}
	if err := checkPolicyOptions(p); err != nil {
		return err
	}
	return checkFeedMaxAge("max_age", time.Duration(p.MaxAge))
}

// checkPolicyOptions checks the options the Caddyfile and JSON share.
func checkPolicyOptions(p *TaxiiPolicy) error {
	if p.Backend != "" && !backendNameRE.MatchString(p.Backend) {
		return fmt.Errorf("backend %q must be 1 to 64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)", p.Backend)
	}
	if p.DiscoveryPath != "" {
		if c, ok := canonicalPath(p.DiscoveryPath); !ok || c != p.DiscoveryPath || p.DiscoveryPath[len(p.DiscoveryPath)-1] != '/' || p.DiscoveryPath == "/" {
			return fmt.Errorf("discovery_path %q must look like /taxii2/: unreserved characters, a slash at each end", p.DiscoveryPath)
		}
	}
	if p.MaxListBytes < 0 || p.MaxListBytes > maxMaxListBytes {
		return fmt.Errorf("max_list_bytes must be between 1 and %d", maxMaxListBytes)
	}
	if p.MaxEntries < 0 || p.MaxEntries > maxMaxPolicyEntries {
		return fmt.Errorf("max_entries must be between 1 and %d", maxMaxPolicyEntries)
	}
	return nil
}

// Cleanup stops the feed follower.
func (p *TaxiiPolicy) Cleanup() error {
	if p.stop != nil {
		p.stop()
	}
	if p.loop != nil {
		p.loop.wait()
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*TaxiiPolicy)(nil)
	_ caddy.Validator             = (*TaxiiPolicy)(nil)
	_ caddy.CleanerUpper          = (*TaxiiPolicy)(nil)
	_ caddyhttp.MiddlewareHandler = (*TaxiiPolicy)(nil)
	_ caddyfile.Unmarshaler       = (*TaxiiPolicy)(nil)
)
