package tokenservice

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics live on the server's own registry, so several servers (tests,
// an in-process benchmark) never collide on a global one.
type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec // route, code
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
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taxiway_token_requests_total",
			Help: "Requests by route (the pattern that served it, or other) and status code.",
		}, []string{"route", "code"}),
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
	m.registry.MustRegister(m.requests, m.issued, m.failures, m.rateLimited, m.hashBusy, m.hashSeconds, m.rehashed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{"unknown_user", "bad_password", "disabled", "not_yet_valid", "bad_request"} {
		m.failures.WithLabelValues(r)
	}
	for _, scope := range []string{"address", "pair"} {
		m.rateLimited.WithLabelValues(scope)
	}
	return m
}

// countRequests counts each request of h by the ServeMux pattern that
// served it (a bounded set, unlike paths) and its status code.
func (m *metrics) countRequests(h *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" || route == "/" {
			route = "other"
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		m.requests.WithLabelValues(route, strconv.Itoa(rec.status)).Inc()
	})
}

// statusRecorder remembers the status code for countRequests.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
