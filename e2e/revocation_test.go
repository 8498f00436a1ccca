package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

// revocationBound is the README's bound: a revocation reaches every
// gateway within this long after the admin command returns. exchangeBound
// is for cached Basic credentials of an account that is not disabled (a new
// password, new groups): the gateway then asks the token service again,
// which costs a password hash (Argon2id, 64 MiB) per gateway, queued for
// the hash slots of a machine shared with other tests.
const (
	revocationBound = 2 * time.Second
	exchangeBound   = revocationBound + 8*time.Second
)

var (
	secondGateway     string
	secondGatewayOnce sync.Once
	secondGatewayErr  error
)

// gateways are the stack's gateway and a second gateway process (a replica
// behind a load balancer), started once for this test binary.
func gateways(t *testing.T) []string {
	t.Helper()
	secondGatewayOnce.Do(func() {
		ports, err := localstack.FreePorts(2)
		if err != nil {
			secondGatewayErr = err
			return
		}
		if secondGatewayErr = stack.StartGateway(context.Background(), "gateway2", ports[0], ports[1]); secondGatewayErr == nil {
			secondGateway = stack.GatewayURLOf("gateway2")
		}
	})
	if secondGatewayErr != nil {
		t.Fatalf("starting a second gateway: %v", secondGatewayErr)
	}
	return []string{stack.GatewayURL(), secondGateway}
}

// statusOf sends GET /taxii2/ to the gateway at base with the
// Authorization value auth and returns the status.
func statusOf(base, auth string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/taxii2/", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", taxiiType)
	req.Header.Set("Authorization", auth)
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func basicValue(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// loginAt logs in at the gateway base and returns the token.
func loginAt(t *testing.T, base, user, password string) string {
	t.Helper()
	resp, err := httpClient.Post(base+"/management/auth", "application/x-www-form-urlencoded",
		strings.NewReader("username="+user+"&password="+password))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != 200 {
		t.Fatalf("login %s at %s: %d %v", user, base, resp.StatusCode, err)
	}
	return body.Token
}

// payload decodes a token's claims without checking them.
func payload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err != nil || json.Unmarshal(b, &m) != nil {
		t.Fatalf("token payload unreadable: %v", err)
	}
	return m
}

// expectEverywhere waits until every (gateway, Authorization) pair answers
// want, each for at most bound from now (pairs are polled concurrently),
// and returns how long the slowest took.
func expectEverywhere(t *testing.T, bound time.Duration, want int, auths ...string) time.Duration {
	t.Helper()
	start := time.Now()
	gws := gateways(t)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		slowest time.Duration
		fails   []string
	)
	for _, gw := range gws {
		for _, a := range auths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					got, err := statusOf(gw, a)
					if err == nil && got == want {
						mu.Lock()
						slowest = max(slowest, time.Since(start))
						mu.Unlock()
						return
					}
					if time.Since(start) > bound {
						mu.Lock()
						fails = append(fails, fmt.Sprintf("%s with %.16s...: %d (%v) after %v, want %d", gw, a, got, err, time.Since(start), want))
						mu.Unlock()
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatal(strings.Join(fails, "\n"))
	}
	return slowest
}

