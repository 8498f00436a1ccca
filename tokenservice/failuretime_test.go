package tokenservice

import (
	"testing"
	"time"
)

// TestFailureClockFloor: the floor is half as much again as the median of
// the recent verifications, and follows them as they change (the last 16
// count), so that one slow or fast outlier does not move it.
func TestFailureClockFloor(t *testing.T) {
	c := newFailureClock(100 * time.Millisecond)
	if got := c.floor(); got != 150*time.Millisecond {
		t.Errorf("from one verification of 100ms: floor %v, want 150ms", got)
	}
	c.observe(10 * time.Second) // one outlier
	c.observe(120 * time.Millisecond)
	if got := c.floor(); got != 180*time.Millisecond {
		t.Errorf("100ms, 10s, 120ms: floor %v, want 180ms", got)
	}
	for range 16 {
		c.observe(200 * time.Millisecond)
	}
	if got := c.floor(); got != 300*time.Millisecond {
		t.Errorf("after 16 verifications of 200ms: floor %v, want 300ms", got)
	}
}
