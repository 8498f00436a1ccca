package importcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taxiway/taxiway/taxiicore"
	"github.com/taxiway/taxiway/tokenservice"
)

// OpenTAXIIOptions tune ReadOpenTAXII.
type OpenTAXIIOptions struct {
	// AdminGroup is the group OpenTAXII's admins (is_admin) join: the
	// core's admin group.
	AdminGroup string
	// PublicDiscovery lets anonymous callers read /taxii2/, as OpenTAXII's
	// public_discovery setting (which lives in its configuration file).
	PublicDiscovery bool
	// MaxContentLength is OpenTAXII's taxii2 max_content_length (from its
	// configuration file; OpenTAXIIMaxContentLength when 0), which every
	// API root gets.
	MaxContentLength int64
}

// OpenTAXIIMaxContentLength is OpenTAXII's default taxii2
// max_content_length (its defaults.yml): 200 MiB.
const OpenTAXIIMaxContentLength = 209715200

// ReadOpenTAXII reads OpenTAXII's TAXII 2.1 tables (opentaxii_api_root,
// opentaxii_collection, opentaxii_stixobject, as its SQLAlchemy models in
// opentaxii/persistence/sqldb/taxii2models.py define them) and its accounts
// table from the Postgres database at url. API roots keep their paths:
// OpenTAXII serves them at /taxii2/<api root id>/, where every Taxiway root
// answers too, so that id becomes the name.
// Objects are read collection by collection while they are imported, in
// OpenTAXII's own paging order (date_added, id).
func ReadOpenTAXII(ctx context.Context, url string, opts OpenTAXIIOptions) (*Source, error) {
	// SQLAlchemy URLs name a driver: postgresql+psycopg2://...
	if scheme, rest, ok := strings.Cut(url, "://"); ok {
		if base, _, hasDriver := strings.Cut(scheme, "+"); hasDriver {
			url = base + "://" + rest
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connecting to OpenTAXII's database: %w", err)
	}
	src, err := readOpenTAXII(ctx, conn, opts)
	if err != nil {
		_ = conn.Close(ctx)
		return nil, err
	}
	src.Close = func() { _ = conn.Close(context.Background()) }
	return src, nil
}

func readOpenTAXII(ctx context.Context, conn *pgx.Conn, opts OpenTAXIIOptions) (*Source, error) {
	var haveRoots, haveCols, haveObjs, haveJobs, haveAccounts bool
	err := conn.QueryRow(ctx, `SELECT to_regclass('opentaxii_api_root') IS NOT NULL, to_regclass('opentaxii_collection') IS NOT NULL,
		to_regclass('opentaxii_stixobject') IS NOT NULL, to_regclass('opentaxii_job') IS NOT NULL, to_regclass('accounts') IS NOT NULL`).
		Scan(&haveRoots, &haveCols, &haveObjs, &haveJobs, &haveAccounts)
	if err != nil {
		return nil, fmt.Errorf("looking for OpenTAXII's tables: %w", err)
	}
	if !haveRoots || !haveCols || !haveObjs {
		return nil, errors.New("this database has no OpenTAXII TAXII 2.1 tables (opentaxii_api_root, opentaxii_collection, opentaxii_stixobject)")
	}
	src := &Source{Name: "OpenTAXII"}
	if opts.MaxContentLength == 0 {
		opts.MaxContentLength = OpenTAXIIMaxContentLength
	}
	src.Notes = append(src.Notes, "API roots keep OpenTAXII's paths, /taxii2/<api root id>/, and answer at /<api root id>/ too, as every Taxiway root; "+
		"the discovery title, description and contact live in OpenTAXII's configuration file: set them with `taxiway sync`")

	rows, err := conn.Query(ctx, `SELECT id::text, "default", title, coalesce(description, ''), is_public
		FROM opentaxii_api_root ORDER BY title, id`)
	if err != nil {
		return nil, fmt.Errorf("reading OpenTAXII's API roots: %w", err)
	}
	disc := &taxiicore.Discovery{Public: opts.PublicDiscovery}
	roots := map[string]bool{}
	for rows.Next() {
		var r taxiicore.APIRoot
		var def bool
		r.MaxContentLength = opts.MaxContentLength
		if err := rows.Scan(&r.Name, &def, &r.Title, &r.Description, &r.Public); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading OpenTAXII's API roots: %w", err)
		}
		if strings.TrimSpace(r.Title) == "" {
			src.Problems = append(src.Problems, fmt.Sprintf("API root %s: empty title", r.Name))
			continue
		}
		if def {
			disc.Default = r.Name
		}
		roots[r.Name] = true
		src.Roots = append(src.Roots, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading OpenTAXII's API roots: %w", err)
	}
	src.Discovery = disc

	type otCollection struct {
		c                   taxiicore.Collection
		public, publicWrite bool
		objects             int
	}
	rows, err = conn.Query(ctx, `SELECT c.id::text, coalesce(c.api_root_id::text, ''), c.title, coalesce(c.description, ''),
		coalesce(c.alias, ''), c.is_public, c.is_public_write,
		(SELECT count(*) FROM opentaxii_stixobject o WHERE o.collection_id = c.id)
		FROM opentaxii_collection c ORDER BY c.api_root_id, c.id`)
	if err != nil {
		return nil, fmt.Errorf("reading OpenTAXII's collections: %w", err)
	}
	var cols []otCollection
	for rows.Next() {
		var oc otCollection
		if err := rows.Scan(&oc.c.ID, &oc.c.APIRoot, &oc.c.Title, &oc.c.Description, &oc.c.Alias, &oc.public, &oc.publicWrite, &oc.objects); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading OpenTAXII's collections: %w", err)
		}
		if !roots[oc.c.APIRoot] {
			src.Problems = append(src.Problems, fmt.Sprintf("collection %s (%q): its API root %q is missing or was not imported", oc.c.ID, oc.c.Title, oc.c.APIRoot))
			continue
		}
		cols = append(cols, oc)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading OpenTAXII's collections: %w", err)
	}
	grants := map[string][]taxiicore.Grant{}
	for _, oc := range cols {
		if oc.public || oc.publicWrite {
			grants[oc.c.ID] = append(grants[oc.c.ID], taxiicore.Grant{Principal: taxiicore.AnonymousPrincipal, Read: oc.public, Write: oc.publicWrite})
		}
	}

	if haveAccounts {
		ids := map[string]bool{}
		for _, oc := range cols {
			ids[oc.c.ID] = true
		}
		if err := readOpenTAXIIAccounts(ctx, conn, opts, src, ids, grants); err != nil {
			return nil, err
		}
	} else {
		src.Notes = append(src.Notes, "no accounts table: no accounts imported")
	}

	if haveJobs {
		src.ReadStatuses = func(ctx context.Context, progress func(int)) error {
			return readOpenTAXIIJobs(ctx, conn, src, progress)
		}
	}

	for _, oc := range cols {
		src.Collections = append(src.Collections, Collection{Objects: oc.objects, CollectionImport: taxiicore.CollectionImport{
			Collection: oc.c,
			Grants:     grants[oc.c.ID],
			Objects:    openTAXIIObjects(ctx, conn, oc.c.ID),
		}})
	}
	return src, nil
}

