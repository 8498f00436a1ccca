//go:build compose

package compose

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

const (
	taxiiType = "application/taxii+json;version=2.1"
	// demoCollection is deploy/demo.yaml's collection, which test may read and write.
	demoCollection = "edaca48c-eae6-47e0-82b3-18a87ff3692f"
	// readmeObject is the indicator README's TAXII session adds.
	readmeObject   = `{"type":"indicator","spec_version":"2.1","id":"indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.1']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`
	readmeObjectID = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
)

// walkthrough is what README's compose section leaves behind.
type walkthrough struct {
	token string // a Bearer token of the demo account test
}

// request sends one request through the gateway. auth is "Bearer <token>",
// "basic user:password" or "".
func (s *stack) request(t *testing.T, method, path, auth, contentType string, body []byte) (*http.Response, []byte, error) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url(path), r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", taxiiType)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch {
	case strings.HasPrefix(auth, "Bearer "):
		req.Header.Set("Authorization", auth)
	case strings.HasPrefix(auth, "basic "):
		user, pass, _ := strings.Cut(strings.TrimPrefix(auth, "basic "), ":")
		req.SetBasicAuth(user, pass)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// expect sends a request and fails unless it gets want.
func (s *stack) expect(t *testing.T, want int, method, path, auth, contentType string, body []byte) []byte {
	t.Helper()
	resp, b, err := s.request(t, method, path, auth, contentType, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return b
}

// login is README's `curl --cacert root.crt -d 'username=…&password=…' …/management/auth`.
func (s *stack) login(t *testing.T, user, password string) string {
	t.Helper()
	form := url.Values{"username": {user}, "password": {password}}.Encode()
	b := s.expect(t, http.StatusOK, http.MethodPost, "/management/auth", "", "application/x-www-form-urlencoded", []byte(form))
	var tok struct{ Token string }
	if err := json.Unmarshal(b, &tok); err != nil || tok.Token == "" {
		t.Fatalf("/management/auth answered %s (%v)", b, err)
	}
	return tok.Token
}

// walkthrough is README's compose section, command by command, over HTTPS
// with the certificate checked against Caddy's local root.
func (s *stack) walkthrough(t *testing.T) walkthrough {
	w := walkthrough{token: s.login(t, "test", "test")}
	// The JSON form of the same request.
	b := s.expect(t, http.StatusOK, http.MethodPost, "/management/auth", "", "application/json", []byte(`{"username":"test","password":"test"}`))
	if !strings.Contains(string(b), `"token":"`) {
		t.Fatalf("JSON login answered %s", b)
	}
	// Discovery with the token, and with Basic.
	for _, auth := range []string{"Bearer " + w.token, "basic test:test"} {
		b := s.expect(t, http.StatusOK, http.MethodGet, "/taxii2/", auth, "", nil)
		if !strings.Contains(string(b), "api_roots") {
			t.Fatalf("discovery with %s answered %s", strings.Fields(auth)[0], b)
		}
	}
	// Add Objects, then its status, then the object, byte for byte.
	objects := "/api1/collections/" + demoCollection + "/objects/"
	b = s.expect(t, http.StatusAccepted, http.MethodPost, objects, "basic test:test", taxiiType, []byte(`{"objects":[`+readmeObject+`]}`))
	var status struct {
		ID           string
		Status       string
		SuccessCount int `json:"success_count"`
	}
	if err := json.Unmarshal(b, &status); err != nil || status.Status != "complete" || status.SuccessCount != 1 {
		t.Fatalf("Add Objects answered %s (%v)", b, err)
	}
	b = s.expect(t, http.StatusOK, http.MethodGet, "/api1/status/"+status.ID+"/", "basic test:test", "", nil)
	if !strings.Contains(string(b), `"status":"complete"`) {
		t.Fatalf("status %s: %s", status.ID, b)
	}
	s.checkReadmeObject(t, w.token)
	return w
}

// checkReadmeObject: Get Objects returns README's object exactly as sent.
func (s *stack) checkReadmeObject(t *testing.T, token string) {
	t.Helper()
	b := s.expect(t, http.StatusOK, http.MethodGet, "/api1/collections/"+demoCollection+"/objects/"+readmeObjectID+"/", "Bearer "+token, "", nil)
	var env struct{ Objects []json.RawMessage }
	if err := json.Unmarshal(b, &env); err != nil || len(env.Objects) != 1 {
		t.Fatalf("Get Objects answered %s (%v)", b, err)
	}
	if !bytes.Equal(env.Objects[0], []byte(readmeObject)) {
		t.Fatalf("the object came back changed:\n got %s\nwant %s", env.Objects[0], readmeObject)
	}
}

// newIndicator is a fresh indicator object with a random id.
func newIndicator(t *testing.T) (id string, object []byte) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	id = fmt.Sprintf("indicator--%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
	return id, []byte(`{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '198.51.100.2']","pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}`)
}

// checkAllPresent pages through the demo collection and fails unless every
// accepted id is there.
func (s *stack) checkAllPresent(t *testing.T, w walkthrough, accepted []string) {
	t.Helper()
	seen := map[string]bool{}
	next := ""
	for page := 0; page < 1000; page++ {
		path := "/api1/collections/" + demoCollection + "/objects/?limit=1000"
		if next != "" {
			path += "&next=" + url.QueryEscape(next)
		}
		b := s.expect(t, http.StatusOK, http.MethodGet, path, "Bearer "+w.token, "", nil)
		var env struct {
			More    bool
			Next    string
			Objects []struct{ ID string }
		}
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("objects page: %v", err)
		}
		for _, o := range env.Objects {
			seen[o.ID] = true
		}
		if !env.More {
			break
		}
		next = env.Next
	}
	missing := 0
	for _, id := range accepted {
		if !seen[id] {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d accepted objects are missing", missing, len(accepted))
	}
	t.Logf("all %d accepted objects present", len(accepted))
}
