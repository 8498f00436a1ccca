package tokenservice

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Grants for collections of fronted TAXII servers (see
// migrations/0004_fronted_policy.sql). The token service stores them and
// serves them to the gateways (policyfeed.go), whose taxii_policy enforces
// them; the backend itself knows nothing of them. The types below are both
// what the admin tools pass in and what the gateways read.

// PolicySnapshot is the whole fronted policy at one version. Unchanged
// says the reader's version is still current: Backends is then left out.
type PolicySnapshot struct {
	Version   int64            `json:"version"`
	Unchanged bool             `json:"unchanged,omitempty"`
	Backends  []FrontedBackend `json:"backends,omitempty"`
}

// FrontedBackend is the policy of one TAXII server behind the gateways.
type FrontedBackend struct {
	// Name is what taxii_policy's backend option selects.
	Name string `json:"name"`
	// PublicDiscovery lets callers without credentials read the discovery
	// resource; logged-in callers always may.
	PublicDiscovery bool          `json:"public_discovery,omitempty"`
	Roots           []FrontedRoot `json:"roots,omitempty"`
}

// FrontedRoot is an API root of a fronted backend.
type FrontedRoot struct {
	// Path is the API root's path as the backend sees it: /api1/.
	Path string `json:"path"`
	// Public lets callers without credentials read the API root's resource
	// and its collection list; logged-in callers always may.
	Public      bool                `json:"public,omitempty"`
	Collections []FrontedCollection `json:"collections,omitempty"`
}

// FrontedCollection is a collection of a fronted API root.
type FrontedCollection struct {
	// ID is the collection's id on the backend (a UUID, stored lower-case).
	ID string `json:"id"`
	// Alias is the backend's alias of the collection, if it has one.
	Alias  string         `json:"alias,omitempty"`
	Grants []FrontedGrant `json:"grants,omitempty"`
}

// FrontedGrant gives a principal (user:<name>, group:<name>, authenticated
// or anonymous) read and/or write access to a collection.
type FrontedGrant struct {
	To    string `json:"to"`
	Read  bool   `json:"read,omitempty"`
	Write bool   `json:"write,omitempty"`
}

// PolicyChannel is the Postgres notification channel of policy changes.
const PolicyChannel = "taxiway_policy"

var (
	backendNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	rootPathRE     = regexp.MustCompile(`^(/[A-Za-z0-9._~-]+)+/$`)
	aliasRE        = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)
	errNoSuchGrant = errors.New("no such grant")
)

// ValidateBackendName checks a fronted backend's name.
func ValidateBackendName(name string) error {
	if !backendNameRE.MatchString(name) {
		return fmt.Errorf("backend name %q must be 1 to 64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)", name)
	}
	return nil
}

// ValidateRootPath checks an API root path: /api1/ or /taxii/api1/, of
// unreserved characters, without dot segments. The gateway refuses every
// other spelling before it decides, so no other one could ever match.
func ValidateRootPath(p string) error {
	if !rootPathRE.MatchString(p) || strings.Contains(p, "/./") || strings.Contains(p, "/../") {
		return fmt.Errorf("API root path %q must look like /api1/: segments of A-Z a-z 0-9 . _ ~ -, no . or .., a slash at each end", p)
	}
	return nil
}

// normalizeCollectionID returns a collection id as stored: UUID text in
// lower case. Any UUID version: a fronted server picks its own.
func normalizeCollectionID(id string) (string, error) {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return "", fmt.Errorf("collection id %q is not a UUID", id)
	}
	return strings.ToLower(id), nil
}

func validateAlias(alias string) error {
	if alias == "" {
		return nil
	}
	if _, err := uuid.Parse(alias); err == nil || !aliasRE.MatchString(alias) {
		return fmt.Errorf("alias %q must be 1 to 128 of A-Z a-z 0-9 . _ ~ - and not a UUID", alias)
	}
	return nil
}

