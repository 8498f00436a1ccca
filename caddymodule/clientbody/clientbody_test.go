package clientbody

import (
	"errors"
	"io"
	"net/http"
	"os"
	"testing"

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
