package taxiicore

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

type manifestRecord struct {
	ID        string `json:"id"`
	DateAdded string `json:"date_added"`
	Version   string `json:"version"`
	MediaType string `json:"media_type"`
}

// getList serves the paginated endpoints: objects, manifest, one object and
// versions. Results ascend by date_added (unique per collection), and next
// is a signed keyset cursor at the last date_added of the page.
func (s *Server) getList(w http.ResponseWriter, r *http.Request, rt route, id identity, col *collectionAccess) {
	if !col.CanRead {
		taxiierror.Write(w, http.StatusForbidden, "Forbidden", "you may not read this collection")
		return
	}
	params, defVersion := listParams, "last"
	switch rt.ep {
	case epObject:
		params = objectParams
	case epVersions:
		params, defVersion = versionParams, "all"
	}
	f, err := parseFilters(r.URL.RawQuery, params, defVersion, s.cfg.MaxPageSize)
	if err != nil {
		writeFilterError(w, err)
		return
	}
	q := listQuery{collection: col.ID, f: f, lower: f.after, hasLower: f.hasAfter, specDefault: true}
	if rt.ep == epObject || rt.ep == epVersions {
		q.oid = rt.oid
	}
	binding := fmt.Sprintf("%d\x00%s\x00%s\x00%s\x00%s", rt.ep, rt.root, col.ID, q.oid, id.User) + "\x00" + f.normalized
	if f.next != "" {
		pos, err := s.cursors.decode(f.next, binding)
		if err != nil {
			taxiierror.Write(w, http.StatusBadRequest, "Bad request", err.Error())
			return
		}
		if !q.hasLower || pos > q.lower {
			q.lower, q.hasLower = pos, true
		}
	}

	var columns string
	switch rt.ep {
	case epManifest:
		columns = "date_added, id, version, spec_version"
	case epVersions:
		columns = "date_added, version"
	default:
		columns = "date_added, object"
	}
	// Size accounting only where a full page could exceed the byte cap.
	capped := (rt.ep == epObjects || rt.ep == epObject) && int64(f.limit+1)*col.MaxObjectSize > s.cfg.MaxPageBytes
	if capped {
		columns += ", object_size"
	}
	sql, args := q.sql(columns, f.limit+1)
	if capped {
		args = append(args, s.cfg.MaxPageBytes)
		sql = byteCappedSQL(sql, "$"+strconv.Itoa(len(args)))
	}
	rows, err := s.listPool(rt.ep).Query(r.Context(), sql, args...)
	if err != nil {
		s.internalError(w, r, "querying objects", err)
		return
	}
	var (
		added    []time.Time
		objects  [][]byte
		records  []manifestRecord
		versions []string
		bytesCut bool  // the byte cap ended the page
		total    int64 // bytes of objects
	)
	for rows.Next() {
		var t time.Time
		switch rt.ep {
		case epManifest:
			var rec manifestRecord
			var spec string
			if err = rows.Scan(&t, &rec.ID, &rec.Version, &spec); err == nil {
				rec.DateAdded = formatTimestamp(t)
				rec.MediaType = "application/stix+json;version=" + spec
				records = append(records, rec)
			}
		case epVersions:
			var v string
			if err = rows.Scan(&t, &v); err == nil {
				versions = append(versions, v)
			}
		default:
			var obj []byte
			if err = rows.Scan(&t, &obj); err == nil {
				if !pageFits(len(objects), total, int64(len(obj)), s.cfg.MaxPageBytes) {
					bytesCut = true
					break
				}
				objects = append(objects, obj)
				total += int64(len(obj))
			}
		}
		if err != nil || bytesCut {
			break
		}
		added = append(added, t)
	}
	rows.Close()
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		s.internalError(w, r, "reading objects", err)
		return
	}

	more := len(added) > f.limit || bytesCut
	if len(added) > f.limit {
		added = added[:f.limit]
		switch {
		case objects != nil:
			objects = objects[:f.limit]
		case records != nil:
			records = records[:f.limit]
		case versions != nil:
			versions = versions[:f.limit]
		}
	}
	if len(added) == 0 && q.oid != "" {
		// ONE-05/VER-01: an id absent from the collection is a 404; an id
		// whose versions the filters exclude is an empty 200.
		var exists bool
		if err := s.pool.QueryRow(r.Context(), `SELECT EXISTS (SELECT 1 FROM taxii_objects WHERE collection_id = $1 AND id = $2)`,
			col.ID, q.oid).Scan(&exists); err != nil {
			s.internalError(w, r, "looking up the object", err)
			return
		}
		if !exists {
			taxiierror.Write(w, http.StatusNotFound, "Not found", "no object with this id in the collection")
			return
		}
	}
	ep := endpointName(rt.ep)
	s.metrics.pageObjects.WithLabelValues(ep).Observe(float64(len(added)))
	if rt.ep == epObjects || rt.ep == epObject {
		var size int // total may hold the one object read past the page
		for _, obj := range objects {
			size += len(obj)
		}
		s.metrics.pageBytes.WithLabelValues(ep).Observe(float64(size))
	}
	var next string
	if more {
		next = s.cursors.encode(added[len(added)-1].UnixMicro(), binding)
	}
	if len(added) > 0 {
		w.Header().Set("X-TAXII-Date-Added-First", formatTimestamp(added[0]))
		w.Header().Set("X-TAXII-Date-Added-Last", formatTimestamp(added[len(added)-1]))
	}
	switch rt.ep {
	case epManifest:
		writeJSON(w, http.StatusOK, struct {
			More    bool             `json:"more"`
			Next    string           `json:"next,omitempty"`
			Objects []manifestRecord `json:"objects,omitempty"`
		}{more, next, records})
	case epVersions:
		writeJSON(w, http.StatusOK, struct {
			More     bool     `json:"more"`
			Next     string   `json:"next,omitempty"`
			Versions []string `json:"versions,omitempty"`
		}{more, next, versions})
	default:
		writeEnvelope(w, more, next, objects)
	}
}

func writeFilterError(w http.ResponseWriter, err error) {
	var br badRequest
	if errors.As(err, &br) {
		taxiierror.Write(w, http.StatusBadRequest, "Bad request", br.msg)
		return
	}
	taxiierror.Write(w, http.StatusBadRequest, "Bad request", err.Error())
}
