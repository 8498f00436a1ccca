package caddymodule

import (
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// ServeHTTP judges the request by the policy and either answers it with a
// TAXII error or passes it on, rewriting collection resources on the way
// back.
func (p *TaxiiPolicy) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	v := p.view.Load()
	if v == nil || (p.MaxAge > 0 && time.Since(v.synced) > time.Duration(p.MaxAge)) {
		p.decisions[decisionUnavailable].Inc()
		w.Header().Set("Retry-After", policyRetryAfter)
		taxiierror.Write(w, http.StatusServiceUnavailable, "Authorization unavailable",
			"The gateway does not know the access policy right now; retry later.")
		return nil
	}
	path, ok := canonicalPath(r.URL.EscapedPath())
	if !ok {
		p.decisions[decisionBadPath].Inc()
		taxiierror.Write(w, http.StatusBadRequest, "Bad request",
			"The path holds characters, escapes or segments no TAXII resource has (escaped slashes, dot segments, empty segments, NUL).")
		return nil
	}
	c := p.callerOf(r)
	rt := matchPolicyRoute(v, p.DiscoveryPath, path)
	if rt.ep == peUnknown {
		p.decisions[decisionNotFound].Inc()
		taxiierror.Write(w, http.StatusNotFound, "Not found", "no TAXII resource at this path")
		return nil
	}
	if !rt.allows(r.Method) {
		p.decisions[decisionMethod].Inc()
		w.Header().Set("Allow", rt.allow())
		taxiierror.Write(w, http.StatusMethodNotAllowed, "Method not allowed", "allowed: "+rt.allow())
		return nil
	}
	if refused := p.judge(w, r, v, rt, &c); refused {
		return nil
	}
	p.decisions[decisionPass].Inc()
	// The backend sees the spelling that was judged, and nothing else.
	r.URL.Path, r.URL.RawPath = path, ""
	if rt.ep == peCollections || rt.ep == peCollection {
		return p.serveRewritten(w, r, next, rt, &c)
	}
	return next.ServeHTTP(w, r)
}

// judge answers a request the policy refuses and reports whether it did.
func (p *TaxiiPolicy) judge(w http.ResponseWriter, r *http.Request, v *policyView, rt policyRoute, c *caller) bool {
	// What the caller may not see answers 401 to anonymous callers (a
	// login may help) and 404 to others, as the core does.
	hidden := func(what string) bool {
		if c.anonymous {
			p.decisions[decisionUnauthorized].Inc()
			taxiierror.Unauthorized(w, "authenticate through the gateway")
			return true
		}
		p.decisions[decisionNotFound].Inc()
		taxiierror.Write(w, http.StatusNotFound, "Not found", what)
		return true
	}
	forbidden := func(what string) bool {
		p.decisions[decisionForbidden].Inc()
		taxiierror.Write(w, http.StatusForbidden, "Forbidden", what)
		return true
	}
	switch rt.ep {
	case peDiscovery:
		if c.anonymous && !v.publicDiscovery {
			return hidden("")
		}
		return false
	case peAPIRoot, peCollections:
		if c.anonymous && !rt.root.public {
			return hidden("no such API root")
		}
		return false
	case peStatus:
		// The core shows a status to its creator and to writers of its
		// collection. The gateway cannot know either without keeping
		// state per request, so it shows statuses to callers who may
		// write some collection of the API root: only they can have
		// created one. Status ids are random UUIDs.
		if !c.mayWriteSome(rt.root) {
			return hidden("no such status")
		}
		return false
	}
	a := c.accessTo(rt.root.lookup(rt.cid))
	if !a.visible() {
		return hidden("no such API root or collection")
	}
	switch {
	case rt.ep == peCollection:
		return false
	case r.Method == http.MethodPost && !a.write:
		return forbidden("you may not add objects to this collection")
	case r.Method == http.MethodDelete && !(a.read && a.write):
		return forbidden("deleting needs both read and write access to the collection")
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && !a.read:
		return forbidden("you may not read this collection")
	}
	return false
}

// callerOf is the identity taxii_auth verified earlier in the route, or
// anonymous. The variable holds a value of a type only taxii_auth makes,
// so neither a client nor a `vars` directive can forge it.
func (p *TaxiiPolicy) callerOf(r *http.Request) caller {
	id, ok := caddyhttp.GetVar(r.Context(), identityVar).(identity)
	if !ok || id.User == "" {
		return caller{anonymous: true}
	}
	return caller{user: id.User, groups: id.Groups, admin: inGroup(id.Groups, p.AdminGroup)}
}

// serveRewritten passes a collections request on and rewrites the answer
// for the caller. The backend is asked for an uncompressed, whole answer;
// HEAD is sent as GET so that the headers describe the rewritten body.
func (p *TaxiiPolicy) serveRewritten(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, rt policyRoute, c *caller) error {
	head := r.Method == http.MethodHead
	if head {
		r.Method = http.MethodGet
	}
	for _, h := range []string{"Accept-Encoding", "Range", "If-None-Match", "If-Modified-Since", "If-Range"} {
		r.Header.Del(h)
	}
	buf := &bufferedResponse{w: w, limit: p.MaxListBytes}
	err := next.ServeHTTP(buf, r)
	hdr := w.Header()
	if buf.overflow {
		p.badGateway(w, "The backend's collections answer is larger than the gateway filters.")
		return nil
	}
	if err != nil {
		return err
	}
	status := buf.status
	if status == 0 {
		status = http.StatusOK
	}
	body := buf.body.Bytes()
	if status == http.StatusOK {
		if enc := hdr.Get("Content-Encoding"); enc != "" && enc != "identity" {
			p.badGateway(w, "The backend compressed a collections answer the gateway must filter.")
			return nil
		}
		var rerr error
		if rt.ep == peCollections {
			body, rerr = rewriteCollections(body, rt.root, c)
		} else {
			var visible bool
			body, visible, rerr = rewriteCollection(body, rt.root, c)
			if rerr == nil && !visible {
				// The backend answered another collection than the one
				// the path names (an alias the policy does not know).
				p.decisions[decisionNotFound].Inc()
				hdr.Del("ETag")
				taxiierror.Write(w, http.StatusNotFound, "Not found", "no such API root or collection")
				return nil
			}
		}
		if rerr != nil {
			p.logger.Warn("backend collections answer unreadable", "error", rerr.Error())
			p.badGateway(w, "The backend's collections answer is not a TAXII resource the gateway can filter.")
			return nil
		}
		// The body now depends on the caller: no validator may describe it.
		hdr.Del("ETag")
		hdr.Del("Last-Modified")
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if !head {
		_, _ = w.Write(body)
	}
	return nil
}

func (p *TaxiiPolicy) badGateway(w http.ResponseWriter, what string) {
	p.decisions[decisionBackendTooMuch].Inc()
	h := w.Header()
	for _, k := range []string{"Content-Encoding", "ETag", "Last-Modified"} {
		h.Del(k)
	}
	taxiierror.Write(w, http.StatusBadGateway, "Bad gateway", what)
}
