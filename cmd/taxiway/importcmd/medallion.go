package importcmd

import (
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

// medallionRoot is one API root of medallion's memory-backend data file.
type medallionRoot struct {
	Information *struct {
		Title            string `json:"title"`
		Description      string `json:"description"`
		MaxContentLength int64  `json:"max_content_length"`
	} `json:"information"`
	Status      []json.RawMessage     `json:"status"`
	Collections []medallionCollection `json:"collections"`
}

type medallionCollection struct {
	ID          string              `json:"id"`
	Title       string              `json:"title"`
	Description string              `json:"description"`
	Alias       string              `json:"alias"`
	CanRead     bool                `json:"can_read"`
	CanWrite    bool                `json:"can_write"`
	Objects     []json.RawMessage   `json:"objects"`
	Manifest    []medallionManifest `json:"manifest"`
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
func ReadMedallion(dataPath, configPath string) (*Source, error) {
	raw, err := os.ReadFile(dataPath)
	if err != nil {
		return nil, fmt.Errorf("reading medallion's data file: %w", err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("parsing medallion's data file %s: %w", dataPath, err)
	}
	src := &Source{Name: "medallion", Close: func() {}}
	names := make([]string, 0, len(top))
	for k := range top {
		if k != "/discovery" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		var r medallionRoot
		if err := json.Unmarshal(top[name], &r); err != nil {
			src.Problems = append(src.Problems, fmt.Sprintf("API root %q: not a medallion API root: %v", name, err))
			continue
		}
		if r.Information == nil {
			src.Problems = append(src.Problems, fmt.Sprintf("API root %q: no information", name))
			continue
		}
		src.Roots = append(src.Roots, taxiicore.APIRoot{Name: name, Title: r.Information.Title,
			Description: r.Information.Description, MaxContentLength: r.Information.MaxContentLength})
		medallionStatuses(name, r, src)
		for i, c := range r.Collections {
			where := fmt.Sprintf("%s/collections[%d]", name, i)
			col, notes, problems := medallionCollectionImport(name, where, c)
			src.Notes = append(src.Notes, notes...)
			src.Problems = append(src.Problems, problems...)
			if col != nil {
				src.Collections = append(src.Collections, *col)
			}
		}
	}
	if d, ok := top["/discovery"]; ok {
		var disc struct {
			Title       string `json:"title"`
			Description string `json:"description"`
			Contact     string `json:"contact"`
			Default     string `json:"default"`
		}
		if err := json.Unmarshal(d, &disc); err != nil {
			src.Problems = append(src.Problems, fmt.Sprintf("/discovery: %v", err))
		} else {
			src.Discovery = &taxiicore.Discovery{Title: disc.Title, Description: disc.Description, Contact: disc.Contact,
				Default: rootNameOf(disc.Default)}
			if src.Discovery.Default != "" && !slices.ContainsFunc(src.Roots, func(r taxiicore.APIRoot) bool { return r.Name == src.Discovery.Default }) {
				src.Notes = append(src.Notes, fmt.Sprintf("discovery: default %q is not an API root of the file; left out", disc.Default))
				src.Discovery.Default = ""
			}
		}
	}
	if configPath != "" {
		if err := readMedallionUsers(configPath, src); err != nil {
			return nil, err
		}
	}
	return src, nil
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
func medallionStatuses(root string, r medallionRoot, src *Source) {
	where := map[string][]string{} // object id: collections of root holding it
	for _, c := range r.Collections {
		for _, raw := range c.Objects {
			var head struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(raw, &head) == nil && !slices.Contains(where[head.ID], c.ID) {
				where[head.ID] = append(where[head.ID], c.ID)
			}
		}
	}
	skipped := 0
	for i, raw := range r.Status {
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
// date_added and orders the objects by it.
func medallionCollectionImport(root, where string, c medallionCollection) (col *Collection, notes, problems []string) {
	type entry struct {
		added time.Time
		used  bool
	}
	byVersion := map[string][]*entry{} // id|version
	byID := map[string][]*entry{}
	for j, m := range c.Manifest {
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
	objs := make([]taxiicore.ImportedObject, 0, len(c.Objects))
	for j, raw := range c.Objects {
		o := taxiicore.ImportedObject{Raw: raw, Source: fmt.Sprintf("%s/objects[%d]", where, j)}
		var head struct {
			ID       string `json:"id"`
			Created  string `json:"created"`
			Modified string `json:"modified"`
		}
		_ = json.Unmarshal(raw, &head) // a bad object is reported by the import
		version := head.Modified
		if version == "" {
			version = head.Created
		}
		var match *entry
		for _, e := range byVersion[head.ID+"|"+normalVersion(version)] {
			if !e.used {
				match = e
				break
			}
		}
		if match == nil && version == "" {
			// medallion versions an unversioned object by its date_added.
			for _, e := range byID[head.ID] {
				if !e.used {
					match = e
					break
				}
			}
		}
		if match == nil {
			o.Err = fmt.Errorf("no manifest record for this id and version %q, so its date_added is unknown", version)
		} else {
			match.used = true
			o.DateAdded = match.added
		}
		objs = append(objs, o)
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
	slices.SortStableFunc(objs, func(a, b taxiicore.ImportedObject) int { return a.DateAdded.Compare(b.DateAdded) })

	var grants []taxiicore.Grant
	if c.CanRead || c.CanWrite {
		grants = append(grants, taxiicore.Grant{Principal: "authenticated", Read: c.CanRead, Write: c.CanWrite})
	} else {
		notes = append(notes, fmt.Sprintf("%s (%s): medallion lets no user read or write it; only the admin group may", where, c.ID))
	}
	return &Collection{Objects: len(objs), CollectionImport: taxiicore.CollectionImport{
		Collection: taxiicore.Collection{ID: c.ID, APIRoot: root, Title: c.Title, Description: c.Description, Alias: c.Alias},
		Grants:     grants,
		Objects:    sliceObjects(objs),
	}}, notes, problems
}

// normalVersion makes equal instants written differently compare equal.
func normalVersion(v string) string {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC().Format(time.RFC3339Nano)
	}
	return v
}

func sliceObjects(objs []taxiicore.ImportedObject) iter.Seq2[taxiicore.ImportedObject, error] {
	return func(yield func(taxiicore.ImportedObject, error) bool) {
		for _, o := range objs {
			if !yield(o, nil) {
				return
			}
		}
	}
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
