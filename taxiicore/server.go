package taxiicore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// Server is the TAXII 2.1 API on one Postgres database.
type Server struct {
	pool    *pgxpool.Pool
	reads   readPool // listings; see readpool.go
	cfg     checked
	log     *slog.Logger
	cursors cursorSigner
	metrics *metrics
}

// New checks cfg, the database connection and the schema (which must be
// current: run Migrate first), and loads the cursor-signing key, creating it
// in Postgres on the very first start. Statuses past their retention are
// deleted in the background until ctx ends.
func New(ctx context.Context, pool *pgxpool.Pool, cfg Config, logger *slog.Logger) (*Server, error) {
	c, err := cfg.check()
	if err != nil {
		return nil, fmt.Errorf("taxiicore config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("connecting to the database: %w", err)
	}
	pending, err := SchemaPending(ctx, pool)
	if err != nil {
		return nil, fmt.Errorf("checking the schema: %w", err)
	}
	if pending {
		return nil, errors.New("the database schema is not current: run `taxiway migrate`, or start the core with -migrate")
	}
	key := []byte(c.CursorKey)
	if len(key) == 0 {
		if key, err = loadCursorKey(ctx, pool); err != nil {
			return nil, err
		}
	}
	s := &Server{pool: pool, reads: readPool{primary: pool}, cfg: c, log: logger, cursors: cursorSigner{key: key}, metrics: newMetrics()}
	s.metrics.pools.primary = pool
	if c.StatusRetention > 0 {
		go s.pruneStatusesEvery(ctx, time.Hour)
	}
	return s, nil
}

// loadCursorKey returns the shared key, generating it if no replica has yet.
func loadCursorKey(ctx context.Context, pool *pgxpool.Pool) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("generating the cursor key: %w", err)
	}
	var key []byte
	err := pool.QueryRow(ctx, `INSERT INTO taxii_settings (singleton, cursor_key) VALUES (true, $1)
		ON CONFLICT (singleton) DO UPDATE SET cursor_key = coalesce(taxii_settings.cursor_key, EXCLUDED.cursor_key)
		RETURNING cursor_key`, fresh).Scan(&key)
	if err != nil {
		return nil, fmt.Errorf("loading the cursor key: %w", err)
	}
	return key, nil
}

// Handler serves the TAXII API.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// OpsHandler serves /metrics, /healthz (the process is alive) and /readyz
// (the database answers and its schema is current). Keep it off the public
// listener.
func (s *Server) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		pending, err := SchemaPending(ctx, s.pool)
		switch {
		case err != nil:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("database unreachable\n"))
		case pending:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("database schema not current\n"))
		default:
			_, _ = w.Write([]byte("ready\n"))
		}
	})
	return mux
}

// recorder remembers the status for metrics and logs.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the real writer (flushing,
// deadlines).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := s.requestID(r)
	w.Header().Set("X-Request-Id", reqID)
	rec := &recorder{ResponseWriter: w}
	segs, pathErr := splitPath(r.URL.EscapedPath())
	rt, found := matchRoute(segs)
	template := rt.template
	if !found {
		template = "unmatched"
	}
	var user string
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("panic serving request", "request_id", reqID, "route", template, "panic", fmt.Sprint(p))
			if rec.status == 0 {
				taxiierror.Write(rec, http.StatusInternalServerError, "", "internal error; the request id is in error_id")
			}
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		elapsed := time.Since(start)
		method := metricMethod(r.Method)
		s.metrics.requests.WithLabelValues(template, method, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(template, method).Observe(elapsed.Seconds())
		s.log.Info("request", "request_id", reqID, "method", r.Method, "route", template,
			"status", status, "duration_ms", float64(elapsed.Microseconds())/1000, "user", user)
	}()
	if headersTooLarge(rec, r) {
		return
	}
	if pathErr != nil {
		taxiierror.Write(rec, http.StatusBadRequest, "", pathErr.Error())
		return
	}
	if !found {
		if target, ok := slashRedirect(r.URL, segs); ok {
			// GEN-01: paths end in a slash; 308 keeps the method and body.
			rec.Header().Set("Location", target)
			taxiierror.Write(rec, http.StatusPermanentRedirect, "", "this resource is at "+target)
			return
		}
		taxiierror.Write(rec, http.StatusNotFound, "Not found", "no TAXII resource at this path")
		return
	}
	if !rt.allows(r.Method) {
		rec.Header().Set("Allow", rt.allow)
		taxiierror.Write(rec, http.StatusMethodNotAllowed, "", "allowed methods: "+rt.allow)
		return
	}
	id, ok := s.identify(r)
	if !ok {
		taxiierror.Unauthorized(rec, "authenticate through the gateway")
		return
	}
	user = id.User
	if id.Anonymous {
		user = AnonymousPrincipal
	}
	if !acceptsTAXII(r.Header.Values("Accept")) {
		taxiierror.Write(rec, http.StatusNotAcceptable, "", "send Accept: "+taxiierror.MediaType)
		return
	}
	if err := textQuery(r.URL.RawQuery); err != nil {
		taxiierror.Write(rec, http.StatusBadRequest, "", err.Error())
		return
	}
	s.dispatch(rec, r, rt, id)
}

