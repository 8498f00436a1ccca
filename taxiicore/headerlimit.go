package taxiicore

import (
	"net/http"
	"strconv"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// MaxHeaderBytes bounds a request's line and headers, as the core counts
// them (headerBytes). The core checks it itself, to answer with a TAXII
// error rather than Go's plain-text 431.
const MaxHeaderBytes = 64 << 10

// ServerMaxHeaderBytes is the http.Server limit to run the core with: above
// the gateway's max_header_size (128 KiB in the shipped Caddyfiles) with
// what the gateway adds, so that no request the gateway passes on meets
// Go's plain-text 431 before the core's own check.
const ServerMaxHeaderBytes = 256 << 10

// headerBytes is the size of r's request line and header fields as sent
// (method, target, protocol, each "Name: value" with its line end).
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto) + 2
	n += len("Host: ") + len(r.Host) + 2 // net/http moves Host out of Header
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + 2 + len(v) + 2
		}
	}
	return n
}

// headersTooLarge answers 431 with a TAXII error when r's line and headers
// exceed MaxHeaderBytes, and reports whether it did.
func headersTooLarge(w http.ResponseWriter, r *http.Request) bool {
	n := headerBytes(r)
	if n <= MaxHeaderBytes {
		return false
	}
	taxiierror.Write(w, http.StatusRequestHeaderFieldsTooLarge, "",
		"the request line and headers take "+strconv.Itoa(n)+" bytes, more than the "+strconv.Itoa(MaxHeaderBytes)+" this server reads: shorten the query")
	return true
}
