//go:build cluster

package cluster

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

// TestClusterThroughPgBouncer: with a pgbouncer in transaction pooling mode
// in front of each Postgres node (`taxiway local -replicas 2 -pgbouncer`),
// every part works: logins, Basic and Bearer, Add Objects and its status,
// paging on the standby with next; and a pgbouncer killed with kill -9 is
// back within restartBound, with writes going through it again.
func TestClusterThroughPgBouncer(t *testing.T) {
	c := startCluster(t, func(cfg *localstack.ClusterConfig) { cfg.PgBouncer = true })
	base := c.FrontURL()
	token, err := login(base, "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	posted := map[string]bool{}
	for i, auth := range []func(*http.Request){bearerAuth(token), basicAuth("test", "test"), bearerAuth(token)} {
		if i == 1 {
			killBouncer(t, c, "pgbouncer-primary")
		}
		body, ids := envelope(500)
		r := call(base, "POST", demoObjects, auth, body)
		// Connections pooled to the killed bouncer fail once each: a
		// TAXII 503 with Retry-After, and the client sends again.
		for try := 0; r.status == http.StatusServiceUnavailable && r.header.Get("Retry-After") != "" && try < 20; try++ {
			time.Sleep(500 * time.Millisecond)
			r = call(base, "POST", demoObjects, auth, body)
		}
		if r.status != http.StatusAccepted {
			t.Fatalf("POST %d: status %d %s", i, r.status, r.body)
		}
		var st struct {
			ID           string `json:"id"`
			SuccessCount int    `json:"success_count"`
		}
		if err := json.Unmarshal(r.body, &st); err != nil || st.SuccessCount != len(ids) {
			t.Fatalf("POST %d: status resource %s", i, r.body)
		}
		if r := call(base, "GET", "/api1/status/"+st.ID+"/", auth, nil); r.status != http.StatusOK {
			t.Fatalf("status %s: %d %s", st.ID, r.status, r.body)
		}
		for _, id := range ids {
			posted[id] = true
		}
	}
	w := &workload{base: base, auths: []func(*http.Request){bearerAuth(token)}, log: &faultLog{}}
	done := make(chan struct{})
	close(done)
	seen := w.poller(0, true, done, func() int { return len(posted) }, 30*time.Second)
	if len(seen) != len(posted) {
		t.Fatalf("paging saw %d objects, %d were posted (errors: %v)", len(seen), len(posted), w.log.broken)
	}
	for _, id := range seen {
		if !posted[id] {
			t.Fatalf("paging returned %s, never posted", id)
		}
	}
}

// killBouncer kills a pgbouncer of the cluster as a crash would and waits
// until its supervisor has it back.
func killBouncer(t *testing.T, c *localstack.Cluster, instance string) {
	t.Helper()
	if err := killRestarted(context.Background(), t, c, instance, nil); err != nil {
		t.Fatal(err)
	}
}
