package tokenservice

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics live on the server's own registry, so several servers (tests,
// an in-process benchmark) never collide on a global one.
type metrics struct {
	registry    *prometheus.Registry
	issued      prometheus.Counter
	failures    *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	hashBusy    prometheus.Counter
	hashSeconds *prometheus.HistogramVec
	rehashed    prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		issued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taxiway_token_issued_total", Help: "Tokens issued.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taxiway_token_login_failures_total",
			Help: "Refused logins by reason: unknown_user, bad_password, disabled, not_yet_valid, bad_request.",
		}, []string{"reason"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taxiway_token_rate_limited_total", Help: "Logins refused with 429, by exhausted counter (address or pair).",
		}, []string{"scope"}),
		hashBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taxiway_token_hash_busy_total", Help: "Logins refused with 503 because every hash slot stayed busy.",
		}),
		hashSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taxiway_token_hash_seconds",
			Help:    "Time to verify or compute one password hash, by scheme.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14), // 1ms to ~8s
		}, []string{"scheme"}),
		rehashed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taxiway_token_rehashed_total", Help: "Stored hashes upgraded to argon2id at the configured cost on login.",
		}),
	}
	m.registry.MustRegister(m.issued, m.failures, m.rateLimited, m.hashBusy, m.hashSeconds, m.rehashed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"unknown_user", "bad_password", "disabled", "not_yet_valid", "bad_request"} {
		m.failures.WithLabelValues(r)
	}
	return m
}
