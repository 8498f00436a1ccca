package taxiicore

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgcluster"
	"github.com/taxiway/taxiway/internal/pgtest"
)

// TestPagingOnStandbyUnderConcurrentWriters: with the listings on a hot
// standby, pollers following next or re-polling with added_after while
// several writers add objects see every object exactly once, in date_added
// order (see readpool.go for why).
func TestPagingOnStandbyUnderConcurrentWriters(t *testing.T) {
	primary := pgtest.Cluster(t)
	if primary == nil {
		t.Skip("needs the private cluster to clone a standby from (unset " + pgtest.EnvURL + ")")
	}
	f := newFixture(t, nil)
	ctx := context.Background()

	dir, err := os.MkdirTemp("", "taxiway-standby-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the server may run as the postgres user
		t.Fatal(err)
	}
	standby, err := pgcluster.StartStandby(ctx, primary, "readpooltest", pgcluster.Options{DataDir: filepath.Join(dir, "data"), Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = standby.Stop() })
	db := f.pool.Config().ConnConfig.Database
	read, err := pgxpool.New(ctx, standby.URL(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(read.Close)
	var inRecovery bool
	if err := read.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&inRecovery); err != nil || !inRecovery {
		t.Fatalf("read pool is not on a standby (in recovery %t, %v)", inRecovery, err)
	}
	cfg := DefaultConfig()
	cfg.MaxPageSize = 50
	srv, err := New(ctx, f.pool, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetReadPool(read)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	rf := &fixture{t: t, pool: f.pool, srv: srv, ts: ts}
	readsBefore := standbyReads(t, read, db)

	const writers, envelopes, perEnvelope = 3, 15, 40
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		wg       sync.WaitGroup
		done     = make(chan struct{})
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range envelopes {
				objs := make([]map[string]any, perEnvelope)
				for i := range objs {
					objs[i] = indicator(newID("indicator"), "2026-01-01T00:00:00Z", "")
				}
				st := rf.post(colRW, objs...)
				if st["success_count"] != float64(perEnvelope) {
					t.Errorf("status %v", st)
					return
				}
				mu.Lock()
				for _, o := range objs {
					accepted[o["id"].(string)] = true
				}
				mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	total := writers * envelopes * perEnvelope
	poll := func(useNext bool) []string {
		var seen []string
		// next belongs to the query that began the chain, added_after included.
		var next, after, chainAfter string
		deadline := time.Now().Add(60 * time.Second)
		for len(seen) < total && time.Now().Before(deadline) {
			q := url.Values{"limit": {"37"}}
			if next == "" {
				chainAfter = after
			} else {
				q.Set("next", next)
			}
			if chainAfter != "" {
				q.Set("added_after", chainAfter)
			}
			res := rf.do(req{path: objectsPath(colRW) + "?" + q.Encode()})
			if res.status != http.StatusOK {
				t.Errorf("poll: status %d %s", res.status, res.body)
				return seen
			}
			page := ids(t, res)
			seen = append(seen, page...)
			if last := res.header.Get("X-TAXII-Date-Added-Last"); last != "" {
				after = last
			}
			next = ""
			if m := res.json(t); useNext && m["more"] == true {
				next, _ = m["next"].(string)
			}
			if len(page) == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		return seen
	}
	results := make([][]string, 2)
	var pw sync.WaitGroup
	for i := range results {
		pw.Add(1)
		go func() { defer pw.Done(); results[i] = poll(i == 0) }()
	}
	pw.Wait()
	<-done

	for i, seen := range results {
		how := []string{"next", "added_after"}[i]
		count := map[string]int{}
		for _, id := range seen {
			count[id]++
		}
		for id, n := range count {
			if n > 1 {
				t.Errorf("poller following %s saw %s %d times", how, id, n)
			}
			if !accepted[id] {
				t.Errorf("poller following %s saw %s, which no writer added", how, id)
			}
		}
		for id := range accepted {
			if count[id] == 0 {
				t.Errorf("poller following %s never saw %s", how, id)
			}
		}
		if len(seen) != total {
			t.Errorf("poller following %s saw %d objects, want %d", how, len(seen), total)
		}
	}
	if standbyReads(t, read, db) == readsBefore {
		t.Error("the standby served no reads")
	}
	// The read pool's figures and the standby's lag are exported.
	metrics := scrapeMetrics(t, srv)
	if v := metricValue(t, metrics, `taxiway_core_db_pool_acquires_total{pool="read"}`); v == 0 {
		t.Error("the read pool's acquires were not counted")
	}
	if v := metricValue(t, metrics, `taxiway_core_db_read_pool_on_standby`); v != 1 {
		t.Errorf("taxiway_core_db_read_pool_on_standby = %g, want 1", v)
	}
	if v := metricValue(t, metrics, `taxiway_core_db_standby_replay_lag_seconds`); v < 0 || v > 60 {
		t.Errorf("taxiway_core_db_standby_replay_lag_seconds = %g", v)
	}
}

// standbyReads counts the rows the standby returned in database db.
func standbyReads(t *testing.T, read *pgxpool.Pool, db string) int64 {
	t.Helper()
	var n int64
	// Statistics are collected per server: this counts the standby's reads.
	if err := read.QueryRow(context.Background(), `SELECT pg_stat_force_next_flush()`).Scan(new(any)); err != nil {
		t.Log(fmt.Errorf("flushing statistics: %w", err))
	}
	if err := read.QueryRow(context.Background(), `SELECT tup_returned FROM pg_stat_database WHERE datname = $1`, db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
