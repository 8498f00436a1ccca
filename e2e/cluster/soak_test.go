//go:build cluster

package cluster

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

var (
	soakDuration = flag.Duration("soak", 0, "run TestSoak for this long (make soak: 10m by default); 0 skips it")
	soakEvery    = flag.Duration("soak-every", 10*time.Second, "sampling interval of TestSoak")
)

// series is one sampled quantity of one process.
type series struct {
	at     []float64 // minutes since the start
	values []float64
}

func (s *series) add(at time.Duration, v float64) {
	s.at = append(s.at, at.Minutes())
	s.values = append(s.values, v)
}

// slope is the least-squares slope in units per minute, over the samples
// taken from minute `from` on (pools and caches fill up at first).
func (s *series) slope(from float64) float64 {
	var t series
	for i := range s.at {
		if s.at[i] >= from {
			t.at, t.values = append(t.at, s.at[i]), append(t.values, s.values[i])
		}
	}
	return t.fit()
}

func (s *series) fit() float64 {
	n := float64(len(s.at))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range s.at {
		sx += s.at[i]
		sy += s.values[i]
		sxx += s.at[i] * s.at[i]
		sxy += s.at[i] * s.values[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// TestSoak runs a mixed workload (logins, Basic and Bearer reads, writes,
// paging) through the clustered stack for -soak, sampling every process's
// RSS, goroutines and open files, and Postgres' connections, every
// -soak-every, and reports each one's slope. `make soak` runs it.
func TestSoak(t *testing.T) {
	if *soakDuration <= 0 {
		t.Skip("set -soak=DURATION (make soak)")
	}
	c := startCluster(t, nil)
	base := c.FrontURL()
	token, err := login(base, "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	var (
		requests, failures atomic.Int64
		failMu             sync.Mutex
		failSamples        []string
	)
	fail := func(who string, r result) {
		failures.Add(1)
		failMu.Lock()
		if len(failSamples) < 10 {
			failSamples = append(failSamples, fmt.Sprintf("%s: status %d %v %.200s", who, r.status, r.err, r.body))
		}
		failMu.Unlock()
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(every time.Duration, f func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tick.C:
					f()
				}
			}
		}()
	}
	// Writes: a 100-object envelope every 250 ms, alternating Bearer and Basic.
	var posted atomic.Int64
	loop(250*time.Millisecond, func() {
		auth := bearerAuth(token)
		if posted.Load()%2 == 1 {
			auth = basicAuth("test", "test")
		}
		body, _ := envelope(100)
		r := call(base, "POST", demoObjects, auth, body)
		requests.Add(1)
		if r.status != http.StatusAccepted {
			fail("POST objects", r)
			return
		}
		posted.Add(1)
	})
	// Logins: one Argon2id hash every 2 s.
	loop(2*time.Second, func() {
		requests.Add(1)
		if _, err := login(base, "test", "test"); err != nil {
			fail("login", result{err: err})
		}
	})
	// Reads: discovery, collections, a manifest page, Bearer and Basic.
	for _, auth := range []func(*http.Request){bearerAuth(token), basicAuth("test", "test")} {
		loop(50*time.Millisecond, func() {
			for _, p := range []string{"/taxii2/", "/api1/collections/", "/api1/collections/" + demoCol + "/manifest/?limit=50"} {
				r := call(base, "GET", p, auth, nil)
				requests.Add(1)
				if r.status != http.StatusOK {
					fail("GET "+p, r)
				}
			}
		})
	}
	// Paging: two pollers following next and added_after to the end.
	flog := &faultLog{}
	w := &workload{base: base, auths: []func(*http.Request){bearerAuth(token), basicAuth("test", "test")}, log: flog, accepted: map[string]int{}}
	for n := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); w.poller(n, n == 0, stop, func() int { return 0 }, 0) }()
	}

	samples := map[string]*series{}
	sample := func(at time.Duration) {
		add := func(name string, v float64) {
			if samples[name] == nil {
				samples[name] = &series{}
			}
			samples[name].add(at, v)
		}
		for inst, pid := range c.PIDs() {
			if rss, err := procRSS(pid); err == nil {
				add(inst+" RSS (MiB)", rss)
			}
			if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
				add(inst+" open files", float64(len(fds)))
			}
			if g, err := goroutines(c, inst); err == nil {
				add(inst+" goroutines", g)
			}
		}
		for node, url := range map[string]string{"postgres primary": c.PrimaryURL("postgres"), "postgres standby": c.StandbyURL("postgres")} {
			if n, err := pgConnections(url); err == nil {
				add(node+" connections", n)
			}
		}
	}
	start := time.Now()
	sample(0)
	tick := time.NewTicker(*soakEvery)
	for time.Since(start) < *soakDuration {
		<-tick.C
		sample(time.Since(start))
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)

	names := make([]string, 0, len(samples))
	for n := range samples {
		names = append(names, n)
	}
	sort.Strings(names)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s of mixed load, sampled every %s: %d requests (%.0f/s), %d envelopes of 100 objects, %d failed requests, %d poller errors.\n\n",
		elapsed.Round(time.Second), *soakEvery, requests.Load(), float64(requests.Load())/elapsed.Seconds(), posted.Load(), failures.Load(), len(flog.errors))
	warmup := min(time.Minute, elapsed/4)
	fmt.Fprintf(&sb, "| process: quantity | first | last | min | max | slope per minute after the first %s |\n|---|---|---|---|---|---|\n", warmup.Round(time.Second))
	for _, n := range names {
		s := samples[n]
		lo, hi := s.values[0], s.values[0]
		for _, v := range s.values {
			lo, hi = min(lo, v), max(hi, v)
		}
		fmt.Fprintf(&sb, "| %s | %.1f | %.1f | %.1f | %.1f | %+.2f |\n", n, s.values[0], s.values[len(s.values)-1], lo, hi, s.slope(warmup.Minutes()))
	}
	t.Logf("soak:\n%s", sb.String())
	if p := os.Getenv("TAXIWAY_SOAK_REPORT"); p != "" {
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	for _, s := range failSamples {
		t.Errorf("failed request: %s", s)
	}
	flog.mu.Lock()
	for _, b := range flog.broken {
		t.Errorf("poller: %s", b)
	}
	flog.mu.Unlock()
}

// procRSS is a process's resident set in MiB.
func procRSS(pid int) (float64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// goroutines reads go_goroutines from an instance's metrics (the front has
// no ops listener, so none).
func goroutines(c *localstack.Cluster, instance string) (float64, error) {
	svc, nStr, ok := strings.Cut(instance, "-")
	n, err := strconv.Atoi(nStr)
	if !ok || err != nil {
		return 0, fmt.Errorf("%s has no metrics", instance)
	}
	req, err := http.NewRequest("GET", c.OpsURL(svc, n)+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no go_goroutines in %s's metrics", instance)
}

// pgConnections counts the client connections of a Postgres server.
func pgConnections(url string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	// Minus this connection.
	err = conn.QueryRow(ctx, `SELECT count(*) - 1 FROM pg_stat_activity WHERE backend_type = 'client backend'`).Scan(&n)
	return float64(n), err
}
