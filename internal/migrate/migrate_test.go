package migrate

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/taxiway/taxiway/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestUpAppliesOnceInOrderPerComponent(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	v1 := fstest.MapFS{
		"0001_init.sql": {Data: []byte("CREATE TABLE a (x int);")},
		"0002_more.sql": {Data: []byte("INSERT INTO a VALUES (1);")},
	}
	if pending, err := Pending(ctx, pool, "one", v1); err != nil || !pending {
		t.Fatalf("fresh database: pending=%v err=%v, want pending", pending, err)
	}
	applied, err := Up(ctx, pool, "one", v1)
	if err != nil || len(applied) != 2 || applied[0] != "0001_init.sql" {
		t.Fatalf("first run applied %v, err %v", applied, err)
	}
	applied, err = Up(ctx, pool, "one", v1)
	if err != nil || len(applied) != 0 {
		t.Fatalf("second run applied %v, err %v; want nothing", applied, err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM a").Scan(&n); err != nil || n != 1 {
		t.Fatalf("rows after two runs = %d (%v), want 1", n, err)
	}
	// Another component keeps its own versions in the same database.
	if applied, err := Up(ctx, pool, "two", fstest.MapFS{"0001_x.sql": {Data: []byte("CREATE TABLE b (y int);")}}); err != nil || len(applied) != 1 {
		t.Fatalf("second component applied %v, err %v", applied, err)
	}
	// A binary older than the schema refuses.
	if _, err := Up(ctx, pool, "one", fstest.MapFS{"0001_init.sql": v1["0001_init.sql"]}); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("older binary: err = %v, want a 'newer than this binary' error", err)
	}
}

func TestFailedMigrationChangesNothing(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	bad := fstest.MapFS{"0001_bad.sql": {Data: []byte("CREATE TABLE c (x int); SELECT nonsense_fn();")}}
	if _, err := Up(ctx, pool, "bad", bad); err == nil {
		t.Fatal("a failing migration reported success")
	}
	var exists bool
	if err := pool.QueryRow(ctx, "SELECT to_regclass('c') IS NOT NULL").Scan(&exists); err != nil || exists {
		t.Fatalf("table from the failed migration exists=%v (%v); want it rolled back", exists, err)
	}
}

func TestLoadRejectsBadNames(t *testing.T) {
	for _, name := range []string{"init.sql", "0_zero.sql", "x1_y.sql"} {
		if _, err := Load(fstest.MapFS{name: {Data: []byte("")}}); err == nil {
			t.Errorf("Load accepted %q", name)
		}
	}
	if _, err := Load(fstest.MapFS{"0001_a.sql": {}, "0001_b.sql": {}}); err == nil {
		t.Error("Load accepted two migrations with one version")
	}
}
