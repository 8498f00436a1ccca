// Package tokenservice issues Taxiway's JWTs: POST /management/auth
// exchanges a username and password for a token that lives Config.TTL
// (3600 seconds by default), signed with Ed25519 keys kept in Postgres and
// published at /.well-known/jwks.json, or with an HS256 shared secret.
//
// It is the only part that knows passwords. Accounts, signing keys and
// failed-login counters all live in Postgres, so replicas share everything
// and hold nothing another replica would need.
//
// Tokens can be recalled: account changes (disable, delete, password,
// groups) and admin revocations are appended to a revocation feed in
// Postgres, which every gateway follows with a long poll on
// GET /internal/revocations (see revocation.go).
package tokenservice

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server is the token service. Create it with New.
type Server struct {
	pool      *pgxpool.Pool
	cfg       Config
	logger    *slog.Logger
	keys      *keyring // EdDSA only
	hs256     signer   // HS256 only
	limiter   *limiter
	hashSlots chan struct{}
	// dummyHash is verified for unknown usernames so that their answer
	// takes as long as a wrong password's.
	dummyHash string
	// failureTime sets the least time a failed login takes.
	failureTime *failureClock
	metrics     *metrics
	feed        *revocationFeed
}

// New checks cfg, makes sure the schema is current and a signing key
// exists (creating the first one if needed), and returns a Server. It
// refuses an unsafe or incomplete configuration. The revocation feed
// follows Postgres' notifications until ctx ends.
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config, logger *slog.Logger) (*Server, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, fmt.Errorf("token service configuration: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pending, err := SchemaPending(ctx, pool)
	if err != nil {
		return nil, err
	}
	if pending {
		return nil, errors.New("the token service schema is not current: run `taxiway migrate` or start with -migrate")
	}
	s := &Server{
		pool:      pool,
		cfg:       cfg,
		logger:    logger,
		limiter:   &limiter{pool: pool, cfg: cfg.RateLimit},
		hashSlots: make(chan struct{}, cfg.MaxConcurrentHashes),
		metrics:   newMetrics(),
	}
	switch cfg.Algorithm {
	case AlgEdDSA:
		if _, err := EnsureSigningKey(ctx, pool, cfg.KeyEncryptionKey); err != nil {
			return nil, err
		}
		s.keys = &keyring{
			pool:   pool,
			kek:    cfg.KeyEncryptionKey,
			logger: logger,
			// Replicas may sign with a retired key until their next
			// refresh, and verifiers allow up to a minute of clock skew.
			publish: cfg.TTL + cfg.KeyRefresh + time.Minute,
			refresh: cfg.KeyRefresh,
		}
		if _, _, err := s.keys.current(ctx); err != nil {
			return nil, err
		}
	case AlgHS256:
		s.hs256 = signer{alg: AlgHS256, kid: hs256Kid(cfg.HS256Secret), secret: cfg.HS256Secret}
	}
	hashStart := time.Now()
	s.dummyHash, err = HashPassword(rand.Text(), cfg.PasswordHash)
	if err != nil {
		return nil, err
	}
	s.failureTime = newFailureClock(time.Since(hashStart))
	s.feed = newRevocationFeed(pool, logger)
	go s.feed.run(ctx)
	return s, nil
}

// Handler serves POST /management/auth, the JWKS at
// /.well-known/jwks.json and /management/jwks.json (for a gateway that
// routes only /management/* here), and the gateways' revocation feed at
// /internal/revocations, which the gateway does not route to clients.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/management/auth", s.serveAuth)
	mux.HandleFunc("/.well-known/jwks.json", s.serveJWKS)
	mux.HandleFunc("/management/jwks.json", s.serveJWKS)
	mux.HandleFunc("/internal/revocations", s.serveRevocations)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "the token service serves POST /management/auth and GET /.well-known/jwks.json")
	})
	return s.metrics.countRequests(mux)
}

// OpsHandler serves /metrics (Prometheus), /healthz (the process runs) and
// /readyz (Postgres answers and a signing key is loaded). Serve it on a
// separate, private listener.
func (s *Server) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.pool.Ping(ctx); err != nil {
			s.logger.Warn("readiness: postgres unreachable", "error", err)
			writeStatus(w, http.StatusServiceUnavailable, "postgres unreachable")
			return
		}
		if s.keys != nil {
			if _, _, err := s.keys.current(ctx); err != nil {
				s.logger.Warn("readiness: signing keys unavailable", "error", err)
				writeStatus(w, http.StatusServiceUnavailable, "signing keys unavailable")
				return
			}
		}
		writeStatus(w, http.StatusOK, "ready")
	})
	return mux
}

func writeStatus(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}

// apiError is the JSON error body of the token service's endpoints. error
// is a stable code; the other fields mirror a TAXII error resource.
type apiError struct {
	Error       string `json:"error"`
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	HTTPStatus  string `json:"http_status"`
}

func writeError(w http.ResponseWriter, status int, code, description string) {
	body, _ := json.Marshal(apiError{Error: code, Title: http.StatusText(status), Description: description,
		HTTPStatus: fmt.Sprint(status)})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
