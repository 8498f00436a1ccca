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
		for _, item := range splitRanges(h) {
			if taxiiRange(item) {
				return true
			}
		}
	}
	return false
}

// splitRanges splits an Accept header on the commas between media ranges,
// not those inside a quoted parameter value (RFC 9110, 5.6.4), so that
// `;foo="a,b";version=2.0` stays one range.
func splitRanges(h string) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case quoted && c == '\\':
			i++ // the escaped character cannot end the quote
		case c == '"':
			quoted = !quoted
		case !quoted && c == ',':
			out = append(out, h[start:i])
			start = i + 1
		}
	}
	return append(out, h[start:])
}

// taxiiRange reports whether one media range admits TAXII 2.1. A range
// that does not parse (mime.ParseMediaType: quoting, duplicate parameters)
// admits nothing.
func taxiiRange(item string) bool {
	mt, params, err := mime.ParseMediaType(item)
	if err != nil || !isTAXIIType(mt) {
		return false
	}
	if v, ok := params["version"]; ok && v != "2.1" {
		return false
	}
	if v, ok := params["q"]; ok {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 || f > 1 {
			return false
		}
	}
	return true
}

func isTAXIIType(t string) bool {
	return strings.EqualFold(t, "application/taxii+json") || strings.EqualFold(t, "application/vnd.oasis.taxii+json")
}

// taxiiContentType reports whether a POST body's Content-Type is the TAXII
// 2.1 media type (NEG-05) in UTF-8, the only encoding JSON has (RFC 8259,
// 8.1); anything else gets 415 (NEG-06) rather than being misread.
func taxiiContentType(header string) bool {
	mt, params, err := mime.ParseMediaType(header)
	if err != nil || !isTAXIIType(mt) {
		return false
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return false
	}
	v, ok := params["version"]
	return !ok || v == "2.1"
}
