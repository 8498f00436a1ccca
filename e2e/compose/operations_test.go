//go:build compose

package compose

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// checkHealthyInOrder: every service up (migrate done), each started after
// what it depends on.
func checkHealthyInOrder(t *testing.T) {
	started := map[string]time.Time{}
	var migrateDone time.Time
	for _, c := range inspectAll(t, containers(t, "", true)...) {
		svc := c.service()
		switch {
		case svc == "migrate":
			if c.State.Status != "exited" || c.State.ExitCode != 0 {
				t.Errorf("migrate: %s, exit code %d", c.State.Status, c.State.ExitCode)
			}
			migrateDone = c.State.FinishedAt
		case c.State.Health == nil || c.State.Health.Status != "healthy":
			t.Errorf("%s: %+v, want healthy", c.Name, c.State.Health)
		}
		started[svc] = c.State.StartedAt
	}
	for _, dep := range []struct{ svc, after string }{
		{"migrate", "postgres"}, {"core", "migrate"}, {"tokenservice", "migrate"},
		{"gateway", "core"}, {"gateway", "tokenservice"},
	} {
		if !started[dep.svc].After(started[dep.after]) {
			t.Errorf("%s started at %s, not after %s (%s)", dep.svc, started[dep.svc], dep.after, started[dep.after])
		}
	}
	for _, svc := range []string{"core", "tokenservice"} {
		if started[svc].Before(migrateDone) {
			t.Errorf("%s started before migrate finished", svc)
		}
	}
}

