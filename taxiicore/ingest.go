package taxiicore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taxiway/taxiway/internal/taxiierror"
)

// addObjects is Add Objects (5.5): the whole request is one transaction;
// each object succeeds or fails on its own; the 202 carries the complete
// status, which is also kept for Get Status.
func (s *Server) addObjects(w http.ResponseWriter, r *http.Request, rt route, id identity, col *collectionAccess) {
	if !col.CanWrite {
		taxiierror.Write(w, http.StatusForbidden, "Forbidden", "you may not add objects to this collection")
		return
	}
	if !taxiiContentType(r.Header.Get("Content-Type")) {
		taxiierror.Write(w, http.StatusUnsupportedMediaType, "", "send Content-Type: "+taxiierror.MediaType+" (in UTF-8)")
		return
	}
	tooLarge := func() {
		taxiierror.Write(w, http.StatusRequestEntityTooLarge, "",
			"the body exceeds this API root's max_content_length of "+strconv.FormatInt(col.MaxContentLength, 10)+" bytes")
	}
	if r.ContentLength > col.MaxContentLength {
		tooLarge()
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, col.MaxContentLength))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			tooLarge()
			return
		}
		taxiierror.Write(w, http.StatusBadRequest, "", "reading the body failed")
		return
	}
	raws, status, msg := parseEnvelope(body)
	if status != 0 {
		taxiierror.Write(w, status, "", msg)
		return
	}
	st, stored, err := s.ingest(r.Context(), rt.root, col.ID, id.User, raws)
	if err != nil {
		s.internalError(w, r, "storing objects", err)
		return
	}
	s.metrics.ingested.Add(float64(stored))
	s.metrics.rejected.Add(float64(st.FailureCount))
	writeBody(w, http.StatusAccepted, st.body())
}

// parseEnvelope returns the posted objects, or the status and message for a
// body that is not a usable envelope: 400 for bad JSON, 422 for JSON that is
// not an envelope or holds no objects (AMBIG-12, AMBIG-13). The body is
// validated once; the objects are then cut out of it without decoding them.
func parseEnvelope(body []byte) ([]json.RawMessage, int, string) {
	if !json.Valid(body) {
		return nil, http.StatusBadRequest, "the body is not valid JSON"
	}
	if string(bytes.TrimSpace(body)) == "null" {
		return nil, http.StatusUnprocessableEntity, "the envelope has no objects"
	}
	var raw []byte
	found := false
	// As with any JSON object decoding, a repeated name counts with its last value.
	if err := scanMembers(body, func(name, value []byte) {
		if string(name) == "objects" {
			raw, found = value, true
		}
	}); err != nil {
		return nil, http.StatusUnprocessableEntity, "the body is not a TAXII envelope (a JSON object with an objects list)"
	}
	if !found {
		return nil, http.StatusUnprocessableEntity, "the envelope has no objects"
	}
	if string(raw) == "null" {
		return nil, http.StatusUnprocessableEntity, "the envelope's objects list is empty"
	}
	var objs []json.RawMessage
	if err := scanElements(raw, func(v []byte) { objs = append(objs, v) }); err != nil {
		return nil, http.StatusUnprocessableEntity, "the envelope's objects must be a list"
	}
	if len(objs) == 0 {
		return nil, http.StatusUnprocessableEntity, "the envelope's objects list is empty"
	}
	return objs, 0, ""
}

// newRow is one object version to insert.
type newRow struct {
	obj       stixObject
	dateAdded time.Time
	times     versionTimes
}

// ingestResult is the outcome for one posted object, in envelope order.
type ingestResult struct {
	obj stixObject
	err error
	dup bool
}

