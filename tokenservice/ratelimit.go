package tokenservice

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// limiter counts failed logins in Postgres so that every replica sees the
// same counts (see RateLimit for what is counted and why). Keys are hashes:
// the table holds neither addresses nor the usernames people mistyped.
type limiter struct {
	pool *pgxpool.Pool
	cfg  RateLimit
}

// limitKeys are the counters one login attempt touches.
type limitKeys struct {
	addr, pair []byte
}

func newLimitKeys(client netip.Addr, username string) limitKeys {
	// One IPv6 host usually owns a whole /64; counting single addresses
	// would let it rotate through 2^64 of them.
	scope := client.Unmap().String()
	if client.Is6() && !client.Is4In6() {
		p, _ := client.Prefix(64)
		scope = p.String()
	}
	a := sha256.Sum256([]byte("addr\x00" + scope))
	p := sha256.Sum256([]byte("pair\x00" + scope + "\x00" + username))
	return limitKeys{addr: a[:], pair: p[:]}
}

// check reports whether either counter is exhausted, which scope
// ("address" or "pair"), and how long until its window ends.
func (l *limiter) check(ctx context.Context, k limitKeys) (limited bool, scope string, retryAfter time.Duration, err error) {
	rows, err := l.pool.Query(ctx, `SELECT key, failures,
			extract(epoch FROM window_start + make_interval(secs => $2) - clock_timestamp())::float8
		FROM token_login_failures
		WHERE key = ANY($1) AND window_start > clock_timestamp() - make_interval(secs => $2)`,
		[][]byte{k.addr, k.pair}, l.cfg.Window.Seconds())
	if err != nil {
		return false, "", 0, fmt.Errorf("reading failed-login counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			key      []byte
			failures int
			left     float64
		)
		if err := rows.Scan(&key, &failures, &left); err != nil {
			return false, "", 0, fmt.Errorf("reading failed-login counts: %w", err)
		}
		wait := time.Duration(math.Ceil(max(left, 1))) * time.Second
		switch {
		case string(key) == string(k.addr) && failures >= l.cfg.PerAddress:
			limited, scope, retryAfter = true, "address", max(retryAfter, wait)
		case string(key) == string(k.pair) && failures >= l.cfg.PerPair:
			limited, scope, retryAfter = true, "pair", max(retryAfter, wait)
		}
	}
	if err := rows.Err(); err != nil {
		return false, "", 0, fmt.Errorf("reading failed-login counts: %w", err)
	}
	return limited, scope, retryAfter, nil
}

// fail counts a failed login against both counters, starting a new window
// for a counter whose window has ended.
func (l *limiter) fail(ctx context.Context, k limitKeys) error {
	_, err := l.pool.Exec(ctx, `INSERT INTO token_login_failures AS f (key, window_start, failures)
		VALUES ($1, clock_timestamp(), 1), ($2, clock_timestamp(), 1)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN f.window_start <= clock_timestamp() - make_interval(secs => $3) THEN 1 ELSE f.failures + 1 END,
			window_start = CASE WHEN f.window_start <= clock_timestamp() - make_interval(secs => $3) THEN clock_timestamp() ELSE f.window_start END`,
		k.addr, k.pair, l.cfg.Window.Seconds())
	if err != nil {
		return fmt.Errorf("counting a failed login: %w", err)
	}
	// Expired windows are dropped now and then, not on every failure: one
	// index range scan, amortised.
	if rand.IntN(32) == 0 {
		if _, err := l.pool.Exec(ctx, `DELETE FROM token_login_failures WHERE window_start <= clock_timestamp() - make_interval(secs => $1)`,
			l.cfg.Window.Seconds()); err != nil {
			return fmt.Errorf("dropping expired failed-login windows: %w", err)
		}
	}
	return nil
}

// succeed clears the pair's counter: the user knows the password. The
// address counter stays, or anyone holding one account could reset their
// address's count between guesses at others.
func (l *limiter) succeed(ctx context.Context, k limitKeys) error {
	if _, err := l.pool.Exec(ctx, `DELETE FROM token_login_failures WHERE key = $1`, k.pair); err != nil {
		return fmt.Errorf("clearing failed-login count: %w", err)
	}
	return nil
}
