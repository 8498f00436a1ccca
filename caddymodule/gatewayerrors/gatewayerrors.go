// Package gatewayerrors is the Caddyfile directive taxii_errors and its
// handler http.handlers.taxii_error: errors the gateway itself produces (a
// backend down or too slow, a client body framed badly, Caddy's own 405 for
// a method name over 32 characters) are answered with a TAXII error body
// like the core's, with Retry-After where trying again helps, in front of
// any backend. One line in a site block:
//
//	taxii_errors
//
// is a handle_errors block whose only handler writes that body.
package gatewayerrors

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterDirective("taxii_errors", parseCaddyfile)
}

// RetryAfter is the Retry-After, in seconds, of the statuses that say the
// backend is unavailable for now (502, 503, 504).
const RetryAfter = "5"

// Allow is the Allow header of a 405: the methods TAXII 2.1 uses.
const Allow = "GET, HEAD, POST, DELETE"

// descriptions say what the client can do about each status.
var descriptions = map[int]string{
	http.StatusBadRequest:            "the request is malformed: for example its body's chunked encoding or Content-Length",
	http.StatusMethodNotAllowed:      "this method is not served",
	http.StatusRequestTimeout:        "the request body arrived too slowly",
	http.StatusRequestEntityTooLarge: "the request body is too large",
	http.StatusBadGateway:            "a service behind the gateway is unreachable; try again later",
	http.StatusServiceUnavailable:    "a service behind the gateway is unavailable; try again later",
	http.StatusGatewayTimeout:        "a service behind the gateway did not answer in time; try again later",
}

// Handler writes the TAXII error body for the error being handled. It is
// meant for error routes (handle_errors, or the taxii_errors directive) and
// has no options.
type Handler struct{}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.taxii_error",
		New: func() caddy.Module { return new(Handler) },
	}
}

// ServeHTTP answers with the status of the error in the request's context
// (500 when it carries none) and a TAXII error body; it is terminal.
func (Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	status, id := http.StatusInternalServerError, ""
	if err, ok := r.Context().Value(caddyhttp.ErrorCtxKey).(error); ok {
		if he, ok := errors.AsType[caddyhttp.HandlerError](err); ok {
			if he.StatusCode >= 400 && he.StatusCode <= 599 {
				status = he.StatusCode
			}
			id = he.ID
		}
	}
	switch status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		w.Header().Set("Retry-After", RetryAfter)
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", Allow)
	}
	description, ok := descriptions[status]
	if !ok {
		description = "the gateway could not complete the request"
	}
	taxiierror.WriteError(w, status, taxiierror.Error{Description: description, ErrorID: id})
	return nil
}

// UnmarshalCaddyfile takes the bare directive.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() || d.NextBlock(0) {
		return d.Err("taxii_errors takes no arguments")
	}
	return nil
}

// parseCaddyfile turns taxii_errors into the site's error route, as
// handle_errors does: a subroute with one route holding the handler. A
// handle_errors block with status codes in the same site is tried first.
func parseCaddyfile(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	var handler Handler
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	route := &caddyhttp.Subroute{Routes: caddyhttp.RouteList{{
		HandlersRaw: []json.RawMessage{caddyconfig.JSONModuleObject(handler, "handler", "taxii_error", nil)},
	}}}
	return []httpcaddyfile.ConfigValue{{Class: "error_route", Value: route}}, nil
}

var (
	_ caddyhttp.MiddlewareHandler = Handler{}
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
