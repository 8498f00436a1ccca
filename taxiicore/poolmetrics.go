package taxiicore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector reads the connection pools' statistics, and the read pool's
// replication lag, when Prometheus scrapes: nothing is counted on the
// request path. The pool label is "primary" (writes, and reads without a
// read pool) or "read" (the listings' pool on a standby, see readpool.go).
type poolCollector struct {
	primary, read *pgxpool.Pool // set before serving (New, SetReadPool)
}

var (
	poolAcquiredDesc = prometheus.NewDesc("taxiway_core_db_pool_acquired_connections",
		"Connections in use by a request, by pool (primary, read).", []string{"pool"}, nil)
	poolIdleDesc = prometheus.NewDesc("taxiway_core_db_pool_idle_connections",
		"Open connections waiting for a request, by pool.", []string{"pool"}, nil)
	poolMaxDesc = prometheus.NewDesc("taxiway_core_db_pool_max_connections",
		"The pool's connection limit (pool_max_conns), by pool.", []string{"pool"}, nil)
	poolAcquiresDesc = prometheus.NewDesc("taxiway_core_db_pool_acquires_total",
		"Connections taken from the pool, by pool.", []string{"pool"}, nil)
	poolEmptyAcquiresDesc = prometheus.NewDesc("taxiway_core_db_pool_empty_acquires_total",
		"Acquires that found no idle connection and waited for one to be opened or freed, by pool.", []string{"pool"}, nil)
	poolEmptyWaitDesc = prometheus.NewDesc("taxiway_core_db_pool_empty_acquire_wait_seconds_total",
		"Time requests spent waiting in those acquires, by pool.", []string{"pool"}, nil)
	poolCanceledDesc = prometheus.NewDesc("taxiway_core_db_pool_canceled_acquires_total",
		"Acquires given up because the request's context ended first, by pool.", []string{"pool"}, nil)
	readOnStandbyDesc = prometheus.NewDesc("taxiway_core_db_read_pool_on_standby",
		"1 while the read pool's server is a hot standby, 0 when it is a primary (reads fell back to it). Absent without a read pool.", nil, nil)
	standbyLagDesc = prometheus.NewDesc("taxiway_core_db_standby_replay_lag_seconds",
		"How far the read pool's standby is behind in replaying what it received (0 when caught up). Absent without a read pool on a standby.", nil, nil)
)

// lagTimeout bounds the scrape's query on the read pool: a hung standby
// must not hang the scrape.
const lagTimeout = time.Second

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolAcquiredDesc, poolIdleDesc, poolMaxDesc, poolAcquiresDesc,
		poolEmptyAcquiresDesc, poolEmptyWaitDesc, poolCanceledDesc, readOnStandbyDesc, standbyLagDesc} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	c.collectPool(ch, "primary", c.primary)
	if c.read == nil {
		return
	}
	c.collectPool(ch, "read", c.read)
	ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
	defer cancel()
	var standby bool
	var lag float64
	// A standby that has replayed all it received is not behind, however
	// old its last replayed transaction (an idle primary sends nothing).
	err := c.read.QueryRow(ctx, `SELECT pg_is_in_recovery(),
		CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
		ELSE coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0) END::float8`).Scan(&standby, &lag)
	if err != nil {
		// The series go missing: the pool figures and the 503s say why.
		return
	}
	ch <- prometheus.MustNewConstMetric(readOnStandbyDesc, prometheus.GaugeValue, boolFloat(standby))
	if standby {
		ch <- prometheus.MustNewConstMetric(standbyLagDesc, prometheus.GaugeValue, max(lag, 0))
	}
}

func (c *poolCollector) collectPool(ch chan<- prometheus.Metric, name string, p *pgxpool.Pool) {
	if p == nil {
		return
	}
	st := p.Stat()
	ch <- prometheus.MustNewConstMetric(poolAcquiredDesc, prometheus.GaugeValue, float64(st.AcquiredConns()), name)
	ch <- prometheus.MustNewConstMetric(poolIdleDesc, prometheus.GaugeValue, float64(st.IdleConns()), name)
	ch <- prometheus.MustNewConstMetric(poolMaxDesc, prometheus.GaugeValue, float64(st.MaxConns()), name)
	ch <- prometheus.MustNewConstMetric(poolAcquiresDesc, prometheus.CounterValue, float64(st.AcquireCount()), name)
	ch <- prometheus.MustNewConstMetric(poolEmptyAcquiresDesc, prometheus.CounterValue, float64(st.EmptyAcquireCount()), name)
	ch <- prometheus.MustNewConstMetric(poolEmptyWaitDesc, prometheus.CounterValue, st.EmptyAcquireWaitTime().Seconds(), name)
	ch <- prometheus.MustNewConstMetric(poolCanceledDesc, prometheus.CounterValue, float64(st.CanceledAcquireCount()), name)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
