package taxiicore

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// collectionAccess is a collection as one caller sees it.
type collectionAccess struct {
	ID               uuid.UUID
	Root             string
	Title            string
	Description      string
	Alias            *string
	MaxContentLength int64
	MaxObjectSize    int64 // the largest object it ever held, in bytes
	CanRead          bool
	CanWrite         bool
}

// mediaTypes are what collections store: STIX 2.1, and 2.0 objects (those
// with created/modified but no spec_version, AMBIG-28).
var mediaTypes = []string{"application/stix+json;version=2.1", "application/stix+json;version=2.0"}

type collectionResource struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Alias       string   `json:"alias,omitempty"`
	CanRead     bool     `json:"can_read"`
	CanWrite    bool     `json:"can_write"`
	MediaTypes  []string `json:"media_types"`
}

func (c *collectionAccess) resource() collectionResource {
	r := collectionResource{ID: c.ID.String(), Title: c.Title, Description: c.Description,
		CanRead: c.CanRead, CanWrite: c.CanWrite, MediaTypes: mediaTypes}
	if c.Alias != nil {
		r.Alias = *c.Alias
	}
	return r
}

const collectionAccessSQL = `SELECT c.id, c.api_root, c.title, c.description, c.alias, r.max_content_length, c.max_object_size,
	coalesce(bool_or(g.can_read), false), coalesce(bool_or(g.can_write), false)
FROM taxii_collections c
JOIN taxii_api_roots r ON r.name = c.api_root
LEFT JOIN taxii_grants g ON g.collection_id = c.id AND g.principal = ANY($2)
WHERE c.api_root = $1`

func scanAccess(row pgx.Row, id identity) (*collectionAccess, error) {
	var c collectionAccess
	if err := row.Scan(&c.ID, &c.Root, &c.Title, &c.Description, &c.Alias, &c.MaxContentLength, &c.MaxObjectSize, &c.CanRead, &c.CanWrite); err != nil {
		return nil, err
	}
	if id.Admin {
		c.CanRead, c.CanWrite = true, true
	}
	return &c, nil
}

// collectionFor returns the collection cid of root as id sees it, or nil
// when it does not exist or id may neither read nor write it (AUTH-11).
// cid is the collection's UUID or, within the same API root, its alias.
func (s *Server) collectionFor(ctx context.Context, root, cid string, id identity) (*collectionAccess, error) {
	var row pgx.Row
	if u, err := uuid.Parse(cid); err == nil && len(cid) == 36 {
		row = s.pool.QueryRow(ctx, collectionAccessSQL+` AND c.id = $3 GROUP BY c.id, r.max_content_length`, root, id.principals(), u)
	} else {
		row = s.pool.QueryRow(ctx, collectionAccessSQL+` AND c.alias = $3 GROUP BY c.id, r.max_content_length`, root, id.principals(), cid)
	}
	c, err := scanAccess(row, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading collection: %w", err)
	}
	if !c.CanRead && !c.CanWrite {
		return nil, nil
	}
	return c, nil
}

// visibleCollections lists root's collections that id may read or write,
// ordered by id (GEN-14, IOP-01).
func (s *Server) visibleCollections(ctx context.Context, root string, id identity) ([]*collectionAccess, error) {
	rows, err := s.pool.Query(ctx, collectionAccessSQL+` GROUP BY c.id, r.max_content_length ORDER BY c.id`, root, id.principals())
	if err != nil {
		return nil, fmt.Errorf("listing collections: %w", err)
	}
	defer rows.Close()
	var out []*collectionAccess
	for rows.Next() {
		c, err := scanAccess(rows, id)
		if err != nil {
			return nil, fmt.Errorf("listing collections: %w", err)
		}
		if c.CanRead || c.CanWrite {
			out = append(out, c)
		}
	}
	return out, rows.Err()
}
