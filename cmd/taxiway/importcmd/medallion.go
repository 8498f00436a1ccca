package importcmd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"net/url"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/taxiway/taxiway/taxiicore"
	"github.com/taxiway/taxiway/tokenservice"
)

// medallionInfo is an API root's information in medallion's data file.
type medallionInfo struct {
	Title            string `json:"title"`
	Description      string `json:"description"`
	MaxContentLength int64  `json:"max_content_length"`
}

// medallionCollection is one collection of the data file, its objects
// left in the file: objects names where each is, for reading it again when
// it is imported.
type medallionCollection struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Alias       string `json:"alias"`
	CanRead     bool   `json:"can_read"`
	CanWrite    bool   `json:"can_write"`
	objects     []medallionObject
	manifest    []medallionManifest
}

// medallionObject is where an object is in the data file, with what
// matching it to its manifest record needs.
type medallionObject struct {
	off         int64
	n           int
	id, version string
	dateAdded   time.Time
	found       bool
}

// medallionManifest is one manifest record: one version per record in
// medallion 2.x and later; earlier files list several in versions.
type medallionManifest struct {
	ID        string   `json:"id"`
	DateAdded string   `json:"date_added"`
	Version   string   `json:"version"`
	Versions  []string `json:"versions"`
}

// ReadMedallion reads medallion's memory-backend data file and, when
// configPath is not empty, the users of its configuration file. medallion
// gives every logged-in user the can_read/can_write of a collection, so
// those become grants to authenticated. Plain-text passwords are hashed
// with argon2id here; Werkzeug hashes are kept as they are.
//
// The file is read as a stream: objects stay in it, and only where each
// one is, its id and version are kept (about 150 bytes an object, whatever
// its size); each is read again from the file when it is imported, so
// memory does not grow with the file's size. The file stays open until
// the Source is closed.
func ReadMedallion(dataPath, configPath string) (*Source, error) {
	f, err := os.Open(dataPath)
	if err != nil {
		return nil, fmt.Errorf("reading medallion's data file: %w", err)
	}
	src := &Source{Name: "medallion", Close: func() { _ = f.Close() }}
	if err := readMedallionData(f, dataPath, src); err != nil {
		_ = f.Close()
		return nil, err
	}
	if configPath != "" {
		if err := readMedallionUsers(configPath, src); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return src, nil
}

func readMedallionData(f *os.File, dataPath string, src *Source) error {
	j := &jsonStream{dec: json.NewDecoder(bufio.NewReaderSize(f, 1<<16)), what: "medallion's data file " + dataPath}
	var disc json.RawMessage
	err := j.members(func(name string) error {
		if name == "/discovery" {
			if err := j.dec.Decode(&disc); err != nil {
				return j.fail(err)
			}
			return nil
		}
		return readMedallionRoot(j, f, name, src)
	})
	if err != nil {
		return err
	}
	if disc != nil {
		var d struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			Contact     string `json:"contact"`
			Default     string `json:"default"`
		}
		if err := json.Unmarshal(disc, &d); err != nil {
			src.Problems = append(src.Problems, fmt.Sprintf("/discovery: %v", err))
		} else {
			src.Discovery = &taxiicore.Discovery{Title: d.Title, Description: d.Description, Contact: d.Contact,
				Default: rootNameOf(d.Default)}
			if src.Discovery.Default != "" && !slices.ContainsFunc(src.Roots, func(r taxiicore.APIRoot) bool { return r.Name == src.Discovery.Default }) {
				src.Notes = append(src.Notes, fmt.Sprintf("discovery: default %q is not an API root of the file; left out", d.Default))
				src.Discovery.Default = ""
			}
		}
	}
	slices.SortFunc(src.Roots, func(a, b taxiicore.APIRoot) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

// readMedallionRoot reads one API root: its information, statuses and
// collections, the objects of which stay in the file (f).
func readMedallionRoot(j *jsonStream, f *os.File, name string, src *Source) error {
	if tok, err := j.dec.Token(); err != nil {
		return j.fail(err)
	} else if d, ok := tok.(json.Delim); !ok || d != '{' {
		// Not an API root: say so, and go on past it.
		src.Problems = append(src.Problems, fmt.Sprintf("API root %q: not a medallion API root", name))
		if ok && (d == '[') {
			return j.skipRest()
		}
		return nil
	}
	var info *medallionInfo
	var statuses []json.RawMessage
	var cols []medallionCollection
	for j.dec.More() {
		tok, err := j.dec.Token()
		if err != nil {
			return j.fail(err)
		}
		switch tok.(string) {
		case "information":
			if err := j.dec.Decode(&info); err != nil {
				return j.fail(err)
			}
		case "status":
			if err := j.dec.Decode(&statuses); err != nil {
				return j.fail(err)
			}
		case "collections":
			err = j.elements(func(i int) error {
				c, err := readMedallionCollection(j)
				cols = append(cols, c)
				return err
			})
			if err != nil {
				return err
			}
		default:
			if err := j.skip(); err != nil {
				return err
			}
		}
	}
	if err := j.close(); err != nil {
		return err
	}
	if info == nil {
		src.Problems = append(src.Problems, fmt.Sprintf("API root %q: no information", name))
		return nil
	}
	src.Roots = append(src.Roots, taxiicore.APIRoot{Name: name, Title: info.Title,
		Description: info.Description, MaxContentLength: info.MaxContentLength})
	medallionStatuses(name, statuses, cols, src)
	for i, c := range cols {
		where := fmt.Sprintf("%s/collections[%d]", name, i)
		col, notes, problems := medallionCollectionImport(f, name, where, c)
		src.Notes = append(src.Notes, notes...)
		src.Problems = append(src.Problems, problems...)
		if col != nil {
			src.Collections = append(src.Collections, *col)
		}
	}
	return nil
}

// readMedallionCollection reads one collection, noting where each object
// is instead of keeping it.
func readMedallionCollection(j *jsonStream) (medallionCollection, error) {
	var c medallionCollection
	err := j.members(func(name string) error {
		var dst any
		switch name {
		case "id":
			dst = &c.ID
		case "title":
			dst = &c.Title
		case "description":
			dst = &c.Description
		case "alias":
			dst = &c.Alias
		case "can_read":
			dst = &c.CanRead
		case "can_write":
			dst = &c.CanWrite
		case "manifest":
			// Record by record, so that the decoder never buffers it whole.
			return j.elements(func(int) error {
				var m medallionManifest
				if err := j.dec.Decode(&m); err != nil {
					return j.fail(fmt.Errorf("collection %q: manifest: %w", c.ID, err))
				}
				c.manifest = append(c.manifest, m)
				return nil
			})
		case "objects":
			return j.elements(func(int) error {
				var raw json.RawMessage
				if err := j.dec.Decode(&raw); err != nil {
					return j.fail(err)
				}
				// The decoder hands out the value's exact bytes and stops
				// right after them.
				end := j.dec.InputOffset()
				o := medallionObject{off: end - int64(len(raw)), n: len(raw)}
				var head struct {
					ID       string `json:"id"`
					Created  string `json:"created"`
					Modified string `json:"modified"`
				}
				_ = json.Unmarshal(raw, &head) // a bad object is reported by the import
				o.id, o.version = head.ID, head.Modified
				if o.version == "" {
					o.version = head.Created
				}
				c.objects = append(c.objects, o)
				return nil
			})
		default:
			return j.skip()
		}
		if err := j.dec.Decode(dst); err != nil {
			return j.fail(fmt.Errorf("collection %q: %s: %w", c.ID, name, err))
		}
		return nil
	})
	return c, err
}

// medallionStatus is a status as medallion keeps it; its details are
// objects in medallion 2 and later, plain ids before.
type medallionStatus struct {
	ID               string            `json:"id"`
	Status           string            `json:"status"`
	RequestTimestamp string            `json:"request_timestamp"`
	TotalCount       int               `json:"total_count"`
	Successes        []json.RawMessage `json:"successes"`
	Failures         []json.RawMessage `json:"failures"`
}

// medallionStatuses imports the root's complete statuses whose objects are
// all in one of its collections (medallion's statuses name none).
func medallionStatuses(root string, statuses []json.RawMessage, cols []medallionCollection, src *Source) {
	if len(statuses) == 0 {
		return
	}
	where := map[string][]string{} // object id: collections of root holding it
	for _, c := range cols {
		for _, o := range c.objects {
			if !slices.Contains(where[o.id], c.ID) {
				where[o.id] = append(where[o.id], c.ID)
			}
		}
	}
	skipped := 0
	for i, raw := range statuses {
		var ms medallionStatus
		if err := json.Unmarshal(raw, &ms); err != nil {
			src.Problems = append(src.Problems, fmt.Sprintf("%s/status[%d]: %v", root, i, err))
			continue
		}
		requested, err := time.Parse(time.RFC3339Nano, ms.RequestTimestamp)
		if err != nil || ms.Status != "complete" {
			skipped++
			continue
		}
		st := taxiicore.ImportedStatus{ID: ms.ID, APIRoot: root, RequestTimestamp: requested, TotalCount: ms.TotalCount}
		cols := map[string]bool{}
		details := func(raws []json.RawMessage) []taxiicore.ImportedStatusDetail {
			var out []taxiicore.ImportedStatusDetail
			for _, raw := range raws {
				var d struct{ ID, Version, Message string }
				if json.Unmarshal(raw, &d) != nil {
					_ = json.Unmarshal(raw, &d.ID)
				}
				for _, c := range where[d.ID] {
					cols[c] = true
				}
				out = append(out, taxiicore.ImportedStatusDetail{ID: d.ID, Version: d.Version, Message: d.Message})
			}
			return out
		}
		st.Successes, st.Failures = details(ms.Successes), details(ms.Failures)
		if len(cols) != 1 {
			skipped++
			continue
		}
		for c := range cols {
			st.CollectionID = c
		}
		src.Statuses = append(src.Statuses, st)
	}
	if skipped > 0 {
		src.Notes = append(src.Notes, fmt.Sprintf("API root %s: %d statuses not imported: pending, or their objects are not in exactly one collection", root, skipped))
	}
}

// rootNameOf turns medallion's default API root URL into its name.
func rootNameOf(s string) string {
	if s == "" {
		return ""
	}
	if u, err := url.Parse(s); err == nil {
		s = u.Path
	}
	return path.Base(strings.TrimSuffix(s, "/"))
}

// medallionCollectionImport matches each object to its manifest record for
// date_added and orders the objects by it; they are read from f when
// imported.
func medallionCollectionImport(f *os.File, root, where string, c medallionCollection) (col *Collection, notes, problems []string) {
	type entry struct {
		added time.Time
		used  bool
	}
	byVersion := map[string][]*entry{} // id|version
	byID := map[string][]*entry{}
	for j, m := range c.manifest {
		added, err := time.Parse(time.RFC3339Nano, m.DateAdded)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s/manifest[%d] (%s): date_added %q: %v", where, j, m.ID, m.DateAdded, err))
			continue
		}
		versions := m.Versions
		if m.Version != "" {
			versions = append(versions, m.Version)
		}
		for _, v := range versions {
			e := &entry{added: added}
			byVersion[m.ID+"|"+normalVersion(v)] = append(byVersion[m.ID+"|"+normalVersion(v)], e)
			byID[m.ID] = append(byID[m.ID], e)
		}
	}
	order := make([]int, len(c.objects))
	for i := range c.objects {
		o := &c.objects[i]
		order[i] = i
		var match *entry
		for _, e := range byVersion[o.id+"|"+normalVersion(o.version)] {
			if !e.used {
				match = e
				break
			}
		}
		if match == nil && o.version == "" {
			// medallion versions an unversioned object by its date_added.
			for _, e := range byID[o.id] {
				if !e.used {
					match = e
					break
				}
			}
		}
		if match != nil {
			match.used = true
			// Only the place and date_added are needed from here on.
			o.dateAdded, o.found, o.id, o.version = match.added, true, "", ""
		}
	}
	unused := 0
	for _, es := range byID {
		for _, e := range es {
			if !e.used {
				unused++
			}
		}
	}
	if unused > 0 {
		notes = append(notes, fmt.Sprintf("%s (%s): %d manifest records name no object of the collection; left out", where, c.ID, unused))
	}
	// Stable: objects added at the same instant keep the file's order.
	slices.SortStableFunc(order, func(a, b int) int { return c.objects[a].dateAdded.Compare(c.objects[b].dateAdded) })

	var grants []taxiicore.Grant
	if c.CanRead || c.CanWrite {
		grants = append(grants, taxiicore.Grant{Principal: "authenticated", Read: c.CanRead, Write: c.CanWrite})
	} else {
		notes = append(notes, fmt.Sprintf("%s (%s): medallion lets no user read or write it; only the admin group may", where, c.ID))
	}
	return &Collection{Objects: len(order), CollectionImport: taxiicore.CollectionImport{
		Collection: taxiicore.Collection{ID: c.ID, APIRoot: root, Title: c.Title, Description: c.Description, Alias: c.Alias},
		Grants:     grants,
		Objects:    medallionObjects(f, where, c.objects, order),
	}}, notes, problems
}

// medallionObjects yields the objects in order, each read again from f.
func medallionObjects(f *os.File, where string, objs []medallionObject, order []int) iter.Seq2[taxiicore.ImportedObject, error] {
	return func(yield func(taxiicore.ImportedObject, error) bool) {
		for _, i := range order {
			o := objs[i]
			io := taxiicore.ImportedObject{Source: fmt.Sprintf("%s/objects[%d]", where, i), DateAdded: o.dateAdded}
			raw := make([]byte, o.n)
			if _, err := f.ReadAt(raw, o.off); err != nil {
				yield(io, fmt.Errorf("reading %s from medallion's data file: %w", io.Source, err))
				return
			}
			io.Raw = raw
			if !o.found {
				io.Err = fmt.Errorf("no manifest record for this id and version %q, so its date_added is unknown", o.version)
			}
			if !yield(io, nil) {
				return
			}
		}
	}
}

// normalVersion makes equal instants written differently compare equal.
func normalVersion(v string) string {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// readMedallionUsers reads the users map ("users", or "auth"."users" in
// later versions) of a medallion configuration file.
func readMedallionUsers(configPath string, src *Source) error {
	raw, err := os.ReadFile(configPath)
	if err != nil {
		return fmt.Errorf("reading medallion's configuration: %w", err)
	}
	var cfg struct {
		Users map[string]string `json:"users"`
		Auth  struct {
			Users map[string]string `json:"users"`
		} `json:"auth"`
		APIKeys map[string]string `json:"api_keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("parsing medallion's configuration %s: %w", configPath, err)
	}
	users := cfg.Users
	if len(users) == 0 {
		users = cfg.Auth.Users
	}
	if len(users) == 0 {
		src.Notes = append(src.Notes, "the configuration has no users")
	}
	if len(cfg.APIKeys) > 0 {
		src.Notes = append(src.Notes, fmt.Sprintf("%d API keys not imported: Taxiway's clients log in with a password or a token", len(cfg.APIKeys)))
	}
	names := make([]string, 0, len(users))
	for n := range users {
		names = append(names, n)
	}
	sort.Strings(names)
	params := tokenservice.DefaultArgon2Params()
	for _, name := range names {
		secret := users[name]
		if err := tokenservice.ValidateUsername(name); err != nil {
			src.Problems = append(src.Problems, fmt.Sprintf("user %q: %v", name, err))
			continue
		}
		a := Account{Username: name}
		if (strings.HasPrefix(secret, "pbkdf2:") || strings.HasPrefix(secret, "scrypt:")) && tokenservice.CheckPasswordHash(secret) == nil {
			a.PasswordHash = secret // medallion's generate_user_password output
		} else {
			if secret == "" {
				src.Problems = append(src.Problems, fmt.Sprintf("user %q: empty password", name))
				continue
			}
			h, err := tokenservice.HashPassword(secret, params)
			if err != nil {
				return fmt.Errorf("hashing the password of %s: %w", name, err)
			}
			a.PasswordHash, a.Hashed = h, true
		}
		src.Accounts = append(src.Accounts, a)
	}
	return nil
}
