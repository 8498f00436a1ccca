package tokenservice

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
)

// jwk is an Ed25519 public key as RFC 8037 writes it.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// marshalJWKS writes the JWK Set of the published keys, newest first. It
// never holds private material: only the public halves reach it.
func marshalJWKS(pubs []publicKey) []byte {
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, p := range pubs {
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(p.pub),
			Kid: p.kid, Alg: AlgEdDSA, Use: "sig"})
	}
	b, _ := json.Marshal(set) // plain strings cannot fail
	return b
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
