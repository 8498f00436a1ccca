package caddymodule

import "net/http"

// passesAnonymously reports whether r goes on as an anonymous request: the
// anonymous option is on and r carries no Authorization header at all. Any
// Authorization header, even an empty or malformed one, is authenticated as
// usual, so bad credentials are refused (401), never downgraded. The
// request goes on without identity headers (ServeHTTP deleted the client's)
// and with no user in {http.auth.user.id}: the absence of an identity is
// the anonymous marker, and sending fewer headers gains a client nothing.
func (a *TaxiiAuth) passesAnonymously(r *http.Request) bool {
	return a.Anonymous && len(r.Header.Values("Authorization")) == 0
}
