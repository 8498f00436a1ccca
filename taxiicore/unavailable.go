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

// Causes of a database unavailability, the cause label of
// taxiway_core_db_unavailable_total: what an operator does next differs.
const (
	causeConnect          = "connect"           // no connection could be opened
	causeConnectionLost   = "connection_lost"   // an open connection broke
	causeTimeout          = "timeout"           // the server did not answer in time
	causeResources        = "resources"         // out of connections or memory (SQLSTATE 53)
	causeRestarting       = "restarting"        // shutting down or starting up (57P01-57P03)
	causeReadOnly         = "read_only"         // a failover is under way (25006)
	causeRecoveryConflict = "recovery_conflict" // a hot standby cancelled a read (40001)
)

// dbUnavailable reports whether err means Postgres could not serve the
// request for now (connecting failed, the connection broke, the server is
// shutting down, starting up or out of connections, read-only because a
// failover is under way, or a hot standby cancelled a read to replay WAL),
// rather than that a statement failed: a dependency failure the client may
// retry, answered with 503 and Retry-After instead of 500. Retrying is safe:
// Add Objects is idempotent per object id and version, reads change nothing.
func dbUnavailable(err error) bool { return unavailableCause(err) != "" }

// unavailableCause is which of the causes above err is, or "" when err is
// not an unavailability.
func unavailableCause(err error) string {
	if err == nil || errors.Is(err, context.Canceled) {
		return ""
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return causeConnect
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		// 08: connection exception (pgbouncer's own errors too); 53:
		// insufficient resources (too many connections); 57P01-57P03:
		// admin or crash shutdown, cannot connect now; 25006: read-only
		// transaction (a demoted primary, or a standby not yet promoted);
		// 40001 on a standby: cancelled in conflict with recovery.
		switch {
		case strings.HasPrefix(pe.Code, "08"):
			return causeConnectionLost
		case strings.HasPrefix(pe.Code, "53"):
			return causeResources
		case pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03":
			return causeRestarting
		case pe.Code == "25006":
			return causeReadOnly
		case pe.Code == "40001":
			return causeRecoveryConflict
		}
		return ""
	}
	if pgconn.Timeout(err) {
		return causeTimeout
	}
	if ne, ok := errors.AsType[net.Error](err); ok {
		if ne.Timeout() {
			return causeTimeout
		}
		return causeConnectionLost
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, net.ErrClosed) {
		return causeConnectionLost
	}
	return ""
}