// ValidatePrincipal checks a grant's principal: user:<name>, group:<name>,
// authenticated or anonymous, as in the core's grants.
func ValidatePrincipal(p string) error {
	if p == "authenticated" || p == "anonymous" {
		return nil
	}
	kind, name, ok := strings.Cut(p, ":")
	if !ok || (kind != "user" && kind != "group") || strings.TrimSpace(name) == "" || strings.Contains(name, ",") {
		return fmt.Errorf("principal %q must be user:<name>, group:<name>, authenticated or anonymous", p)
	}
	return nil
}

// normalize checks every entry of backends and lower-cases collection ids,
// in place; duplicates are errors.
func normalizeBackends(backends []FrontedBackend) error {
	seenB := map[string]bool{}
	for bi := range backends {
		b := &backends[bi]
		if err := ValidateBackendName(b.Name); err != nil {
			return err
		}
		if seenB[b.Name] {
			return fmt.Errorf("backend %s listed twice", b.Name)
		}
		seenB[b.Name] = true
		seenR := map[string]bool{}
		for ri := range b.Roots {
			r := &b.Roots[ri]
			where := fmt.Sprintf("backend %s", b.Name)
			if err := ValidateRootPath(r.Path); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			if seenR[r.Path] {
				return fmt.Errorf("%s: API root %s listed twice", where, r.Path)
			}
			seenR[r.Path] = true
			seenC := map[string]bool{}
			for ci := range r.Collections {
				c := &r.Collections[ci]
				where := fmt.Sprintf("backend %s, API root %s", b.Name, r.Path)
				id, err := normalizeCollectionID(c.ID)
				if err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				c.ID = id
				if err := validateAlias(c.Alias); err != nil {
					return fmt.Errorf("%s: %w", where, err)
				}
				if seenC[id] || (c.Alias != "" && seenC["alias:"+strings.ToLower(c.Alias)]) {
					return fmt.Errorf("%s: collection %s (or its alias) listed twice", where, id)
				}
				seenC[id] = true
				if c.Alias != "" {
					seenC["alias:"+strings.ToLower(c.Alias)] = true
				}
				seenG := map[string]bool{}
				for _, g := range c.Grants {
					where := fmt.Sprintf("%s, collection %s", where, id)
					if err := ValidatePrincipal(g.To); err != nil {
						return fmt.Errorf("%s: %w", where, err)
					}
					if !g.Read && !g.Write {
						return fmt.Errorf("%s: the grant to %s gives neither read nor write", where, g.To)
					}
					if seenG[g.To] {
						return fmt.Errorf("%s: %s listed twice", where, g.To)
					}
					seenG[g.To] = true
				}
			}
		}
	}
	return nil
}

// ReadPolicy reads the whole fronted policy and its version in one
// snapshot.
func ReadPolicy(ctx context.Context, pool *pgxpool.Pool) (PolicySnapshot, error) {
	var snap PolicySnapshot
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		snap, err = readPolicy(ctx, tx)
		return err
	})
	if err != nil {
		return PolicySnapshot{}, fmt.Errorf("reading the fronted policy: %w", err)
	}
	return snap, nil
}

// readPolicy reads the policy within tx, ordered so that equal policies
// read equal.
func readPolicy(ctx context.Context, tx pgx.Tx) (PolicySnapshot, error) {
	var snap PolicySnapshot
	if err := tx.QueryRow(ctx, `SELECT version FROM token_fronted_policy`).Scan(&snap.Version); err != nil {
		return snap, err
	}
	rows, err := tx.Query(ctx, `SELECT b.name, b.public_discovery, r.path, r.public, c.id, c.alias, g.principal, g.can_read, g.can_write
		FROM token_fronted_backends b
		LEFT JOIN token_fronted_roots r ON r.backend = b.name
		LEFT JOIN token_fronted_collections c ON c.backend = b.name AND c.root_path = r.path
		LEFT JOIN token_fronted_grants g ON g.backend = b.name AND g.root_path = r.path AND g.collection_id = c.id
		ORDER BY b.name, r.path, c.id, g.principal`)
	if err != nil {
		return snap, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name                string
			publicDiscovery     bool
			path, id, alias, to *string
			public, read, write *bool
		)
		if err := rows.Scan(&name, &publicDiscovery, &path, &public, &id, &alias, &to, &read, &write); err != nil {
			return snap, err
		}
		if n := len(snap.Backends); n == 0 || snap.Backends[n-1].Name != name {
			snap.Backends = append(snap.Backends, FrontedBackend{Name: name, PublicDiscovery: publicDiscovery})
		}
		b := &snap.Backends[len(snap.Backends)-1]
		if path == nil {
			continue
		}
		if n := len(b.Roots); n == 0 || b.Roots[n-1].Path != *path {
			b.Roots = append(b.Roots, FrontedRoot{Path: *path, Public: *public})
		}
		r := &b.Roots[len(b.Roots)-1]
		if id == nil {
			continue
		}
		if n := len(r.Collections); n == 0 || r.Collections[n-1].ID != *id {
			c := FrontedCollection{ID: *id}
			if alias != nil {
				c.Alias = *alias
			}
			r.Collections = append(r.Collections, c)
		}
		c := &r.Collections[len(r.Collections)-1]
		if to != nil {
			c.Grants = append(c.Grants, FrontedGrant{To: *to, Read: *read, Write: *write})
		}
	}
	return snap, rows.Err()
}

