package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

// The README's fronting example and what the test puts in place of its
// placeholders (README says so under the block).
const (
	frontingMarker  = "<!-- e2e/fronting_test.go runs the next caddyfile block"
	frontSite       = "taxii.example.com"
	frontTokens     = "tokens.internal:9020"
	frontLegacy     = "https://legacy-taxii.internal"
	frontBasicEnv   = "LEGACY_TAXII_BASIC"
	legacyService   = "legacy-svc"
	legacyRoot      = "/legacy/"
	legacyCol       = "5b0f2c34-8d7e-4c61-9a43-2f6d1e8b7c90"
	legacyObjects   = legacyRoot + "collections/" + legacyCol + "/objects/"
	frontingUser    = "fronted-alice"
	frontingRevoked = "fronted-bob"
	frontingPass    = "fronting-password-1"
	legacyIndicator = "indicator--3f0c1d5e-6a7b-4c8d-9e0f-1a2b3c4d5e6f"
)

// readmeFrontingCaddyfile returns the caddyfile block README marks as the
// fronting example.
func readmeFrontingCaddyfile(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), frontingMarker)
	if !ok {
		t.Fatalf("README.md has no %q", frontingMarker)
	}
	_, rest, ok = strings.Cut(rest, "```caddyfile\n")
	if !ok {
		t.Fatal("no caddyfile block after README's fronting marker")
	}
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("README's fronting block does not end")
	}
	return block
}

