// Package pgtest gives each test a fresh database on a real Postgres.
//
// With TAXIWAY_TEST_DATABASE_URL set (a URL whose role may CREATE DATABASE),
// tests use that server. Otherwise the first test to ask starts a private
// cluster from the machine's Postgres binaries (see pgcluster), shared by the
// whole test binary and stopped by Main.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgcluster"
)

// EnvURL names the variable that points tests at an existing server.
const EnvURL = "TAXIWAY_TEST_DATABASE_URL"

// EnvPgBouncer, set to 1, puts a pgbouncer in transaction pooling mode
// between the tests and the private cluster (`make test-pgbouncer`), so
// that every test also proves the code works through one.
const EnvPgBouncer = "TAXIWAY_TEST_PGBOUNCER"

// The harness is per test binary by nature: one server for all its tests.
var server struct {
	once     sync.Once
	adminURL string
	cluster  *pgcluster.Cluster
	bouncer  *pgcluster.Bouncer
	tmp      string
	err      error
}

// Main runs the package's tests and then stops the private cluster, if one
// was started. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if server.bouncer != nil {
		if err := server.bouncer.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stopping pgbouncer:", err)
		}
	}
	if server.cluster != nil {
		if err := server.cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stopping postgres:", err)
		}
		os.RemoveAll(server.tmp)
	}
	os.Exit(code)
}

func adminURL() (string, error) {
	server.once.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			server.adminURL = u
			return
		}
		tmp, err := os.MkdirTemp("", "taxiway-pgtest-")
		if err != nil {
			server.err = err
			return
		}
		server.tmp = tmp
		c, err := pgcluster.Start(context.Background(), pgcluster.Options{DataDir: tmp + "/data", Fast: true})
		if err != nil {
			server.err = fmt.Errorf("starting a private postgres for tests (or set %s): %w", EnvURL, err)
			return
		}
		server.cluster = c
		server.adminURL = c.URL("postgres")
		if os.Getenv(EnvPgBouncer) == "1" {
			b, err := pgcluster.StartBouncer(context.Background(), tmp+"/pgbouncer", c, 20)
			if err != nil {
				server.err = fmt.Errorf("starting pgbouncer for tests (%s=1): %w", EnvPgBouncer, err)
				return
			}
			server.bouncer = b
			server.adminURL = b.URL("postgres")
		}
	})
	return server.adminURL, server.err
}

// NewDatabase creates an empty database for this test, dropped when the test
// ends, and returns its connection URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin, err := adminURL()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connecting to test postgres: %v", err)
	}
	defer conn.Close(ctx)

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("creating test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("dropping %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// NewPool is a connection pool on a fresh database (see NewDatabase),
// closed when the test ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), NewDatabase(t))
	if err != nil {
		t.Fatalf("opening a pool on the test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Cluster is the private cluster, or nil when tests use an external server.
// Tests that restart Postgres need it.
func Cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	if _, err := adminURL(); err != nil {
		t.Fatal(err)
	}
	return server.cluster
}

func withDatabase(raw, db string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + db
	return u.String()
}
