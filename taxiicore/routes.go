package taxiicore

import (
	"errors"
	"net/url"
	"strings"
)

// endpoint identifies one TAXII resource type.
type endpoint int

const (
	epDiscovery endpoint = iota
	epAPIRoot
	epStatus
	epCollections
	epCollection
	epManifest
	epObjects
	epObject
	epVersions
)

// route is a request path matched against the TAXII URL templates.
type route struct {
	ep       endpoint
	template string // for metrics and logs: never holds ids
	allow    string // the Allow header for 405
	root     string
	cid      string
	oid      string
	sid      string
}

var errPathText = errors.New("each path segment must be UTF-8 text without NUL once percent-decoded")

// splitPath splits the escaped request path on its slashes and only then
// decodes each segment, so that an encoded slash (%2F) stays inside its
// segment and never acts as a separator. A segment that is not UTF-8 or
// holds NUL is refused here: Postgres cannot take it as text, and no
// resource is named so.
func splitPath(escaped string) ([]string, error) {
	if !strings.HasPrefix(escaped, "/") {
		return nil, errPathText
	}
	seg := strings.Split(escaped[1:], "/")
	for i, s := range seg {
		d, err := url.PathUnescape(s)
		if err != nil || !isText(d) {
			return nil, errPathText
		}
		seg[i] = d
	}
	return seg, nil
}

// matchRoute maps the segments of a path that ends in a slash (so the last
// segment is empty) to a TAXII endpoint. Paths without the slash are
// redirected by the caller (GEN-01, AMBIG-23), only when they match once it
// is added.
func matchRoute(segs []string) (route, bool) {
	if len(segs) < 2 || segs[len(segs)-1] != "" {
		return route{}, false
	}
	seg := segs[:len(segs)-1]
	for _, s := range seg {
		if s == "" {
			return route{}, false
		}
	}
	// Only a name an API root can have is routed: the first segment then
	// starts with a letter or digit, so a redirect built from it can never
	// read as another host (//host or /\host).
	if seg[0] != "taxii2" && !rootNameRE.MatchString(seg[0]) {
		return route{}, false
	}
	get := "GET, HEAD"
	if seg[0] == "taxii2" {
		if len(seg) == 1 {
			return route{ep: epDiscovery, template: "/taxii2/", allow: get}, true
		}
		// OpenTAXII serves each API root under /taxii2/<id>/; every root
		// answers there too, so that URLs clients kept from a server moved
		// in keep working. No root is named taxii2, so the two forms never
		// meet.
		r, ok := matchRoute(segs[1:])
		if !ok || seg[1] == "taxii2" {
			return route{}, false
		}
		r.template = "/taxii2" + r.template
		return r, true
	}
	r := route{root: seg[0]}
	switch {
	case len(seg) == 1:
		r.ep, r.template, r.allow = epAPIRoot, "/{root}/", get
	case len(seg) == 3 && seg[1] == "status":
		r.ep, r.template, r.allow, r.sid = epStatus, "/{root}/status/{id}/", get, seg[2]
	case len(seg) == 2 && seg[1] == "collections":
		r.ep, r.template, r.allow = epCollections, "/{root}/collections/", get
	case len(seg) >= 3 && seg[1] == "collections":
		r.cid = seg[2]
		switch {
		case len(seg) == 3:
			r.ep, r.template, r.allow = epCollection, "/{root}/collections/{id}/", get
		case len(seg) == 4 && seg[3] == "manifest":
			r.ep, r.template, r.allow = epManifest, "/{root}/collections/{id}/manifest/", get
		case len(seg) == 4 && seg[3] == "objects":
			r.ep, r.template, r.allow = epObjects, "/{root}/collections/{id}/objects/", "GET, HEAD, POST"
		case len(seg) == 5 && seg[3] == "objects":
			r.ep, r.template, r.allow, r.oid = epObject, "/{root}/collections/{id}/objects/{object-id}/", "GET, HEAD, DELETE", seg[4]
		case len(seg) == 6 && seg[3] == "objects" && seg[5] == "versions":
			r.ep, r.template, r.allow, r.oid = epVersions, "/{root}/collections/{id}/objects/{object-id}/versions/", get, seg[4]
		default:
			return route{}, false
		}
	default:
		return route{}, false
	}
	return r, true
}

func (r route) allows(method string) bool {
	for _, m := range strings.Split(r.allow, ", ") {
		if m == method {
			return true
		}
	}
	return false
}