// FrontedGrantSpec names one grant for SetFrontedGrant and
// RemoveFrontedGrant.
type FrontedGrantSpec struct {
	Backend    string
	Root       string
	Collection string
	// Alias, when set, becomes the collection's alias (SetFrontedGrant).
	Alias string
	Grant FrontedGrant
}

// SetFrontedGrant adds a grant or replaces the one the principal has,
// creating the backend, API root and collection entries it needs (a new
// backend and API root are not public).
func SetFrontedGrant(ctx context.Context, pool *pgxpool.Pool, s FrontedGrantSpec) error {
	b := []FrontedBackend{{Name: s.Backend, Roots: []FrontedRoot{{Path: s.Root,
		Collections: []FrontedCollection{{ID: s.Collection, Alias: s.Alias, Grants: []FrontedGrant{s.Grant}}}}}}}
	if err := normalizeBackends(b); err != nil {
		return err
	}
	c := b[0].Roots[0].Collections[0]
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO token_fronted_backends (name) VALUES ($1) ON CONFLICT DO NOTHING`, []any{s.Backend}},
			{`INSERT INTO token_fronted_roots (backend, path) VALUES ($1, $2) ON CONFLICT DO NOTHING`, []any{s.Backend, s.Root}},
			{`INSERT INTO token_fronted_collections (backend, root_path, id, alias) VALUES ($1, $2, $3, $4)
				ON CONFLICT (backend, root_path, id) DO UPDATE SET alias = coalesce(EXCLUDED.alias, token_fronted_collections.alias)`,
				[]any{s.Backend, s.Root, c.ID, nullableText(c.Alias)}},
			{`INSERT INTO token_fronted_grants (backend, root_path, collection_id, principal, can_read, can_write) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (backend, root_path, collection_id, principal) DO UPDATE SET can_read = EXCLUDED.can_read, can_write = EXCLUDED.can_write`,
				[]any{s.Backend, s.Root, c.ID, s.Grant.To, s.Grant.Read, s.Grant.Write}},
		} {
			if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("alias %q is another collection's in %s %s", c.Alias, s.Backend, s.Root)
	}
	if err != nil {
		return fmt.Errorf("granting %s on %s %s%s: %w", s.Grant.To, s.Backend, s.Root, c.ID, err)
	}
	return nil
}

// RemoveFrontedGrant removes the principal's grant (s.Grant.To) on a
// fronted collection.
func RemoveFrontedGrant(ctx context.Context, pool *pgxpool.Pool, s FrontedGrantSpec) error {
	id, err := normalizeCollectionID(s.Collection)
	if err != nil {
		return err
	}
	tag, err := pool.Exec(ctx, `DELETE FROM token_fronted_grants WHERE backend = $1 AND root_path = $2 AND collection_id = $3 AND principal = $4`,
		s.Backend, s.Root, id, s.Grant.To)
	if err != nil {
		return fmt.Errorf("removing the grant to %s: %w", s.Grant.To, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s has no grant on %s %s%s: %w", s.Grant.To, s.Backend, s.Root, id, errNoSuchGrant)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

func nullableText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
