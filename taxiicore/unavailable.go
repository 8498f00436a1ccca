package taxiicore

import (
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// retryAfterUnavailable is the Retry-After sent when Postgres cannot be
// reached: about how long a restart or failover takes.
const retryAfterUnavailable = "5"

// dbUnavailable reports whether err means Postgres could not be reached or
// was going away (connecting failed, the connection broke, the server is
// shutting down, starting up or out of connections), rather than that a
// statement failed: a dependency failure the client may retry, answered
// with 503 and Retry-After instead of 500.
func dbUnavailable(err error) bool {
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		// 08: connection exception; 53: insufficient resources (too many
		// connections); 57P01-57P03: admin or crash shutdown, cannot connect now.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53") ||
			pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}
