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

// ServeHTTP wraps the request body. When the body did not arrive whole,
// that is the answer, whatever a later handler reports: a client that breaks
// its body's framing ends its side of the connection, which cancels the
// request, and reverse_proxy may see the cancellation first and answer 499
// (client closed request, no body) before its reader returns the framing
// error. Such a 499 is held back and turned into a 400, which taxii_errors
// answers like any other error. A client that is really gone never reads
// it; one that only half-closed gets a TAXII error.
func (Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.Body == nil || r.Body == http.NoBody {
		return next.ServeHTTP(w, r)
	}
	b := &body{ReadCloser: r.Body}
	r.Body = b
	hw := &holdCancelled{ResponseWriterWrapper: &caddyhttp.ResponseWriterWrapper{ResponseWriter: w}}
	err := next.ServeHTTP(hw, r)
	failed, complete := b.state()
	cancelled := hw.held
	if he, ok := errors.AsType[caddyhttp.HandlerError](err); ok && he.StatusCode == statusClientClosed {
		cancelled = true
	}
	switch {
	case failed != nil && (err != nil || cancelled):
		return failed
	case cancelled && !complete:
		return caddyhttp.Error(http.StatusBadRequest, errors.New("the request body ended before its framing said it would"))
	case hw.held:
		hw.ResponseWriterWrapper.WriteHeader(statusClientClosed)
	}
	return err
}

// statusClientClosed is what reverse_proxy answers for a cancelled request.
const statusClientClosed = 499

// holdCancelled holds back a 499 header until ServeHTTP knows whether the
// body was at fault; any other header or a write goes through at once.
type holdCancelled struct {
	*caddyhttp.ResponseWriterWrapper
	held bool
}

func (h *holdCancelled) WriteHeader(status int) {
	if status == statusClientClosed && !h.held {
		h.held = true
		return
	}
	h.ResponseWriterWrapper.WriteHeader(status)
}

func (h *holdCancelled) Write(p []byte) (int, error) {
	if h.held {
		h.held = false
		h.ResponseWriterWrapper.WriteHeader(statusClientClosed)
	}
	return h.ResponseWriterWrapper.Write(p)
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
	mu       sync.Mutex
	failed   error // the first classified read error
	complete bool  // read to its end
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	err = Classify(err)
	if err != nil {
		b.mu.Lock()
		if err == io.EOF {
			b.complete = true
		} else if b.failed == nil {
			b.failed = err
		}
		b.mu.Unlock()
	}
	return n, err
}

func (b *body) state() (failed error, complete bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failed, b.complete
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
