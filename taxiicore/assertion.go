package taxiicore

import (
	"net/http"
	"strings"
	"time"

	"github.com/taxiway/taxiway/internal/identitysig"
)

// identityProven reports whether the identity headers of r carry a valid
// gateway signature (internal/identitysig), when the core has identity
// keys; without keys it believes any trusted proxy, as before. The check
// is one HMAC-SHA256 over a few short strings: about a microsecond.
func (s *Server) identityProven(r *http.Request, user string) bool {
	if len(s.cfg.identityKeys) == 0 {
		return true
	}
	sigs := r.Header.Values(identitysig.Header)
	if len(sigs) != 1 {
		return false
	}
	err := identitysig.Verify(s.cfg.identityKeys, sigs[0], time.Now(), identitysig.Request{
		Method: r.Method,
		Path:   r.URL.EscapedPath(),
		Query:  r.URL.RawQuery,
		User:   user,
		Groups: strings.Join(r.Header.Values(s.cfg.GroupsHeader), ","),
	})
	if err != nil {
		s.log.Warn("identity headers refused", "reason", err.Error(), "remote", r.RemoteAddr)
		return false
	}
	return true
}