// TestFrontingAsInREADME runs README's fronting Caddyfile in front of a
// second TAXII server: a gateway of the stack's own Caddyfile and the core,
// which check the service account with their real Basic authentication
// (the token service's exchange and Argon2id). The service account alone
// may read the backend's collection, so a client credential that leaked
// through would not be served there either.
func TestFrontingAsInREADME(t *testing.T) {
	ctx := context.Background()
	svcPass := "service-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	hash, svcHash := passwordHash(t, frontingPass), passwordHash(t, svcPass)
	syncYAML(t, fmt.Sprintf(`api_roots:
  - name: legacy
    title: The fronted server's API root
    collections:
      - id: %s
        title: Fronted collection
        grants:
          - {to: "user:%s", read: true, write: true}
accounts:
  - {username: %s, password_hash: %q}
  - {username: %s, password_hash: %q}
  - {username: %s, password_hash: %q}
`, legacyCol, legacyService, legacyService, svcHash, frontingUser, hash, frontingRevoked, hash))

	ports, err := localstack.FreePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	// The backend: another gateway process of the stack's Caddyfile.
	if err := stack.StartGateway(ctx, "legacy", ports[0], ports[1]); err != nil {
		t.Fatalf("starting the backend: %v", err)
	}
	t.Cleanup(func() { _ = stack.StopService("legacy") })

	// The front: README's block, placeholders replaced.
	block := readmeFrontingCaddyfile(t)
	caddyfile := func(block string, sitePort int) string {
		for old, repl := range map[string]string{
			frontSite:   "http://127.0.0.1:" + strconv.Itoa(sitePort),
			frontTokens: stack.TokenServiceAddr(),
			frontLegacy: stack.GatewayURLOf("legacy"),
		} {
			if !strings.Contains(block, old) {
				t.Fatalf("README's fronting block no longer holds %q (update the test and README's note)", old)
			}
			block = strings.ReplaceAll(block, old, repl)
		}
		if !strings.Contains(block, "{env."+frontBasicEnv+"}") {
			t.Fatalf("README's fronting block does not read %s", frontBasicEnv)
		}
		path := filepath.Join(t.TempDir(), "Caddyfile")
		if err := os.WriteFile(path, []byte(block), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	svcBasic := base64.StdEncoding.EncodeToString([]byte(legacyService + ":" + svcPass))
	if err := stack.StartGatewayConfig(ctx, "front", caddyfile(block, ports[2]), ports[2], frontBasicEnv+"="+svcBasic); err != nil {
		t.Fatalf("starting README's fronting gateway: %v", err)
	}
	t.Cleanup(func() { _ = stack.StopService("front") })
	front := frontClient{t: t, base: stack.GatewayURLOf("front")}

	// Good Basic and Bearer work, reads and writes, on every route. The
	// stack's tokens live seconds: a Bearer client logs in again early.
	var token string
	var tokenAt time.Time
	good := map[string]func() string{
		"Basic": func() string { return basicValue(frontingUser, frontingPass) },
		"Bearer": func() string {
			if time.Since(tokenAt) > tokenTTL*time.Second/2 {
				token, tokenAt = loginAt(t, stack.GatewayURL(), frontingUser, frontingPass), time.Now()
			}
			return "Bearer " + token
		},
	}
	spoof := http.Header{
		"X-Authenticated-User":      {"mallory"},
		"X-Authenticated-Groups":    {"taxiway-admin"},
		"X_Authenticated_User":      {"mallory"},
		"X-Authenticated-Signature": {"v1;t=1;s=forged"},
	}
	envelope := map[string]any{"objects": []any{map[string]any{
		"type": "indicator", "spec_version": "2.1", "id": legacyIndicator,
		"created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
		"pattern": "[ipv4-addr:value = '198.51.100.7']", "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z",
	}}}
	res, body := front.do("POST", legacyObjects, good["Basic"](), spoof, envelope)
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("POST through the front with Basic: %d %s", res.StatusCode, body)
	}
	var status struct{ ID string }
	_ = json.Unmarshal(body, &status)
	routes := []string{
		"/taxii2/", legacyRoot, legacyRoot + "collections/", legacyRoot + "collections/" + legacyCol + "/",
		legacyObjects, legacyRoot + "collections/" + legacyCol + "/manifest/",
		legacyObjects + legacyIndicator + "/", legacyObjects + legacyIndicator + "/versions/",
		legacyRoot + "status/" + status.ID + "/",
	}
	for scheme, auth := range good {
		for _, path := range routes {
			if res, body := front.do("GET", path, auth(), spoof, nil); res.StatusCode != http.StatusOK {
				t.Errorf("%s GET %s: %d %s", scheme, path, res.StatusCode, body)
			}
		}
	}

	// The backend never saw a client's Authorization or identity header:
	// each request it logged was authenticated as the service account
	// (the client's credentials name another user, or none the backend
	// knows), and carries no spoofed value.
	front.checkBackendLog(stack.LogPath("legacy"), spoof)

	// Revocation reaches the front within 2 s of the admin command.
	bobBasic := basicValue(frontingRevoked, frontingPass)
	bobBearer := "Bearer " + loginAt(t, stack.GatewayURL(), frontingRevoked, frontingPass)
	for _, auth := range []string{bobBasic, bobBearer} {
		if res, body := front.do("GET", legacyObjects, auth, nil, nil); res.StatusCode != http.StatusOK {
			t.Fatalf("before the revocation: %d %s", res.StatusCode, body)
		}
	}
	taxiway(t, "", "account", "disable", frontingRevoked)
	disabled := time.Now()
	for _, auth := range []string{bobBasic, bobBearer} {
		for front.status(legacyObjects, auth) != http.StatusUnauthorized {
			if time.Since(disabled) > revocationBound {
				t.Fatalf("%.12s... still accepted %v after the account was disabled", auth, revocationBound)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("a disabled account was refused at the front %v after the command returned", time.Since(disabled).Round(time.Millisecond))

	// Bad credentials, and none, on every route and spelling: 401 with a
	// TAXII body and both challenges, and the backend is not reached.
	bad := map[string]string{
		"none":            "",
		"garbage token":   "Bearer not-a-valid-token",
		"malformed basic": "Basic %%%",
		"empty bearer":    "Bearer ",
		"disabled basic":  bobBasic,
		"revoked bearer":  bobBearer,
	}
	paths := append(routes, "/taxii2/./", "/taxii2/%2e/", "//taxii2/", "/TAXII2/", legacyRoot+"collections/../collections/")
	time.Sleep(300 * time.Millisecond) // the backend logs a request just after answering it
	backendBefore := front.backendRequests(stack.LogPath("legacy"))
	for i, path := range paths {
		// A wrong password per path, each for another user, and the
		// disabled account's on every third: the token service counts
		// both as failed logins and answers the 11th for a name 429.
		bad["wrong password"] = basicValue(fmt.Sprintf("fronted-nobody-%d", i), "wrong")
		for name, auth := range bad {
			if name == "disabled basic" && i%3 != 0 {
				continue
			}
			res, body := front.do("GET", path, auth, spoof, nil)
			front.checkRefused(name+" on "+path, res, body)
		}
		res, body := front.do("DELETE", legacyObjects+legacyIndicator+"/", bad["garbage token"], nil, nil)
		front.checkRefused("DELETE with a garbage token", res, body)
	}
	if after := front.backendRequests(stack.LogPath("legacy")); after != backendBefore {
		t.Errorf("refused requests reached the backend: %d logged there, want %d", after, backendBefore)
	}

	// caddymodule/README's public discovery, added to the same block as it
	// says: discovery without credentials only, plainly spelled.
	ports, err = localstack.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	public := caddyfile(publicDiscoveryCaddyfile(t, block), ports[0])
	if err := stack.StartGatewayConfig(ctx, "front-public", public, ports[0], frontBasicEnv+"="+svcBasic); err != nil {
		t.Fatalf("starting the fronting gateway with a public discovery: %v", err)
	}
	t.Cleanup(func() { _ = stack.StopService("front-public") })
	pub := frontClient{t: t, base: stack.GatewayURLOf("front-public")}
	if res, body := pub.do("GET", "/taxii2/", "", spoof, nil); res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"title"`) {
		t.Fatalf("public discovery without credentials: %d %s", res.StatusCode, body)
	}
	for _, path := range []string{"/taxii2/./", "/taxii2/%2e/", "//taxii2/", "/x/../taxii2/", legacyRoot, legacyObjects} {
		res, body := pub.do("GET", path, "", nil, nil)
		pub.checkRefused("public discovery: no credentials on "+path, res, body)
	}
	res, body = pub.do("POST", "/taxii2/", "", nil, envelope)
	pub.checkRefused("public discovery: POST without credentials", res, body)
	for name, auth := range bad {
		if name == "none" {
			continue
		}
		for _, path := range []string{"/taxii2/", "/TAXII2/", "/taxii2/%2e/"} {
			if name == "disabled basic" && path != "/taxii2/" {
				continue // a failed login each, as above
			}
			res, body := pub.do("GET", path, auth, nil, nil)
			pub.checkRefused("public discovery: "+name+" on "+path, res, body)
		}
	}
	for scheme, auth := range good {
		if res, body := pub.do("GET", "/taxii2/", auth(), nil, nil); res.StatusCode != http.StatusOK {
			t.Errorf("public discovery with %s: %d %s", scheme, res.StatusCode, body)
		}
	}

	// A stopped backend: the TAXII 502 with Retry-After, not an empty body.
	if err := stack.StopService("legacy"); err != nil {
		t.Fatal(err)
	}
	res, body = front.do("GET", legacyObjects, good["Basic"](), nil, nil)
	checkTAXIIError(t, "backend stopped", res, body, http.StatusBadGateway)
	if res.Header.Get("Retry-After") == "" {
		t.Error("backend stopped: 502 without Retry-After")
	}
}

// publicDiscoveryCaddyfile adds caddymodule/README's public discovery (its
// @discovery matcher and `skip @discovery`) to block, as that README says.
func publicDiscoveryCaddyfile(t *testing.T, block string) string {
	t.Helper()
	b, err := os.ReadFile("../caddymodule/README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## Public paths (skip)")
	if !ok {
		t.Fatal("caddymodule/README.md has no section Public paths (skip)")
	}
	_, rest, _ = strings.Cut(rest, "```caddyfile\n")
	snippet, _, _ := strings.Cut(rest, "```")
	start := strings.Index(snippet, "\t@discovery {\n")
	end := strings.Index(snippet, "\n\t}\n")
	if start < 0 || end < start || !strings.Contains(snippet, "\t\tskip @discovery\n") {
		t.Fatalf("caddymodule/README's public discovery is not a @discovery matcher and skip @discovery:\n%s", snippet)
	}
	matcher := snippet[start : end+len("\n\t}\n")]
	if !strings.Contains(block, "\ttaxii_auth {\n") {
		t.Fatal("README's fronting block has no taxii_auth block")
	}
	return strings.Replace(block, "\ttaxii_auth {\n", matcher+"\ttaxii_auth {\n\t\tskip @discovery\n", 1)
}

// frontClient sends requests to README's fronting gateway, each marked so
// that the backend's access log shows which of them arrived.
type frontClient struct {
	t    *testing.T
	base string
}

const frontMarkerHeader = "X-Fronting-Test"

func (c frontClient) do(method, path, auth string, extra http.Header, body any) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd) // path as written: %2e stays %2e
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	req.Header.Set("Accept", taxiiType)
	req.Header.Set(frontMarkerHeader, "1")
	if body != nil {
		req.Header.Set("Content-Type", taxiiType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return res, b
}

func (c frontClient) status(path, auth string) int {
	res, _ := c.do("GET", path, auth, nil, nil)
	return res.StatusCode
}

func (c frontClient) checkRefused(what string, res *http.Response, body []byte) {
	c.t.Helper()
	if res.StatusCode != http.StatusUnauthorized {
		c.t.Errorf("%s: %d %s, want 401", what, res.StatusCode, body)
		return
	}
	if got := res.Header.Get("WWW-Authenticate"); got != `Bearer realm="taxii", Basic realm="taxii"` {
		c.t.Errorf("%s: WWW-Authenticate %q", what, got)
	}
	checkTAXIIError(c.t, what, res, body, http.StatusUnauthorized)
}

// backendEntry is what the check needs of a Caddy access log line.
type backendEntry struct {
	Request struct {
		Method  string              `json:"method"`
		URI     string              `json:"uri"`
		Headers map[string][]string `json:"headers"`
	} `json:"request"`
	UserID string `json:"user_id"`
	Status int    `json:"status"`
}

// backendEntries reads the backend's access log entries of the front's
// requests.
func (c frontClient) backendEntries(path string) []backendEntry {
	c.t.Helper()
	f, err := os.Open(path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer f.Close()
	var out []backendEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e backendEntry
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Request.Headers[frontMarkerHeader] == nil {
			continue
		}
		out = append(out, e)
	}
	return out
}

func (c frontClient) backendRequests(path string) int { return len(c.backendEntries(path)) }

// checkBackendLog: every request of the front's the backend logged was
// authenticated there as the service account, with one Authorization
// header (Caddy logs it redacted), and no header holding a spoofed value.
func (c frontClient) checkBackendLog(path string, spoof http.Header) {
	c.t.Helper()
	entries := c.backendEntries(path)
	if len(entries) == 0 {
		c.t.Fatalf("the backend's log %s shows none of the front's requests", path)
	}
	spoofed := map[string]bool{}
	for _, vs := range spoof {
		for _, v := range vs {
			spoofed[v] = true
		}
	}
	for _, e := range entries {
		what := e.Request.Method + " " + e.Request.URI
		if e.UserID != legacyService || len(e.Request.Headers["Authorization"]) != 1 {
			c.t.Errorf("%s reached the backend as %q with Authorization %q, want the service account's alone",
				what, e.UserID, e.Request.Headers["Authorization"])
		}
		for k, vs := range e.Request.Headers {
			for _, v := range vs {
				if spoofed[v] {
					c.t.Errorf("%s reached the backend with the client's %s: %s", what, k, v)
				}
			}
		}
		if got := e.Request.Headers["X-Authenticated-User"]; len(got) != 1 || got[0] != frontingUser {
			c.t.Errorf("%s: the backend got X-Authenticated-User %q, want the front's %q", what, got, frontingUser)
		}
	}
}
