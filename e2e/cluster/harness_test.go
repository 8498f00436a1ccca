//go:build cluster

// Package cluster runs the clustered stack (`taxiway local -replicas 2`:
// a front, two gateways, two cores, two token services, a Postgres primary
// and a synchronous hot standby, all real processes on loopback) under a
// TAXII workload, and injects faults into it (`make test-faults`), or keeps
// it busy for a long time while sampling every process (`make soak`).
// Behind the `cluster` build tag: too long for `make test`.
package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
	"github.com/taxiway/taxiway/internal/testbin"
)

const (
	taxiiType   = "application/taxii+json;version=2.1"
	demoCol     = "edaca48c-eae6-47e0-82b3-18a87ff3692f"
	demoObjects = "/api1/collections/" + demoCol + "/objects/"
)

var keepData = flag.Bool("keep", false, "keep the cluster's data folder and logs")

// startCluster builds the binaries and starts the clustered stack on free
// ports; it is stopped and its data removed when the test ends.
func startCluster(t *testing.T, mutate func(*localstack.ClusterConfig)) *localstack.Cluster {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp("", "taxiway-cluster-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // Postgres may run as the postgres user
		t.Fatal(err)
	}
	cfg := localstack.ClusterDefaults(root)
	cfg.DataDir = filepath.Join(tmp, "data")
	if cfg.TaxiwayBin, err = testbin.Taxiway(root, tmp); err != nil {
		t.Fatal(err)
	}
	if cfg.GatewayBin, err = testbin.Gateway(root, tmp); err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	if mutate != nil {
		mutate(&cfg)
	}
	var c *localstack.Cluster
	for attempt := 0; ; attempt++ {
		ports, err := localstack.FreePorts(8)
		if err != nil {
			t.Fatal(err)
		}
		cfg.FrontPort, cfg.GatewayPort, cfg.GatewayOpsPort, cfg.TokenLBPort = ports[0], ports[1], ports[2], ports[3]
		cfg.CorePort, cfg.CoreOpsPort, cfg.TokenPort, cfg.TokenOpsPort = ports[4], ports[5], ports[6], ports[7]
		c, err = localstack.StartCluster(context.Background(), cfg)
		if err == nil {
			break
		}
		// A port free on 127.0.0.1 may be taken on another loopback address.
		if attempt < 3 && strings.Contains(err.Error(), "is in use") {
			continue
		}
		dumpLogs(t, cfg.DataDir)
		os.RemoveAll(tmp)
		t.Fatalf("starting the cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			dumpLogs(t, cfg.DataDir)
		}
		if err := c.Stop(); err != nil {
			t.Errorf("stopping the cluster: %v", err)
		}
		if *keepData {
			t.Logf("data and logs kept in %s", tmp)
			return
		}
		os.RemoveAll(tmp)
	})
	return c
}

func dumpLogs(t *testing.T, dataDir string) {
	logs, _ := filepath.Glob(filepath.Join(dataDir, "logs", "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		if len(b) > 2500 {
			b = b[len(b)-2500:]
		}
		t.Logf("---- end of %s ----\n%s", filepath.Base(l), b)
	}
}

// httpClient is shared: keep-alive connections to the front, as real
// clients hold them.
var httpClient = &http.Client{Timeout: 60 * time.Second}

// result is one answer as a client sees it.
type result struct {
	status int
	header http.Header
	body   []byte
	err    error // transport error: no HTTP answer at all, or a cut one
	cut    bool  // the status arrived, the body was cut off
}

// call sends one request with auth applied.
func call(base, method, path string, auth func(*http.Request), body []byte) result {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return result{err: err}
	}
	req.Header.Set("Accept", taxiiType)
	if body != nil {
		req.Header.Set("Content-Type", taxiiType)
	}
	if auth != nil {
		auth(req)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b, err: err, cut: err != nil}
}

