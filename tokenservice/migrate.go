package tokenservice

import (
	"context"
	"embed"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/migrate"
)

// Component names the token service's migrations in schema_migrations.
const Component = "tokenservice"

//go:embed migrations/*.sql
var migrationFiles embed.FS

func migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embedded folder always exists
	}
	return sub
}

// Migrate applies the token service's pending schema migrations and returns
// the names of those it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	return migrate.Up(ctx, pool, Component, migrations())
}

// MigrationsPending reports whether the database lacks some of this
// binary's migrations.
func MigrationsPending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	return migrate.Pending(ctx, pool, Component, migrations())
}
