package caddymodule

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// ServeHTTP authenticates the request (Bearer, then Basic), replaces the
// identity headers and calls next; otherwise it answers with a TAXII error.
func (a *TaxiiAuth) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// Client-sent identity headers never pass, whatever happens next.
	a.strip.strip(r.Header)
	// An identity header declared as a trailer would arrive after the body,
	// past this handler, and a proxy forwards trailers: refuse it.
	if a.strip.namesIdentity(r.Header.Values("Trailer")) || a.trailerNamesIdentity(r.Trailer) {
		a.metrics.attempts.WithLabelValues(methodNone, resultInvalid).Inc()
		taxiierror.Write(w, http.StatusBadRequest, "Bad request", "Identity headers cannot be sent as trailers.")
		return nil
	}

	if len(a.skip) > 0 {
		skip, err := a.skip.AnyMatchWithError(r)
		if err != nil {
			return caddyhttp.Error(http.StatusBadRequest, err)
		}
		if skip {
			a.metrics.ok(methodSkip)
			if !a.KeepAuthorization {
				r.Header.Del("Authorization")
			}
			return next.ServeHTTP(w, r)
		}
	}

	if a.passesAnonymously(r) {
		a.metrics.ok(methodAnonymous)
		return next.ServeHTTP(w, r)
	}

	id, method, err := a.authenticate(r)
	if err != nil {
		a.refuse(w, method, err)
		return nil
	}
	a.metrics.ok(method)

	if !a.KeepAuthorization {
		r.Header.Del("Authorization")
	}
	r.Header.Set(a.UserHeader, id.User)
	if id.Groups != "" {
		r.Header.Set(a.GroupsHeader, id.Groups)
	}
	if a.signer != nil {
		a.signer.sign(r, id.User, id.Groups, time.Now())
	}
	// Access logs read the user from this placeholder, as with basic_auth.
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		repl.Set("http.auth.user.id", id.User)
	}
	return next.ServeHTTP(w, r)
}

// authFailure is a refused request: what the client gets and, for the debug
// log, why. reason never holds a token or password.
type authFailure struct {
	status     int
	retryAfter string
	reason     string
	result     string // metrics label; derived from status when empty
}

func (f *authFailure) Error() string { return f.reason }

func unauthorized(reason string) error {
	return &authFailure{status: http.StatusUnauthorized, reason: reason}
}

// authenticate returns the verified identity and the method used, in the
// fixed order Bearer, then Basic.
func (a *TaxiiAuth) authenticate(r *http.Request) (identity, string, error) {
	values := r.Header.Values("Authorization")
	switch {
	case len(values) == 0:
		return identity{}, methodNone, unauthorized("no credentials")
	case len(values) > 1:
		return identity{}, methodNone, unauthorized("more than one Authorization header")
	case len(values[0]) > a.MaxHeaderBytes:
		return identity{}, methodNone, unauthorized("Authorization header too large")
	}
	scheme, cred, _ := strings.Cut(values[0], " ")
	cred = strings.TrimSpace(cred)
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		id, err := a.bearer(r.Context(), cred)
		return id, methodBearer, err
	case strings.EqualFold(scheme, "Basic"):
		id, err := a.basic(r, cred)
		return id, methodBasic, err
	}
	return identity{}, methodNone, unauthorized("unsupported authorization scheme")
}

// bearer verifies a token, through the cache of verified tokens, and checks
// it against the revocation state (cached or not: a revocation applies to
// tokens verified before it).
func (a *TaxiiAuth) bearer(ctx context.Context, token string) (identity, error) {
	if token == "" {
		return identity{}, unauthorized("empty bearer token")
	}
	now := time.Now()
	k := a.bearerKey.key(token)
	id, ok := a.bearerKey.get(k, now)
	if ok {
		a.metrics.hit(methodBearer)
	} else {
		a.metrics.miss(methodBearer)
		var err error
		if id, err = a.verifier.verify(ctx, token); err != nil {
			if errors.Is(err, errNoKeys) {
				return identity{}, &authFailure{status: http.StatusServiceUnavailable, retryAfter: defaultRetryAfter,
					reason: "no signing keys loaded yet"}
			}
			return identity{}, unauthorized("invalid token: " + err.Error())
		}
		a.bearerKey.put(k, id, now)
	}
	if err := a.checkRevoked(id, now); err != nil {
		return identity{}, err
	}
	return id, nil
}

// checkRevoked refuses an identity whose token the revocation feed voids
// (401), or any token while the revocation state is unknown or older than
// revocation_max_age (503). Without revocation_url it accepts everything.
func (a *TaxiiAuth) checkRevoked(id identity, now time.Time) error {
	if a.revocations == nil {
		return nil
	}
	switch err := a.revocations.check(id, now); {
	case err == nil:
		return nil
	case errors.Is(err, errRevoked):
		return &authFailure{status: http.StatusUnauthorized, reason: "token revoked", result: resultRevoked}
	default:
		return &authFailure{status: http.StatusServiceUnavailable, retryAfter: defaultRetryAfter, reason: err.Error()}
	}
}

// trailerNamesIdentity reports whether a declared trailer is an identity header.
func (a *TaxiiAuth) trailerNamesIdentity(trailer http.Header) bool {
	for k := range trailer {
		if a.strip.isIdentity(k) {
			return true
		}
	}
	return false
}

