package caddymodule

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Timing of the feed followers (revocations, policy). A poll waits up to
// feedWait at the token service for a change (a long poll; the answer
// comes as soon as one commits); failures are retried with backoff up to
// feedRetryMax, so a gateway that lost the token service catches up within
// that long of its return.
const (
	feedWait       = 10 * time.Second
	feedFetchSlack = 5 * time.Second
	feedRetryMin   = 250 * time.Millisecond
	feedRetryMax   = 5 * time.Second
	feedStartWait  = 2 * time.Second
	feedMaxBody    = 16 << 20
	// minFeedMaxAge keeps a max_age above what a healthy long poll lets
	// the state age (feedWait plus the fetch slack).
	minFeedMaxAge = 30 * time.Second
)

// feedLoop follows one of the token service's feeds in the background.
// poll fetches one answer (waiting at most wait for a change), applies it
// and reports whether another follows at once; synced says when the state
// last applied an answer, for the age gauge.
type feedLoop struct {
	what     string // for logs: "revocation", "policy"
	url      string
	logger   *slog.Logger
	polls    *prometheus.CounterVec // result
	age      prometheus.Gauge
	poll     func(ctx context.Context, wait time.Duration) (more bool, err error)
	syncedAt func() time.Time

	ready chan struct{} // closed after the first answer
	once  sync.Once
	done  chan struct{} // closed when the loop has returned
}

func newFeedLoop(what, feedURL string, logger *slog.Logger, polls *prometheus.CounterVec, age prometheus.Gauge) *feedLoop {
	return &feedLoop{what: what, url: feedURL, logger: logger, polls: polls, age: age,
		ready: make(chan struct{}), done: make(chan struct{})}
}

// feedClient fetches feeds: long enough for a long poll, no redirects.
func feedClient() *http.Client {
	return &http.Client{Timeout: feedWait + feedFetchSlack, CheckRedirect: noRedirects}
}

// start follows the feed until ctx ends.
func (l *feedLoop) start(ctx context.Context) {
	go func() {
		defer close(l.done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); l.reportAge(ctx) }()
		defer wg.Wait()
		backoff := feedRetryMin
		wait := time.Duration(0) // the first poll answers at once
		failing := false
		for {
			more, err := l.poll(ctx, wait)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				l.polls.WithLabelValues("error").Inc()
				if !failing {
					l.logger.Warn(l.what+" feed unreachable; serving from the last state and retrying",
						slog.String("url", l.url), slog.String("error", err.Error()))
				}
				failing = true
				if !sleep(ctx, backoff) {
					return
				}
				backoff = min(backoff*2, feedRetryMax)
				wait = 0
				continue
			}
			l.polls.WithLabelValues("ok").Inc()
			if failing {
				l.logger.Info(l.what+" feed reachable again", slog.String("url", l.url))
			}
			failing, backoff = false, feedRetryMin
			l.once.Do(func() { close(l.ready) })
			wait = feedWait
			if more {
				wait = 0
			}
		}
	}()
}

// reportAge keeps the age gauge current, also while the feed is away.
func (l *feedLoop) reportAge(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	started := time.Now()
	for {
		synced := l.syncedAt()
		if synced.IsZero() {
			synced = started
		}
		l.age.Set(time.Since(synced).Seconds())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// wait blocks until the loop has stopped.
func (l *feedLoop) wait() { <-l.done }

// waitReady waits up to d for the first answer, or for ctx.
func (l *feedLoop) waitReady(ctx context.Context, d time.Duration) bool {
	return waitClosed(ctx, l.ready, d)
}

// getFeed asks the feed at feedURL for what follows after (a cursor or
// version), waiting up to wait, and decodes the JSON answer into v.
func getFeed(ctx context.Context, client *http.Client, feedURL string, after int64, wait time.Duration, v any) error {
	u, err := url.Parse(feedURL)
	if err != nil {
		return fmt.Errorf("feed URL: %w", err)
	}
	q := u.Query()
	q.Set("after", strconv.FormatInt(after, 10))
	q.Set("wait", strconv.Itoa(int(wait/time.Second)))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("building the feed request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("polling: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("polling: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, feedMaxBody+1))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if len(body) > feedMaxBody {
		return fmt.Errorf("answer larger than %d bytes", feedMaxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("parsing the answer: %w", err)
	}
	return nil
}

// checkFeedMaxAge checks a revocation_max_age or policy max_age.
func checkFeedMaxAge(option string, d time.Duration) error {
	if d != 0 && d < minFeedMaxAge {
		return fmt.Errorf("%s must be 0 (serve from the last state) or at least %s, got %s", option, minFeedMaxAge, d)
	}
	return nil
}
