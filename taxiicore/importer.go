package taxiicore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// ImportedObject is one object version coming from another TAXII server,
// with the date_added it had there.
type ImportedObject struct {
	Raw       json.RawMessage
	DateAdded time.Time
	// Source names the item in error messages, for example
	// "trustgroup1/collections[2]/objects[5]" or an OpenTAXII row's key.
	Source string
	// Err, when set, makes the object bad for this reason: the source
	// could not give what an import needs (its date_added, say).
	Err error
}

// CollectionImport is one collection to import with its grants and objects.
type CollectionImport struct {
	// Collection keeps its id, which may be any UUID (other servers do not
	// always use version 4). Its API root must exist.
	Collection Collection
	// Grants are given to their principals; CollectionID is ignored.
	Grants []Grant
	// Objects yields the versions in the source's date_added order (ties in
	// the source's own order). Values out of order or not strictly
	// increasing are moved forward by the smallest amount (see ImportReport).
	Objects iter.Seq2[ImportedObject, error]
}

// ImportDB is where imports write: a pool, where each collection commits
// on its own, or a transaction (each collection then in a savepoint), which
// a dry run rolls back at the end so that its report is exact.
type ImportDB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// ImportOptions tune ImportCollection.
type ImportOptions struct {
	// SkipBad imports the good objects of a collection that holds bad ones
	// (reported in Bad). Without it a bad object fails the whole collection,
	// so that nothing is imported silently incomplete.
	SkipBad bool
	// Progress, when set, is called with the number of objects read so far,
	// every few thousand objects and at the end.
	Progress func(read int)
}

// ItemError is one object that could not be imported.
type ItemError struct {
	Source string
	ID     string // the STIX id, when it could be read
	Err    error
}