// readOpenTAXIIJobs turns OpenTAXII's finished jobs into statuses, so that
// a client that added objects just before the move still finds its status.
// A job names only its API root: its collection is the one collection of
// that root holding the objects its details name; a job for which that is
// not one collection, or that is still pending, is reported and left out.
// Jobs, their details and the collections of the objects they name come in
// one statement, one pass over each table (not one scan of the objects per
// job), in job order.
func readOpenTAXIIJobs(ctx context.Context, conn *pgx.Conn, src *Source, progress func(read int)) error {
	rows, err := conn.Query(ctx, `WITH named AS (
			SELECT DISTINCT o.id, o.collection_id, c.api_root_id FROM opentaxii_stixobject o
			JOIN opentaxii_collection c ON c.id = o.collection_id
			WHERE o.id IN (SELECT stix_id FROM opentaxii_job_detail))
		SELECT j.id::text, coalesce(j.api_root_id::text, ''), coalesce(j.status::text, ''), j.request_timestamp, coalesce(j.total_count, 0),
			d.id::text, coalesce(d.stix_id, ''), d.version, coalesce(d.message, ''), coalesce(d.status::text, ''), n.collection_id::text
		FROM opentaxii_job j
		LEFT JOIN opentaxii_job_detail d ON d.job_id = j.id
		LEFT JOIN named n ON n.id = d.stix_id AND n.api_root_id = j.api_root_id
		ORDER BY j.request_timestamp, j.id, d.stix_id, d.id`)
	if err != nil {
		return fmt.Errorf("reading OpenTAXII's jobs: %w", err)
	}
	defer rows.Close()
	var (
		cur       *taxiicore.ImportedStatus
		curOK     bool
		cols      map[string]bool
		seen      map[string]bool // detail ids, repeated once per collection of their object
		read      int
		skipped   int
		jobID     string
		root      string
		status    string
		requested pgtype.Timestamp
		total     int
		detailID  pgtype.Text
		d         taxiicore.ImportedStatusDetail
		version   pgtype.Timestamp
		dStatus   string
		col       pgtype.Text
	)
	flush := func() {
		if cur == nil {
			return
		}
		read++
		if progress != nil && read%1000 == 0 {
			progress(read)
		}
		if !curOK || len(cols) != 1 {
			skipped++
			return
		}
		for c := range cols {
			cur.CollectionID = c
		}
		src.Statuses = append(src.Statuses, *cur)
	}
	for rows.Next() {
		if err := rows.Scan(&jobID, &root, &status, &requested, &total, &detailID, &d.ID, &version, &d.Message, &dStatus, &col); err != nil {
			return fmt.Errorf("reading OpenTAXII's jobs: %w", err)
		}
		if cur == nil || cur.ID != jobID {
			flush()
			cur = &taxiicore.ImportedStatus{ID: jobID, APIRoot: root, TotalCount: total}
			curOK = status == "complete" && requested.Valid
			if requested.Valid {
				cur.RequestTimestamp = requested.Time
			}
			cols, seen = map[string]bool{}, map[string]bool{}
		}
		if !detailID.Valid {
			continue
		}
		if col.Valid {
			cols[col.String] = true
		}
		if seen[detailID.String] {
			continue
		}
		seen[detailID.String] = true
		d.Version = ""
		if version.Valid {
			d.Version = version.Time.UTC().Format("2006-01-02T15:04:05.000000Z")
		}
		switch dStatus {
		case "success":
			cur.Successes = append(cur.Successes, d)
		case "failure":
			cur.Failures = append(cur.Failures, d)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading OpenTAXII's jobs: %w", err)
	}
	flush()
	if progress != nil {
		progress(read)
	}
	if skipped > 0 {
		src.Notes = append(src.Notes, fmt.Sprintf("%d OpenTAXII jobs not imported: pending, or their objects are not in exactly one collection", skipped))
	}
	return nil
}

// readOpenTAXIIAccounts reads the accounts table: the username and Werkzeug
// hash of every version, and is_admin and the per-collection permissions
// ({"<collection id>": ["read", "write"]}) of recent ones. Permissions on
// TAXII 2.1 collections (ids) become grants to user:<name> in grants.
func readOpenTAXIIAccounts(ctx context.Context, conn *pgx.Conn, opts OpenTAXIIOptions, src *Source,
	ids map[string]bool, grants map[string][]taxiicore.Grant) error {
	rows, err := conn.Query(ctx, `SELECT column_name FROM information_schema.columns
		WHERE table_name = 'accounts' AND table_schema = current_schema()`)
	if err != nil {
		return fmt.Errorf("reading the columns of OpenTAXII's accounts: %w", err)
	}
	columns, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("reading the columns of OpenTAXII's accounts: %w", err)
	}
	isAdmin, permissions := "false", "NULL"
	if slices.Contains(columns, "is_admin") {
		isAdmin = "coalesce(is_admin, false)"
	}
	if slices.Contains(columns, "_permissions") {
		permissions = "_permissions::text"
	}
	rows, err = conn.Query(ctx, `SELECT coalesce(username, ''), coalesce(password_hash, ''), `+isAdmin+`, `+permissions+` FROM accounts ORDER BY id`)
	if err != nil {
		return fmt.Errorf("reading OpenTAXII's accounts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, hash string
		var admin bool
		var perms pgtype.Text
		if err := rows.Scan(&name, &hash, &admin, &perms); err != nil {
			return fmt.Errorf("reading OpenTAXII's accounts: %w", err)
		}
		if err := tokenservice.ValidateUsername(name); err != nil {
			src.Problems = append(src.Problems, fmt.Sprintf("account %q: %v", name, err))
			continue
		}
		if err := tokenservice.CheckPasswordHash(hash); err != nil {
			src.Problems = append(src.Problems, fmt.Sprintf("account %s: password hash: %v", name, err))
			continue
		}
		a := Account{Username: name, PasswordHash: hash}
		if admin {
			a.Groups = []string{opts.AdminGroup}
		}
		if perms.Valid && strings.TrimSpace(perms.String) != "" {
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(perms.String), &m); err != nil {
				src.Problems = append(src.Problems, fmt.Sprintf("account %s: permissions are not a JSON object: %v", name, err))
				continue
			}
			var taxii1 []string
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			bad := false
			for _, k := range keys {
				id := strings.ToLower(k)
				if !ids[id] {
					taxii1 = append(taxii1, k)
					continue
				}
				read, write, err := openTAXIIPermission(m[k])
				if err != nil {
					src.Problems = append(src.Problems, fmt.Sprintf("account %s: permission on %s: %v", name, k, err))
					bad = true
					continue
				}
				if read || write {
					grants[id] = append(grants[id], taxiicore.Grant{Principal: "user:" + name, Read: read, Write: write})
				}
			}
			if bad {
				continue
			}
			if len(taxii1) > 0 {
				src.Notes = append(src.Notes, fmt.Sprintf("account %s: permissions on %s are not for TAXII 2.1 collections (TAXII 1?); not imported",
					name, strings.Join(taxii1, ", ")))
			}
		}
		src.Accounts = append(src.Accounts, a)
	}
	return rows.Err()
}

