package taxiicore

import (
	"net/http"

	"github.com/jackc/pgx/v5"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// deleteObject is Delete an Object (5.7). Without match[version] it deletes
// every version of the object (AMBIG-7: the endpoint "deletes an object");
// match[version] and match[spec_version] narrow it to some versions. Allowed
// only with both can_read and can_write (AUTH-06).
func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, rt route, col *collectionAccess) {
	if !col.CanRead || !col.CanWrite {
		taxiierror.Write(w, http.StatusForbidden, "Forbidden", "deleting needs both read and write access to the collection")
		return
	}
	f, err := parseFilters(r.URL.RawQuery, deleteParams, "all", s.cfg.MaxPageSize)
	if err != nil {
		writeFilterError(w, err)
		return
	}
	q := listQuery{collection: col.ID, oid: rt.oid, f: f}
	where, args := q.where()
	var deleted int64
	err = pgx.BeginFunc(r.Context(), s.pool, func(tx pgx.Tx) error {
		// The collection lock keeps flag maintenance serial with Add Objects.
		if _, err := tx.Exec(r.Context(), `SELECT 1 FROM taxii_collections WHERE id = $1 FOR UPDATE`, col.ID); err != nil {
			return err
		}
		tag, err := tx.Exec(r.Context(), "DELETE FROM taxii_objects WHERE "+where, args...)
		if err != nil {
			return err
		}
		if deleted = tag.RowsAffected(); deleted == 0 {
			return nil
		}
		return fixVersionFlags(r.Context(), tx, col.ID, []string{rt.oid})
	})
	if err != nil {
		s.internalError(w, r, "deleting the object", err)
		return
	}
	if deleted == 0 {
		taxiierror.Write(w, http.StatusNotFound, "Not found", "no object (or no version matching the filters) with this id in the collection")
		return
	}
	w.Header().Set("Content-Type", taxiierror.MediaType)
	w.WriteHeader(http.StatusOK)
}
