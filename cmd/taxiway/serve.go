package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// shutdownGrace bounds how long in-flight requests may finish after SIGTERM.
const shutdownGrace = 20 * time.Second

// endpoint is one address a service serves a handler on.
type endpoint struct {
	addr    string
	handler http.Handler
	// maxHeaderBytes is the server's limit on a request's line and
	// headers; 0 means 64 KiB.
	maxHeaderBytes int
}

// serve listens on every endpoint first (so a taken port fails the start,
// not a log line later), calls ready with the bound addresses, serves until
// ctx is cancelled or a server fails, then shuts every server down,
// letting in-flight requests finish within shutdownGrace.
func serve(ctx context.Context, logger *slog.Logger, ready func(addrs []string), endpoints ...endpoint) error {
	var listeners []net.Listener
	for _, ep := range endpoints {
		ln, err := net.Listen("tcp", ep.addr)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return fmt.Errorf("listening on %s: %w", ep.addr, err)
		}
		listeners = append(listeners, ln)
	}
	servers := make([]*http.Server, len(endpoints))
	addrs := make([]string, len(endpoints))
	errc := make(chan error, len(endpoints))
	for i, ep := range endpoints {
		servers[i] = &http.Server{
			Handler:           ep.handler,
			ReadHeaderTimeout: 10 * time.Second,
			// Bounds slow clients on bodies and pages; generous for a
			// max_content_length upload over a slow link.
			ReadTimeout:    2 * time.Minute,
			WriteTimeout:   2 * time.Minute,
			IdleTimeout:    2 * time.Minute,
			MaxHeaderBytes: cmp.Or(ep.maxHeaderBytes, 64<<10),
			ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
		addrs[i] = listeners[i].Addr().String()
		go func() { errc <- servers[i].Serve(listeners[i]) }()
	}
	ready(addrs)

	var serveErr error
	select {
	case <-ctx.Done():
		logger.Info("shutting down: finishing in-flight requests")
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.Shutdown(sctx))
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("serving: %w", serveErr))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}
