package tokenservice

import (
	"net/http"
)

// servePolicy answers the gateways' long polls on the fronted policy:
//
//	GET /internal/policy?after=<version>&wait=<seconds>
//
// When the policy's version differs from after (0 at first), the answer is
// the whole policy (PolicySnapshot) at once; otherwise it waits up to wait
// seconds for a change and then answers the new policy, or
// {"version": after, "unchanged": true}. The policy is small (grants of a
// few collections), so a whole snapshot per change costs less than a
// changelog would, and a gateway can never miss a removal.
func (s *Server) servePolicy(w http.ResponseWriter, r *http.Request) {
	after, wait, ok := feedQuery(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	snap, err := ReadPolicy(ctx, s.pool)
	if err == nil && snap.Version == after && wait > 0 {
		s.policy.wait(ctx, after, wait)
		if ctx.Err() != nil {
			return
		}
		snap, err = ReadPolicy(ctx, s.pool)
	}
	if err != nil {
		s.logger.Error("serving the policy", "error", err)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the policy cannot be read right now; retry shortly")
		return
	}
	if snap.Version == after {
		snap = PolicySnapshot{Version: after, Unchanged: true}
	}
	writeFeedAnswer(w, snap)
}
