package taxiicore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// statusResource is the TAXII status (4.3.1). Add Objects is synchronous,
// so it is always complete with nothing pending.
type statusResource struct {
	ID               string         `json:"id"`
	Status           string         `json:"status"`
	RequestTimestamp string         `json:"request_timestamp"`
	TotalCount       int            `json:"total_count"`
	SuccessCount     int            `json:"success_count"`
	Successes        []statusDetail `json:"successes,omitempty"`
	FailureCount     int            `json:"failure_count"`
	Failures         []statusDetail `json:"failures,omitempty"`
	PendingCount     int            `json:"pending_count"`

	// lists holds Successes and Failures as encoded once for Postgres and
	// reused in responses.
	lists statusLists
}

// statusLists are a status's successes and failures as JSON arrays, nil
// when empty: what taxii_statuses stores.
type statusLists struct{ successes, failures []byte }

func encodeStatusLists(st statusResource) statusLists {
	var l statusLists
	if len(st.Successes) > 0 {
		l.successes, _ = json.Marshal(st.Successes) // plain strings: cannot fail
	}
	if len(st.Failures) > 0 {
		l.failures, _ = json.Marshal(st.Failures)
	}
	return l
}

// body is the status's JSON; lists are embedded as encoded (and encoded
// here when they were not).
func (st statusResource) body() []byte {
	l := st.lists
	if l.successes == nil && l.failures == nil {
		l = encodeStatusLists(st)
	}
	b, _ := json.Marshal(struct {
		ID               string          `json:"id"`
		Status           string          `json:"status"`
		RequestTimestamp string          `json:"request_timestamp"`
		TotalCount       int             `json:"total_count"`
		SuccessCount     int             `json:"success_count"`
		Successes        json.RawMessage `json:"successes,omitempty"`
		FailureCount     int             `json:"failure_count"`
		Failures         json.RawMessage `json:"failures,omitempty"`
		PendingCount     int             `json:"pending_count"`
	}{st.ID, st.Status, st.RequestTimestamp, st.TotalCount, st.SuccessCount, l.successes,
		st.FailureCount, l.failures, st.PendingCount})
	return b
}

type statusDetail struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Message string `json:"message,omitempty"`
}

// getStatus answers a status to the principal that created it and to
// writers of its collection; to everyone else it does not exist (AUTH-13).
func (s *Server) getStatus(w http.ResponseWriter, r *http.Request, rt route, id identity) {
	notFound := func() {
		if id.Anonymous {
			taxiierror.Unauthorized(w, "authenticate through the gateway")
			return
		}
		taxiierror.Write(w, http.StatusNotFound, "Not found", "no such status")
	}
	sid, err := uuid.Parse(rt.sid)
	if err != nil {
		notFound()
		return
	}
	var (
		st           statusResource
		colID        uuid.UUID
		createdBy    string
		requested    time.Time
		succ, failed []byte
	)
	err = s.pool.QueryRow(r.Context(), `SELECT id, collection_id, created_by, request_timestamp, total_count,
		success_count, failure_count, pending_count, successes, failures
		FROM taxii_statuses WHERE id = $1 AND api_root = $2`, sid, rt.root).
		Scan(&st.ID, &colID, &createdBy, &requested, &st.TotalCount, &st.SuccessCount, &st.FailureCount, &st.PendingCount, &succ, &failed)
	if errors.Is(err, pgx.ErrNoRows) {
		notFound()
		return
	}
	if err != nil {
		s.internalError(w, r, "reading the status", err)
		return
	}
	// Anonymous callers share one name, so they see a status only as
	// writers of its collection.
	if createdBy != id.User || id.Anonymous {
		col, err := s.collectionFor(r.Context(), rt.root, colID.String(), id)
		if err != nil {
			s.internalError(w, r, "checking access to the status", err)
			return
		}
		if col == nil || !col.CanWrite {
			notFound()
			return
		}
	}
	st.Status = "complete"
	st.RequestTimestamp = formatTimestamp(requested)
	st.lists = statusLists{successes: succ, failures: failed}
	writeBody(w, http.StatusOK, st.body())
}

// minStatusRetention is the TAXII recommendation (4.3): a status stays
// readable for at least 24 hours.
const minStatusRetention = 24 * time.Hour

// pruneStatusesEvery deletes expired statuses now and then every interval,
// until ctx ends. Every replica may run it; the deletes do not conflict.
func (s *Server) pruneStatusesEvery(ctx context.Context, interval time.Duration) {
	for {
		if n, err := s.pruneStatuses(ctx, time.Now().Add(-s.cfg.StatusRetention)); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("pruning statuses", "error", err)
			}
		} else if n > 0 {
			s.log.Info("pruned statuses", "deleted", n, "older_than", s.cfg.StatusRetention.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// pruneStatuses deletes statuses requested before cutoff, in batches so
// that no transaction holds many rows, and returns how many went.
func (s *Server) pruneStatuses(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM taxii_statuses WHERE id IN
			(SELECT id FROM taxii_statuses WHERE request_timestamp < $1 LIMIT 5000)`, cutoff)
		if err != nil {
			return total, fmt.Errorf("deleting statuses before %s: %w", cutoff.UTC().Format(time.RFC3339), err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 5000 {
			return total, nil
		}
	}
}
