package tokenservice

import (
	"context"
	"embed"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/migrate"
)

// Component names the token service's migrations in schema_migrations.
const Component = "tokenservice"

//go:embed migrations/*.sql
var migrationFiles embed.FS

var schema = migrate.NewSchema(Component, migrationFiles, "migrations")

// Migrate applies the token service's pending schema migrations and returns the
// names of those it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	return schema.Up(ctx, pool)
}

// SchemaPending reports whether the database lacks some of the token service's migrations.
func SchemaPending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	return schema.Pending(ctx, pool)
}
