package taxiicore

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Reads on a hot standby.
//
// With a read pool set (SetReadPool), the collection listings (Get Objects
// and Get Manifest, which pollers call over and over) run on it; everything
// else stays on the primary:
//   - writes, obviously;
//   - Get Status, which a client reads right after its Add Objects: the
//     status must be there (read-your-write);
//   - Get an Object and Get Object Versions, which a client typically asks
//     for right after adding the object;
//   - the catalog and the grants (looked up on every request), so that a
//     revoked grant takes effect at once.
//
// Paging on a standby never loses or repeats an object, whether the client
// follows next or re-polls with added_after. date_added is allocated under
// the collection's row lock, held until commit, so within a collection the
// commit order is the date_added order. A standby replays commits in WAL
// order, which is commit order, and a snapshot on the standby shows a prefix
// of that order: if it shows an object, it shows every object of the
// collection with a smaller date_added. A page's last date_added is
// therefore a position below which nothing can appear later, on this
// standby, on a standby that lags more (it shows a shorter prefix: the next
// page is just empty for a while), or on the primary (a longer prefix). A
// lagging standby makes new objects arrive later, never lost or twice.
//
// With synchronous_commit = remote_apply on the primary, the standby has
// applied a commit before its Add Objects answers, and even a client's own
// write is readable there at once.

// SetReadPool routes the collection listings to read (a pool on a hot
// standby, or on several behind a multi-host connection string with
// target_session_attrs=prefer-standby). When the read pool cannot reach a
// server, the listing runs on the primary. Call it before serving.
func (s *Server) SetReadPool(read *pgxpool.Pool) {
	s.reads = readPool{standby: read, primary: s.pool}
	s.metrics.pools.read = read
}

// readPool runs listings on the standby when there is one.
type readPool struct {
	standby *pgxpool.Pool // nil: every read on the primary
	primary *pgxpool.Pool
}

// Query runs on the standby, or on the primary when the standby is unset or
// cannot be reached: when connecting fails, or when the query fails for
// want of a server before its first row (pgx reports a pooled connection
// that died only then). An error after rows have been read (a standby
// cancelling the read to replay WAL) is the caller's, who answers 503: the
// client retries.
func (p readPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if p.standby == nil {
		return p.primary.Query(ctx, sql, args...)
	}
	rows, err := p.standby.Query(ctx, sql, args...)
	if err != nil {
		if !dbUnavailable(err) || ctx.Err() != nil {
			return nil, err
		}
		return p.primary.Query(ctx, sql, args...)
	}
	return &fallbackRows{Rows: rows, retry: func() (pgx.Rows, error) {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return p.primary.Query(ctx, sql, args...)
	}}, nil
}

// fallbackRows are rows from the standby that switch to retry's rows when
// the standby fails before the first row.
type fallbackRows struct {
	pgx.Rows
	retry func() (pgx.Rows, error) // nil once used or once a row came
	err   error                    // retry's own error
}

func (r *fallbackRows) Next() bool {
	if r.Rows.Next() {
		r.retry = nil
		return true
	}
	if r.retry == nil || !dbUnavailable(r.Rows.Err()) {
		return false
	}
	retry := r.retry
	r.retry = nil
	r.Rows.Close()
	rows, err := retry()
	if err != nil {
		r.err = err
		return false
	}
	r.Rows = rows
	return r.Rows.Next()
}

func (r *fallbackRows) Err() error {
	if r.err != nil {
		return r.err
	}
	return r.Rows.Err()
}

// listPool is where a listing of endpoint ep runs.
func (s *Server) listPool(ep endpoint) interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
} {
	if ep == epObjects || ep == epManifest {
		return s.reads
	}
	return s.pool
}
