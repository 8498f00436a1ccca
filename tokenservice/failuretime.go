package tokenservice

import (
	"context"
	"slices"
	"sync"
	"time"
)

// failureClock makes every failed login take the same time, whatever the
// reason (unknown user, wrong password, disabled, not yet valid, unusable
// hash) and whatever kind of hash the account has: an imported pbkdf2 or
// scrypt hash verifies faster than the configured Argon2id, which would
// otherwise tell which accounts exist and how they were imported.
//
// A failure is padded to half as much again as the median of the recent
// verifications at the configured Argon2id cost (the dummy hash of unknown
// users and accounts already upgraded), so that the floor follows the
// machine's load and the padding, not the hash, sets the answer's time.
// A stored hash slower than the floor (bcrypt at a high cost, say) still
// shows; its first successful login replaces it with Argon2id.
type failureClock struct {
	mu     sync.Mutex
	recent [16]time.Duration
	next   int
	filled int
}

// newFailureClock starts from how long making the dummy hash took: the
// same Argon2id derivation a verification at the configured cost makes.
func newFailureClock(first time.Duration) *failureClock {
	c := &failureClock{}
	c.observe(first)
	return c
}

// observe records how long one verification at the configured cost took.
func (c *failureClock) observe(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recent[c.next] = d
	c.next = (c.next + 1) % len(c.recent)
	c.filled = min(c.filled+1, len(c.recent))
}

// floor is the least time a failed login takes.
func (c *failureClock) floor() time.Duration {
	c.mu.Lock()
	s := slices.Clone(c.recent[:c.filled])
	c.mu.Unlock()
	slices.Sort(s)
	return s[len(s)/2] * 3 / 2
}

// pad sleeps, outside any hash slot, until the failure that began at began
// has taken the floor.
func (c *failureClock) pad(ctx context.Context, began time.Time) {
	t := time.NewTimer(time.Until(began.Add(c.floor())))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
