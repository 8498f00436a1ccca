package taxiicore

import (
	"mime"
	"strconv"
	"strings"
)

// acceptsTAXII reports whether an Accept header admits a TAXII 2.1 response
// (NEG-03, NEG-09): some range with q > 0 is application/taxii+json (or the
// deprecated application/vnd.oasis.taxii+json) without a version parameter or
// with version=2.1. Wildcards and a missing header do not count: TAXII
// clients must name the TAXII media type (NEG-08, AMBIG-15), so they get 406.
func acceptsTAXII(header []string) bool {
	for _, h := range header {
		for _, item := range strings.Split(h, ",") {
			if taxiiRange(item) {
				return true
			}
		}
	}
	return false
}

func taxiiRange(item string) bool {
	parts := strings.Split(item, ";")
	if !isTAXIIType(strings.TrimSpace(parts[0])) {
		return false
	}
	q := 1.0
	versionOK := true
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.Trim(strings.TrimSpace(v), `"`)
		switch k {
		case "version":
			versionOK = v == "2.1"
		case "q":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				return false
			}
			q = f
		}
	}
	return versionOK && q > 0
}

func isTAXIIType(t string) bool {
	return strings.EqualFold(t, "application/taxii+json") || strings.EqualFold(t, "application/vnd.oasis.taxii+json")
}

// taxiiContentType reports whether a POST body's Content-Type is the TAXII
// 2.1 media type (NEG-05); anything else gets 415 (NEG-06).
func taxiiContentType(header string) bool {
	mt, params, err := mime.ParseMediaType(header)
	if err != nil || !isTAXIIType(mt) {
		return false
	}
	v, ok := params["version"]
	return !ok || v == "2.1"
}
