package caddymodule

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// passesWithoutCredentials reports whether r goes on without an identity,
// and as what (methodSkip or methodAnonymous): r carries no Authorization
// header at all, and either its path matches skip or the anonymous option
// is on. Any Authorization header, even an empty or malformed one, is
// authenticated as usual, on skipped paths too, so bad credentials are
// refused (401), never downgraded: a backend that answers with credentials
// of its own (a fronted server's service account) answers only requests
// that carry none or good ones. The request goes on without identity
// headers (ServeHTTP deleted the client's) and with no user in
// {http.auth.user.id}: the absence of an identity is the marker, and
// sending fewer headers gains a client nothing.
func (a *TaxiiAuth) passesWithoutCredentials(r *http.Request) (string, bool, error) {
	if len(r.Header.Values("Authorization")) != 0 {
		return "", false, nil
	}
	if len(a.skip) > 0 && normalPath(r.URL) {
		skip, err := a.skip.AnyMatchWithError(r)
		if err != nil {
			return "", false, err
		}
		if skip {
			return methodSkip, true, nil
		}
	}
	return methodAnonymous, a.Anonymous, nil
}

// normalPath reports whether u's path is spelled so that what the skip
// matchers see is what the backend receives: absolute, with no "." or ".."
// segments and no empty ones ("//") once percent-decoded (Caddy's path
// matcher cleans the path before matching, a backend may not), and with no
// backslash and no percent-encoded slash or backslash (which a backend may
// or may not take for a separator). Any other spelling of a skipped path
// is authenticated as usual.
func normalPath(u *url.URL) bool {
	p := u.Path
	if !strings.HasPrefix(p, "/") || strings.Contains(p, `\`) || caddyhttp.CleanPath(p, true) != p {
		return false
	}
	esc := strings.ToLower(u.EscapedPath())
	return !strings.Contains(esc, "%2f") && !strings.Contains(esc, "%5c")
}