// ingest stores raws in collection and records the status. Under the
// collection's row lock, date_added values are allocated as
// greatest(clock_timestamp(), last + 1µs) and increase by 1µs per object, so
// they are unique and rise in commit order: a reader never sees a later
// commit appear behind a position it has already passed.
//
// What does not need the lock is done outside it, so that concurrent
// requests overlap: parsing, and reading the posted ids' stored versions
// (the costliest read: one random index probe per id); under the lock only
// what was committed since that read is fetched. The statements are
// pipelined: lock, clock and that delta in one round trip; the COPY (while
// the status lists are encoded); then last date_added, flag fixes and the
// status in one more.
func (s *Server) ingest(ctx context.Context, root string, collection uuid.UUID, user string, raws []json.RawMessage) (statusResource, int, error) {
	requested := time.Now().UTC().Truncate(time.Microsecond)
	results := make([]ingestResult, len(raws))
	ids := make([]string, 0, len(raws))
	seenID := make(map[string]bool, len(raws))
	for i, raw := range raws {
		o, err := parseSTIX(raw)
		results[i] = ingestResult{obj: o, err: err}
		if err == nil && !seenID[o.id] {
			seenID[o.id] = true
			ids = append(ids, o.id)
		}
	}

	var st statusResource
	var stored int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Before the lock, so that concurrent requests overlap this part:
		// the stored versions of the posted ids, and the collection's last
		// date_added, from one snapshot.
		existing, seenUpTo, err := storedVersions(ctx, tx, collection, ids)
		if err != nil {
			return err
		}
		// Under the lock: the clock, and whatever was committed since that
		// snapshot. Rows added since all have a later date_added (they were
		// allocated under this lock after it); versions found may since have
		// been deleted, so they are read again.
		found := make(map[string]bool, len(existing))
		for id := range existing {
			found[id] = true
		}
		var start time.Time
		var added, refound []idVersion
		deltaCap := 10*len(ids) + 1000
		b := &pgx.Batch{}
		b.Queue(`SELECT 1 FROM taxii_collections WHERE id = $1 FOR UPDATE`, collection)
		// The clock is read by the next statement, once the lock is held.
		b.Queue(`SELECT greatest(clock_timestamp(), last_date_added + interval '1 microsecond')
			FROM taxii_collections WHERE id = $1`, collection).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&start); err != nil {
				return fmt.Errorf("allocating date_added: %w", err)
			}
			return nil
		})
		queueVersionRows(b, &added, `SELECT id, version_key, version, spec_version, date_added FROM taxii_objects
			WHERE collection_id = $1 AND date_added > $2 ORDER BY date_added LIMIT $3`, collection, seenUpTo, deltaCap)
		if len(found) > 0 {
			queueVersionRows(b, &refound, `SELECT id, version_key, version, spec_version, date_added FROM taxii_objects
				WHERE collection_id = $1 AND id = ANY($2) ORDER BY date_added`, collection, slices.Collect(maps.Keys(found)))
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("locking the collection: %w", err)
		}
		if len(added) == deltaCap {
			// Much was added meanwhile: read the posted ids' versions again.
			if existing, _, err = storedVersions(ctx, tx, collection, ids); err != nil {
				return err
			}
		} else {
			for id := range found {
				delete(existing, id)
			}
			for _, r := range refound {
				existing[r.id] = append(existing[r.id], r.v)
			}
			for _, r := range added {
				if seenID[r.id] && !found[r.id] {
					existing[r.id] = append(existing[r.id], r.v)
				}
			}
		}
		next := start.UTC().Truncate(time.Microsecond)
		if next.Before(start) {
			next = next.Add(time.Microsecond)
		}
		hadRows := make(map[string]bool, len(existing))
		for id := range existing {
			hadRows[id] = true
		}

		inserts := make([]*newRow, 0, len(results))
		for i := range results {
			res := &results[i]
			if res.err != nil {
				continue
			}
			o := &res.obj
			vers := existing[o.id]
			if o.version == "" && len(vers) > 0 {
				// AMBIG-11: an unversioned object is immutable; its version
				// is its first date_added and any re-post is a duplicate.
				res.dup, o.version = true, vers[0].version
				continue
			}
			if o.version != "" && slices.ContainsFunc(vers, func(v storedVersion) bool { return v.key == o.versionKey }) {
				res.dup = true // AMBIG-10: first write wins
				continue
			}
			row := &newRow{obj: *o, dateAdded: next}
			next = next.Add(time.Microsecond)
			if o.version == "" {
				row.obj.version, row.obj.versionKey = formatTimestamp(row.dateAdded), versionKey(row.dateAdded)
				o.version = row.obj.version
			}
			existing[o.id] = append(vers, storedVersion{key: row.obj.versionKey, version: row.obj.version, spec: row.obj.specVersion, added: row.dateAdded})
			inserts = append(inserts, row)
		}
		st = buildStatus(results, requested)
		// The status lists are encoded while Postgres takes the rows.
		encoded := make(chan statusLists, 1)
		go func() { encoded <- encodeStatusLists(st) }()
		if len(inserts) > 0 {
			if err := copyRows(ctx, tx, collection, inserts, existing); err != nil {
				<-encoded
				return err
			}
		}
		st.lists = <-encoded
		stored = len(inserts)
		b = &pgx.Batch{}
		if len(inserts) > 0 {
			largest := 0
			for _, row := range inserts {
				largest = max(largest, len(row.obj.raw))
			}
			b.Queue(`UPDATE taxii_collections SET last_date_added = $2, max_object_size = greatest(max_object_size, $3) WHERE id = $1`,
				collection, inserts[len(inserts)-1].dateAdded, largest)
			var fix []string
			for _, row := range inserts {
				if hadRows[row.obj.id] {
					fix = append(fix, row.obj.id)
					hadRows[row.obj.id] = false // once per id
				}
			}
			if len(fix) > 0 {
				b.Queue(fixVersionFlagsSQL, collection, fix)
			}
		}
		b.Queue(`INSERT INTO taxii_statuses (id, api_root, collection_id, created_by, request_timestamp,
			total_count, success_count, failure_count, pending_count, successes, failures)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10)`,
			st.ID, root, collection, user, requested, st.TotalCount, st.SuccessCount, st.FailureCount,
			jsonParam(st.lists.successes), jsonParam(st.lists.failures))
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("recording date_added, version flags and the status: %w", err)
		}
		return nil
	})
	if err != nil {
		return statusResource{}, 0, err
	}
	return st, stored, nil
}

