package taxiicore

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics live in the server's own registry, so that several servers in one
// process (tests) do not collide and nothing global is mutated.
type metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	ingested      prometheus.Counter
	rejected      prometheus.Counter
	dbUnavailable *prometheus.CounterVec   // cause
	pageObjects   *prometheus.HistogramVec // endpoint
	pageBytes     *prometheus.HistogramVec // endpoint
	pools         *poolCollector
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taxiway_core_requests_total",
			Help: "TAXII requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taxiway_core_request_duration_seconds",
			Help:    "TAXII request latency by route template and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		ingested: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taxiway_core_objects_ingested_total",
			Help: "Object versions stored by Add Objects (duplicates and failures excluded).",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "taxiway_core_objects_rejected_total",
			Help: "Objects reported as failures by Add Objects.",
		}),
		dbUnavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "taxiway_core_db_unavailable_total",
			Help: "Requests answered 503 because Postgres could not serve them, by cause (connect, connection_lost, timeout, resources, restarting, read_only, recovery_conflict).",
		}, []string{"cause"}),
		pageObjects: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taxiway_core_page_objects",
			Help:    "Entries per page of the paginated endpoints (objects, manifest, object, versions).",
			Buckets: []float64{0, 1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
		}, []string{"endpoint"}),
		pageBytes: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "taxiway_core_page_bytes",
			Help:    "Bytes of STIX objects per page of Get Objects and Get an Object (before the envelope).",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10), // 1 KiB to 256 MiB
		}, []string{"endpoint"}),
		pools: &poolCollector{},
	}
	m.registry.MustRegister(m.requests, m.duration, m.ingested, m.rejected, m.dbUnavailable,
		m.pageObjects, m.pageBytes, m.pools,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, cause := range []string{causeConnect, causeConnectionLost, causeTimeout, causeResources,
		causeRestarting, causeReadOnly, causeRecoveryConflict} {
		m.dbUnavailable.WithLabelValues(cause)
	}
	return m
}

// metricMethod keeps the method label bounded: clients may send any token.
func metricMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "DELETE", "PUT", "PATCH", "OPTIONS":
		return m
	}
	return "OTHER"
}

// endpointName is the endpoint label of the page metrics.
func endpointName(ep endpoint) string {
	switch ep {
	case epObjects:
		return "objects"
	case epManifest:
		return "manifest"
	case epObject:
		return "object"
	case epVersions:
		return "versions"
	}
	return "other"
}
