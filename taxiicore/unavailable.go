package taxiicore

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// retryAfterUnavailable is the Retry-After sent when Postgres cannot be
// reached: about how long a restart or failover takes.
const retryAfterUnavailable = "5"

// dbUnavailable reports whether err means Postgres could not serve the
// request for now (connecting failed, the connection broke, the server is
// shutting down, starting up or out of connections, read-only because a
// failover is under way, or a hot standby cancelled a read to replay WAL),
// rather than that a statement failed: a dependency failure the client may
// retry, answered with 503 and Retry-After instead of 500. Retrying is safe:
// Add Objects is idempotent per object id and version, reads change nothing.
func dbUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		// 08: connection exception (pgbouncer's own errors too); 53:
		// insufficient resources (too many connections); 57P01-57P03:
		// admin or crash shutdown, cannot connect now; 25006: read-only
		// transaction (a demoted primary, or a standby not yet promoted);
		// 40001 on a standby: cancelled in conflict with recovery.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53") ||
			pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" ||
			pe.Code == "25006" || pe.Code == "40001"
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err) ||
		pgconn.Timeout(err) || errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, net.ErrClosed)
}
