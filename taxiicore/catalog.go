package taxiicore

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

// querier is what the catalog needs from a pool or a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// DefaultMaxContentLength is an API root's request body limit when none is
// given: 10 MiB.
const DefaultMaxContentLength = 10 << 20

// APIRoot is an API root as administered: Name is its path segment.
type APIRoot struct {
	Name             string
	Title            string
	Description      string
	MaxContentLength int64
	// Public lets anonymous callers read the API root's resource and its
	// collection list (which shows only collections granted to anonymous).
	Public bool
}

// Collection is a collection as administered. ID is a UUIDv4, except for
// collections imported with their ids from another server (ImportCollection).
type Collection struct {
	ID          string
	APIRoot     string
	Title       string
	Description string
	Alias       string
}

// Grant gives Principal ("user:<name>", "group:<name>", "authenticated" or
// "anonymous": callers without credentials) read and/or write access to a
// collection.
type Grant struct {
	CollectionID string
	Principal    string
	Read         bool
	Write        bool
}

var rootNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$`)

func (r *APIRoot) validate() error {
	if !rootNameRE.MatchString(r.Name) || r.Name == "taxii2" {
		return fmt.Errorf("API root name %q must be 1 to 64 of A-Z a-z 0-9 . _ ~ - (starting with a letter or digit), and not taxii2", r.Name)
	}
	if strings.TrimSpace(r.Title) == "" {
		return fmt.Errorf("API root %s needs a title", r.Name)
	}
	if r.MaxContentLength == 0 {
		r.MaxContentLength = DefaultMaxContentLength
	}
	if r.MaxContentLength < 1 || r.MaxContentLength > 1<<53-1 {
		return fmt.Errorf("API root %s: max_content_length must be positive", r.Name)
	}
	return nil
}

// parseNewCollectionID accepts only lower- or upper-case UUIDv4 text
// (GEN-06) and returns its canonical form: the ids of new collections.
func parseNewCollectionID(s string) (uuid.UUID, error) {
	u, err := parseCollectionID(s)
	if err != nil || u.Version() != 4 || u.Variant() != uuid.RFC4122 {
		return uuid.UUID{}, fmt.Errorf("collection id %q is not a UUIDv4", s)
	}
	return u, nil
}

// parseCollectionID accepts any UUID in its 36-character text form: the ids
// of existing collections, which may be imported ones of another version
// (OpenTAXII and medallion ids such as 365fed99-08fa-fdcd-a1b3-fb247eb41d01).
func parseCollectionID(s string) (uuid.UUID, error) {
	u, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return uuid.UUID{}, fmt.Errorf("collection id %q is not a UUID", s)
	}
	return u, nil
}

func (c *Collection) validate() error {
	if c.ID == "" {
		c.ID = uuid.NewString()
	}
	u, err := parseNewCollectionID(c.ID)
	if err != nil {
		return err
	}
	c.ID = u.String()
	return c.validateFields()
}

// validateFields checks what every collection needs besides its id.
func (c *Collection) validateFields() error {
	if strings.TrimSpace(c.Title) == "" {
		return fmt.Errorf("collection %s needs a title", c.ID)
	}
	if c.Alias != "" {
		if _, err := uuid.Parse(c.Alias); err == nil || strings.ContainsAny(c.Alias, "/?#% ") {
			return fmt.Errorf("collection %s: alias %q must be a path segment that is not a UUID", c.ID, c.Alias)
		}
	}
	return nil
}

func validatePrincipal(p string) error {
	if p == "authenticated" || p == AnonymousPrincipal {
		return nil
	}
	kind, name, ok := strings.Cut(p, ":")
	if !ok || (kind != "user" && kind != "group") || strings.TrimSpace(name) == "" || strings.Contains(name, ",") {
		return fmt.Errorf("principal %q must be user:<name>, group:<name>, authenticated or anonymous", p)
	}
	return nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// AddAPIRoot creates an API root.
func AddAPIRoot(ctx context.Context, pool *pgxpool.Pool, r APIRoot) error {
	if err := r.validate(); err != nil {
		return err
	}
	_, err := pool.Exec(ctx, `INSERT INTO taxii_api_roots (name, title, description, max_content_length, public) VALUES ($1, $2, $3, $4, $5)`,
		r.Name, r.Title, r.Description, r.MaxContentLength, r.Public)
	if isUniqueViolation(err) {
		return fmt.Errorf("API root %s already exists", r.Name)
	}
	if err != nil {
		return fmt.Errorf("adding API root %s: %w", r.Name, err)
	}
	return nil
}

// ListAPIRoots lists API roots by name.
func ListAPIRoots(ctx context.Context, pool *pgxpool.Pool) ([]APIRoot, error) {
	rows, err := pool.Query(ctx, `SELECT name, title, description, max_content_length, public FROM taxii_api_roots ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing API roots: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (APIRoot, error) {
		var r APIRoot
		err := row.Scan(&r.Name, &r.Title, &r.Description, &r.MaxContentLength, &r.Public)
		return r, err
	})
}

