package deployment

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/taxiicore"
	"github.com/taxiway/taxiway/tokenservice"
)

// Migrate applies both parts' migrations to one database.
func Migrate(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	core, err := taxiicore.Migrate(ctx, pool)
	if err != nil {
		return core, fmt.Errorf("migrating the core: %w", err)
	}
	token, err := tokenservice.Migrate(ctx, pool)
	return append(core, token...), err
}