// exec runs a taxiway command in the token service's container, as README's
// operations do (`docker compose exec tokenservice taxiway …`), with stdin.
func (s *stack) exec(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	full := append([]string{"compose", "--project-name", project, "--env-file", s.envFile, "-f", "docker-compose.yml",
		"exec", "-T", "tokenservice", "taxiway"}, args...)
	cmd := exec.Command("docker", full...)
	cmd.Dir = root
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("taxiway %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// disable: `taxiway account disable` refuses the account's Bearer token and
// its Basic credentials at the gateway within 2 s.
func (s *stack) disable(t *testing.T) {
	password := randomHex(t, 12)
	s.alicePassword = password
	s.exec(t, password+"\n", "account", "create", "alice")
	token := s.login(t, "alice", password)
	bearer, basic := "Bearer "+token, "basic alice:"+password
	for _, auth := range []string{bearer, basic} {
		s.expect(t, http.StatusOK, http.MethodGet, "/taxii2/", auth, "", nil)
	}
	s.exec(t, "", "account", "disable", "alice")
	done := time.Now()
	refused := map[string]time.Duration{}
	for time.Since(done) < 2*time.Second && len(refused) < 2 {
		for name, auth := range map[string]string{"Bearer": bearer, "Basic": basic} {
			if _, ok := refused[name]; ok {
				continue
			}
			resp, _, err := s.request(t, http.MethodGet, "/taxii2/", auth, "", nil)
			if err == nil && resp.StatusCode == http.StatusUnauthorized {
				refused[name] = time.Since(done)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, name := range []string{"Bearer", "Basic"} {
		d, ok := refused[name]
		if !ok {
			t.Errorf("%s still accepted 2 s after `account disable` returned", name)
			continue
		}
		fmt.Printf("  %s refused %.0f ms after `account disable` returned\n", name, float64(d.Microseconds())/1000)
	}
}

// underLoad runs a writer (one object per Add Objects) and a poller (Get
// Objects) through the gateway while action runs, until both have
// succeeded again for 2 s. Every failure must be a 5xx with Retry-After
// (502/503/504: the service is away; try again), never a transport error.
// It returns the ids of the objects the writer got 202 for.
func (s *stack) underLoad(t *testing.T, w walkthrough, action func(t *testing.T)) []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		mu          sync.Mutex
		accepted    []string
		statuses    = map[string]int{} // "writer 202", "poller 503"...
		failures    []string
		lastFailure time.Time
	)
	record := func(who string, resp *http.Response, body []byte, err error, ok int) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			failures = append(failures, fmt.Sprintf("%s: %v", who, err))
			lastFailure = time.Now()
			statuses[who+" error"]++
		case resp.StatusCode == ok:
			statuses[who+" "+strconv.Itoa(ok)]++
		default:
			lastFailure = time.Now()
			statuses[who+" "+strconv.Itoa(resp.StatusCode)]++
			retryable := resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504
			if !retryable || resp.Header.Get("Retry-After") == "" {
				failures = append(failures, fmt.Sprintf("%s: %d (Retry-After %q): %s", who, resp.StatusCode, resp.Header.Get("Retry-After"), body))
			}
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // writer
		defer wg.Done()
		for ctx.Err() == nil {
			id, obj := newIndicator(t)
			resp, body, err := s.request(t, http.MethodPost, "/api1/collections/"+demoCollection+"/objects/", "Bearer "+w.token, taxiiType, []byte(`{"objects":[`+string(obj)+`]}`))
			if err == nil && resp.StatusCode == http.StatusAccepted {
				if !bytes.Contains(body, []byte(`"success_count":1`)) {
					err = fmt.Errorf("202 without success: %s", body)
				} else {
					mu.Lock()
					accepted = append(accepted, id)
					mu.Unlock()
				}
			}
			record("writer", resp, body, err, http.StatusAccepted)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	go func() { // poller
		defer wg.Done()
		for ctx.Err() == nil {
			resp, body, err := s.request(t, http.MethodGet, "/api1/collections/"+demoCollection+"/objects/?limit=5", "Bearer "+w.token, "", nil)
			record("poller", resp, body, err, http.StatusOK)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	start := time.Now()
	action(t)
	actionDone := time.Now()
	// Recovery: 2 s without a failure, within 60 s of the action.
	recovered := false
	for time.Since(actionDone) < 60*time.Second {
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		quiet := time.Since(lastFailure) > 2*time.Second && time.Since(actionDone) > 2*time.Second
		mu.Unlock()
		if quiet {
			recovered = true
			break
		}
	}
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	var keys []string
	for k := range statuses {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var summary []string
	for _, k := range keys {
		summary = append(summary, fmt.Sprintf("%s ×%d", k, statuses[k]))
	}
	fmt.Printf("  action took %.1fs; %s\n", actionDone.Sub(start).Seconds(), strings.Join(summary, ", "))
	if !lastFailure.IsZero() && lastFailure.After(start) {
		fmt.Printf("  last failure %.1fs after the action began\n", lastFailure.Sub(start).Seconds())
	}
	for i, f := range failures {
		if i == 10 {
			t.Errorf("… and %d more", len(failures)-10)
			break
		}
		t.Errorf("failure not allowed under load: %s", f)
	}
	if !recovered {
		t.Errorf("no recovery within 60 s of the action")
	}
	s.checkAllPresent(t, w, accepted)
	return accepted
}

// downUpKeepsData: `docker compose down` then `up` keeps the objects, the
// accounts, the signing keys (a token from before still works, the JWKS is
// the same) and Caddy's local CA (volumes).
func (s *stack) downUpKeepsData(t *testing.T, w walkthrough, accepted []string) {
	jwks := s.expect(t, http.StatusOK, http.MethodGet, "/.well-known/jwks.json", "", "", nil)
	s.mustCompose(t, "down", "--timeout", "10")
	s.mustCompose(t, "up", "-d", "--wait", "--wait-timeout", "300")
	s.trust(t) // the same root must still verify the gateway's certificate…
	if again := s.expect(t, http.StatusOK, http.MethodGet, "/.well-known/jwks.json", "", "", nil); !bytes.Equal(jwks, again) {
		t.Errorf("the JWKS changed across down/up:\n%s\n%s", jwks, again)
	}
	s.expect(t, http.StatusOK, http.MethodGet, "/taxii2/", "Bearer "+w.token, "", nil)
	s.checkReadmeObject(t, w.token)
	s.checkAllPresent(t, w, accepted)
	// The disabled account stays disabled.
	if resp, _, err := s.request(t, http.MethodPost, "/management/auth", "", "application/json", []byte(`{"username":"alice","password":"`+s.alicePassword+`"}`)); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("alice after down/up: %v %v, want 401", resp, err)
	}
}

// scale: with three cores and two token services, the gateway spreads
// requests over every replica Docker's DNS returns.
func (s *stack) scale(t *testing.T) {
	s.mustCompose(t, "up", "-d", "--wait", "--wait-timeout", "300", "--scale", "core=3", "--scale", "tokenservice=2")
	for _, tc := range []struct {
		svc, network, ops, metric string
		replicas                  int
		send                      func(t *testing.T)
	}{
		{"core", "core", "9011", "taxiway_core_requests_total", 3, func(t *testing.T) {
			s.expect(t, http.StatusOK, http.MethodGet, "/taxii2/", "basic test:test", "", nil)
		}},
		{"tokenservice", "tokens", "9021", "taxiway_token_issued_total", 2, func(t *testing.T) {
			s.login(t, "test", "test")
		}},
	} {
		ids := containers(t, tc.svc, false)
		if len(ids) != tc.replicas {
			t.Fatalf("%d %s containers, want %d", len(ids), tc.svc, tc.replicas)
		}
		var addrs []string
		for _, c := range inspectAll(t, ids...) {
			addrs = append(addrs, c.NetworkSettings.Networks[project+"_"+tc.network].IPAddress)
		}
		counts := func() []float64 {
			var out []float64
			for _, a := range addrs {
				out = append(out, metricSum(t, probe(t, tc.network, "http", "http://"+a+":"+tc.ops+"/metrics"), tc.metric))
			}
			return out
		}
		before := counts()
		// Docker's DNS answers for the new replicas once they run; the
		// gateway looks again each second.
		deadline := time.Now().Add(30 * time.Second)
		for {
			for i := 0; i < 4*tc.replicas; i++ {
				tc.send(t)
			}
			after := counts()
			served := 0
			for i := range after {
				if after[i] > before[i] {
					served++
				}
			}
			if served == tc.replicas {
				fmt.Printf("  %s: %v requests per replica (%s)\n", tc.svc, diff(after, before), tc.metric)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: only %d of %d replicas served requests: %v", tc.svc, served, tc.replicas, diff(after, before))
			}
			time.Sleep(time.Second)
		}
	}
}

func diff(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

// metricSum adds up every series of a Prometheus counter in a probe's output.
func metricSum(t *testing.T, out, name string) float64 {
	t.Helper()
	status, body, _ := strings.Cut(out, "\n")
	if status != "200" {
		t.Fatalf("/metrics answered %q", out)
	}
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// downLeavesNothing: `down -v` removes every container, network and volume
// of the project.
func (s *stack) downLeavesNothing(t *testing.T) {
	s.mustCompose(t, "--profile", "monitoring", "down", "-v", "--remove-orphans", "--timeout", "10")
	label := "label=com.docker.compose.project=" + project
	for _, kind := range []string{"container", "network", "volume"} {
		args := []string{kind, "ls", "-q", "--filter", label}
		if kind == "container" {
			args = []string{"ps", "-aq", "--filter", label}
		}
		if left := strings.Fields(docker(t, args...)); len(left) > 0 {
			t.Errorf("down -v left %d %s(s): %v", len(left), kind, left)
		}
	}
}
