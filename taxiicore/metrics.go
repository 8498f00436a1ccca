package taxiicore

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics live in the server's own registry, so that several servers in one
// process (tests) do not collide and nothing global is mutated.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	ingested prometheus.Counter
	rejected prometheus.Counter
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
	}
	m.registry.MustRegister(m.requests, m.duration, m.ingested, m.rejected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
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
