package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	taxiiType    = "application/taxii+json;version=2.1"
	demoRoot     = "/api1/"
	demoCol      = "edaca48c-eae6-47e0-82b3-18a87ff3692f"
	demoObjects  = demoRoot + "collections/" + demoCol + "/objects/"
	demoManifest = demoRoot + "collections/" + demoCol + "/manifest/"
)

// client is a minimal TAXII 2.1 client; auth decorates each request.
type client struct {
	t    *testing.T
	auth func(*http.Request)
	hdr  http.Header
	base string // the gateway; the stack's when empty
	// patient retries answers 503 with Retry-After (a token service
	// busy hashing passwords on a loaded machine) a few times.
	patient bool
}

func basic(t *testing.T, user, password string) client {
	return client{t: t, auth: func(r *http.Request) { r.SetBasicAuth(user, password) }}
}

func bearer(t *testing.T, token string) client {
	return client{t: t, auth: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }}
}

// freshBearer logs in like a token client does: it sends its token and
// fetches a new one shortly before the old one expires (the stack's tokens
// live only seconds in these tests).
func freshBearer(t *testing.T, user, password string) client {
	var token string
	var exp time.Time
	return client{t: t, auth: func(r *http.Request) {
		if time.Until(exp) < 2*time.Second {
			token = login(t, user, password)
			exp = time.Now().Add(tokenTTL * time.Second)
		}
		r.Header.Set("Authorization", "Bearer "+token)
	}}
}

func anonymous(t *testing.T) client { return client{t: t, auth: func(*http.Request) {}} }

// at sends the returned client's requests to the gateway at base.
func (c client) at(base string) client {
	c.base = base
	return c
}

// with adds headers to every request of the returned client.
func (c client) with(h http.Header) client {
	c.hdr = h
	return c
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// do sends a TAXII request and returns the response with its body read.
func (c client) do(method, path string, body any) (*http.Response, []byte) {
	c.t.Helper()
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			c.t.Fatal(err)
		}
	}
	base := c.base
	if base == "" {
		base = stack.GatewayURL()
	}
	for attempt := 1; ; attempt++ {
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			c.t.Fatal(err)
		}
		req.Header.Set("Accept", taxiiType)
		if body != nil {
			req.Header.Set("Content-Type", taxiiType)
		}
		for k, vs := range c.hdr {
			req.Header[k] = vs
		}
		c.auth(req)
		resp, err := httpClient.Do(req)
		if err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			c.t.Fatalf("%s %s: reading body: %v", method, path, err)
		}
		if c.patient && attempt < 5 && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
			time.Sleep(time.Second)
			continue
		}
		return resp, b
	}
}

// json sends a request, checks the status and the TAXII media type, and
// decodes the body.
func (c client) json(method, path string, body any, wantStatus int) (map[string]any, *http.Response) {
	c.t.Helper()
	resp, b := c.do(method, path, body)
	if resp.StatusCode != wantStatus {
		c.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, wantStatus, b)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(strings.ReplaceAll(ct, " ", ""), taxiiType) {
		c.t.Fatalf("%s %s: Content-Type %q, want %s", method, path, ct, taxiiType)
	}
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			c.t.Fatalf("%s %s: body is not JSON: %v: %s", method, path, err, b)
		}
	}
	return out, resp
}

// login gets a token the way OpenTAXII's documentation shows, with a form body.
func login(t *testing.T, user, password string) string {
	t.Helper()
	resp, err := httpClient.PostForm(stack.GatewayURL()+"/management/auth", url.Values{"username": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Token == "" {
		t.Fatalf("login as %s: status %d, err %v, token %q", user, resp.StatusCode, err, body.Token)
	}
	return body.Token
}

// taxiway runs an admin command of the stack's binary against its database.
func taxiway(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(taxiwayBin, args...)
	cmd.Env = append(os.Environ(), "TAXIWAY_DATABASE_URL="+stack.DatabaseURL())
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("taxiway %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// syncYAML applies a sync file (without prune) to the running stack.
func syncYAML(t *testing.T, yaml string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sync.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	taxiway(t, "", "sync", path)
}

// passwordHash asks the token service's admin command for a hash.
func passwordHash(t *testing.T, password string) string {
	t.Helper()
	out := strings.TrimSpace(taxiway(t, password+"\n", "account", "hash"))
	lines := strings.Split(out, "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
