package tokenservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The revocation feed. Account changes (through the token_accounts
// trigger) and single-token revocations append rows to token_revocations,
// numbered in commit order (seq). Gateways read
//
//	GET /internal/revocations?after=<cursor>&wait=<seconds>
//
// and get the rows after their cursor, waiting up to wait seconds (a long
// poll) when there are none. Every token service replica LISTENs for the
// rows' notification and, in case a notification is lost, rereads the
// newest seq every second; a waiting poll is answered as soon as its
// replica sees a newer row.
const (
	// RevocationChannel is the Postgres notification channel of new rows.
	RevocationChannel = "taxiway_revocations"
	// MaxRevocationWait bounds a long poll.
	MaxRevocationWait = 30 * time.Second
	// revocationPageSize bounds one answer; "more" asks for the rest.
	revocationPageSize = 5000
	// revocationPrune is how often expired rows are deleted.
	revocationPrune = 10 * time.Minute
	// RevokedTokenKeep is how long a revoked jti is kept when the token's
	// exp is unknown: past the longest lifetime a token can have.
	RevokedTokenKeep = MaxTTL + time.Hour
)

// RevokeAccountTokens voids every token issued to username so far, without
// changing the account: the account's version moves on (the trigger
// publishes the revocation). The account may log in again at once.
func RevokeAccountTokens(ctx context.Context, pool *pgxpool.Pool, username string) error {
	return updateAccount(ctx, pool, "revoking the tokens of", username,
		`UPDATE token_accounts SET not_before = clock_timestamp(), updated_at = clock_timestamp() WHERE username = $1 AND $2::boolean`, true)
}

// RevokeToken voids the one token with id jti until keepUntil (its exp, or
// RevokedTokenKeep from now when unknown).
func RevokeToken(ctx context.Context, pool *pgxpool.Pool, jti string, keepUntil time.Time) error {
	if jti == "" || len(jti) > 256 {
		return errors.New("a token id (jti) must be 1 to 256 bytes")
	}
	if _, err := pool.Exec(ctx, `INSERT INTO token_revocations (jti, keep_until) VALUES ($1, $2)`, jti, keepUntil); err != nil {
		return fmt.Errorf("revoking token %s: %w", jti, err)
	}
	return nil
}

// RevocationEntry is one row of the feed as the gateways read it: either
// every token of Username with an account_version below MinVersion (and
// whether the account is disabled or deleted as of then), or the one token
// with id JTI. Until (Unix seconds) is when the entry can be
// forgotten: every token it refuses has expired by then.
type RevocationEntry struct {
	Seq        int64  `json:"seq"`
	Username   string `json:"sub,omitempty"`
	MinVersion int64  `json:"min_version,omitempty"`
	JTI        string `json:"jti,omitempty"`
	Disabled   bool   `json:"disabled,omitempty"`
	Until      int64  `json:"until"`
}

// RevocationPage is the feed's answer. Cursor goes into the next poll's
// after. Reset says the reader's cursor was ahead of the feed (the database
// was replaced): drop what you hold, this page starts from scratch. More
// says another page follows at once.
type RevocationPage struct {
	Cursor  int64             `json:"cursor"`
	Reset   bool              `json:"reset,omitempty"`
	More    bool              `json:"more,omitempty"`
	Entries []RevocationEntry `json:"entries"`
}

// pruneRevocations deletes rows kept an hour past keep_until, so that a
// gateway never sees a row vanish before it expired there too.
func pruneRevocations(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) {
	if _, err := pool.Exec(ctx, `DELETE FROM token_revocations WHERE keep_until < clock_timestamp() - interval '1 hour'`); err != nil && ctx.Err() == nil {
		logger.Warn("pruning expired revocations", "error", err)
	}
}

// readRevocations returns the page after cursor.
func readRevocations(ctx context.Context, pool *pgxpool.Pool, after int64) (RevocationPage, error) {
	page := RevocationPage{Cursor: after, Entries: []RevocationEntry{}}
	var last int64
	if err := pool.QueryRow(ctx, `SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM token_revocation_seq`).Scan(&last); err != nil {
		return page, fmt.Errorf("reading the revocation sequence: %w", err)
	}
	if after > last {
		page.Reset, page.Cursor, after = true, 0, 0
	}
	rows, err := pool.Query(ctx, `SELECT seq, coalesce(username, ''), coalesce(min_version, 0), coalesce(jti, ''),
			disabled, floor(extract(epoch FROM keep_until))::bigint
		FROM token_revocations WHERE seq > $1 ORDER BY seq LIMIT $2`, after, revocationPageSize+1)
	if err != nil {
		return page, fmt.Errorf("reading revocations: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RevocationEntry, error) {
		var e RevocationEntry
		err := row.Scan(&e.Seq, &e.Username, &e.MinVersion, &e.JTI, &e.Disabled, &e.Until)
		return e, err
	})
	if err != nil {
		return page, fmt.Errorf("reading revocations: %w", err)
	}
	if len(entries) > revocationPageSize {
		entries, page.More = entries[:revocationPageSize], true
	}
	if len(entries) > 0 {
		page.Entries = entries
		page.Cursor = entries[len(entries)-1].Seq
	}
	return page, nil
}

// serveRevocations answers the gateways' long polls.
func (s *Server) serveRevocations(w http.ResponseWriter, r *http.Request) {
	after, wait, ok := feedQuery(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	page, err := readRevocations(ctx, s.pool, after)
	if err == nil && len(page.Entries) == 0 && !page.Reset && wait > 0 {
		s.revocations.wait(ctx, after, wait)
		if ctx.Err() != nil {
			return
		}
		page, err = readRevocations(ctx, s.pool, after)
	}
	if err != nil {
		s.logger.Error("serving revocations", "error", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "revocations cannot be read right now; retry shortly")
		return
	}
	writeFeedAnswer(w, page)
}
