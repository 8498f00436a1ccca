package clientbody

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// The real requests (bad chunked encoding, short Content-Length) go through
// a real gateway in e2e/hostile_test.go; this pins the mapping.
func TestClassify(t *testing.T) {
	if Classify(nil) != nil || Classify(io.EOF) != io.EOF {
		t.Fatal("nil and io.EOF must pass unchanged")
	}
	for err, want := range map[error]int{
		io.ErrUnexpectedEOF: http.StatusBadRequest,
		errors.New("http: invalid byte in chunk length"):                                 http.StatusBadRequest,
		os.ErrDeadlineExceeded:                                                           http.StatusRequestTimeout,
		caddyhttp.Error(http.StatusRequestEntityTooLarge, &http.MaxBytesError{Limit: 1}): http.StatusRequestEntityTooLarge,
	} {
		he, ok := errors.AsType[caddyhttp.HandlerError](Classify(err))
		if !ok || he.StatusCode != want {
			t.Errorf("%v: got %v, want status %d", err, Classify(err), want)
		}
	}
}

// A body read failure wins over what a later handler reports: a client that
// breaks its framing and half-closes may make reverse_proxy report a
// cancelled request (499) first.
func TestReadFailureWinsOverLaterError(t *testing.T) {
	r, err := http.NewRequest(http.MethodPost, "http://gateway/objects/", io.MultiReader(strings.NewReader("{}"), iotest.ErrReader(io.ErrUnexpectedEOF)))
	if err != nil {
		t.Fatal(err)
	}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.ReadAll(r.Body)
		return caddyhttp.Error(499, errors.New("context canceled"))
	})
	err = Handler{}.ServeHTTP(httptest.NewRecorder(), r, next)
	if he, ok := errors.AsType[caddyhttp.HandlerError](err); !ok || he.StatusCode != http.StatusBadRequest {
		t.Fatalf("got %v, want the body's 400", err)
	}
	// Cancelled before the body's reader saw the failure: still 400.
	r, _ = http.NewRequest(http.MethodPost, "http://gateway/objects/", strings.NewReader("{}"))
	cancelled := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(499) // as reverse_proxy does for a cancelled request
		return nil
	})
	err = Handler{}.ServeHTTP(httptest.NewRecorder(), r, cancelled)
	if he, ok := errors.AsType[caddyhttp.HandlerError](err); !ok || he.StatusCode != http.StatusBadRequest {
		t.Fatalf("got %v, want 400 for a body that never ended", err)
	}
	// A body read whole: the 499 stands.
	r, _ = http.NewRequest(http.MethodPost, "http://gateway/objects/", strings.NewReader("{}"))
	rec := httptest.NewRecorder()
	readThenCancelled := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		_, _ = io.ReadAll(r.Body)
		w.WriteHeader(499)
		return nil
	})
	if err = (Handler{}).ServeHTTP(rec, r, readThenCancelled); err != nil || rec.Code != 499 {
		t.Fatalf("got %v and %d, want the 499 passed on", err, rec.Code)
	}
}