// slashRedirect is the Location for a path that names a TAXII resource once
// a slash is added: the client's own escaped path (its first segment
// checked by matchRoute, so the target stays on this host) and query.
func slashRedirect(u *url.URL, segs []string) (string, bool) {
	if _, ok := matchRoute(append(segs, "")); !ok {
		return "", false
	}
	target := u.EscapedPath() + "/"
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	return target, true
}

// textQuery refuses a query whose decoded names or values are not UTF-8 or
// hold NUL: Postgres refuses both in a text parameter, which would otherwise
// surface as a 500 on whichever query first received it. A query that does
// not parse is left to the filter parsing, which names the parameter.
func textQuery(raw string) error {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil
	}
	for k, vs := range q {
		if !isText(k) {
			return errQueryText
		}
		for _, v := range vs {
			if !isText(v) {
				return errQueryText
			}
		}
	}
	return nil
}

var errQueryText = errors.New("query parameters must be UTF-8 text without NUL once percent-decoded")

func isText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, rt route, id identity) {
	switch rt.ep {
	case epDiscovery:
		if !s.refuseAnonymous(w, r, "", id) {
			s.getDiscovery(w, r)
		}
	case epAPIRoot:
		if !s.refuseAnonymous(w, r, rt.root, id) {
			s.getAPIRoot(w, r, rt)
		}
	case epStatus:
		s.getStatus(w, r, rt, id)
	case epCollections:
		if !s.refuseAnonymous(w, r, rt.root, id) {
			s.getCollections(w, r, rt, id)
		}
	default:
		col, err := s.collectionFor(r.Context(), rt.root, rt.cid, id)
		if err != nil {
			s.internalError(w, r, "looking up the collection", err)
			return
		}
		if col == nil {
			if id.Anonymous {
				// Unknown and invisible alike, so nothing leaks; 401
				// tells the client that credentials may help.
				taxiierror.Unauthorized(w, "authenticate through the gateway")
				return
			}
			collectionNotFound(w)
			return
		}
		switch rt.ep {
		case epCollection:
			writeJSON(w, http.StatusOK, col.resource())
		case epManifest, epVersions:
			s.getList(w, r, rt, id, col)
		case epObjects:
			if r.Method == http.MethodPost {
				s.addObjects(w, r, rt, id, col)
				return
			}
			s.getList(w, r, rt, id, col)
		case epObject:
			if r.Method == http.MethodDelete {
				s.deleteObject(w, r, rt, col)
				return
			}
			s.getList(w, r, rt, id, col)
		}
	}
}

// collectionNotFound is the one answer for unknown and invisible collections
// alike (AUTH-11).
func collectionNotFound(w http.ResponseWriter) {
	taxiierror.Write(w, http.StatusNotFound, "Not found", "no such API root or collection")
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, doing string, err error) {
	if r.Context().Err() != nil {
		// The client went away; nobody reads the answer.
		w.WriteHeader(499)
		return
	}
	s.log.Error("request failed", "request_id", w.Header().Get("X-Request-Id"), "doing", doing, "error", err)
	if cause := unavailableCause(err); cause != "" {
		s.metrics.dbUnavailable.WithLabelValues(cause).Inc()
		w.Header().Set("Retry-After", retryAfterUnavailable)
		taxiierror.Write(w, http.StatusServiceUnavailable, "", "the database is unavailable while "+doing+"; try again shortly")
		return
	}
	taxiierror.Write(w, http.StatusInternalServerError, "", "internal error while "+doing+"; the request id is in error_id")
}

// requestID reuses a well-formed X-Request-Id from a trusted proxy, so that
// gateway and core logs correlate, and makes a new one otherwise.
func (s *Server) requestID(r *http.Request) string {
	if v := r.Header.Get("X-Request-Id"); v != "" && validRequestID(v) && s.cfg.proxies.FromTrusted(r) {
		return v
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// validRequestID accepts 1 to 64 of A-Z a-z 0-9 - _: the id is echoed in
// a response header and in every log line of the request, so nothing that
// could forge a log field or a header passes.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		taxiierror.Write(w, http.StatusInternalServerError, "", "encoding the response failed")
		return
	}
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", taxiierror.MediaType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
