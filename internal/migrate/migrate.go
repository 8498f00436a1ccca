// Package migrate applies a part's embedded, versioned SQL migrations.
//
// Files are named NNNN_description.sql and applied in order, each in its own
// transaction, under an advisory lock so that replicas starting together do
// not race. Applied versions are recorded per component in
// schema_migrations, so the token service and the core can share a database.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lockKey is an arbitrary constant shared by every Taxiway migration run.
const lockKey = 0x7a_78_77_61_79 // "taxiway"

// Schema is one component's migrations, as embedded in its package.
type Schema struct {
	Component string
	Files     fs.FS
}

// NewSchema takes the migrations in folder dir of files (an embed.FS).
func NewSchema(component string, files fs.FS, dir string) Schema {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(fmt.Sprintf("migrations of %s: %v", component, err)) // a build-time mistake
	}
	return Schema{Component: component, Files: sub}
}

// Up applies the schema's pending migrations; see the function Up.
func (s Schema) Up(ctx context.Context, pool *pgxpool.Pool) ([]string, error) {
	return Up(ctx, pool, s.Component, s.Files)
}

// Pending reports whether the database lacks some of the schema's migrations.
func (s Schema) Pending(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	return Pending(ctx, pool, s.Component, s.Files)
}

// Migration is one versioned SQL file.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load reads the NNNN_*.sql files at the top of fsys.
func Load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("listing migrations: %w", err)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version, as in 0001_init.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("reading migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Up applies every migration of component that is not applied yet and
// returns the names it applied. A database already ahead of this binary
// (a newer version recorded) is an error: an old binary must not run on a
// schema it does not know.
func Up(ctx context.Context, pool *pgxpool.Pool, component string, fsys fs.FS) ([]string, error) {
	migrations, err := Load(fsys)
	if err != nil {
		return nil, err
	}
	// One transaction per migration, each under a transaction-level advisory
	// lock and reading the applied version afresh: replicas starting together
	// do not race, and nothing spans transactions, so migrations also run
	// through pgbouncer in transaction mode (where a session-level lock could
	// be taken on one server connection and released on another).
	var applied []string
	for {
		var done string
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey); err != nil {
				return fmt.Errorf("taking the migration lock: %w", err)
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				component  text NOT NULL,
				version    integer NOT NULL,
				name       text NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
				PRIMARY KEY (component, version))`); err != nil {
				return fmt.Errorf("creating schema_migrations: %w", err)
			}
			var current int
			if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations WHERE component = $1", component).Scan(&current); err != nil {
				return fmt.Errorf("reading applied %s migrations: %w", component, err)
			}
			if n := len(migrations); n > 0 && current > migrations[n-1].Version {
				return fmt.Errorf("database has %s schema version %d, newer than this binary knows (%d): upgrade the binary", component, current, migrations[n-1].Version)
			}
			for _, m := range migrations {
				if m.Version <= current {
					continue
				}
				if _, err := tx.Exec(ctx, m.SQL); err != nil {
					return fmt.Errorf("applying %s migration %s: %w", component, m.Name, err)
				}
				if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (component, version, name) VALUES ($1, $2, $3)", component, m.Version, m.Name); err != nil {
					return fmt.Errorf("recording %s migration %s: %w", component, m.Name, err)
				}
				done = m.Name
				return nil
			}
			return nil
		})
		if err != nil {
			return applied, err
		}
		if done == "" {
			return applied, nil
		}
		applied = append(applied, done)
	}
}

// Pending reports whether component has migrations not yet applied; servers
// that do not migrate on start use it to refuse a stale schema clearly.
func Pending(ctx context.Context, pool *pgxpool.Pool, component string, fsys fs.FS) (bool, error) {
	migrations, err := Load(fsys)
	if err != nil || len(migrations) == 0 {
		return false, err
	}
	var current int
	err = pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations WHERE component = $1`, component).Scan(&current)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table: never migrated
			return true, nil
		}
		return false, fmt.Errorf("reading applied %s migrations: %w", component, err)
	}
	return current < migrations[len(migrations)-1].Version, nil
}