type idVersion struct {
	id string
	v  storedVersion
}

// storedVersions reads the stored versions of ids, oldest first, and the
// collection's last date_added, in one statement and so from one snapshot.
func storedVersions(ctx context.Context, tx pgx.Tx, collection uuid.UUID, ids []string) (map[string][]storedVersion, pgtype.Timestamptz, error) {
	out := make(map[string][]storedVersion)
	var last pgtype.Timestamptz
	rows, err := tx.Query(ctx, `SELECT id, version_key, version, spec_version, date_added FROM taxii_objects
			WHERE collection_id = $1 AND id = ANY($2)
		UNION ALL
		SELECT NULL, NULL, NULL, NULL, last_date_added FROM taxii_collections WHERE id = $1
		ORDER BY 5`, collection, ids)
	if err != nil {
		return nil, last, fmt.Errorf("reading stored versions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, key, version, spec pgtype.Text
		var added pgtype.Timestamptz
		if err := rows.Scan(&id, &key, &version, &spec, &added); err != nil {
			return nil, last, fmt.Errorf("reading stored versions: %w", err)
		}
		if !id.Valid {
			last = added
			continue
		}
		out[id.String] = append(out[id.String], storedVersion{key: key.String, version: version.String, spec: spec.String, added: added.Time})
	}
	if err := rows.Err(); err != nil {
		return nil, last, fmt.Errorf("reading stored versions: %w", err)
	}
	if !last.Valid {
		// The collection is gone; the lock statement will say so.
		last = pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	}
	return out, last, nil
}

// queueVersionRows appends the (id, version_key, version, spec_version,
// date_added) rows of query to *out.
func queueVersionRows(b *pgx.Batch, out *[]idVersion, query string, args ...any) {
	b.Queue(query, args...).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var r idVersion
			if err := rows.Scan(&r.id, &r.v.key, &r.v.version, &r.v.spec, &r.v.added); err != nil {
				return fmt.Errorf("reading stored versions: %w", err)
			}
			*out = append(*out, r)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("reading stored versions: %w", err)
		}
		return nil
	})
}

// copyRows copies the new versions in, each with its version times from
// every stored version; older rows of ids that already had versions are
// fixed up afterwards (fixVersionFlagsSQL).
func copyRows(ctx context.Context, tx pgx.Tx, collection uuid.UUID, inserts []*newRow, all map[string][]storedVersion) error {
	for _, row := range inserts {
		if vers := all[row.obj.id]; len(vers) > 1 {
			row.times = timesOf(storedVersion{key: row.obj.versionKey, spec: row.obj.specVersion}, vers)
		}
	}
	// [16]byte encodes directly; uuid.UUID would go through driver.Valuer
	// and a string on every row.
	colID := [16]byte(collection)
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"taxii_objects"},
		append([]string{"collection_id", "date_added", "id", "type", "version", "version_key", "spec_version", "object", "object_size"}, versionTimeColumns...),
		pgx.CopyFromSlice(len(inserts), func(i int) ([]any, error) {
			r := inserts[i]
			return append([]any{colID, r.dateAdded, r.obj.id, r.obj.typ, r.obj.version, r.obj.versionKey,
				r.obj.specVersion, []byte(r.obj.raw), int32(len(r.obj.raw))}, r.times.values()...), nil
		}))
	if err != nil {
		return fmt.Errorf("inserting objects: %w", err)
	}
	return nil
}

func buildStatus(results []ingestResult, requested time.Time) statusResource {
	st := statusResource{ID: uuid.NewString(), Status: "complete", RequestTimestamp: formatTimestamp(requested), TotalCount: len(results)}
	for i, res := range results {
		d := statusDetail{ID: res.obj.id, Version: res.obj.version}
		if d.ID == "" {
			d.ID = "objects[" + strconv.Itoa(i) + "]"
		}
		switch {
		case res.err != nil:
			d.Message = res.err.Error()
			st.Failures = append(st.Failures, d)
		case res.dup:
			d.Message = "already in the collection"
			st.Successes = append(st.Successes, d)
		default:
			st.Successes = append(st.Successes, d)
		}
	}
	st.SuccessCount, st.FailureCount = len(st.Successes), len(st.Failures)
	return st
}