// TestRevocationReachesEveryGateway: with two gateway processes, disabling
// an account refuses its Bearer tokens and its cached Basic credentials at
// both within the bound; enabling it again and logging in works; a password
// change, a group change, a single-token revocation and revoking all tokens
// of the account do the same for the tokens they void, and nothing else.
func TestRevocationReachesEveryGateway(t *testing.T) {
	gws := gateways(t)
	const user = "revokee"
	pw := "first-password"
	taxiway(t, pw+"\n", "account", "create", "-groups", "readers", user)
	bas := basicValue(user, pw)
	ready := func() (string, string) {
		t.Helper()
		tok := loginAt(t, gws[0], user, pw)
		b := "Bearer " + tok
		// Both gateways verify the token and cache the Basic exchange.
		expectEverywhere(t, exchangeBound, http.StatusOK, b, basicValue(user, pw))
		return tok, b
	}

	// Disable: old Bearer and cached Basic are refused at both gateways.
	_, b := ready()
	taxiway(t, "", "account", "disable", user)
	took := expectEverywhere(t, revocationBound, http.StatusUnauthorized, b, bas)
	t.Logf("disable: Bearer and cached Basic refused at both gateways %v after the command returned", took)
	// Enable, log in again: works at both.
	taxiway(t, "", "account", "enable", user)
	_, b = ready()

	// Password change: old token and old password refused, new password works.
	taxiway(t, "second-password\n", "account", "passwd", user)
	took = expectEverywhere(t, revocationBound, http.StatusUnauthorized, b)
	t.Logf("password change: old Bearer token refused at both gateways after %v", took)
	took = expectEverywhere(t, exchangeBound, http.StatusUnauthorized, bas)
	t.Logf("password change: old Basic credentials refused at both gateways after %v (one exchange each)", took)
	pw = "second-password"
	bas = basicValue(user, pw)
	tok, b := ready()
	if g := payload(t, tok)["groups"]; len(g.([]any)) != 1 || g.([]any)[0] != "readers" {
		t.Fatalf("groups before the change: %v", g)
	}

	// Group change: the old token (old groups) is refused; a new one
	// carries the new groups; Basic exchanges again and works.
	taxiway(t, "", "account", "groups", user, "writers")
	expectEverywhere(t, revocationBound, http.StatusUnauthorized, b)
	expectEverywhere(t, exchangeBound, http.StatusOK, bas)
	tok, b = ready()
	if g := payload(t, tok)["groups"]; len(g.([]any)) != 1 || g.([]any)[0] != "writers" {
		t.Fatalf("groups after the change: %v", g)
	}

	// One token by jti: refused; another token of the account is not.
	other := "Bearer " + loginAt(t, gws[1], user, pw)
	expectEverywhere(t, revocationBound, http.StatusOK, other)
	taxiway(t, "", "token", "revoke", "-jti", payload(t, tok)["jti"].(string))
	expectEverywhere(t, revocationBound, http.StatusUnauthorized, b)
	expectEverywhere(t, exchangeBound, http.StatusOK, other, bas)

	// Every token of the account: refused; logging in again works.
	taxiway(t, "", "token", "revoke", "-user", user)
	expectEverywhere(t, revocationBound, http.StatusUnauthorized, other)
	ready()

	// Delete: everything refused, Basic included.
	taxiway(t, "", "account", "delete", user)
	expectEverywhere(t, revocationBound, http.StatusUnauthorized, other, bas)

	// Created again under the same name: it works at once.
	taxiway(t, "third-password\n", "account", "create", user)
	expectEverywhere(t, exchangeBound, http.StatusOK, basicValue(user, "third-password"))

	// Another account was never touched.
	test := "Bearer " + loginAt(t, gws[0], "test", "test")
	expectEverywhere(t, exchangeBound, http.StatusOK, test, basicValue("test", "test"))
}

// TestCoreRefusesUnsignedIdentity: in the default local stack, a local
// process that sends identity headers straight to the core, the admin group
// included, is refused; only the gateway's signed headers are believed.
func TestCoreRefusesUnsignedIdentity(t *testing.T) {
	for _, h := range []map[string]string{
		{"X-Authenticated-User": "test", "X-Authenticated-Groups": "taxiway-admin"},
		{"X-Authenticated-User": "test"},
		{"X-Authenticated-User": "test", "X-Authenticated-Groups": "taxiway-admin",
			"X-Authenticated-Signature": "v1;t=" + strconv.FormatInt(time.Now().Unix(), 10) + ";s=AAAA"},
	} {
		for _, path := range []string{"/taxii2/", demoRoot + "collections/", demoObjects} {
			req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(corePort)+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", taxiiType)
			for k, v := range h {
				req.Header.Set(k, v)
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("straight to the core %s with %v: %d %s, want 401", path, h, resp.StatusCode, body)
			}
		}
	}
	// Through the gateway, the same user is served.
	basic(t, "test", "test").json("GET", demoObjects, nil, http.StatusOK)
}

// TestDisabledAndDeletedCredentialsRateLimited: once every gateway knows an
// account is disabled, or deleted, its Basic credentials still count as
// failed logins at the token service: after the per-pair limit (10) the
// gateway answers 429, as for any wrong password.
func TestDisabledAndDeletedCredentialsRateLimited(t *testing.T) {
	gws := gateways(t)
	const perPair = 10 // tokenservice.DefaultConfig's RateLimit.PerPair
	var wg sync.WaitGroup
	for _, change := range []string{"disable", "delete"} {
		user, pw := "limited-"+change, "limited-password"
		taxiway(t, pw+"\n", "account", "create", user)
		bearer := "Bearer " + loginAt(t, gws[0], user, pw)
		taxiway(t, "", "account", change, user)
		// The feed has reached the gateway: it knows the account is gone.
		expectEverywhere(t, revocationBound, http.StatusUnauthorized, bearer)
		wg.Go(func() {
			var got []int
			for range perPair + 1 {
				status, err := statusOf(gws[0], basicValue(user, pw))
				if err != nil {
					t.Error(err)
					return
				}
				got = append(got, status)
			}
			for i, s := range got {
				want := http.StatusUnauthorized
				if i == perPair {
					want = http.StatusTooManyRequests
				}
				if s != want {
					t.Errorf("%sd account, Basic attempt %d: %d, want %d (all: %v)", change, i+1, s, want, got)
					return
				}
			}
		})
	}
	wg.Wait()
}