// unavailableOK reports whether r is the error the stack promises during a
// fault: 503, Retry-After, a TAXII (or token service) JSON error body.
func unavailableOK(r result) error {
	if r.err != nil {
		return fmt.Errorf("transport error: %v", r.err)
	}
	if r.status != http.StatusServiceUnavailable {
		return fmt.Errorf("status %d: %.300s", r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		return fmt.Errorf("503 without Retry-After: %.300s", r.body)
	}
	var e struct {
		HTTPStatus string `json:"http_status"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.HTTPStatus != "503" {
		return fmt.Errorf("503 whose body is not a JSON error with http_status \"503\": %.300s", r.body)
	}
	return nil
}

func basicAuth(user, password string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, password) }
}

func bearerAuth(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

// login gets a token at the front, retrying through 503s for up to 30 s.
func login(base, user, password string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("POST", base+"/management/auth", strings.NewReader("username="+user+"&password="+password))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := httpClient.Do(req)
		if err == nil {
			var out struct{ Token string }
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && json.Unmarshal(b, &out) == nil && out.Token != "" {
				return out.Token, nil
			}
			err = fmt.Errorf("login: status %d %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// envelope makes n new indicators and returns the body and their ids.
func envelope(n int) ([]byte, []string) {
	objs := make([]map[string]any, n)
	ids := make([]string, n)
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for i := range objs {
		ids[i] = "indicator--" + uuid.NewString()
		objs[i] = map[string]any{"type": "indicator", "spec_version": "2.1", "id": ids[i],
			"created": now, "modified": now, "pattern": "[ipv4-addr:value = '198.51.100." + strconv.Itoa(i%250) + "']",
			"pattern_type": "stix", "valid_from": now}
	}
	b, _ := json.Marshal(map[string]any{"objects": objs})
	return b, ids
}

// faultLog records every client-visible error with its time, and every
// error that breaks the promise (anything but a proper 503).
type faultLog struct {
	mu     sync.Mutex
	errors []time.Time
	broken []string
	// While a proxy in the path is killed, a response it was sending when
	// it died arrives cut off after its status line: no proxy in front of
	// it can turn that into a 503 (the status has already gone out). Those
	// are counted apart, and allowed only then.
	proxyDying bool
	cut        []string
}

func (l *faultLog) record(who string, r result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errors = append(l.errors, time.Now())
	if r.cut && l.proxyDying {
		l.cut = append(l.cut, who+": "+r.err.Error())
		return
	}
	if err := unavailableOK(r); err != nil {
		l.broken = append(l.broken, who+": "+err.Error())
	}
}

// killingProxy marks the time a proxy in the clients' path is being killed.
func (l *faultLog) killingProxy(dying bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.proxyDying = dying
}

// window returns how many errors happened in [from, to) and the time from
// `from` to the last of them.
func (l *faultLog) window(from, to time.Time) (int, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, last := 0, time.Duration(0)
	for _, e := range l.errors {
		if !e.Before(from) && e.Before(to) {
			n++
			last = max(last, e.Sub(from))
		}
	}
	return n, last
}

// retryAfter is how long a client waits after a 503: the header's seconds,
// capped so that the test measures the stack, not the client's patience.
func retryAfter(r result) time.Duration {
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err == nil && s > 0 {
		return min(time.Duration(s)*time.Second, time.Second)
	}
	return 500 * time.Millisecond
}

// workload is writers posting envelopes and pollers following next and
// added_after, through the front, until stop is closed.
type workload struct {
	base     string
	auths    []func(*http.Request) // clients take turns with these
	perPost  int
	log      *faultLog
	mu       sync.Mutex
	accepted map[string]int // id -> how many 202s covered it (retries may add)
	statuses []string
	posts    int
	postedAt []time.Time // when each 202 arrived
}

// longestStall is the longest time between two 202s (or from `from` to the
// first) within [from, to): how long writes stood still.
func (w *workload) longestStall(from, to time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev, longest := from, time.Duration(0)
	for _, at := range w.postedAt {
		if at.Before(from) || !at.Before(to) {
			continue
		}
		longest = max(longest, at.Sub(prev))
		prev = at
	}
	return longest
}

// writer posts envelopes until stop; an envelope that got an error is posted
// again until it gets its 202 (Add Objects is idempotent per id and version),
// as a TAXII client that wants its data in does.
func (w *workload) writer(n int, stop <-chan struct{}) {
	auth := w.auths[n%len(w.auths)]
	for {
		select {
		case <-stop:
			return
		default:
		}
		body, ids := envelope(w.perPost)
		giveUp := time.Now().Add(2 * time.Minute)
		for {
			if time.Now().After(giveUp) {
				w.log.record(fmt.Sprintf("writer %d", n), result{err: errors.New("no 202 for one envelope within 2 minutes")})
				return
			}
			r := call(w.base, "POST", demoObjects, auth, body)
			if r.err == nil && r.status == http.StatusAccepted {
				var st struct {
					ID           string `json:"id"`
					SuccessCount int    `json:"success_count"`
				}
				if err := json.Unmarshal(r.body, &st); err != nil || st.SuccessCount != len(ids) {
					w.log.record(fmt.Sprintf("writer %d", n), result{status: 202, body: r.body, err: fmt.Errorf("bad status resource: %.200s", r.body)})
					break
				}
				w.mu.Lock()
				for _, id := range ids {
					w.accepted[id]++
				}
				w.statuses = append(w.statuses, st.ID)
				w.posts++
				w.postedAt = append(w.postedAt, time.Now())
				w.mu.Unlock()
				break
			}
			w.log.record(fmt.Sprintf("writer %d POST", n), r)
			time.Sleep(retryAfter(r))
		}
	}
}

// poller pages through the collection until stop and then until it has
// caught up with want() objects (or the deadline), following next when
// useNext and re-polling with added_after otherwise (after a page without
// more, both re-poll with added_after). It returns every id it saw, in order.
func (w *workload) poller(n int, useNext bool, stop <-chan struct{}, want func() int, deadline time.Duration) []string {
	auth := w.auths[(n+1)%len(w.auths)]
	var seen []string
	var next, after, chainAfter string
	var stoppedAt time.Time
	for {
		select {
		case <-stop:
			if stoppedAt.IsZero() {
				stoppedAt = time.Now()
			}
		default:
		}
		if !stoppedAt.IsZero() && (len(seen) >= want() || time.Since(stoppedAt) > deadline) {
			return seen
		}
		path := demoObjects + "?limit=1000"
		if next == "" {
			chainAfter = after
		} else {
			path += "&next=" + next
		}
		if chainAfter != "" {
			path += "&added_after=" + chainAfter
		}
		r := call(w.base, "GET", path, auth, nil)
		if r.err != nil || r.status != http.StatusOK {
			w.log.record(fmt.Sprintf("poller %d GET", n), r)
			next = "" // a fresh query from the last position is always valid
			time.Sleep(retryAfter(r))
			continue
		}
		var env struct {
			More    bool   `json:"more"`
			Next    string `json:"next"`
			Objects []struct {
				ID string `json:"id"`
			} `json:"objects"`
		}
		if err := json.Unmarshal(r.body, &env); err != nil {
			w.log.record(fmt.Sprintf("poller %d GET", n), result{status: r.status, body: r.body, err: err})
			continue
		}
		for _, o := range env.Objects {
			seen = append(seen, o.ID)
		}
		if last := r.header.Get("X-TAXII-Date-Added-Last"); last != "" {
			after = last
		}
		next = ""
		if useNext && env.More {
			next = env.Next
		}
		if len(env.Objects) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (w *workload) acceptedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.accepted)
}
