package caddymodule

import "strings"

// canonicalPath returns the escaped path p in its one spelling that the
// policy judges and that skip matches (a path it refuses is never skipped): percent-escapes of unreserved characters (A-Z a-z 0-9 - . _ ~)
// decoded, every other byte besides those and '/' refused, as are empty
// segments (duplicate slashes), dot segments and a missing leading slash.
// What it refuses covers every spelling a backend might read differently
// from the policy: escaped slashes and backslashes, NUL and control bytes,
// ';' path parameters, non-ASCII bytes and "..". TAXII paths need nothing
// else: API root names, UUIDs, STIX ids and aliases are all unreserved.
func canonicalPath(p string) (string, bool) {
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	var b []byte // allocated only when an escape must be decoded
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '/' || isUnreserved(c):
			if b != nil {
				b = append(b, c)
			}
		case c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]):
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if !isUnreserved(d) {
				return "", false
			}
			if b == nil {
				b = append(make([]byte, 0, len(p)), p[:i]...)
			}
			b = append(b, d)
			i += 2
		default:
			return "", false
		}
	}
	if b != nil {
		p = string(b)
	}
	// Segments between the first and the last slash: none empty, none a
	// dot segment. The last segment may be empty (a trailing slash).
	for rest := p[1:]; rest != ""; {
		seg, tail, more := strings.Cut(rest, "/")
		if (seg == "" && more) || seg == "." || seg == ".." {
			return "", false
		}
		rest = tail
	}
	return p, true
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
