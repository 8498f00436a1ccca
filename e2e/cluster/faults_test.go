//go:build cluster

package cluster

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

// errorWindowBound is the longest a fault may keep causing client-visible
// errors, from the moment it is injected. The measured windows are in
// BENCHMARKS.md; this bound leaves room for a slow shared machine.
const errorWindowBound = 30 * time.Second

var faultsThroughBouncer = flag.Bool("faults-pgbouncer", false, "run TestFaults with a pgbouncer in front of each Postgres node")

// steady is how long the workload runs unharmed between faults.
const steady = 3 * time.Second

// restartBound is how soon a supervisor must have a killed process back
// and ready (its first restart waits 0.5 s; the rest is the process's own
// start on a shared machine).
const restartBound = 20 * time.Second

type fault struct {
	name string
	do   func(ctx context.Context, t *testing.T) error
}

// TestFaults: while three writers post 1,000-object envelopes and two
// pollers follow next and added_after through the front, kill -9 a core, a
// token service, a gateway and the Postgres primary by pid, as a crash
// would (their supervisors in `taxiway local` bring each back), and fail
// over to the standby with synchronous replication on.
// Afterwards every object that got a 202 is stored exactly once, each poller
// saw each of them exactly once, every status is readable, and every error a
// client saw was a TAXII JSON 503 with Retry-After, within a bounded window
// per fault.
func TestFaults(t *testing.T) {
	c := startCluster(t, func(cfg *localstack.ClusterConfig) { cfg.PgBouncer = *faultsThroughBouncer })
	base := c.FrontURL()
	ctx := context.Background()
	token, err := login(base, "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	flog := &faultLog{}
	w := &workload{base: base, auths: []func(*http.Request){bearerAuth(token), basicAuth("test", "test")},
		perPost: 1000, log: flog, accepted: map[string]int{}}

	stop := make(chan struct{})
	// The pollers stop once the writers have finished and they caught up.
	writersDone := make(chan struct{})
	var writers, pollers sync.WaitGroup
	for n := range 3 {
		writers.Add(1)
		go func() { defer writers.Done(); w.writer(n, stop) }()
	}
	go func() { writers.Wait(); close(writersDone) }()
	seen := make([][]string, 2)
	for n := range seen {
		pollers.Add(1)
		go func() {
			defer pollers.Done()
			seen[n] = w.poller(n, n == 0, writersDone, w.acceptedCount, 90*time.Second)
		}()
	}

	// checkAuth: logins, Basic and Bearer work while part of the stack is
	// down (each may meet a 503 for a request caught in flight).
	checkAuth := func(t *testing.T) error {
		for i := range 6 {
			r := call(base, "GET", "/taxii2/", bearerAuth(token), nil)
			if r.status != http.StatusOK {
				flog.record(fmt.Sprintf("bearer check %d", i), r)
			}
			r = call(base, "GET", "/api1/collections/", basicAuth("test", "test"), nil)
			if r.status != http.StatusOK {
				flog.record(fmt.Sprintf("basic check %d", i), r)
			}
		}
		if _, err := login(base, "test", "test"); err != nil {
			return fmt.Errorf("logging in: %w", err)
		}
		r := call(base, "GET", "/taxii2/", bearerAuth(token), nil)
		if r.status != http.StatusOK {
			return fmt.Errorf("Bearer: status %d %s", r.status, r.body)
		}
		r = call(base, "GET", "/taxii2/", basicAuth("test", "test"), nil)
		if r.status != http.StatusOK {
			return fmt.Errorf("Basic: status %d %s", r.status, r.body)
		}
		return nil
	}
	killed := func(instance string, whileDown func(*testing.T) error) func(context.Context, *testing.T) error {
		return func(ctx context.Context, t *testing.T) error { return killRestarted(ctx, t, c, instance, whileDown) }
	}
	faults := []fault{
		{"kill -9 core-1; its supervisor restarts it", killed(localstack.Instance(localstack.Core, 1), nil)},
		{"kill -9 tokenservice-1; its supervisor restarts it", killed(localstack.Instance(localstack.TokenService, 1), checkAuth)},
		{"kill -9 gateway-1; its supervisor restarts it", func(ctx context.Context, t *testing.T) error {
			flog.killingProxy(true)
			defer flog.killingProxy(false)
			return killed(localstack.Instance(localstack.Gateway, 1), checkAuth)(ctx, t)
		}},
		{"kill -9 the Postgres primary; its supervisor restarts it", killed("postgres-primary", nil)},
		{"fail over: primary stopped as by a crash, standby promoted (synchronous replication)", func(ctx context.Context, t *testing.T) error { return c.FailOver(ctx) }},
	}

	type measured struct {
		name     string
		from     time.Time
		took     time.Duration // injecting the fault (and restarting what it stopped)
		errors   int
		window   time.Duration
		stall    time.Duration
		posts    int
		accepted int
	}
	var report []measured
	time.Sleep(steady)
	for i, f := range faults {
		from := time.Now()
		w.mu.Lock()
		postsBefore, acceptedBefore := w.posts, len(w.accepted)
		w.mu.Unlock()
		if err := f.do(ctx, t); err != nil {
			close(stop)
			t.Fatalf("%s: %v", f.name, err)
		}
		took := time.Since(from)
		// Then wait until writes go through again, and a little longer.
		if err := waitWrites(w, postsBefore, 60*time.Second); err != nil {
			close(stop)
			t.Fatalf("%s: %v", f.name, err)
		}
		time.Sleep(steady)
		to := time.Now()
		if i == len(faults)-1 {
			to = to.Add(time.Hour) // the last fault's window runs to the end
		}
		n, win := flog.window(from, to)
		w.mu.Lock()
		posts, acc := w.posts-postsBefore, len(w.accepted)-acceptedBefore
		w.mu.Unlock()
		report = append(report, measured{f.name, from, took, n, win, w.longestStall(from, to), posts, acc})
	}
	close(stop)
	writers.Wait()
	pollers.Wait()

	// The last fault's window runs until the pollers have finished.
	last := &report[len(report)-1]
	last.errors, last.window = flog.window(last.from, time.Now().Add(time.Hour))

	var sb strings.Builder
	fmt.Fprintf(&sb, "| fault | injecting it took | client errors (all 503 + Retry-After) | error window (injection to last error) | longest write stall | 202s in the phase |\n|---|---|---|---|---|---|\n")
	for _, m := range report {
		fmt.Fprintf(&sb, "| %s | %.1f s | %d | %.1f s | %.1f s | %d envelopes (%d objects) |\n",
			m.name, m.took.Seconds(), m.errors, m.window.Seconds(), m.stall.Seconds(), m.posts, m.accepted)
	}
	t.Logf("fault windows:\n%s", sb.String())
	if p := os.Getenv("TAXIWAY_FAULTS_REPORT"); p != "" {
		_ = os.WriteFile(p, []byte(sb.String()), 0o644)
	}

	// Every error clients saw was a proper 503, and each fault's errors
	// stopped within the bound.
	flog.mu.Lock()
	for _, b := range flog.broken {
		t.Errorf("client saw an error that is not a TAXII 503 with Retry-After: %s", b)
	}
	for _, c := range flog.cut {
		t.Logf("a response cut off by the killed gateway (no 202 counted): %s", c)
	}
	flog.mu.Unlock()
	for _, m := range report {
		if m.window > errorWindowBound {
			t.Errorf("%s: errors for %v, bound %v", m.name, m.window, errorWindowBound)
		}
	}

	// Every accepted object is stored exactly once, on the promoted standby.
	w.mu.Lock()
	accepted := w.accepted
	statuses := w.statuses
	w.mu.Unlock()
	if len(accepted) == 0 {
		t.Fatal("no envelope was accepted")
	}
	conn, err := pgx.Connect(ctx, c.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	ids := make([]string, 0, len(accepted))
	for id := range accepted {
		ids = append(ids, id)
	}
	var stored, distinct int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT id) FROM taxii_objects WHERE collection_id = $1 AND id = ANY($2)`,
		demoCol, ids).Scan(&stored, &distinct); err != nil {
		t.Fatal(err)
	}
	if stored != len(ids) || distinct != len(ids) {
		t.Errorf("%d objects got a 202; stored: %d rows for %d distinct ids", len(ids), stored, distinct)
	}
	var total int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM taxii_objects WHERE collection_id = $1`, demoCol).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if total != len(ids) {
		t.Errorf("the collection holds %d objects, %d got a 202", total, len(ids))
	}

	// Every poller saw every accepted object exactly once.
	for n, s := range seen {
		how := []string{"next", "added_after"}[n]
		count := map[string]int{}
		for _, id := range s {
			count[id]++
		}
		missing, repeated, foreign := 0, 0, 0
		for id, k := range count {
			if k > 1 {
				repeated++
			}
			if accepted[id] == 0 {
				foreign++
			}
		}
		for id := range accepted {
			if count[id] == 0 {
				missing++
			}
		}
		if missing+repeated+foreign > 0 {
			t.Errorf("poller following %s: saw %d ids (%d entries); %d accepted objects missing, %d repeated, %d never accepted",
				how, len(count), len(s), missing, repeated, foreign)
		}
	}

	// No status was lost.
	lost := 0
	for _, id := range statuses {
		r := call(base, "GET", "/api1/status/"+id+"/", basicAuth("test", "test"), nil)
		var st struct {
			SuccessCount int `json:"success_count"`
		}
		if r.status != http.StatusOK || json.Unmarshal(r.body, &st) != nil || st.SuccessCount != w.perPost {
			lost++
			if lost < 5 {
				t.Errorf("status %s: %d %.200s", id, r.status, r.body)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d statuses lost", lost, len(statuses))
	}
	// Basic and Bearer work at the end.
	if err := checkAuth(t); err != nil {
		t.Error(err)
	}
	t.Logf("%d envelopes (%d objects) accepted; %d statuses checked", len(statuses), len(accepted), len(statuses))
}

// waitWrites waits until the writers got a 202 after posts202 did.
func waitWrites(w *workload, posts202 int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		w.mu.Lock()
		n := w.posts
		w.mu.Unlock()
		if n > posts202 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no envelope accepted within %v", limit)
}

// killRestarted kills an instance's process by its pid, from outside the
// supervisor (as an OOM kill or a crash would), runs whileDown (if any), and
// waits until the supervisor has it back within restartBound while the rest
// keeps serving.
func killRestarted(ctx context.Context, t *testing.T, c *localstack.Cluster, instance string, whileDown func(*testing.T) error) error {
	pid := c.PID(instance)
	if pid == 0 {
		return fmt.Errorf("%s is not running", instance)
	}
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill -9 %d (%s): %w", pid, instance, err)
	}
	if whileDown != nil {
		if err := whileDown(t); err != nil {
			return fmt.Errorf("with %s killed: %w", instance, err)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, restartBound)
	defer cancel()
	again, err := c.WaitRestarted(wctx, instance, pid)
	if err != nil {
		return fmt.Errorf("after kill -9 of %s: %w", instance, err)
	}
	t.Logf("%s: pid %d killed, pid %d ready %.1f s later", instance, pid, again, time.Since(killedAt).Seconds())
	return nil
}
