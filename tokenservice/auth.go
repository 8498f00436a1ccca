package tokenservice

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Request bounds. A login body is two short strings; anything bigger is
// refused before it is parsed.
const (
	maxBodyBytes    = 4 << 10
	maxPasswordLen  = 1024
	unavailableWait = "5" // Retry-After when Postgres is away
)

type credentials struct {
	username, password string
}

// requestError is a client mistake with its status and explanation.
type requestError struct {
	status      int
	code, descr string
}

// readCredentials reads a form-encoded or JSON body with username and
// password. Credentials in the URL are refused: URLs end up in logs.
func readCredentials(w http.ResponseWriter, r *http.Request) (credentials, *requestError) {
	q := r.URL.Query()
	if q.Has("username") || q.Has("password") {
		return credentials{}, &requestError{http.StatusBadRequest, "invalid_request", "send username and password in the request body, not the URL"}
	}
	ct := r.Header.Get("Content-Type")
	mediaType, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || (mediaType != "application/x-www-form-urlencoded" && mediaType != "application/json") {
		return credentials{}, &requestError{http.StatusUnsupportedMediaType, "unsupported_media_type",
			"send application/x-www-form-urlencoded or application/json"}
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return credentials{}, &requestError{http.StatusUnsupportedMediaType, "unsupported_media_type", "only UTF-8 bodies are accepted"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return credentials{}, &requestError{http.StatusRequestEntityTooLarge, "request_too_large",
				"the body must be at most " + strconv.Itoa(maxBodyBytes) + " bytes"}
		}
		return credentials{}, &requestError{http.StatusBadRequest, "invalid_request", "could not read the request body"}
	}
	var c credentials
	if mediaType == "application/json" {
		var in struct {
			Username *string `json:"username"`
			Password *string `json:"password"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		if err := dec.Decode(&in); err != nil {
			return credentials{}, &requestError{http.StatusBadRequest, "invalid_request",
				`the body must be a JSON object {"username": "...", "password": "..."} with string values`}
		}
		if _, err := dec.Token(); err != io.EOF {
			return credentials{}, &requestError{http.StatusBadRequest, "invalid_request", "unexpected data after the JSON object"}
		}
		if in.Username != nil {
			c.username = *in.Username
		}
		if in.Password != nil {
			c.password = *in.Password
		}
	} else {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return credentials{}, &requestError{http.StatusBadRequest, "invalid_request", "malformed form body"}
		}
		if len(form["username"]) > 1 || len(form["password"]) > 1 {
			return credentials{}, &requestError{http.StatusBadRequest, "invalid_request", "username and password must each appear once"}
		}
		c.username, c.password = form.Get("username"), form.Get("password")
	}
	switch {
	case c.username == "" || c.password == "":
		return credentials{}, &requestError{http.StatusBadRequest, "invalid_request", "username and password are required"}
	case len(c.username) > maxUsernameLen:
		return credentials{}, &requestError{http.StatusBadRequest, "invalid_request", "username too long"}
	case !utf8.ValidString(c.username) || strings.ContainsRune(c.username, 0):
		// No account can have such a name, and Postgres would refuse it as
		// a parameter: answer it here rather than as a server error.
		return credentials{}, &requestError{http.StatusBadRequest, "invalid_request", "username must be UTF-8 text without NUL"}
	case len(c.password) > maxPasswordLen:
		return credentials{}, &requestError{http.StatusBadRequest, "invalid_request", "password too long"}
	}
	return c, nil
}

// serveAuth exchanges a username and password for a token.
func (s *Server) serveAuth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST with username and password")
		return
	}
	creds, reqErr := readCredentials(w, r)
	if reqErr != nil {
		s.metrics.failures.WithLabelValues("bad_request").Inc()
		writeError(w, reqErr.status, reqErr.code, reqErr.descr)
		return
	}
	ctx := r.Context()
	client := s.cfg.TrustedProxies.ClientIP(r)
	keys := newLimitKeys(client, creds.username)
	log := s.logger.With("client", client.String())

	// Counted before any hashing, atomically in Postgres: a burst of
	// parallel guesses gets exactly the limit through, however many
	// replicas and hash slots there are. A success gives its count back.
	limited, scope, retry, err := s.limiter.attempt(ctx, keys)
	if err != nil {
		s.unavailable(w, "counting the login attempt", err)
		return
	}
	if limited {
		s.metrics.rateLimited.WithLabelValues(scope).Inc()
		log.Warn("login rate limited", "scope", scope, "retry_after", retry.Seconds())
		w.Header().Set("Retry-After", strconv.Itoa(int(retry/time.Second)))
		writeError(w, http.StatusTooManyRequests, "rate_limited", "too many failed logins; retry later")
		return
	}

	began := time.Now()
	acct, found, err := lookupAccount(ctx, s.pool, creds.username)
	if err != nil {
		s.unavailable(w, "looking up the account", err)
		return
	}
	release, ok := s.acquireHashSlot(ctx)
	if !ok {
		s.metrics.hashBusy.Inc()
		if err := s.limiter.release(context.WithoutCancel(ctx), keys); err != nil {
			log.Error("returning a login attempt", "error", err)
		}
		log.Warn("login refused: every password hash slot busy")
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "busy", "too many logins at once; retry in a second")
		return
	}
	reason := s.verify(ctx, creds, acct, found)
	release()

	if reason != "" {
		s.failureTime.pad(ctx, began)
		s.metrics.failures.WithLabelValues(reason).Inc()
		if reason == "unknown_user" {
			// The name is not logged: an unknown "username" is often a
			// password typed into the wrong field.
			log.Warn("login refused", "reason", reason)
		} else {
			log.Warn("login refused", "reason", reason, "username", creds.username)
		}
		// One body for every reason, so the answer does not tell whether
		// the account exists.
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "wrong username or password")
		return
	}
	if err := s.limiter.succeed(ctx, keys); err != nil {
		log.Error("clearing a failed-login count", "error", err)
	}
	token, jti, err := s.issue(ctx, creds.username, acct.groups, acct.version)
	if err != nil {
		s.unavailable(w, "signing a token", err)
		return
	}
	s.metrics.issued.Inc()
	log.Info("token issued", "username", creds.username, "jti", jti)
	body, _ := json.Marshal(struct {
		Token string `json:"token"`
	}{token})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n'))
}

// verify checks the password and the account's state; it returns the
// failure reason, or "" when a token may be issued. It runs while holding a
// hash slot, and upgrades the stored hash when it is due.
func (s *Server) verify(ctx context.Context, creds credentials, acct storedAccount, found bool) string {
	if !found {
		s.timedVerify(s.dummyHash, creds.password)
		return "unknown_user"
	}
	ok, err := s.timedVerify(acct.hash, creds.password)
	if err != nil {
		// An admin stored something unusable; the message names the
		// format problem, never the hash.
		s.logger.Error("stored password hash unusable", "username", creds.username, "error", err)
		return "bad_password"
	}
	switch {
	case !ok:
		return "bad_password"
	case acct.disabled:
		return "disabled"
	case time.Now().Before(acct.notBefore):
		return "not_yet_valid"
	}
	if needsRehash(acct.hash, s.cfg.PasswordHash) {
		start := time.Now()
		newHash, err := HashPassword(creds.password, s.cfg.PasswordHash)
		s.metrics.hashSeconds.WithLabelValues("argon2id").Observe(time.Since(start).Seconds())
		if err == nil {
			var stored bool
			stored, err = upgradeHash(ctx, s.pool, creds.username, acct.hash, newHash)
			if stored {
				s.metrics.rehashed.Inc()
				s.logger.Info("password hash upgraded", "username", creds.username, "from", hashScheme(acct.hash))
			}
		}
		if err != nil {
			// The login stands; the next one tries again.
			s.logger.Warn("upgrading a password hash", "username", creds.username, "error", err)
		}
	}
	return ""
}

func (s *Server) timedVerify(encoded, password string) (bool, error) {
	start := time.Now()
	ok, err := VerifyPassword(encoded, password)
	took := time.Since(start)
	s.metrics.hashSeconds.WithLabelValues(hashScheme(encoded)).Observe(took.Seconds())
	if !needsRehash(encoded, s.cfg.PasswordHash) {
		s.failureTime.observe(took)
	}
	return ok, err
}

// acquireHashSlot waits up to HashQueueWait for one of the
// MaxConcurrentHashes slots.
func (s *Server) acquireHashSlot(ctx context.Context) (release func(), ok bool) {
	release = func() { <-s.hashSlots }
	select {
	case s.hashSlots <- struct{}{}:
		return release, true
	default:
	}
	if s.cfg.HashQueueWait <= 0 {
		return nil, false
	}
	t := time.NewTimer(s.cfg.HashQueueWait)
	defer t.Stop()
	select {
	case s.hashSlots <- struct{}{}:
		return release, true
	case <-t.C:
		return nil, false
	case <-ctx.Done():
		return nil, false
	}
}

// issue signs a token for username at account version and returns it with
// its jti.
func (s *Server) issue(ctx context.Context, username string, groups []string, version int64) (string, string, error) {
	c, err := newClaims(s.cfg, username, groups, version, time.Now())
	if err != nil {
		return "", "", err
	}
	sg := s.hs256
	if s.keys != nil {
		key, _, err := s.keys.current(ctx)
		if err != nil {
			return "", "", err
		}
		sg = signer{alg: AlgEdDSA, kid: key.kid, priv: key.priv}
	}
	token, err := sg.sign(c)
	return token, c.ID, err
}

// unavailable answers 503 for a server-side failure (mostly Postgres away).
func (s *Server) unavailable(w http.ResponseWriter, doing string, err error) {
	s.logger.Error("login failed on the server side", "doing", doing, "error", err)
	w.Header().Set("Retry-After", unavailableWait)
	writeError(w, http.StatusServiceUnavailable, "unavailable", "the token service cannot answer right now; retry shortly")
}
