package taxiicore

import (
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/taxiway/taxiway/internal/migrate"
	"github.com/taxiway/taxiway/internal/pgtest"
)

// TestMigrationVersionTimes builds a database with the schema before
// migration 0004 (is_latest and is_first), fills it as the core of that
// schema did, with versions in both spec versions arriving out of order,
// then migrates it: every row must get the version times the core would
// have written, and listings must answer as the model says.
func TestMigrationVersionTimes(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	before := fstest.MapFS{}
	for _, name := range []string{"0001_init.sql", "0002_object_json.sql", "0003_public_and_import.sql"} {
		b, err := fs.ReadFile(migrationFiles, "migrations/"+name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: b}
	}
	if _, err := migrate.Up(ctx, pool, Component, before); err != nil {
		t.Fatal(err)
	}
	if _, err := Sync(ctx, pool, fixtureSpec(), false); err != nil {
		t.Fatal(err)
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	type version struct {
		key, spec string
		day       int
	}
	var rows [][]any
	added := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	byID := map[string][]version{}
	var order []string // id of each row, in arrival order
	for range 30 {
		id := newID("indicator")
		days := rng.Perm(9)[:1+rng.IntN(4)] // distinct versions, in random arrival order
		for _, d := range days {
			byID[id] = append(byID[id], version{key: fmt.Sprintf("2020-01-%02dT00:00:00.000000000Z", d+1), spec: []string{"2.0", "2.1"}[rng.IntN(2)], day: d + 1})
			order = append(order, id)
		}
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	next := map[string]int{}
	for _, id := range order {
		vers := byID[id]
		v := vers[next[id]]
		next[id]++
		latest, first := true, true
		for _, o := range vers {
			latest = latest && o.key <= v.key
			first = first && o.key >= v.key
		}
		obj := indicatorIn(v.spec, id, fmt.Sprintf("2020-01-%02dT00:00:00Z", v.day))
		raw := string(rawObjects([]map[string]any{obj})[0])
		added = added.Add(time.Millisecond)
		rows = append(rows, []any{uuid.MustParse(colRW), added, id, "indicator", obj["modified"], v.key, v.spec, latest, first, raw, int32(len(raw))})
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"taxii_objects"},
		[]string{"collection_id", "date_added", "id", "type", "version", "version_key", "spec_version", "is_latest", "is_first", "object", "object_size"},
		pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE taxii_collections SET last_date_added = $2 WHERE id = $1`, colRW, added); err != nil {
		t.Fatal(err)
	}

	applied, err := Migrate(ctx, pool)
	if err != nil || len(applied) != 1 {
		t.Fatalf("migrating: %v %v", applied, err)
	}
	f := newFixtureOn(t, pool, func(c *Config) { c.MaxPageSize = 7 })
	stored := readStoredRows(t, f, colRW)
	if len(stored) != len(rows) {
		t.Fatalf("%d rows after the migration, want %d", len(stored), len(rows))
	}
	checkVersionTimes(t, f, colRW)

	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	for range 60 {
		q := selReq{ep: pick([]string{"objects", "manifest"}), maxLimit: 7, limit: []int{0, 3}[rng.IntN(2)]}
		if rng.IntN(2) == 0 {
			q.after = stored[rng.IntN(len(stored))].added
		}
		q.spec = pick([]string{"", "2.0", "2.1", "2.0,2.1"})
		q.version = pick([]string{"", "first", "all", "first,last"})
		listAll(t, f, colRW, stored, q)
	}
	// The migrated rows take new versions as the core's own do.
	f.post(colRW, indicatorIn("2.0", stored[0].id, "2020-01-10T00:00:00Z"), indicatorIn("2.1", stored[1].id, "2019-12-31T00:00:00Z"))
	checkVersionTimes(t, f, colRW)
}

// checkVersionTimes compares every row's stored version times with timesOf
// over its object's versions.
func checkVersionTimes(t *testing.T, f *fixture, col string) {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT id, version_key, spec_version, date_added,
		newer_at, older_at, newer_in_spec_at, older_in_spec_at, newer_spec_at FROM taxii_objects WHERE collection_id = $1`, col)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		id string
		v  storedVersion
		t  versionTimes
	}
	var all []row
	byID := map[string][]storedVersion{}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.v.key, &r.v.spec, &r.v.added, &r.t.newer, &r.t.older, &r.t.newerInSpec, &r.t.olderInSpec, &r.t.newerSpec); err != nil {
			t.Fatal(err)
		}
		all = append(all, r)
		byID[r.id] = append(byID[r.id], r.v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	norm := func(ts versionTimes) []string {
		var out []string
		for _, v := range ts.values() {
			tz := v.(pgtype.Timestamptz)
			out = append(out, fmt.Sprint(tz.Valid, tz.Time.UnixMicro()))
		}
		return out
	}
	for _, r := range all {
		want := timesOf(r.v, byID[r.id])
		if got, w := norm(r.t), norm(want); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("%s %s (%s): version times %v, want %v", r.id, r.v.key, r.v.spec, got, w)
		}
	}
}
