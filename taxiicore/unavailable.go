package taxiicore

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// unavailableRetryAfter is the Retry-After (seconds) of a 503 for a database
// that is away: a restart or a failover to a standby takes seconds.
const unavailableRetryAfter = "2"

// databaseUnavailable reports whether err means that Postgres could not
// serve the request for now (unreachable, restarting, read-only during a
// failover, a standby cancelling a read to replay WAL), as opposed to a
// fault in the request or in this program. The client may retry the same
// request: Add Objects is idempotent for an object's id and version, and
// reads have no effect.
func databaseUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code[:2] == "08": // connection exception (also pgbouncer's own errors)
			return true
		case pgErr.Code[:2] == "53": // insufficient resources: too many connections, out of memory, disk full
			return true
		case pgErr.Code[:3] == "57P": // admin or crash shutdown, cannot connect now, database dropped
			return true
		}
		switch pgErr.Code {
		case "25006", // read_only_sql_transaction: a demoted or not yet promoted server
			"40001", // serialization_failure: a standby cancelled a read in conflict with recovery
			"40P01", // deadlock_detected: the other transaction went ahead; retrying succeeds
			"55P03": // lock_not_available
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err) ||
		// A connection the pool held was found closed (the server restarted).
		errors.Is(err, net.ErrClosed) || errors.Is(err, pgconn.ErrConnClosed)
}

// writeUnavailable answers 503 with Retry-After and a TAXII error body.
func (s *Server) writeUnavailable(w http.ResponseWriter, doing string, err error) {
	s.log.Warn("database unavailable", "request_id", w.Header().Get("X-Request-Id"), "doing", doing, "error", err)
	w.Header().Set("Retry-After", unavailableRetryAfter)
	taxiierror.Write(w, http.StatusServiceUnavailable, "Service unavailable",
		"the database is unavailable while "+doing+" (restart or failover); retry shortly")
}
