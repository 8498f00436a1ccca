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

// strip deletes the identity headers from h, in place.
func (s headerStripper) strip(h http.Header) {
	for key := range h {
		for _, name := range s.names {
			if sameHeaderName(key, name) {
				delete(h, key) // deleting during range is safe in Go
				break
			}
		}
	}
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