func (e ItemError) Error() string {
	if e.ID != "" {
		return fmt.Sprintf("%s (%s): %v", e.Source, e.ID, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Source, e.Err)
}

// ImportReport says what ImportCollection did.
type ImportReport struct {
	CollectionID string
	// Created is true when the collection was created; false when an empty
	// collection with that id existed (created by sync, say) and was filled.
	Created bool
	// AlreadyImported is true when the collection already held objects
	// (Existing counts them). Only the versions it lacks are then added
	// (by id and version), after what is there, so that running an import
	// again imports nothing twice and brings over what the source gained
	// since; Present counts the source's versions it already held.
	AlreadyImported bool
	Existing        int
	Present         int
	// Read counts the objects the source yielded; Imported the versions
	// stored; Duplicates the repeated id and version pairs left out (the
	// first one, in date_added order, is kept, as the core does).
	Read, Imported, Duplicates int
	// Shifted counts the objects whose date_added had to move forward (by
	// 1µs steps) so that date_added is strictly increasing in the
	// collection; MaxShift is the largest move. Other values are kept as
	// they were, so clients' saved added_after values keep working.
	Shifted  int
	MaxShift time.Duration
	// Bad lists the objects that could not be imported.
	Bad []ItemError
}

// errBadObjects fails a collection that holds bad objects without SkipBad.
var errBadObjects = errors.New("bad objects")

// importFutureSkew is how far past this machine's clock an imported
// date_added may lie (clocks differ a little). Later values are refused:
// the core would hand them out as X-TAXII-Date-Added-Last, and pollers
// would wait for them, seeing nothing added meanwhile.
const importFutureSkew = 5 * time.Minute

// envelopeOverhead is what an Add Objects envelope adds to one object,
// {"objects":[...]}: an imported object must fit the API root's
// max_content_length alone in an envelope, as it must to be added.
const envelopeOverhead = len(`{"objects":[]}`)

// ImportCollection imports one collection with its grants and objects in one
// transaction, so that a crash midway leaves nothing of it visible. Into a
// collection that already holds objects only the versions it lacks are
// added (AlreadyImported), after what is there.
// The objects are copied in with the date_added values they had (see
// CollectionImport.Objects), the version times set as the core keeps them
// (versiontimes.go), and the collection's last date_added moved past them.
// A temporary table is created and dropped in the transaction.
func ImportCollection(ctx context.Context, db ImportDB, ci CollectionImport, opts ImportOptions) (ImportReport, error) {
	c := ci.Collection
	u, err := parseCollectionID(c.ID)
	if err != nil {
		return ImportReport{}, err
	}
	c.ID = u.String()
	rep := ImportReport{CollectionID: c.ID}
	if err := c.validateFields(); err != nil {
		return rep, err
	}
	for _, g := range ci.Grants {
		if err := validatePrincipal(g.Principal); err != nil {
			return rep, fmt.Errorf("collection %s: %w", c.ID, err)
		}
	}

	tx, err := db.Begin(ctx)
	if err != nil {
		return rep, fmt.Errorf("importing collection %s: %w", c.ID, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	var root string
	var last pgtype.Timestamptz
	err = tx.QueryRow(ctx, `SELECT api_root, last_date_added FROM taxii_collections WHERE id = $1 FOR UPDATE`, u).Scan(&root, &last)
	src := newImportSource(ci.Objects, &rep, opts.Progress)
	defer src.stop()
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		_, err = tx.Exec(ctx, `INSERT INTO taxii_collections (id, api_root, title, description, alias) VALUES ($1, $2, $3, $4, $5)`,
			u, c.APIRoot, c.Title, c.Description, nullable(c.Alias))
		var pgErr *pgconn.PgError
		switch {
		case errors.As(err, &pgErr) && pgErr.Code == "23503":
			return rep, fmt.Errorf("collection %s: no API root named %s", c.ID, c.APIRoot)
		case isUniqueViolation(err):
			return rep, fmt.Errorf("collection %s: alias %q is taken in API root %s", c.ID, c.Alias, c.APIRoot)
		case err != nil:
			return rep, fmt.Errorf("creating collection %s: %w", c.ID, err)
		}
		rep.Created = true
	case err != nil:
		return rep, fmt.Errorf("reading collection %s: %w", c.ID, err)
	case root != c.APIRoot:
		return rep, fmt.Errorf("collection %s exists in API root %s, not %s", c.ID, root, c.APIRoot)
	default:
		if err := src.loadStored(ctx, tx, u); err != nil {
			return rep, fmt.Errorf("reading the versions collection %s holds: %w", c.ID, err)
		}
		rep.AlreadyImported = rep.Existing > 0
	}
	if err := tx.QueryRow(ctx, `SELECT max_content_length FROM taxii_api_roots WHERE name = $1`, c.APIRoot).Scan(&src.maxBytes); err != nil {
		return rep, fmt.Errorf("reading the max_content_length of API root %s: %w", c.APIRoot, err)
	}
	src.latestAdded = time.Now().Add(importFutureSkew)

	for _, g := range ci.Grants {
		if !g.Read && !g.Write {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO taxii_grants (collection_id, principal, can_read, can_write) VALUES ($1, $2, $3, $4)
			ON CONFLICT (collection_id, principal) DO UPDATE SET can_read = EXCLUDED.can_read, can_write = EXCLUDED.can_write`,
			u, g.Principal, g.Read, g.Write); err != nil {
			return rep, fmt.Errorf("granting %s on %s: %w", g.Principal, c.ID, err)
		}
	}

	if last.Valid && last.InfinityModifier == pgtype.Finite {
		src.prev = last.Time.UTC()
	}
	// The rows go through a staging table without indexes: only once all
	// are read are the ids with several versions known, and an
	// INSERT ... SELECT then writes every row once with its version times
	// (computed for those ids only), instead of updating rows afterwards
	// (three times faster at 100k objects, every tenth in three versions).
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE taxii_import_stage (LIKE taxii_objects)`); err != nil {
		return rep, fmt.Errorf("creating the staging table: %w", err)
	}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"taxii_import_stage"},
		[]string{"collection_id", "date_added", "id", "type", "version", "version_key", "spec_version", "object", "object_size"},
		src.forCollection([16]byte(u)))
	if err != nil {
		return rep, fmt.Errorf("copying the objects of collection %s: %w", c.ID, err)
	}
	rep.Imported = int(n)
	if opts.Progress != nil {
		opts.Progress(rep.Read)
	}
	if len(rep.Bad) > 0 && !opts.SkipBad {
		return rep, fmt.Errorf("collection %s: %d %w (in the report), so nothing of it was imported", c.ID, len(rep.Bad), errBadObjects)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO taxii_objects (collection_id, date_added, id, type, version, version_key,
			spec_version, object, object_size, newer_at, older_at, newer_in_spec_at, older_in_spec_at, newer_spec_at)
		SELECT s.collection_id, s.date_added, s.id, s.type, s.version, s.version_key, s.spec_version, s.object, s.object_size,
			w.newer_at, w.older_at, w.newer_in_spec_at, w.older_in_spec_at, w.newer_spec_at
		FROM taxii_import_stage s LEFT JOIN (`+versionTimesSelect(`taxii_import_stage WHERE id IN (SELECT unnest($1::text[]))`)+`) w
			ON w.date_added = s.date_added`,
		src.multiVersionIDs()); err != nil {
		return rep, fmt.Errorf("storing the objects of collection %s: %w", c.ID, err)
	}
	if _, err := tx.Exec(ctx, `DROP TABLE taxii_import_stage`); err != nil {
		return rep, fmt.Errorf("dropping the staging table: %w", err)
	}
	// Versions stored before this run of ids that gained one: their flags.
	if fix := src.grownIDs(); len(fix) > 0 {
		if _, err := tx.Exec(ctx, fixVersionFlagsSQL, u, fix); err != nil {
			return rep, fmt.Errorf("updating the latest-version flags of collection %s: %w", c.ID, err)
		}
	}
	if n > 0 {
		// max_object_size keeps the page byte cap right for what was imported.
		if _, err := tx.Exec(ctx, `UPDATE taxii_collections SET last_date_added = $2, max_object_size = greatest(max_object_size, $3)
			WHERE id = $1`, u, src.prev, src.maxSize); err != nil {
			return rep, fmt.Errorf("recording the last date_added of %s: %w", c.ID, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return rep, fmt.Errorf("committing collection %s: %w", c.ID, err)
	}
	return rep, nil
}

// IsBadObjects reports whether err is ImportCollection refusing a
// collection for its bad objects (listed in the report).
func IsBadObjects(err error) bool { return errors.Is(err, errBadObjects) }

// importSource turns the imported objects into COPY rows: it checks each
// object, leaves out repeated versions, and makes date_added strictly
// increasing.
type importSource struct {
	next     func() (ImportedObject, error, bool)
	stop     func()
	rep      *ImportReport
	progress func(int)

	colID       [16]byte
	prev        time.Time // the last date_added handed out
	maxSize     int       // the largest object handed out, in bytes
	maxBytes    int64     // the API root's max_content_length
	latestAdded time.Time // the latest date_added accepted
	// versions holds the version keys of each id, stored before (the
	// first stored[id] of them) or handed out.
	versions map[string][]string
	stored   map[string]int
	grown    map[string]bool // ids stored before with a version handed out
	row      []any
	err      error
}

func newImportSource(objects iter.Seq2[ImportedObject, error], rep *ImportReport, progress func(int)) *importSource {
	next, stop := iter.Pull2(objects)
	return &importSource{next: next, stop: stop, rep: rep, progress: progress,
		versions: map[string][]string{}, stored: map[string]int{}, grown: map[string]bool{}}
}

// loadStored reads the versions the collection holds, so that only the
// others are handed out.
func (s *importSource) loadStored(ctx context.Context, tx pgx.Tx, collection uuid.UUID) error {
	rows, err := tx.Query(ctx, `SELECT id, version_key FROM taxii_objects WHERE collection_id = $1`, collection)
	if err != nil {
		return err
	}
	defer rows.Close()
	var id, key string
	for rows.Next() {
		if err := rows.Scan(&id, &key); err != nil {
			return err
		}
		s.versions[id] = append(s.versions[id], key)
		s.stored[id]++
		s.rep.Existing++
	}
	return rows.Err()
}

// grownIDs are the ids that held versions before and were handed out new ones.
func (s *importSource) grownIDs() []string {
	var ids []string
	for id := range s.grown {
		ids = append(ids, id)
	}
	return ids
}

func (s *importSource) forCollection(id [16]byte) pgx.CopyFromSource {
	s.colID = id
	return s
}

// Next reads objects until one is to be stored.
func (s *importSource) Next() bool {
	for {
		obj, err, ok := s.next()
		if !ok {
			return false
		}
		if err != nil {
			s.err = err
			return false
		}
		s.rep.Read++
		if s.progress != nil && s.rep.Read%5000 == 0 {
			s.progress(s.rep.Read)
		}
		o, err := parseSTIX(obj.Raw)
		if err == nil {
			err = obj.Err
		}
		if err != nil {
			s.rep.Bad = append(s.rep.Bad, ItemError{Source: obj.Source, ID: o.id, Err: err})
			continue
		}
		if obj.DateAdded.IsZero() {
			s.rep.Bad = append(s.rep.Bad, ItemError{Source: obj.Source, ID: o.id, Err: errors.New("no date_added")})
			continue
		}
		if obj.DateAdded.After(s.latestAdded) {
			s.rep.Bad = append(s.rep.Bad, ItemError{Source: obj.Source, ID: o.id,
				Err: fmt.Errorf("date_added %s lies in the future (more than %s past this machine's clock)", formatTimestamp(obj.DateAdded), importFutureSkew)})
			continue
		}
		if s.maxBytes > 0 && int64(len(o.raw)+envelopeOverhead) > s.maxBytes {
			s.rep.Bad = append(s.rep.Bad, ItemError{Source: obj.Source, ID: o.id,
				Err: fmt.Errorf("the object (%d bytes) does not fit the API root's max_content_length of %d bytes in an envelope, so it could not be added", len(o.raw), s.maxBytes)})
			continue
		}
		vers := s.versions[o.id]
		// An unversioned object is immutable (AMBIG-11): a repeat is a
		// duplicate whatever it holds. Otherwise the first of a version
		// wins (AMBIG-10).
		if (o.version == "" && len(vers) > 0) || (o.version != "" && slices.Contains(vers, o.versionKey)) {
			if s.stored[o.id] > 0 && (o.version == "" || slices.Contains(vers[:s.stored[o.id]], o.versionKey)) {
				s.rep.Present++
			} else {
				s.rep.Duplicates++
			}
			continue
		}
		added := obj.DateAdded.UTC().Truncate(time.Microsecond)
		if next := s.prev.Add(time.Microsecond); !s.prev.IsZero() && added.Before(next) {
			added = next
		}
		if shift := added.Sub(obj.DateAdded); shift != 0 {
			s.rep.Shifted++
			s.rep.MaxShift = max(s.rep.MaxShift, shift)
		}
		s.prev = added
		if o.version == "" {
			o.version, o.versionKey = formatTimestamp(added), versionKey(added)
		}
		s.versions[o.id] = append(vers, o.versionKey)
		if s.stored[o.id] > 0 {
			s.grown[o.id] = true
		}
		s.maxSize = max(s.maxSize, len(o.raw))
		s.row = []any{s.colID, added, o.id, o.typ, o.version, o.versionKey, o.specVersion, []byte(o.raw), len(o.raw)}
		return true
	}
}

func (s *importSource) Values() ([]any, error) { return s.row, nil }

func (s *importSource) Err() error { return s.err }

// multiVersionIDs are the ids imported in more than one version.
func (s *importSource) multiVersionIDs() []string {
	var ids []string
	for id, v := range s.versions {
		// Ids only stored before keep their flags.
		if len(v) > 1 && (s.stored[id] == 0 || s.grown[id]) {
			ids = append(ids, id)
		}
	}
	return ids
}

// ImportAPIRoot creates an API root unless one with its name exists, which
// is left as it is. created says which.
func ImportAPIRoot(ctx context.Context, db ImportDB, r APIRoot) (created bool, err error) {
	if err := r.validate(); err != nil {
		return false, err
	}
	tag, err := db.Exec(ctx, `INSERT INTO taxii_api_roots (name, title, description, max_content_length, public)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING`, r.Name, r.Title, r.Description, r.MaxContentLength, r.Public)
	if err != nil {
		return false, fmt.Errorf("adding API root %s: %w", r.Name, err)
	}
	return tag.RowsAffected() == 1, nil
}

// Discovery is the discovery resource as administered.
type Discovery struct {
	Title, Description, Contact string
	// Default names the default API root (empty for none).
	Default string
	// Public lets anonymous callers read it.
	Public bool
}

// ImportDiscovery sets the discovery resource unless it was ever set
// (by sync or an earlier import), and says whether it did.
func ImportDiscovery(ctx context.Context, db ImportDB, d Discovery) (bool, error) {
	if d.Title == "" {
		d.Title = "Taxiway"
	}
	tag, err := db.Exec(ctx, `INSERT INTO taxii_settings AS t (singleton, title, description, contact, default_root, public_discovery)
		VALUES (true, $1, $2, $3, $4, $5) ON CONFLICT (singleton) DO UPDATE
		SET title = EXCLUDED.title, description = EXCLUDED.description, contact = EXCLUDED.contact,
			default_root = EXCLUDED.default_root, public_discovery = EXCLUDED.public_discovery
		WHERE t.title = 'Taxiway' AND t.description = '' AND t.contact = '' AND t.default_root IS NULL AND NOT t.public_discovery`,
		d.Title, d.Description, d.Contact, nullable(d.Default), d.Public)
	if err != nil {
		return false, fmt.Errorf("setting the discovery resource: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ImportPublicDiscovery lets callers without credentials read the
// discovery resource (an import's -public-discovery), whether or not the
// resource was set before, and says whether that changed anything.
func ImportPublicDiscovery(ctx context.Context, db ImportDB) (bool, error) {
	tag, err := db.Exec(ctx, `INSERT INTO taxii_settings AS t (singleton, public_discovery) VALUES (true, true)
		ON CONFLICT (singleton) DO UPDATE SET public_discovery = true WHERE NOT t.public_discovery`)
	if err != nil {
		return false, fmt.Errorf("making the discovery resource public: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ImportedStatus is a finished Add Objects status from another server,
// kept so that a client polling it across the move still finds it.
type ImportedStatus struct {
	ID               string // a UUID
	APIRoot          string
	CollectionID     string
	RequestTimestamp time.Time
	TotalCount       int
	Successes        []ImportedStatusDetail
	Failures         []ImportedStatusDetail
}

// ImportedStatusDetail is one object of a status.
type ImportedStatusDetail struct {
	ID, Version, Message string
}

// ErrStatusObjectsMissing is ImportStatus refusing a status that reports
// success for an object version its collection lacks (not imported, or
// not yet): such a status would tell its client that a 404 was stored.
var ErrStatusObjectsMissing = errors.New("reports success for object versions its collection does not hold")

// ImportStatus stores st unless a status with its id exists, and says
// whether it did. It is stored only once every success it reports is an
// object version its collection holds (by id, and by version where given),
// and is refused with ErrStatusObjectsMissing before. Nobody is recorded as its creator (the other server's
// accounts are not Taxiway's), so writers of its collection may read it,
// as with any status. Statuses older than the core's retention are deleted
// by the core within the hour.
func ImportStatus(ctx context.Context, db ImportDB, st ImportedStatus) (bool, error) {
	id, err := uuid.Parse(st.ID)
	if err != nil {
		return false, fmt.Errorf("status %q: the id is not a UUID", st.ID)
	}
	col, err := parseCollectionID(st.CollectionID)
	if err != nil {
		return false, fmt.Errorf("status %s: %w", st.ID, err)
	}
	convert := func(ds []ImportedStatusDetail) []statusDetail {
		out := make([]statusDetail, len(ds))
		for i, d := range ds {
			out[i] = statusDetail(d)
		}
		return out
	}
	lists := encodeStatusLists(statusResource{Successes: convert(st.Successes), Failures: convert(st.Failures)})
	total := max(st.TotalCount, len(st.Successes)+len(st.Failures))
	// In a transaction of its own (a savepoint in a dry run's), so that a
	// failure does not end the caller's transaction.
	tx, err := db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("importing status %s: %w", st.ID, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM taxii_statuses WHERE id = $1)`, id).Scan(&exists); err != nil {
		return false, fmt.Errorf("importing status %s: %w", st.ID, err)
	}
	if exists {
		return false, nil
	}
	// Versions are compared to the microsecond, the precision other
	// servers keep them in.
	var ids, keys []string
	for _, d := range st.Successes {
		key := ""
		if d.Version != "" {
			v, err := parseTimestamp(d.Version)
			if err != nil {
				return false, fmt.Errorf("status %s: object %s: version %q: %v", st.ID, d.ID, d.Version, err)
			}
			key = versionKey(v)
		}
		ids, keys = append(ids, d.ID), append(keys, key)
	}
	var missing int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM unnest($2::text[], $3::text[]) AS d (id, version_key)
		WHERE NOT EXISTS (SELECT 1 FROM taxii_objects o WHERE o.collection_id = $1 AND o.id = d.id
			AND (d.version_key = '' OR left(o.version_key, 26) = left(d.version_key, 26)))`, col, ids, keys).Scan(&missing); err != nil {
		return false, fmt.Errorf("status %s: looking for its objects: %w", st.ID, err)
	}
	if missing > 0 {
		return false, fmt.Errorf("status %s: %d of its successes: %w", st.ID, missing, ErrStatusObjectsMissing)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO taxii_statuses (id, api_root, collection_id, created_by, request_timestamp,
		total_count, success_count, failure_count, pending_count, successes, failures)
		VALUES ($1, $2, $3, '', $4, $5, $6, $7, 0, $8, $9) ON CONFLICT (id) DO NOTHING`,
		id, st.APIRoot, col, st.RequestTimestamp, total, len(st.Successes), len(st.Failures), lists.successes, lists.failures)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return false, fmt.Errorf("status %s: no collection %s", st.ID, st.CollectionID)
	}
	if err != nil {
		return false, fmt.Errorf("importing status %s: %w", st.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("importing status %s: %w", st.ID, err)
	}
	return tag.RowsAffected() == 1, nil
}
