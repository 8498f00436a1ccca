package caddymodule

import "net/http"

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
	// Skip matchers are consulted only for a path spelled plainly, so
	// that the backend receives, unauthenticated, nothing it might read
	// differently from the matchers (which clean and decode the path):
	// any other spelling of a skipped path is authenticated as usual.
	if _, plain := canonicalPath(r.URL.EscapedPath()); plain && len(a.skip) > 0 {
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
