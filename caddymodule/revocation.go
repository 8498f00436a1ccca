package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
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
	*feedLoop
	client  *http.Client
	metrics *metrics
	maxAge  time.Duration // 0: serve from the last state however old

	mu       sync.RWMutex
	accounts map[string]revokedAccount
	tokens   map[string]time.Time // jti -> until
	cursor   int64
	synced   time.Time // when the last answer arrived; zero before the first
}

func newRevocations(feedURL string, maxAge time.Duration, logger *slog.Logger, m *metrics) *revocations {
	r := &revocations{
		feedLoop: newFeedLoop("revocation", feedURL, logger, m.revocationPolls, m.revocationAge),
		client:   feedClient(),
		metrics:  m,
		maxAge:   maxAge,
		accounts: map[string]revokedAccount{},
		tokens:   map[string]time.Time{},
	}
	r.poll, r.syncedAt = r.fetch, r.lastSynced
	return r
}

func (r *revocations) lastSynced() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.synced
}

// fetch polls the feed once and applies the page.
func (r *revocations) fetch(ctx context.Context, wait time.Duration) (bool, error) {
	r.mu.RLock()
	cursor := r.cursor
	r.mu.RUnlock()
	var page revocationPage
	if err := getFeed(ctx, r.client, r.url, cursor, wait, &page); err != nil {
		return false, fmt.Errorf("revocations: %w", err)
	}
	if page.Cursor < 0 || (!page.Reset && page.Cursor < cursor) {
		return false, fmt.Errorf("revocation feed went back from cursor %d to %d", cursor, page.Cursor)
	}
	r.apply(page, time.Now())
	return page.More, nil
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
