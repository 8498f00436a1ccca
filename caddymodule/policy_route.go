package caddymodule

import (
	"net/http"
	"strings"
)

// How taxii_policy reads a request path: the path the backend will see
// (r.URL where the handler sits in the route, after any uri, rewrite or
// handle_path), in one canonical spelling, matched against the TAXII 2.1
// URL templates under the policy's API roots.

// policyEndpoint is a TAXII resource type the policy knows.
type policyEndpoint int

const (
	peUnknown policyEndpoint = iota
	peDiscovery
	peAPIRoot
	peCollections
	peCollection
	peManifest
	peObjects
	peObject
	peVersions
	peStatus
)

// policyRoute is a canonical path matched against the TAXII templates.
type policyRoute struct {
	ep   policyEndpoint
	root *policyRoot
	// cid is the collection segment (an id or an alias), as sent.
	cid string
}

// allow is the Allow header of the endpoint: the methods TAXII 2.1 defines.
func (rt policyRoute) allow() string {
	switch rt.ep {
	case peObjects:
		return "GET, HEAD, POST"
	case peObject:
		return "GET, HEAD, DELETE"
	}
	return "GET, HEAD"
}

func (rt policyRoute) allows(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodPost:
		return rt.ep == peObjects
	case http.MethodDelete:
		return rt.ep == peObject
	}
	return false
}

// matchPolicyRoute maps a canonical path to an endpoint of v's API roots
// or the discovery resource. A path without its trailing slash is judged
// as the resource it names with one (backends redirect or serve it alike).
// Literal segments match exactly, in lower case: any other spelling is an
// unknown path, as is a path under no API root of the policy.
func matchPolicyRoute(v *policyView, discovery, p string) policyRoute {
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if p == discovery {
		return policyRoute{ep: peDiscovery}
	}
	for _, root := range v.roots {
		rest, ok := strings.CutPrefix(p, root.path)
		if !ok {
			continue
		}
		rt := policyRoute{root: root}
		var seg [6]string
		n := 0
		for rest != "" {
			if n == len(seg) {
				return policyRoute{}
			}
			seg[n], rest, _ = strings.Cut(rest, "/")
			n++
		}
		switch {
		case n == 0:
			rt.ep = peAPIRoot
		case n == 2 && seg[0] == "status":
			rt.ep = peStatus
		case n == 1 && seg[0] == "collections":
			rt.ep = peCollections
		case n >= 2 && seg[0] == "collections":
			rt.cid = seg[1]
			switch {
			case n == 2:
				rt.ep = peCollection
			case n == 3 && seg[2] == "manifest":
				rt.ep = peManifest
			case n == 3 && seg[2] == "objects":
				rt.ep = peObjects
			case n == 4 && seg[2] == "objects":
				rt.ep = peObject
			case n == 5 && seg[2] == "objects" && seg[4] == "versions":
				rt.ep = peVersions
			default:
				return policyRoute{}
			}
		default:
			return policyRoute{}
		}
		return rt
	}
	return policyRoute{}
}

// lookup finds the collection a segment names, by id or alias, without
// regard to ASCII case (cid is ASCII: canonicalPath); nil when the policy does not know it.
func (r *policyRoot) lookup(cid string) *policyCollection {
	if col, ok := r.byKey[cid]; ok {
		return col
	}
	return r.byKey[lowerASCII(cid)]
}
