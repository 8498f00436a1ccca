package caddymodule

import (
	"net/http"
	"strings"
)

// headerStripper deletes every client-sent spelling of the identity headers.
// Backends (and proxies between) may treat case, '_' and '.' loosely, so
// "x_authenticated.USER" must go as surely as "X-Authenticated-User". Go
// canonicalizes only some spellings, so the keys are compared normalized.
type headerStripper struct {
	names []string // normalized: lower case, '-' for '_' and '.'
}

func newHeaderStripper(names ...string) headerStripper {
	s := headerStripper{}
	for _, n := range names {
		s.names = append(s.names, normalizeHeaderName(n))
	}
	return s
}

// strip deletes the identity headers from h, in place, and drops their
// names from Connection: a proxy deletes every header Connection names
// (hop-by-hop), so `Connection: X-Authenticated-User` from a client would
// otherwise remove the header the gateway sets.
func (s headerStripper) strip(h http.Header) {
	for key := range h {
		if s.isIdentity(key) {
			delete(h, key) // deleting during range is safe in Go
		}
	}
	conn := h.Values("Connection")
	if len(conn) == 0 {
		return
	}
	var kept []string
	changed := false
	for _, v := range conn {
		for _, tok := range strings.Split(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok == "" {
				continue
			}
			if s.isIdentity(tok) {
				changed = true
				continue
			}
			kept = append(kept, tok)
		}
	}
	if !changed {
		return
	}
	if len(kept) == 0 {
		h.Del("Connection")
		return
	}
	h.Set("Connection", strings.Join(kept, ", "))
}

// namesIdentity reports whether a comma-separated header value, such as a
// Trailer declaration, names an identity header.
func (s headerStripper) namesIdentity(values []string) bool {
	for _, v := range values {
		for _, tok := range strings.Split(v, ",") {
			if s.isIdentity(strings.TrimSpace(tok)) {
				return true
			}
		}
	}
	return false
}

// isIdentity reports whether key is a spelling of an identity header.
func (s headerStripper) isIdentity(key string) bool {
	for _, name := range s.names {
		if sameHeaderName(key, name) {
			return true
		}
	}
	return false
}

// normalizeHeaderName lower-cases name and writes '-' for '_' and '.'.
func normalizeHeaderName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '_' || r == '.':
			return '-'
		case 'A' <= r && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, name)
}

// sameHeaderName reports whether key normalizes to norm, without allocating:
// it runs on every request for every header.
func sameHeaderName(key, norm string) bool {
	if len(key) != len(norm) {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '_' || c == '.':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if c != norm[i] {
			return false
		}
	}
	return true
}