// RemoveAPIRoot deletes an API root. It refuses while the root still holds
// collections, so that no objects are lost by accident.
func RemoveAPIRoot(ctx context.Context, pool *pgxpool.Pool, name string) error {
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM taxii_collections WHERE api_root = $1`, name).Scan(&n); err != nil {
		return fmt.Errorf("counting collections of %s: %w", name, err)
	}
	if n > 0 {
		return fmt.Errorf("API root %s still has %d collection(s): remove them first", name, n)
	}
	tag, err := pool.Exec(ctx, `DELETE FROM taxii_api_roots WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("removing API root %s: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("no API root named %s", name)
	}
	return nil
}

// AddCollection creates a collection, generating its id when c.ID is empty,
// and returns it as stored.
func AddCollection(ctx context.Context, pool *pgxpool.Pool, c Collection) (Collection, error) {
	if err := c.validate(); err != nil {
		return Collection{}, err
	}
	_, err := pool.Exec(ctx, `INSERT INTO taxii_collections (id, api_root, title, description, alias) VALUES ($1, $2, $3, $4, $5)`,
		c.ID, c.APIRoot, c.Title, c.Description, nullable(c.Alias))
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "23503":
		return Collection{}, fmt.Errorf("no API root named %s", c.APIRoot)
	case isUniqueViolation(err):
		return Collection{}, fmt.Errorf("collection %s, or alias %q in API root %s, already exists", c.ID, c.Alias, c.APIRoot)
	case err != nil:
		return Collection{}, fmt.Errorf("adding collection: %w", err)
	}
	return c, nil
}

// ListCollections lists the collections of root (every root when empty) by id.
func ListCollections(ctx context.Context, pool *pgxpool.Pool, root string) ([]Collection, error) {
	rows, err := pool.Query(ctx, `SELECT id::text, api_root, title, description, coalesce(alias, '') FROM taxii_collections
		WHERE $1 = '' OR api_root = $1 ORDER BY api_root, id`, root)
	if err != nil {
		return nil, fmt.Errorf("listing collections: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Collection, error) {
		var c Collection
		err := row.Scan(&c.ID, &c.APIRoot, &c.Title, &c.Description, &c.Alias)
		return c, err
	})
}

// RemoveCollection deletes a collection with its objects, statuses and grants.
func RemoveCollection(ctx context.Context, pool *pgxpool.Pool, id string) error {
	u, err := parseCollectionID(id)
	if err != nil {
		return err
	}
	tag, err := pool.Exec(ctx, `DELETE FROM taxii_collections WHERE id = $1`, u)
	if err != nil {
		return fmt.Errorf("removing collection %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("no collection %s", id)
	}
	return nil
}

// SetGrant adds a grant or replaces the one the principal has.
func SetGrant(ctx context.Context, pool *pgxpool.Pool, g Grant) error {
	u, err := parseCollectionID(g.CollectionID)
	if err != nil {
		return err
	}
	if err := validatePrincipal(g.Principal); err != nil {
		return err
	}
	if !g.Read && !g.Write {
		return errors.New("a grant needs read, write or both (remove it instead)")
	}
	_, err = pool.Exec(ctx, `INSERT INTO taxii_grants (collection_id, principal, can_read, can_write) VALUES ($1, $2, $3, $4)
		ON CONFLICT (collection_id, principal) DO UPDATE SET can_read = EXCLUDED.can_read, can_write = EXCLUDED.can_write`,
		u, g.Principal, g.Read, g.Write)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return fmt.Errorf("no collection %s", g.CollectionID)
	}
	if err != nil {
		return fmt.Errorf("granting %s on %s: %w", g.Principal, g.CollectionID, err)
	}
	return nil
}

// RemoveGrant removes principal's grant on a collection.
func RemoveGrant(ctx context.Context, pool *pgxpool.Pool, collectionID, principal string) error {
	u, err := parseCollectionID(collectionID)
	if err != nil {
		return err
	}
	tag, err := pool.Exec(ctx, `DELETE FROM taxii_grants WHERE collection_id = $1 AND principal = $2`, u, principal)
	if err != nil {
		return fmt.Errorf("removing grant: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s has no grant on %s", principal, collectionID)
	}
	return nil
}

// ListGrants lists the grants on a collection (every collection when empty).
func ListGrants(ctx context.Context, pool *pgxpool.Pool, collectionID string) ([]Grant, error) {
	rows, err := pool.Query(ctx, `SELECT collection_id::text, principal, can_read, can_write FROM taxii_grants
		WHERE $1 = '' OR collection_id::text = $1 ORDER BY collection_id, principal`, strings.ToLower(collectionID))
	if err != nil {
		return nil, fmt.Errorf("listing grants: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Grant, error) {
		var g Grant
		err := row.Scan(&g.CollectionID, &g.Principal, &g.Read, &g.Write)
		return g, err
	})
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