// openTAXIIPermission reads a TAXII 2.1 permission: a list of "read" and
// "write" (OpenTAXII's TAXII2_PERMISSIONS), or, as older versions wrote
// and tested with `in`, one string "read", "write" or "modify" (read and
// write).
func openTAXIIPermission(raw json.RawMessage) (read, write bool, err error) {
	var vals []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		vals = []string{one}
	} else if err := json.Unmarshal(raw, &vals); err != nil {
		return false, false, fmt.Errorf("%s is not a list of \"read\" and \"write\"", raw)
	}
	for _, v := range vals {
		switch v {
		case "read":
			read = true
		case "write":
			write = true
		case "modify":
			read, write = true, true
		default:
			return false, false, fmt.Errorf("%q is not \"read\", \"write\" or \"modify\"", v)
		}
	}
	return read, write, nil
}

// openTAXIIObjects yields a collection's objects, rebuilt from the columns
// OpenTAXII splits off (id, type, spec_version) and serialized_data, in
// OpenTAXII's paging order.
func openTAXIIObjects(ctx context.Context, conn *pgx.Conn, collectionID string) iter.Seq2[taxiicore.ImportedObject, error] {
	return func(yield func(taxiicore.ImportedObject, error) bool) {
		rows, err := conn.Query(ctx, `SELECT pk::text, coalesce(id, ''), coalesce(type, ''), spec_version, date_added, serialized_data::text
			FROM opentaxii_stixobject WHERE collection_id = $1 ORDER BY date_added, id, version`, collectionID)
		if err != nil {
			yield(taxiicore.ImportedObject{}, fmt.Errorf("reading the objects of OpenTAXII collection %s: %w", collectionID, err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			var pk, id, typ string
			var spec, data pgtype.Text
			var added pgtype.Timestamp
			if err := rows.Scan(&pk, &id, &typ, &spec, &added, &data); err != nil {
				yield(taxiicore.ImportedObject{}, fmt.Errorf("reading the objects of OpenTAXII collection %s: %w", collectionID, err))
				return
			}
			o := taxiicore.ImportedObject{Source: "opentaxii_stixobject " + pk}
			o.Raw, o.Err = rebuildOpenTAXIIObject(id, typ, spec, data)
			if added.Valid {
				o.DateAdded = added.Time
			} else if o.Err == nil {
				o.Err = errors.New("date_added is NULL")
			}
			if !yield(o, nil) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(taxiicore.ImportedObject{}, fmt.Errorf("reading the objects of OpenTAXII collection %s: %w", collectionID, err))
		}
	}
}

// rebuildOpenTAXIIObject puts id, type and spec_version back into
// serialized_data, which OpenTAXII stores without them.
func rebuildOpenTAXIIObject(id, typ string, spec, data pgtype.Text) (json.RawMessage, error) {
	if !data.Valid {
		return json.RawMessage(`{}`), errors.New("serialized_data is NULL")
	}
	body := strings.TrimSpace(data.String)
	if !strings.HasPrefix(body, "{") || !strings.HasSuffix(body, "}") {
		return json.RawMessage(`{}`), errors.New("serialized_data is not a JSON object")
	}
	inner := strings.TrimSpace(body[1 : len(body)-1])
	var b strings.Builder
	b.Grow(len(body) + len(id) + len(typ) + 64)
	b.WriteByte('{')
	if inner != "" {
		b.WriteString(inner)
		b.WriteByte(',')
	}
	// The columns come last: in JSON objects with a repeated name the last
	// one counts, and the columns are what OpenTAXII served.
	idJSON, _ := json.Marshal(id)
	typJSON, _ := json.Marshal(typ)
	b.WriteString(`"id":`)
	b.Write(idJSON)
	b.WriteString(`,"type":`)
	b.Write(typJSON)
	if spec.Valid {
		specJSON, _ := json.Marshal(spec.String)
		b.WriteString(`,"spec_version":`)
		b.Write(specJSON)
	}
	b.WriteByte('}')
	return json.RawMessage(b.String()), nil
}
