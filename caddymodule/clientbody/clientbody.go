// Package clientbody is the Caddy handler taxii_client_body: a request body
// the client framed badly (bad chunked encoding, fewer bytes than its
// Content-Length, a stalled upload) is the client's fault, but
// reverse_proxy reports every failure of a proxied request as 502, which
// reads as a backend failure. This handler marks errors from reading the
// client's body so that they surface as 400 (408 for a read timeout): Caddy
// keeps the status of an error that already carries one.
package clientbody

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("taxii_client_body", parseCaddyfile)
	// First of all handlers, so that every later one reads the marked body.
	httpcaddyfile.RegisterDirectiveOrder("taxii_client_body", httpcaddyfile.Before, "request_body")
}

// Handler marks client body read errors; it has no options.
type Handler struct{}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.taxii_client_body",
		New: func() caddy.Module { return new(Handler) },
	}
}

// ServeHTTP wraps the request body. When reading the body failed, that
// failure is the answer, whatever error a later handler reports: a client
// that breaks its body's framing and half-closes the connection may make
// reverse_proxy see a cancelled request (499, no body) before it sees the
// read error.
func (Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.Body == nil || r.Body == http.NoBody {
		return next.ServeHTTP(w, r)
	}
	b := &body{ReadCloser: r.Body}
	r.Body = b
	err := next.ServeHTTP(w, r)
	if failed := b.readError(); err != nil && failed != nil {
		return failed
	}
	return err
}

// UnmarshalCaddyfile takes the bare directive.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() || d.NextBlock(0) {
		return d.Err("taxii_client_body takes no arguments")
	}
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

type body struct {
	io.ReadCloser
	// reverse_proxy's transport reads the body on a goroutine of its own.
	mu     sync.Mutex
	failed error // the first classified read error
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	err = Classify(err)
	if err != nil && err != io.EOF {
		b.mu.Lock()
		if b.failed == nil {
			b.failed = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *body) readError() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed
}

// Classify turns an error from reading a client's request body into a
// Caddy handler error with the client's status: io.EOF (the body's normal
// end) and errors that already carry a status (request_body's 413) pass
// unchanged.
func Classify(err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	if _, ok := errors.AsType[caddyhttp.HandlerError](err); ok {
		return err
	}
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return caddyhttp.Error(http.StatusRequestTimeout, err)
	}
	return caddyhttp.Error(http.StatusBadRequest, err)
}

var (
	_ caddyhttp.MiddlewareHandler = Handler{}
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
