package taxiicore

import (
	"net/http"
	"strings"
	"unicode/utf8"
)

// identity is the caller as the gateway vouched for it.
type identity struct {
	User   string
	Groups []string
	Admin  bool
	// Anonymous is a caller without credentials (see anonymous.go): User
	// is empty and only grants to anonymous apply.
	Anonymous bool
}

// principals are the grant principals that apply to the caller.
func (id identity) principals() []string {
	if id.Anonymous {
		return []string{AnonymousPrincipal}
	}
	// What anonymous callers may do, a logged-in user may do too: logging
	// in never loses access (OpenTAXII's public collections work alike).
	out := make([]string, 0, len(id.Groups)+3)
	out = append(out, "user:"+id.User, "authenticated", AnonymousPrincipal)
	for _, g := range id.Groups {
		out = append(out, "group:"+g)
	}
	return out
}

// identify reads the identity headers, believing them only from a trusted
// proxy and, when the core has identity keys, only with the gateway's
// signature (assertion.go). A request with no identity headers at all is
// anonymous; ok is false when it carries identity headers that are not
// usable (or come from an untrusted peer): those get 401, never anonymous
// access.
func (s *Server) identify(r *http.Request) (identity, bool) {
	if s.withoutIdentity(r) {
		return anonymousIdentity, true
	}
	if !s.cfg.proxies.FromTrusted(r) {
		return identity{}, false
	}
	users := r.Header.Values(s.cfg.UserHeader)
	if len(users) != 1 {
		return identity{}, false
	}
	if !s.identityProven(r, users[0]) {
		return identity{}, false
	}
	user := strings.TrimSpace(users[0])
	if user == "" || !utf8.ValidString(user) {
		return identity{}, false
	}
	id := identity{User: user}
	for _, h := range r.Header.Values(s.cfg.GroupsHeader) {
		for _, g := range strings.Split(h, ",") {
			if g = strings.TrimSpace(g); g != "" && utf8.ValidString(g) {
				id.Groups = append(id.Groups, g)
				if g == s.cfg.AdminGroup {
					id.Admin = true
				}
			}
		}
	}
	return id, true
}