// basic exchanges Basic credentials for a token (or, if allowed, takes a
// JWT given as the password), through the cache of successful exchanges.
// cred is the header's value after the scheme, spaces trimmed.
func (a *TaxiiAuth) basic(r *http.Request, cred string) (identity, error) {
	user, password, ok := parseBasic(cred)
	if !ok {
		return identity{}, unauthorized("malformed Basic credentials")
	}
	if a.JWTInBasicPassword && looksLikeJWT(password) {
		return a.bearer(r.Context(), password)
	}
	if !a.basicEnabled() {
		return identity{}, unauthorized("Basic authentication is off")
	}
	if user == "" || password == "" {
		return identity{}, unauthorized("empty user name or password")
	}

	// Credentials of an account the revocation feed marks disabled or
	// deleted are exchanged like any others, not refused here: the token
	// service's answer then costs the same password hash and counts
	// against the same rate limits as a wrong password's.
	now := time.Now()
	k := a.basicKeys.key(user, password)
	if id, ok := a.basicKeys.get(k, now); ok {
		err := a.checkRevoked(id, now)
		if err == nil {
			a.metrics.hit(methodBasic)
			return id, nil
		}
		var f *authFailure
		if errors.As(err, &f) && f.result != resultRevoked {
			return identity{}, err
		}
		// The cached token is void (a disable, a new password, new
		// groups): forget it and exchange again, which tells.
		a.basicKeys.remove(k)
	}
	a.metrics.miss(methodBasic)

	clientIP := clientAddress(r)
	// One exchange per credentials at a time; the others wait for it. It
	// runs detached from the first caller's request, bounded by a timeout.
	v, err, _ := a.basicKeys.flight.Do(string(k[:]), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), exchangeTimeout)
		defer cancel()
		start := time.Now()
		token, err := a.exchanger.exchange(ctx, user, password, clientIP)
		if err != nil {
			xe := asExchangeError(err)
			a.metrics.exchangeSeconds.WithLabelValues(exchangeResult(xe.status)).Observe(time.Since(start).Seconds())
			return nil, xe
		}
		a.metrics.exchangeSeconds.WithLabelValues(resultOK).Observe(time.Since(start).Seconds())
		id, err := a.verifier.verify(ctx, token)
		if err != nil {
			// The token service issued a token this gateway cannot check:
			// a configuration mismatch (keys, issuer, audience), not the
			// client's fault.
			a.logger.Warn("token from the token service failed verification; check issuer, audience, algorithms and keys",
				slog.String("error", err.Error()))
			return nil, &exchangeError{status: http.StatusServiceUnavailable, retryAfter: defaultRetryAfter,
				reason: "token service issued an unverifiable token"}
		}
		if err := a.checkRevoked(id, time.Now()); err != nil {
			f := err.(*authFailure)
			return nil, &exchangeError{status: f.status, retryAfter: f.retryAfter, reason: "fresh token: " + f.reason}
		}
		a.basicKeys.put(k, id, time.Now())
		return id, nil
	})
	if err != nil {
		xe := asExchangeError(err)
		return identity{}, &authFailure{status: xe.status, retryAfter: xe.retryAfter, reason: xe.reason}
	}
	return v.(identity), nil
}

func exchangeResult(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return resultInvalid
	case http.StatusTooManyRequests:
		return resultRateLimited
	}
	return resultUnavailable
}

// refuse answers a failed authentication with a TAXII error body.
func (a *TaxiiAuth) refuse(w http.ResponseWriter, method string, err error) {
	f := &authFailure{status: http.StatusUnauthorized, reason: err.Error()}
	errors.As(err, &f)
	result := f.result
	if result == "" {
		result = exchangeResult(f.status)
	}
	a.metrics.attempts.WithLabelValues(method, result).Inc()
	a.logger.Debug("authentication refused", slog.String("method", method),
		slog.Int("status", f.status), slog.String("reason", f.reason))
	switch f.status {
	case http.StatusUnauthorized:
		taxiierror.Unauthorized(w, "Send a valid Bearer token or Basic credentials.")
	case http.StatusTooManyRequests:
		w.Header().Set("Retry-After", f.retryAfter)
		taxiierror.Write(w, f.status, "Too many attempts", "Too many authentication attempts; retry later.")
	default:
		w.Header().Set("Retry-After", f.retryAfter)
		taxiierror.Write(w, http.StatusServiceUnavailable, "Authentication unavailable",
			"The token service cannot be reached; retry later.")
	}
}

// parseBasic decodes Basic credentials (the header's value after the
// scheme and any spaces): base64 of "user:password". It accepts the same
// extra spaces after the scheme as Bearer does.
func parseBasic(cred string) (user, password string, ok bool) {
	b, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(b), ":")
}

// looksLikeJWT reports whether s has the shape of a compact JWS whose
// header is a JSON object ("eyJ" is base64url for `{"`).
func looksLikeJWT(s string) bool {
	return strings.HasPrefix(s, "eyJ") && strings.Count(s, ".") == 2
}

// clientAddress is the client's IP as Caddy determined it (honouring the
// server's trusted_proxies), falling back to the TCP peer.
func clientAddress(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
