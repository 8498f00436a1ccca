package taxiicore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/syncreport"
)

// Catalog is the state Sync makes the database hold: the discovery
// resource, the API roots, their collections and grants. The file format
// that describes it (the sync YAML) belongs to cmd/taxiway/deployment.
type Catalog struct {
	// Discovery sets the /taxii2/ resource. When nil, whatever is stored
	// stays (title "Taxiway" if never set).
	Discovery *DiscoverySettings
	APIRoots  []CatalogRoot
}

// DiscoverySettings is the discovery resource.
type DiscoverySettings struct {
	Title       string // required
	Description string
	Contact     string
	Default     string // the default API root; must be one of the Catalog's
	// Public lets callers without credentials read it (with the gateway's
	// anonymous option on).
	Public bool
}

// CatalogRoot is one API root with its collections.
type CatalogRoot struct {
	APIRoot
	Collections []CatalogCollection
}

// CatalogCollection is one collection with its grants. Its ID is required,
// so that syncing again updates the same collection.
type CatalogCollection struct {
	ID          string
	Title       string
	Description string
	Alias       string
	Grants      []CatalogGrant
}

// CatalogGrant gives the principal To (as in Grant) read and/or write access.
type CatalogGrant struct {
	To    string
	Read  bool
	Write bool
}

// SyncReport lists what a Sync changed, one human-readable item per change.
type SyncReport = syncreport.Report

// Validate checks the whole spec before anything is written.
func (spec *Catalog) Validate() error {
	var errs []error
	roots := map[string]bool{}
	ids := map[string]bool{}
	for i := range spec.APIRoots {
		rs := &spec.APIRoots[i]
		if err := rs.APIRoot.validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if roots[rs.Name] {
			errs = append(errs, fmt.Errorf("API root %s is listed twice", rs.Name))
		}
		roots[rs.Name] = true
		aliases := map[string]bool{}
		for j := range rs.Collections {
			cs := &rs.Collections[j]
			if cs.ID == "" {
				errs = append(errs, fmt.Errorf("a collection of API root %s (%q) has no id: ids are required for idempotent sync", rs.Name, cs.Title))
				continue
			}
			// Any UUID here: imported collections keep ids of other
			// versions; Sync refuses to create one (newCollectionIDCheck).
			u, err := parseCollectionID(cs.ID)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			c := Collection{ID: u.String(), APIRoot: rs.Name, Title: cs.Title, Description: cs.Description, Alias: cs.Alias}
			if err := c.validateFields(); err != nil {
				errs = append(errs, err)
				continue
			}
			cs.ID = c.ID
			if ids[cs.ID] {
				errs = append(errs, fmt.Errorf("collection %s is listed twice", cs.ID))
			}
			ids[cs.ID] = true
			if cs.Alias != "" {
				if aliases[cs.Alias] {
					errs = append(errs, fmt.Errorf("alias %q is used twice in API root %s", cs.Alias, rs.Name))
				}
				aliases[cs.Alias] = true
			}
			principals := map[string]bool{}
			for _, g := range cs.Grants {
				if err := validatePrincipal(g.To); err != nil {
					errs = append(errs, fmt.Errorf("collection %s: %w", cs.ID, err))
				}
				if !g.Read && !g.Write {
					errs = append(errs, fmt.Errorf("collection %s: the grant to %s gives neither read nor write", cs.ID, g.To))
				}
				if principals[g.To] {
					errs = append(errs, fmt.Errorf("collection %s: %s is granted twice", cs.ID, g.To))
				}
				principals[g.To] = true
			}
		}
	}
	if d := spec.Discovery; d != nil {
		if strings.TrimSpace(d.Title) == "" {
			errs = append(errs, errors.New("discovery needs a title"))
		}
		if d.Default != "" && !roots[d.Default] {
			errs = append(errs, fmt.Errorf("discovery default %q is not one of api_roots", d.Default))
		}
	}
	return errors.Join(errs...)
}

