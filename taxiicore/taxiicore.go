// Package taxiicore serves the TAXII 2.1 API (discovery, API roots, status,
// collections, manifest, objects, versions) from Postgres.
//
// It does no authentication of its own: it believes the identity headers
// that the gateway sets, but only from trusted proxies, and applies
// per-collection read/write grants to that identity. Everything it needs
// lives in Postgres (objects, statuses, the cursor-signing key, discovery
// settings), so any number of replicas can serve the same database.
//
// Requirement ids in comments (GEN-01, NEG-08, AMBIG-23, ...) name the items
// of docs/taxii-2.1-checklist.md, the TAXII 2.1 requirements and the
// resolutions of the specification's ambiguities that the core follows.
package taxiicore

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/migrate"
)

// Component names the core's migrations in schema_migrations.
const Component = "taxiicore"

//go:embed migrations/*.sql
var migrationFiles embed.FS

var schema = migrate.NewSchema(Component, migrationFiles, "migrations")

// Migrate applies the core's pending schema migrations and returns the
// names of those it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	return schema.Up(ctx, pool)
}

// SchemaPending reports whether the database lacks some of the core's migrations.
func SchemaPending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	return schema.Pending(ctx, pool)
}
