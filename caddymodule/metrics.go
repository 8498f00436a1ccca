package caddymodule

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the module's Prometheus series, in Caddy's per-config
// registry. Several taxii_auth handlers in one config share them.
type metrics struct {
	attempts        *prometheus.CounterVec   // method, result
	cacheHits       *prometheus.CounterVec   // cache
	cacheMisses     *prometheus.CounterVec   // cache
	jwksRefreshes   *prometheus.CounterVec   // result
	exchangeSeconds *prometheus.HistogramVec // result

	revocationPolls   *prometheus.CounterVec // result
	revocationAge     prometheus.Gauge
	revocationEntries *prometheus.GaugeVec // kind

	policyPolls     *prometheus.CounterVec // result
	policyAge       prometheus.Gauge
	policyEntries   *prometheus.GaugeVec   // backend
	policyDecisions *prometheus.CounterVec // result

	// Children for the per-request path, bound once: label hashing on
	// every request would be wasted work.
	okByMethod  map[string]prometheus.Counter
	hitsByCache map[string]prometheus.Counter
	missByCache map[string]prometheus.Counter
}

func (m *metrics) ok(method string)  { m.okByMethod[method].Inc() }
func (m *metrics) hit(cache string)  { m.hitsByCache[cache].Inc() }
func (m *metrics) miss(cache string) { m.missByCache[cache].Inc() }

// Label values of taxiway_gateway_auth_attempts_total.
const (
	methodBearer = "bearer"
	methodBasic  = "basic"
	methodNone   = "none"
	methodSkip   = "skip"
	// methodAnonymous counts requests passed on without credentials.
	methodAnonymous = "anonymous"

	resultOK          = "ok"
	resultInvalid     = "invalid"
	resultUnavailable = "unavailable"
	resultRateLimited = "rate_limited"
	resultRevoked     = "revoked"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "taxiway", "gateway"
	m := &metrics{}
	var err error
	if m.attempts, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "auth_attempts_total",
		Help: "Authentication attempts by method (bearer, basic, none, skip) and result (ok, invalid, revoked, unavailable, rate_limited).",
	}, []string{"method", "result"})); err != nil {
		return nil, err
	}
	if m.cacheHits, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "cache_hits_total",
		Help: "Credentials found verified in the cache, by cache (basic, bearer).",
	}, []string{"cache"})); err != nil {
		return nil, err
	}
	if m.cacheMisses, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "cache_misses_total",
		Help: "Credentials not in the cache, by cache (basic, bearer).",
	}, []string{"cache"})); err != nil {
		return nil, err
	}
	if m.jwksRefreshes, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "jwks_refreshes_total",
		Help: "JWKS fetches by result (ok, error).",
	}, []string{"result"})); err != nil {
		return nil, err
	}
	if m.exchangeSeconds, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Subsystem: sub, Name: "exchange_duration_seconds",
		Help:    "Time to exchange Basic credentials for a token at the token service, by result.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	}, []string{"result"})); err != nil {
		return nil, err
	}
	if m.revocationPolls, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "revocation_polls_total",
		Help: "Answers (ok) and failures (error) polling the token service's revocation feed.",
	}, []string{"result"})); err != nil {
		return nil, err
	}
	if m.revocationAge, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "revocation_state_age_seconds",
		Help: "Seconds since the revocation feed last answered (a healthy long poll keeps it under about 15).",
	})); err != nil {
		return nil, err
	}
	if m.revocationEntries, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "revocation_entries",
		Help: "Revocations held in memory, by kind (account, token); each is dropped once its tokens have expired.",
	}, []string{"kind"})); err != nil {
		return nil, err
	}
	if m.policyPolls, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "policy_polls_total",
		Help: "Answers (ok) and failures (error) polling the token service's policy feed (taxii_policy).",
	}, []string{"result"})); err != nil {
		return nil, err
	}
	if m.policyAge, err = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "policy_state_age_seconds",
		Help: "Seconds since the policy feed last answered (a healthy long poll keeps it under about 15).",
	})); err != nil {
		return nil, err
	}
	if m.policyEntries, err = register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: sub, Name: "policy_entries",
		Help: "Collections and grants of the fronted policy held in memory, by backend.",
	}, []string{"backend"})); err != nil {
		return nil, err
	}
	if m.policyDecisions, err = register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: ns, Subsystem: sub, Name: "policy_decisions_total",
		Help: "taxii_policy decisions by result (pass, not_found, forbidden, unauthorized, bad_path, method, unavailable).",
	}, []string{"result"})); err != nil {
		return nil, err
	}
	m.okByMethod = map[string]prometheus.Counter{}
	m.hitsByCache = map[string]prometheus.Counter{}
	m.missByCache = map[string]prometheus.Counter{}
	for _, method := range []string{methodBearer, methodBasic, methodSkip, methodAnonymous} {
		m.okByMethod[method] = m.attempts.WithLabelValues(method, resultOK)
	}
	for _, cache := range []string{methodBearer, methodBasic} {
		m.hitsByCache[cache] = m.cacheHits.WithLabelValues(cache)
		m.missByCache[cache] = m.cacheMisses.WithLabelValues(cache)
	}
	return m, nil
}

// register adds c to reg, or returns the collector already registered under
// the same name: a config may hold several taxii_auth handlers.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}
