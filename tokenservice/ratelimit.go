package tokenservice

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
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

// attempt counts one login attempt against both counters, before the
// password is hashed, and reports whether either counter had already
// reached its limit, which scope ("address" or "pair"), and how long until
// that window ends. A refused attempt counts nothing. The counters are
// read and incremented in one transaction holding their row locks, so a
// parallel burst cannot all read "under the limit" and pass: exactly the
// limit gets through, however many replicas and hash slots there are.
func (l *limiter) attempt(ctx context.Context, k limitKeys) (limited bool, scope string, retryAfter time.Duration, err error) {
	err = pgx.BeginFunc(ctx, l.pool, func(tx pgx.Tx) error {
		// Rows exist before they are locked; a counter whose window has
		// ended starts a new one.
		if _, err := tx.Exec(ctx, `INSERT INTO token_login_failures AS f (key, window_start, failures)
			VALUES ($1, clock_timestamp(), 0), ($2, clock_timestamp(), 0)
			ON CONFLICT (key) DO UPDATE SET failures = 0, window_start = clock_timestamp()
				WHERE f.window_start <= clock_timestamp() - make_interval(secs => $3)`,
			k.addr, k.pair, l.cfg.Window.Seconds()); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT key, failures,
				extract(epoch FROM window_start + make_interval(secs => $2) - clock_timestamp())::float8
			FROM token_login_failures WHERE key = ANY($1) ORDER BY key FOR UPDATE`,
			[][]byte{k.addr, k.pair}, l.cfg.Window.Seconds())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				key      []byte
				failures int
				left     float64
			)
			if err := rows.Scan(&key, &failures, &left); err != nil {
				return err
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
			return err
		}
		if limited {
			return nil
		}
		_, err = tx.Exec(ctx, `UPDATE token_login_failures SET failures = failures + 1 WHERE key = ANY($1)`,
			[][]byte{k.addr, k.pair})
		return err
	})
	if err != nil {
		return false, "", 0, fmt.Errorf("counting a login attempt: %w", err)
	}
	// Expired windows are dropped now and then, not on every attempt: one
	// index range scan, amortised.
	if rand.IntN(32) == 0 {
		if _, err := l.pool.Exec(ctx, `DELETE FROM token_login_failures WHERE window_start <= clock_timestamp() - make_interval(secs => $1)`,
			l.cfg.Window.Seconds()); err != nil {
			return false, "", 0, fmt.Errorf("dropping expired failed-login windows: %w", err)
		}
	}
	return limited, scope, retryAfter, nil
}

// succeed clears the pair's counter: the user knows the password. The
// address counter only gets this attempt back (it was counted before the
// hash), or anyone holding one account could reset their address's count
// between guesses at others.
func (l *limiter) succeed(ctx context.Context, k limitKeys) error {
	if _, err := l.pool.Exec(ctx, `DELETE FROM token_login_failures WHERE key = $1`, k.pair); err != nil {
		return fmt.Errorf("clearing failed-login count: %w", err)
	}
	if _, err := l.pool.Exec(ctx, `UPDATE token_login_failures SET failures = failures - 1 WHERE key = $1 AND failures > 0`, k.addr); err != nil {
		return fmt.Errorf("returning a login attempt: %w", err)
	}
	return nil
}

// release gives an attempt back to both counters: it never reached the
// hash (every hash slot was busy), so it guessed nothing.
func (l *limiter) release(ctx context.Context, k limitKeys) error {
	if _, err := l.pool.Exec(ctx, `UPDATE token_login_failures SET failures = failures - 1 WHERE key = ANY($1) AND failures > 0`,
		[][]byte{k.addr, k.pair}); err != nil {
		return fmt.Errorf("returning a login attempt: %w", err)
	}
	return nil
}
