package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

// TestTokenExpires: a Bearer token works until exp (plus the gateway's
// leeway) and is refused after it.
func TestTokenExpires(t *testing.T) {
	token := login(t, "test", "test")
	var claims struct{ Iat, Exp int64 }
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil {
		t.Fatalf("token payload unreadable: %v", err)
	}
	if claims.Exp-claims.Iat != tokenTTL {
		t.Fatalf("exp - iat = %d, want the configured %d", claims.Exp-claims.Iat, tokenTTL)
	}
	exp := time.Unix(claims.Exp, 0)
	c := bearer(t, token)
	c.json("GET", "/taxii2/", nil, http.StatusOK)

	deadline := exp.Add(gatewayLeeway + 10*time.Second)
	for {
		r, _ := c.do("GET", "/taxii2/", nil)
		if r.StatusCode == http.StatusUnauthorized {
			if now := time.Now(); now.Before(exp) {
				t.Fatalf("token refused %v before its exp", exp.Sub(now))
			}
			return
		}
		if r.StatusCode != http.StatusOK {
			t.Fatalf("status %d while waiting for expiry", r.StatusCode)
		}
		if time.Now().After(deadline) {
			t.Fatalf("token still accepted %v after exp (leeway at most %v)", time.Since(exp), gatewayLeeway)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// TestTokenServiceDown: Basic logins that need an exchange get 503 (not
// 401: the credentials may be right), while Bearer tokens keep working from
// the gateway's cached keys.
func TestTokenServiceDown(t *testing.T) {
	ensureOutsider(t)
	token := login(t, "test", "test")
	if err := stack.StopService(localstack.TokenService); err != nil {
		t.Fatal(err)
	}
	restarted := false
	t.Cleanup(func() { // leave the stack whole for the tests after this one
		if !restarted {
			if err := stack.StartService(context.Background(), localstack.TokenService); err != nil {
				t.Errorf("restarting the token service: %v", err)
			}
		}
	})

	bearer(t, token).json("GET", "/taxii2/", nil, http.StatusOK)
	// Credentials the gateway has not cached need the token service.
	r, b := basic(t, "outsider", "not-cached-"+uuid4()).do("GET", "/taxii2/", nil)
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Basic with the token service down: status %d %s, want 503", r.StatusCode, b)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}

	restarted = true
	if err := stack.StartService(context.Background(), localstack.TokenService); err != nil {
		t.Fatal(err)
	}
	basic(t, "outsider", "outsider-pw").json("GET", "/taxii2/", nil, http.StatusOK)
}

// TestPostgresRestartLosesNoAcceptedObject writes continuously while
// Postgres stops and starts again: requests fail while it is down, service
// is full afterwards, and every object the core accepted (202, counted as a
// success) is there.
func TestPostgresRestartLosesNoAcceptedObject(t *testing.T) {
	c := basic(t, "test", "test")
	c.json("GET", "/taxii2/", nil, http.StatusOK) // warm the Basic cache

	var (
		mu          sync.Mutex
		accepted    []string
		failures    int
		badFailures []string
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000; i++ { // bounded even if stop never comes
			select {
			case <-stop:
				return
			default:
			}
			batch := []any{}
			ids := []string{}
			for range 5 {
				o := indicator(time.Now())
				batch = append(batch, o)
				ids = append(ids, o["id"].(string))
			}
			r, b := c.do("POST", demoObjects, map[string]any{"objects": batch})
			mu.Lock()
			if r.StatusCode == http.StatusAccepted && strings.Contains(string(b), `"success_count":5`) {
				accepted = append(accepted, ids...)
			} else {
				failures++
				// A dependency failure: 503 with Retry-After and a TAXII body, never a 500.
				if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" ||
					!strings.Contains(string(b), `"http_status":"503"`) {
					badFailures = append(badFailures, fmt.Sprintf("%d %q %s", r.StatusCode, r.Header.Get("Retry-After"), b))
				}
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()

	counts := func() (ok, failed int) {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted), failures
	}
	waitFor(t, 10*time.Second, "writes accepted before the stop", func() bool { ok, _ := counts(); return ok >= 10 })
	if err := stack.StopPostgres(); err != nil {
		t.Fatal(err)
	}
	_, before := counts()
	waitFor(t, 10*time.Second, "writes refused while Postgres is down", func() bool { _, f := counts(); return f >= before+3 })
	_, downFailures := counts()
	if err := stack.StartPostgres(context.Background()); err != nil {
		t.Fatal(err)
	}
	okBefore, _ := counts()
	waitFor(t, 30*time.Second, "writes accepted after the restart", func() bool { ok, _ := counts(); return ok >= okBefore+10 })
	close(stop)
	wg.Wait()

	if downFailures == 0 {
		t.Error("no request failed while Postgres was down")
	}
	for _, f := range badFailures {
		t.Errorf("failure while Postgres was away: %s", f)
	}
	// Full service afterwards.
	c.json("POST", demoObjects, map[string]any{"objects": []any{indicator(time.Now())}}, http.StatusAccepted)
	if len(accepted) == 0 {
		t.Fatal("nothing was accepted")
	}
	found := map[string]bool{}
	for start := 0; start < len(accepted); start += 50 {
		chunk := accepted[start:min(start+50, len(accepted))]
		q := url.Values{"match[id]": {strings.Join(chunk, ",")}, "limit": {"100"}}
		env, _ := c.json("GET", demoObjects+"?"+q.Encode(), nil, http.StatusOK)
		objs, _ := env["objects"].([]any)
		for _, o := range objs {
			found[o.(map[string]any)["id"].(string)] = true
		}
	}
	for _, id := range accepted {
		if !found[id] {
			t.Errorf("accepted object %s is missing after the restart", id)
		}
	}
	t.Logf("%d objects accepted, %d requests failed (%d while down)", len(accepted), failures, downFailures)
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKilledServicesComeBack: `taxiway local` supervises its processes: a
// core and a gateway killed with kill -9 by pid, from outside the
// supervisor, are started again within seconds, and the stack serves as
// before.
func TestKilledServicesComeBack(t *testing.T) {
	for _, svc := range []string{localstack.Core, localstack.Gateway} {
		pid := stack.PID(svc)
		if pid == 0 {
			t.Fatalf("%s is not running", svc)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		for {
			if now := stack.PID(svc); now != 0 && now != pid {
				t.Logf("%s: pid %d killed, pid %d ready %v later", svc, pid, now, time.Since(killed))
				break
			}
			if time.Since(killed) > 20*time.Second {
				t.Fatalf("%s not back 20 s after kill -9 of pid %d", svc, pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	basic(t, "test", "test").json("GET", "/taxii2/", nil, http.StatusOK)
}
