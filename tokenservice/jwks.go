package tokenservice

import (
	"net/http"
	"strconv"

	"github.com/taxiway/taxiway/internal/jwks"
)

// marshalJWKS writes the JWK Set of the published keys, newest first. It
// never holds private material: only the public halves reach it.
func marshalJWKS(pubs []publicKey) []byte {
	keys := make([]jwks.Key, len(pubs))
	for i, p := range pubs {
		keys[i] = jwks.Key{ID: p.kid, Public: p.pub}
	}
	return jwks.Marshal(keys)
}

// serveJWKS answers GET/HEAD with the published keys. In HS256 mode the set
// is empty: a shared secret is never published.
func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	body := []byte(`{"keys":[]}`)
	if s.keys != nil {
		_, jwks, err := s.keys.current(r.Context())
		if err != nil {
			s.logger.Error("serving JWKS", "error", err)
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusServiceUnavailable, "unavailable", "signing keys are not available; retry shortly")
			return
		}
		body = jwks
	}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	// Short enough that verifiers see a rotation soon after it happens.
	h.Set("Cache-Control", "public, max-age=60")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}
