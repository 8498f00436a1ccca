package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

// rawRequest sends head and body as they are, closes the write side (as a
// client that gives up does) and reads the answer; nil when the gateway
// closed the connection without one.
func rawRequest(t *testing.T, head, body string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(stack.GatewayURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, head+"\r\n"+body); err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// checkTAXIIError fails unless res is status with a TAXII error body.
func checkTAXIIError(t *testing.T, what string, res *http.Response, body []byte, status int) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("%s: status %d, want %d: %s", what, res.StatusCode, status, body)
	}
	var e struct {
		Title      string `json:"title"`
		HTTPStatus string `json:"http_status"`
	}
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "application/taxii+json") || json.Unmarshal(body, &e) != nil ||
		e.Title == "" || e.HTTPStatus != strconv.Itoa(status) {
		t.Fatalf("%s: not a TAXII error body: %q %s", what, res.Header.Get("Content-Type"), body)
	}
}

// TestGatewayMalformedClientBodies: a body the client framed badly is the
// client's fault: 400 (or a closed connection), never a 502 that reads as
// a backend failure.
func TestGatewayMalformedClientBodies(t *testing.T) {
	token := login(t, "test", "test")
	head := func(framing string) string {
		return "POST " + demoObjects + " HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + token +
			"\r\nAccept: " + taxiiType + "\r\nContent-Type: " + taxiiType + "\r\n" + framing + "\r\n"
	}
	chunked := head("Transfer-Encoding: chunked")
	cases := []struct{ name, head, body string }{
		{"bad chunk size", chunked, "zz\r\n{}\r\n0\r\n\r\n"},
		{"negative chunk size", chunked, "-5\r\nhello\r\n0\r\n\r\n"},
		{"chunk without its CRLF", chunked, "2\r\n{}XX3\r\n{}\r\n0\r\n\r\n"},
		{"huge chunk extension", chunked, "2;" + strings.Repeat("a", 70000) + "\r\n{}\r\n0\r\n\r\n"},
		{"no terminating chunk", chunked, "2\r\n{}\r\n"},
		{"short Content-Length", head("Content-Length: 100"), `{"objects":[]}`},
		{"bad chunk size at the token service", "POST /management/auth HTTP/1.1\r\nHost: localhost\r\n" +
			"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n", "zz\r\nusername=test\r\n0\r\n\r\n"},
	}
	for _, c := range cases {
		res, body := rawRequest(t, c.head, c.body)
		if res == nil {
			t.Logf("%s: connection closed without an answer", c.name)
			continue // acceptable: the client broke the framing
		}
		checkTAXIIError(t, c.name, res, body, http.StatusBadRequest)
		t.Logf("%s: %d %s", c.name, res.StatusCode, body)
	}
}

// TestGatewayOwnErrorsAreTAXII: the errors the gateway produces itself carry
// a TAXII error body: Caddy's 405 for an over-long method (with Allow), and
// 502 with Retry-After when the core or the token service is down.
func TestGatewayOwnErrorsAreTAXII(t *testing.T) {
	res, body := rawRequest(t, strings.Repeat("X", 40)+" /taxii2/ HTTP/1.1\r\nHost: localhost\r\n", "")
	if res == nil {
		t.Fatal("no answer to an over-long method")
	}
	checkTAXIIError(t, "over-long method", res, body, http.StatusMethodNotAllowed)
	if res.Header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}

	token := login(t, "test", "test")
	for _, svc := range []string{localstack.Core, localstack.TokenService} {
		if err := stack.StopService(svc); err != nil {
			t.Fatal(err)
		}
		path, c := "/taxii2/", bearer(t, token)
		if svc == localstack.TokenService {
			path, c = "/management/auth", anonymous(t)
		}
		r, b := c.do("GET", path, nil)
		if err := stack.StartService(context.Background(), svc); err != nil {
			t.Fatalf("restarting %s: %v", svc, err)
		}
		checkTAXIIError(t, svc+" down", r, b, http.StatusBadGateway)
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s down: 502 without Retry-After", svc)
		}
	}
	// A fresh token: the first one may have expired (4 s) while the
	// services restarted on a loaded machine.
	bearer(t, login(t, "test", "test")).json("GET", "/taxii2/", nil, http.StatusOK)
}

