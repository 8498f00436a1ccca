package taxiicore

import (
	"net/http"
	"strings"
	"testing"
)

// TestHeadersOverLimit: a request whose line and headers pass
// MaxHeaderBytes gets a 431 with a TAXII error body from the core itself
// (Go's server would answer plain text), however the bytes are spent;
// one just under the limit is served.
func TestHeadersOverLimit(t *testing.T) {
	f := newFixture(t, nil)
	path := objectsPath(colRW)
	long := "?match[id]=indicator--" + strings.Repeat("a", MaxHeaderBytes)
	res := f.expect(req{path: path + long, user: "alice"}, http.StatusRequestHeaderFieldsTooLarge)
	if !strings.Contains(string(res.body), `"http_status":"431"`) || !strings.Contains(string(res.body), "shorten the query") {
		t.Errorf("431 body: %s", res.body)
	}
	// Just under: the same query, shortened by what the rest of the
	// request takes, is answered normally.
	r, err := http.NewRequest(http.MethodGet, f.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.RequestURI = path + long
	over := headerBytes(r) - MaxHeaderBytes
	if got := f.do(req{path: path + long[:len(long)-over-2048], user: "alice"}); got.status != http.StatusOK {
		t.Errorf("a request under the limit: %d %s", got.status, got.body)
	}
}
