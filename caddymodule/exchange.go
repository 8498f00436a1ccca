package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	exchangeTimeout      = 10 * time.Second
	exchangeMaxBodyBytes = 64 << 10
	// defaultRetryAfter is sent with 503 when the token service gave none.
	defaultRetryAfter = "5"
)

// exchangeError is a failed exchange, with the status the client gets:
// 401 (bad credentials), 429 (rate limited) or 503 (token service down).
type exchangeError struct {
	status     int
	retryAfter string
	reason     string
}

func (e *exchangeError) Error() string { return e.reason }

// exchanger trades Basic credentials for a token at the token service.
type exchanger struct {
	url    string
	client *http.Client
}

func newExchanger(tokenURL string) *exchanger {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 32
	return &exchanger{
		url:    tokenURL,
		client: &http.Client{Transport: tr, Timeout: exchangeTimeout, CheckRedirect: noRedirects},
	}
}

// exchange posts the credentials as a form and returns the token. clientIP
// goes in X-Forwarded-For so the token service rate-limits the real client.
func (x *exchanger) exchange(ctx context.Context, user, password, clientIP string) (string, error) {
	form := url.Values{"username": {user}, "password": {password}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.url, strings.NewReader(form))
	if err != nil {
		return "", &exchangeError{status: http.StatusServiceUnavailable, retryAfter: defaultRetryAfter,
			reason: fmt.Sprintf("building token request: %v", err)}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if clientIP != "" {
		req.Header.Set("X-Forwarded-For", clientIP)
	}
	resp, err := x.client.Do(req)
	if err != nil {
		// The error text holds the URL, never the form body.
		return "", &exchangeError{status: http.StatusServiceUnavailable, retryAfter: defaultRetryAfter,
			reason: fmt.Sprintf("token service unreachable: %v", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, exchangeMaxBodyBytes+1))
	if err != nil {
		return "", &exchangeError{status: http.StatusServiceUnavailable, retryAfter: defaultRetryAfter,
			reason: fmt.Sprintf("reading token response: %v", err)}
	}

	switch {
	case resp.StatusCode == http.StatusOK:
		var out struct {
			Token string `json:"token"`
		}
		if len(body) > exchangeMaxBodyBytes || json.Unmarshal(body, &out) != nil || out.Token == "" {
			return "", &exchangeError{status: http.StatusServiceUnavailable, retryAfter: defaultRetryAfter,
				reason: "token service answered 200 without a token"}
		}
		return out.Token, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		return "", &exchangeError{status: http.StatusTooManyRequests,
			retryAfter: retryAfterOr(resp.Header.Get("Retry-After"), defaultRetryAfter), reason: "token service rate-limited the client"}
	case resp.StatusCode >= 500:
		return "", &exchangeError{status: http.StatusServiceUnavailable,
			retryAfter: retryAfterOr(resp.Header.Get("Retry-After"), defaultRetryAfter),
			reason:     fmt.Sprintf("token service answered %d", resp.StatusCode)}
	default:
		// 401 and any other refusal: the credentials did not work.
		return "", &exchangeError{status: http.StatusUnauthorized,
			reason: fmt.Sprintf("token service refused the credentials (%d)", resp.StatusCode)}
	}
}

// retryAfterOr passes on a Retry-After that is a number of seconds or an
// HTTP date, and uses def for anything else.
func retryAfterOr(v, def string) string {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return v
	}
	if _, err := http.ParseTime(v); err == nil {
		return v
	}
	return def
}

// asExchangeError unwraps err into an exchangeError, mapping anything else
// to 503: the gateway could not complete the exchange.
func asExchangeError(err error) *exchangeError {
	var xe *exchangeError
	if errors.As(err, &xe) {
		return xe
	}
	return &exchangeError{status: http.StatusServiceUnavailable, retryAfter: defaultRetryAfter, reason: err.Error()}
}
