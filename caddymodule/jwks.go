package caddymodule

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/taxiway/taxiway/internal/jwks"
)

// Timing of the JWKS fetcher. Unknown key ids trigger a refresh at most once
// per jwksMinInterval, so tokens with made-up kids cannot hammer the token
// service.
const (
	jwksStartWait    = 2 * time.Second
	jwksFetchTimeout = 5 * time.Second
	jwksRefreshEvery = 10 * time.Minute
	jwksRetryMin     = 500 * time.Millisecond
	jwksRetryMax     = 30 * time.Second
	jwksMinInterval  = 10 * time.Second
	jwksMaxBodyBytes = 1 << 20
)

// jwksSource holds the token service's signing keys, fetched from its JWKS
// URL in the background and on demand.
type jwksSource struct {
	url      string
	client   *http.Client
	logger   *slog.Logger
	metrics  *metrics
	onChange func() // called when the key set changes, to drop cached verifications

	mu           sync.RWMutex
	keys         map[string]ed25519.PublicKey
	lastOnDemand time.Time

	flight singleflight.Group
	ready  chan struct{} // closed after the first successful fetch
	once   sync.Once
	done   chan struct{} // closed when the background loop has returned
}

func newJWKSSource(url string, logger *slog.Logger, m *metrics, onChange func()) *jwksSource {
	return &jwksSource{
		url:      url,
		client:   &http.Client{Timeout: jwksFetchTimeout, CheckRedirect: noRedirects},
		logger:   logger,
		metrics:  m,
		onChange: onChange,
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// noRedirects keeps key and token requests at the configured URL.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// start runs the fetch loop until ctx is cancelled: retry with backoff until
// the first success, then refresh periodically.
func (s *jwksSource) start(ctx context.Context) {
	go func() {
		defer close(s.done)
		backoff := jwksRetryMin
		for {
			wait := jwksRefreshEvery
			if err := s.refresh(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.logger.Warn("fetching JWKS failed; retrying", slog.String("jwks_url", s.url),
					slog.Duration("retry_in", backoff), slog.String("error", err.Error()))
				wait = backoff
				backoff = min(backoff*2, jwksRetryMax)
			} else {
				backoff = jwksRetryMin
			}
			if !sleep(ctx, wait) {
				return
			}
		}
	}()
}

// wait blocks until the background loop has stopped.
func (s *jwksSource) wait() { <-s.done }

// waitReady waits up to d for the first key set, or for ctx.
func (s *jwksSource) waitReady(ctx context.Context, d time.Duration) bool {
	return waitClosed(ctx, s.ready, d)
}

// loaded reports whether a key set has arrived.
func (s *jwksSource) loaded() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys != nil
}

// key returns the key with id kid. A token without kid may use the only key.
func (s *jwksSource) key(kid string) (ed25519.PublicKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k, ok := s.keys[kid]; ok {
		return k, true
	}
	if kid == "" && len(s.keys) == 1 {
		for _, k := range s.keys {
			return k, true
		}
	}
	return nil, false
}

// refreshForUnknownKid fetches the key set again, unless that was done on
// demand less than jwksMinInterval ago. Concurrent callers share one fetch.
// It reports whether a fetch succeeded.
func (s *jwksSource) refreshForUnknownKid(ctx context.Context) bool {
	s.mu.Lock()
	if time.Since(s.lastOnDemand) < jwksMinInterval {
		s.mu.Unlock()
		return false
	}
	s.lastOnDemand = time.Now()
	s.mu.Unlock()
	_, err, _ := s.flight.Do("refresh", func() (any, error) {
		// The fetch must not die with the first caller's request.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
		defer cancel()
		return nil, s.refresh(fctx)
	})
	if err != nil {
		s.logger.Debug("JWKS refresh for an unknown key id failed", slog.String("error", err.Error()))
		return false
	}
	return true
}

// refresh fetches and installs the key set.
func (s *jwksSource) refresh(ctx context.Context) error {
	keys, err := s.fetch(ctx)
	if err != nil {
		s.metrics.jwksRefreshes.WithLabelValues("error").Inc()
		return err
	}
	s.metrics.jwksRefreshes.WithLabelValues("ok").Inc()
	s.mu.Lock()
	changed := !maps.EqualFunc(s.keys, keys, func(a, b ed25519.PublicKey) bool { return a.Equal(b) })
	s.keys = keys
	s.mu.Unlock()
	s.once.Do(func() { close(s.ready) })
	if changed {
		s.logger.Info("JWKS loaded", slog.Int("keys", len(keys)))
		if s.onChange != nil {
			s.onChange()
		}
	}
	return nil
}

func (s *jwksSource) fetch(ctx context.Context) (map[string]ed25519.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("building JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading JWKS: %w", err)
	}
	if len(body) > jwksMaxBodyBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", jwksMaxBodyBytes)
	}
	keys, err := jwks.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("parsing JWKS: %w", err)
	}
	return keys, nil
}
