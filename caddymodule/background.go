package caddymodule

import (
	"context"
	"time"
)

// The background loops (JWKS, revocation feed) wait in two ways.

// sleep waits d, or less if ctx ends first; it reports whether ctx is
// still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitClosed waits up to d for ready to be closed (a loop's first success),
// or for ctx; it reports whether ready was closed.
func waitClosed(ctx context.Context, ready <-chan struct{}, d time.Duration) bool {
	select {
	case <-ready: // already, whatever d is
		return true
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ready:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}
