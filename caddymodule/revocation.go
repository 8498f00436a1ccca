package caddymodule

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// Timing of the revocation follower. A poll waits up to revocationWait at
// the token service for a new entry (a long poll; the answer comes as soon
// as one commits); failures are retried with backoff up to
// revocationRetryMax, so a gateway that lost the token service catches up
// within that long of its return.
const (
	revocationWait       = 10 * time.Second
	revocationFetchSlack = 5 * time.Second
	revocationRetryMin   = 250 * time.Millisecond
	revocationRetryMax   = 5 * time.Second
	revocationStartWait  = 2 * time.Second
	revocationMaxBody    = 16 << 20
	// minRevocationMaxAge keeps revocation_max_age above what a healthy
	// long poll lets the state age (revocationWait plus the fetch slack).
	minRevocationMaxAge = 30 * time.Second
)

// Revocation failures: the token is revoked (401), or the gateway does not
// know the revocation state well enough to tell (503).
var (
	errRevoked          = errors.New("token revoked")
	errRevocationsStale = errors.New("revocation state unknown or older than revocation_max_age")
)

// revokedAccount says: tokens of this account with an account_version below
// minVersion are void, until the time every such token has expired.
type revokedAccount struct {
	minVersion int64
	until      time.Time
}

// revocationPage is the token service's answer (tokenservice.RevocationPage).
type revocationPage struct {
	Cursor  int64             `json:"cursor"`
	Reset   bool              `json:"reset"`
	More    bool              `json:"more"`
	Entries []revocationEntry `json:"entries"`
}

// revocationEntry voids an account's tokens below MinVersion, or one token
// by JTI, until Until (Unix seconds).
type revocationEntry struct {
	Username   string `json:"sub"`
	MinVersion int64  `json:"min_version"`
	JTI        string `json:"jti"`
	Until      int64  `json:"until"`
}

// revocations follows the token service's revocation feed in the
// background and answers, per request and without leaving the process,
// whether an identity's token is revoked. Memory is bounded by the feed:
// every entry is dropped once the tokens it refuses have expired.
type revocations struct {
	url     string
	client  *http.Client
	logger  *slog.Logger
	metrics *metrics
	maxAge  time.Duration // 0: serve from the last state however old

	mu       sync.RWMutex
	accounts map[string]revokedAccount
	tokens   map[string]time.Time // jti -> until
	cursor   int64
	synced   time.Time // when the last answer arrived; zero before the first

	ready chan struct{} // closed after the first answer
	once  sync.Once
	done  chan struct{} // closed when the loop has returned
}

func newRevocations(feedURL string, maxAge time.Duration, logger *slog.Logger, m *metrics) *revocations {
	return &revocations{
		url:      feedURL,
		client:   &http.Client{Timeout: revocationWait + revocationFetchSlack, CheckRedirect: noRedirects},
		logger:   logger,
		metrics:  m,
		maxAge:   maxAge,
		accounts: map[string]revokedAccount{},
		tokens:   map[string]time.Time{},
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// start follows the feed until ctx ends.
func (r *revocations) start(ctx context.Context) {
	go func() {
		defer close(r.done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); r.reportAge(ctx) }()
		defer wg.Wait()
		backoff := revocationRetryMin
		wait := time.Duration(0) // the first poll answers at once
		failing := false
		for {
			page, err := r.fetch(ctx, wait)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				r.metrics.revocationPolls.WithLabelValues("error").Inc()
				if !failing {
					r.logger.Warn("revocation feed unreachable; serving from the last state and retrying",
						slog.String("revocation_url", r.url), slog.String("error", err.Error()))
				}
				failing = true
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, revocationRetryMax)
				wait = 0
				continue
			}
			r.metrics.revocationPolls.WithLabelValues("ok").Inc()
			if failing {
				r.logger.Info("revocation feed reachable again", slog.String("revocation_url", r.url))
			}
			failing, backoff = false, revocationRetryMin
			r.apply(page, time.Now())
			r.once.Do(func() { close(r.ready) })
			wait = revocationWait
			if page.More {
				wait = 0
			}
		}
	}()
}