// TestGatewayHostilePaths: through the gateway as straight to the core, NUL
// in a path or filter is a 400, and a one-segment path that is not an API
// root is a 404, not a redirect another host could be read from.
func TestGatewayHostilePaths(t *testing.T) {
	c := bearer(t, login(t, "test", "test"))
	for path, want := range map[string]int{
		"/api1%00/": http.StatusBadRequest, demoObjects + "?match[type]=indicator%00": http.StatusBadRequest,
		"/api1/collections/" + demoCol + "%00/": http.StatusBadRequest,
		"/%5Cevil.example":                      http.StatusNotFound, "/%5Cevil.example/": http.StatusNotFound,
		"/api1%2Fcollections%2F": http.StatusNotFound,
	} {
		r, b := c.do("GET", path, nil)
		checkTAXIIError(t, path, r, b, want)
		if r.Header.Get("Location") != "" {
			t.Errorf("%s: Location %q", path, r.Header.Get("Location"))
		}
	}
	r, b := c.do("DELETE", demoObjects+"indicator--"+demoCol+"/?match[spec_version]=%00", nil)
	checkTAXIIError(t, "DELETE with NUL", r, b, http.StatusBadRequest)
	// Redirects, not followed: only to a validated TAXII path.
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]string{"/%5Cevil.example": "", "/%2F%2Fevil.example": "", "/api1": "/api1/"} {
		req, _ := http.NewRequest("GET", stack.GatewayURL()+path, nil)
		req.Header.Set("Accept", taxiiType)
		c.auth(req)
		res, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); loc != want || (want == "") != (res.StatusCode == http.StatusNotFound) {
			t.Errorf("%s: %d Location %q, want %q", path, res.StatusCode, loc, want)
		}
	}
}

// TestGatewayFaithfulObjectsAndLimits: through the whole stack, an object
// comes back byte for byte as posted, an object over a limit fails alone
// with the limit named, and negotiation refuses what it must.
func TestGatewayFaithfulObjectsAndLimits(t *testing.T) {
	token := login(t, "test", "test")
	send := func(method, path, accept, contentType, body string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, stack.GatewayURL()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Accept", accept)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		res, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	id := "indicator--" + uuid4()
	faithful := `{"type":"indicator","spec_version":"2.1","id":"` + id + `","created":"2026-01-01T00:00:00.1Z",` +
		`"z":1,"a":[1.50,1E2,-0.0,123456789012345678901234567890],"x_tiny":1e-16384, "x_s":"caf\u00e9"}`
	tooBig := `{"type":"indicator","spec_version":"2.1","id":"indicator--` + uuid4() + `","created":"2026-01-01T00:00:00Z","x":1e131073}`
	tooDeep := `{"type":"indicator","spec_version":"2.1","id":"indicator--` + uuid4() + `","created":"2026-01-01T00:00:00Z","x":` +
		strings.Repeat("[", 3000) + strings.Repeat("]", 3000) + `}`
	res, b := send("POST", demoObjects, taxiiType, taxiiType, `{"objects":[`+faithful+","+tooBig+","+tooDeep+`]}`)
	if res.StatusCode != http.StatusAccepted || !strings.Contains(string(b), `"success_count":1`) ||
		!strings.Contains(string(b), "outside the range of a 64-bit float") || !strings.Contains(string(b), "deeper than 100 levels") {
		t.Fatalf("add objects: %d %s", res.StatusCode, b)
	}
	res, b = send("GET", demoObjects+id+"/", taxiiType, "", "")
	if res.StatusCode != http.StatusOK || string(b) != `{"more":false,"objects":[`+faithful+`]}` {
		t.Fatalf("stored object altered: %d %s", res.StatusCode, b)
	}
	res, b = send("GET", "/taxii2/", `application/taxii+json;foo="a,b";version=2.0`, "", "")
	checkTAXIIError(t, "Accept with a quoted comma", res, b, http.StatusNotAcceptable)
	res, b = send("POST", demoObjects, taxiiType, taxiiType+";charset=latin1", `{"objects":[`+faithful+`]}`)
	checkTAXIIError(t, "charset latin1", res, b, http.StatusUnsupportedMediaType)
}
