package taxiicore

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// AnonymousPrincipal is the grant principal of callers without credentials.
// The gateway passes such a request on without identity headers (only when
// its anonymous option is on; it deletes any client-sent ones), so the
// marker is the absence of an identity: nobody can forge more access than
// anonymous has by sending fewer headers. An anonymous caller gets 401
// wherever it may see nothing (unknown and invisible resources alike, so
// nothing leaks, and the client learns that credentials may help); lists
// leave out what it may not see. Without grants to anonymous and without
// public discovery or API roots, that is the 401 such requests always got.
const AnonymousPrincipal = "anonymous"

var anonymousIdentity = identity{Anonymous: true}

// withoutIdentity reports whether r carries neither identity header. Other
// spellings (X_Authenticated_User, ...) are never read, so they change
// nothing: such a request is anonymous too.
func (s *Server) withoutIdentity(r *http.Request) bool {
	return len(r.Header.Values(s.cfg.UserHeader)) == 0 && len(r.Header.Values(s.cfg.GroupsHeader)) == 0
}

// anonymousMayRead reports whether an anonymous caller may read the
// discovery resource (root empty) or the API root's resource and collection
// list. An API root that does not exist answers false, so that anonymous
// callers learn nothing about which roots exist.
func (s *Server) anonymousMayRead(ctx context.Context, root string) (bool, error) {
	var public bool
	var err error
	if root == "" {
		err = s.pool.QueryRow(ctx, `SELECT public_discovery FROM taxii_settings`).Scan(&public)
	} else {
		err = s.pool.QueryRow(ctx, `SELECT public FROM taxii_api_roots WHERE name = $1`, root).Scan(&public)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading whether anonymous callers may read: %w", err)
	}
	return public, nil
}

// refuseAnonymous answers 401 and returns true when id is anonymous and the
// discovery resource or API root (root empty for discovery) is not public.
func (s *Server) refuseAnonymous(w http.ResponseWriter, r *http.Request, root string, id identity) bool {
	if !id.Anonymous {
		return false
	}
	ok, err := s.anonymousMayRead(r.Context(), root)
	if err != nil {
		s.internalError(w, r, "checking public access", err)
		return true
	}
	if !ok {
		taxiierror.Unauthorized(w, "authenticate through the gateway")
		return true
	}
	return false
}