// reportAge keeps the age gauge current, also while the feed is away.
func (r *revocations) reportAge(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	started := time.Now()
	for {
		r.mu.RLock()
		synced := r.synced
		r.mu.RUnlock()
		if synced.IsZero() {
			synced = started
		}
		r.metrics.revocationAge.Set(time.Since(synced).Seconds())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// wait blocks until the loop has stopped.
func (r *revocations) wait() { <-r.done }

// waitReady waits up to d for the first answer, or for ctx.
func (r *revocations) waitReady(ctx context.Context, d time.Duration) bool {
	return waitClosed(ctx, r.ready, d)
}

func (r *revocations) fetch(ctx context.Context, wait time.Duration) (revocationPage, error) {
	r.mu.RLock()
	cursor := r.cursor
	r.mu.RUnlock()
	u, err := url.Parse(r.url)
	if err != nil {
		return revocationPage{}, fmt.Errorf("revocation_url: %w", err)
	}
	q := u.Query()
	q.Set("after", strconv.FormatInt(cursor, 10))
	q.Set("wait", strconv.Itoa(int(wait/time.Second)))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return revocationPage{}, fmt.Errorf("building the revocation request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return revocationPage{}, fmt.Errorf("polling revocations: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return revocationPage{}, fmt.Errorf("polling revocations: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, revocationMaxBody+1))
	if err != nil {
		return revocationPage{}, fmt.Errorf("reading revocations: %w", err)
	}
	if len(body) > revocationMaxBody {
		return revocationPage{}, fmt.Errorf("revocation page larger than %d bytes", revocationMaxBody)
	}
	var page revocationPage
	if err := json.Unmarshal(body, &page); err != nil {
		return revocationPage{}, fmt.Errorf("parsing revocations: %w", err)
	}
	if page.Cursor < 0 || (!page.Reset && page.Cursor < cursor) {
		return revocationPage{}, fmt.Errorf("revocation feed went back from cursor %d to %d", cursor, page.Cursor)
	}
	return page, nil
}

// apply merges a page into the state and drops what has expired.
func (r *revocations) apply(page revocationPage, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if page.Reset {
		clear(r.accounts)
		clear(r.tokens)
	}
	for _, e := range page.Entries {
		until := time.Unix(e.Until, 0)
		switch {
		case e.JTI != "":
			if until.After(r.tokens[e.JTI]) {
				r.tokens[e.JTI] = until
			}
		case e.Username != "":
			a := r.accounts[e.Username]
			if e.MinVersion >= a.minVersion {
				a.minVersion = e.MinVersion
			}
			if until.After(a.until) {
				a.until = until
			}
			r.accounts[e.Username] = a
		}
	}
	for k, a := range r.accounts {
		if a.until.Before(now) {
			delete(r.accounts, k)
		}
	}
	for k, until := range r.tokens {
		if until.Before(now) {
			delete(r.tokens, k)
		}
	}
	r.cursor = page.Cursor
	r.synced = now
	r.metrics.revocationEntries.WithLabelValues("account").Set(float64(len(r.accounts)))
	r.metrics.revocationEntries.WithLabelValues("token").Set(float64(len(r.tokens)))
}

// check reports errRevoked when id's token is void, errRevocationsStale
// when the state is unknown or too old to tell, and nil otherwise. A map
// lookup under a read lock: nothing leaves the process.
func (r *revocations) check(id identity, now time.Time) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.synced.IsZero() || (r.maxAge > 0 && now.Sub(r.synced) > r.maxAge) {
		return errRevocationsStale
	}
	if a, ok := r.accounts[id.User]; ok && id.Version < a.minVersion {
		return errRevoked
	}
	if id.JTI != "" {
		if _, ok := r.tokens[id.JTI]; ok {
			return errRevoked
		}
	}
	return nil
}