// Sync makes the database hold what spec lists, in one transaction: it
// creates what is missing and updates what differs. With prune it also
// removes API roots, collections (with their objects) and grants that spec
// does not list. Running it twice changes nothing the second time.
func Sync(ctx context.Context, pool *pgxpool.Pool, spec Catalog, prune bool) (SyncReport, error) {
	if err := spec.Validate(); err != nil {
		return SyncReport{}, fmt.Errorf("invalid sync spec: %w", err)
	}
	rep := SyncReport{Component: Component}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rep = SyncReport{Component: Component}
		note := func(inserted bool, what string) {
			if inserted {
				rep.Created = append(rep.Created, what)
			} else {
				rep.Updated = append(rep.Updated, what)
			}
		}
		var rootNames, colIDs []string
		for _, rs := range spec.APIRoots {
			rootNames = append(rootNames, rs.Name)
			inserted, changed, err := upsert(ctx, tx, `INSERT INTO taxii_api_roots AS t (name, title, description, max_content_length, public)
				VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE
				SET title = EXCLUDED.title, description = EXCLUDED.description, max_content_length = EXCLUDED.max_content_length, public = EXCLUDED.public
				WHERE (t.title, t.description, t.max_content_length, t.public) IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.description, EXCLUDED.max_content_length, EXCLUDED.public)
				RETURNING (xmax = 0)`, rs.Name, rs.Title, rs.Description, rs.MaxContentLength, rs.Public)
			if err != nil {
				return fmt.Errorf("syncing API root %s: %w", rs.Name, err)
			}
			if changed {
				note(inserted, "API root "+rs.Name)
			}
		}
		for _, rs := range spec.APIRoots {
			for _, cs := range rs.Collections {
				colIDs = append(colIDs, cs.ID)
				if err := newCollectionIDCheck(ctx, tx, cs.ID); err != nil {
					return err
				}
				inserted, changed, err := upsert(ctx, tx, `INSERT INTO taxii_collections AS t (id, api_root, title, description, alias)
					VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE
					SET api_root = EXCLUDED.api_root, title = EXCLUDED.title, description = EXCLUDED.description, alias = EXCLUDED.alias
					WHERE (t.api_root, t.title, t.description, t.alias) IS DISTINCT FROM (EXCLUDED.api_root, EXCLUDED.title, EXCLUDED.description, EXCLUDED.alias)
					RETURNING (xmax = 0)`, cs.ID, rs.Name, cs.Title, cs.Description, nullable(cs.Alias))
				if err != nil {
					return fmt.Errorf("syncing collection %s: %w", cs.ID, err)
				}
				if changed {
					note(inserted, "collection "+cs.ID+" in API root "+rs.Name)
				}
				var principals []string
				for _, g := range cs.Grants {
					principals = append(principals, g.To)
					inserted, changed, err := upsert(ctx, tx, `INSERT INTO taxii_grants AS t (collection_id, principal, can_read, can_write)
						VALUES ($1, $2, $3, $4) ON CONFLICT (collection_id, principal) DO UPDATE
						SET can_read = EXCLUDED.can_read, can_write = EXCLUDED.can_write
						WHERE (t.can_read, t.can_write) IS DISTINCT FROM (EXCLUDED.can_read, EXCLUDED.can_write)
						RETURNING (xmax = 0)`, cs.ID, g.To, g.Read, g.Write)
					if err != nil {
						return fmt.Errorf("syncing grant to %s on %s: %w", g.To, cs.ID, err)
					}
					if changed {
						note(inserted, fmt.Sprintf("grant to %s on collection %s (read=%t write=%t)", g.To, cs.ID, g.Read, g.Write))
					}
				}
				if prune {
					removed, err := collectStrings(ctx, tx, `DELETE FROM taxii_grants WHERE collection_id = $1 AND principal <> ALL($2)
						RETURNING principal`, cs.ID, append(principals, ""))
					if err != nil {
						return fmt.Errorf("pruning grants on %s: %w", cs.ID, err)
					}
					for _, p := range removed {
						rep.Removed = append(rep.Removed, "grant to "+p+" on collection "+cs.ID)
					}
				}
			}
		}
		if d := spec.Discovery; d != nil {
			_, changed, err := upsert(ctx, tx, `INSERT INTO taxii_settings AS t (singleton, title, description, contact, default_root, public_discovery)
				VALUES (true, $1, $2, $3, $4, $5) ON CONFLICT (singleton) DO UPDATE
				SET title = EXCLUDED.title, description = EXCLUDED.description, contact = EXCLUDED.contact, default_root = EXCLUDED.default_root,
					public_discovery = EXCLUDED.public_discovery
				WHERE (t.title, t.description, t.contact, t.default_root, t.public_discovery)
					IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.description, EXCLUDED.contact, EXCLUDED.default_root, EXCLUDED.public_discovery)
				RETURNING (xmax = 0)`, d.Title, d.Description, d.Contact, nullable(d.Default), d.Public)
			if err != nil {
				return fmt.Errorf("syncing discovery: %w", err)
			}
			if changed {
				note(false, "discovery") // the settings row may predate any sync
			}
		}
		if prune {
			removed, err := collectStrings(ctx, tx, `DELETE FROM taxii_collections WHERE id::text <> ALL($1) RETURNING id::text`, append(colIDs, ""))
			if err != nil {
				return fmt.Errorf("pruning collections: %w", err)
			}
			for _, id := range removed {
				rep.Removed = append(rep.Removed, "collection "+id)
			}
			removed, err = collectStrings(ctx, tx, `DELETE FROM taxii_api_roots WHERE name <> ALL($1) RETURNING name`, append(rootNames, ""))
			if err != nil {
				return fmt.Errorf("pruning API roots: %w", err)
			}
			for _, n := range removed {
				rep.Removed = append(rep.Removed, "API root "+n)
			}
		}
		return nil
	})
	if err != nil {
		return SyncReport{}, err
	}
	return rep, nil
}

// newCollectionIDCheck refuses an id that is not a UUIDv4 unless the
// collection exists (imported with its id from another server).
func newCollectionIDCheck(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := parseNewCollectionID(id); err == nil {
		return nil
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM taxii_collections WHERE id = $1)`, id).Scan(&exists); err != nil {
		return fmt.Errorf("looking up collection %s: %w", id, err)
	}
	if !exists {
		return fmt.Errorf("collection %s: new collections need a UUIDv4 id (only imported ones keep ids of other versions)", id)
	}
	return nil
}

// upsert runs an INSERT ... ON CONFLICT DO UPDATE ... WHERE changed
// RETURNING (xmax = 0): no row means nothing changed.
func upsert(ctx context.Context, tx pgx.Tx, sql string, args ...any) (inserted, changed bool, err error) {
	err = tx.QueryRow(ctx, sql, args...).Scan(&inserted)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	return inserted, err == nil, err
}

func collectStrings(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]string, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
