package deployment

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgtest"
	"github.com/taxiway/taxiway/taxiicore"
)

const syncYAML = `
discovery:
  title: Taxiway
  description: demo
  contact: ops@example.com
  default: api1
api_roots:
  - name: api1
    title: Demo API root
    max_content_length: 10485760
    collections:
      - id: edaca48c-eae6-47e0-82b3-18a87ff3692f
        title: Demo collection
        alias: demo
        grants:
          - {to: "user:test", read: true, write: true}
          - {to: "group:readers", read: true}
  - name: api2
    title: Second
`

func decodeSpec(t *testing.T, s string) *File {
	t.Helper()
	f, err := parse([]byte(s), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func migratedPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if _, err := Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func TestSyncIsIdempotent(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	spec := decodeSpec(t, syncYAML)
	rep, err := taxiicore.Sync(ctx, pool, spec.catalog(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != 5 || len(rep.Updated) != 1 || len(rep.Removed) != 0 {
		t.Fatalf("first sync: %+v", rep)
	}
	rep, err = taxiicore.Sync(ctx, pool, spec.catalog(), true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed() || !strings.Contains(rep.String(), "nothing to change") {
		t.Fatalf("second sync changed: %+v", rep)
	}
	grants, err := taxiicore.ListGrants(ctx, pool, "edaca48c-eae6-47e0-82b3-18a87ff3692f")
	if err != nil || len(grants) != 2 || grants[1].Principal != "user:test" || !grants[1].Write {
		t.Fatalf("grants %+v %v", grants, err)
	}

	// Changes are reported as updates; without prune nothing is removed.
	spec.APIRoots[0].Title = "Renamed"
	spec.APIRoots[0].Collections[0].Grants = spec.APIRoots[0].Collections[0].Grants[:1]
	spec.APIRoots = spec.APIRoots[:1]
	rep, err = taxiicore.Sync(ctx, pool, spec.catalog(), false)
	if err != nil || len(rep.Updated) != 1 || len(rep.Removed) != 0 || len(rep.Created) != 0 {
		t.Fatalf("update: %+v %v", rep, err)
	}
	// With prune, the unlisted grant and API root go.
	rep, err = taxiicore.Sync(ctx, pool, spec.catalog(), true)
	if err != nil || len(rep.Removed) != 2 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	roots, _ := taxiicore.ListAPIRoots(ctx, pool)
	if len(roots) != 1 || roots[0].Title != "Renamed" {
		t.Fatalf("roots %+v", roots)
	}
}

func TestSyncValidatesEverythingFirst(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	cases := map[string]string{
		"need a UUIDv4": strings.Replace(syncYAML, "edaca48c-eae6-47e0-82b3-18a87ff3692f", "edaca48c-eae6-17e0-82b3-18a87ff3692f", 1),
		"no id":         strings.Replace(syncYAML, "id: edaca48c-eae6-47e0-82b3-18a87ff3692f", "id: ''", 1),
		"principal":     strings.Replace(syncYAML, "user:test", "someone", 1),
		"not one of":    strings.Replace(syncYAML, "default: api1", "default: api9", 1),
		"listed twice":  strings.Replace(syncYAML, "name: api2", "name: api1", 1),
		"neither read":  strings.Replace(syncYAML, "read: true}\n", "read: false}\n", 1),
		"API root name": strings.Replace(syncYAML, "name: api2", "name: taxii2", 1),
		"needs a title": strings.Replace(syncYAML, "title: Second", "title: ''", 1),
	}
	for want, y := range cases {
		_, err := taxiicore.Sync(ctx, pool, decodeSpec(t, y).catalog(), true)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v", want, err)
		}
	}
	roots, err := taxiicore.ListAPIRoots(ctx, pool)
	if err != nil || len(roots) != 0 {
		t.Fatalf("an invalid spec wrote %v (%v)", roots, err)
	}
}
