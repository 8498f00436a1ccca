package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func databaseFlag(fs *flag.FlagSet) *string {
	return fs.String("database-url", envOr("TAXIWAY_DATABASE_URL", ""), "Postgres URL (env TAXIWAY_DATABASE_URL; required)")
}

// openPool connects and pings with a deadline, so that an unreachable
// database is a clear error rather than a hang.
func openPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	if url == "" {
		return nil, errors.New("-database-url (or TAXIWAY_DATABASE_URL) is required")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing the database URL: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening the database pool: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connecting to the database: %w", err)
	}
	return pool, nil
}

func migrateFlag(fs *flag.FlagSet) *string {
	return fs.String("migrate", envOr("TAXIWAY_MIGRATE", "false"), "apply schema migrations before serving (env TAXIWAY_MIGRATE)")
}

// openServicePool connects a service to its database and, when migrate is
// true, applies the service's migrations first; otherwise the service's own
// start-up refuses a stale schema.
func openServicePool(ctx context.Context, url, migrate string, logger *slog.Logger,
	apply func(context.Context, *pgxpool.Pool) ([]string, error)) (*pgxpool.Pool, error) {
	doMigrate, err := strconv.ParseBool(migrate)
	if err != nil {
		return nil, fmt.Errorf("-migrate %q: want true or false", migrate)
	}
	pool, err := openPool(ctx, url)
	if err != nil {
		return nil, err
	}
	if doMigrate {
		applied, err := apply(ctx, pool)
		if err != nil {
			pool.Close()
			return nil, err
		}
		if len(applied) > 0 {
			logger.Info("applied migrations", "migrations", applied)
		}
	}
	return pool, nil
}
