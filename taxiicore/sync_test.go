package taxiicore

import (
	"context"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const syncYAML = `
accounts:            # owned by the token service; ignored here
  - {name: test}
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

func decodeSpec(t *testing.T, s string) SyncSpec {
	t.Helper()
	var file struct {
		SyncSpec `yaml:",inline"`
		Accounts []map[string]any `yaml:"accounts"`
	}
	if err := yaml.Unmarshal([]byte(s), &file); err != nil {
		t.Fatal(err)
	}
	return file.SyncSpec
}

func TestSyncIsIdempotent(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	spec := decodeSpec(t, syncYAML)
	rep, err := Sync(ctx, pool, spec, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Created) != 5 || len(rep.Updated) != 1 || len(rep.Removed) != 0 {
		t.Fatalf("first sync: %+v", rep)
	}
	rep, err = Sync(ctx, pool, spec, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changed() || !strings.Contains(rep.String(), "nothing to change") {
		t.Fatalf("second sync changed: %+v", rep)
	}
	grants, err := ListGrants(ctx, pool, "edaca48c-eae6-47e0-82b3-18a87ff3692f")
	if err != nil || len(grants) != 2 || grants[1].Principal != "user:test" || !grants[1].Write {
		t.Fatalf("grants %+v %v", grants, err)
	}

	// Changes are reported as updates; without prune nothing is removed.
	spec.APIRoots[0].Title = "Renamed"
	spec.APIRoots[0].Collections[0].Grants = spec.APIRoots[0].Collections[0].Grants[:1]
	spec.APIRoots = spec.APIRoots[:1]
	rep, err = Sync(ctx, pool, spec, false)
	if err != nil || len(rep.Updated) != 1 || len(rep.Removed) != 0 || len(rep.Created) != 0 {
		t.Fatalf("update: %+v %v", rep, err)
	}
	// With prune, the unlisted grant and API root go.
	rep, err = Sync(ctx, pool, spec, true)
	if err != nil || len(rep.Removed) != 2 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	roots, _ := ListAPIRoots(ctx, pool)
	if len(roots) != 1 || roots[0].Title != "Renamed" {
		t.Fatalf("roots %+v", roots)
	}
}

func TestSyncValidatesEverythingFirst(t *testing.T) {
	pool := newPool(t)
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
		_, err := Sync(ctx, pool, decodeSpec(t, y), true)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v", want, err)
		}
	}
	roots, err := ListAPIRoots(ctx, pool)
	if err != nil || len(roots) != 0 {
		t.Fatalf("an invalid spec wrote %v (%v)", roots, err)
	}
}

func TestCatalogAdmin(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	if err := AddAPIRoot(ctx, pool, APIRoot{Name: "api1", Title: "One"}); err != nil {
		t.Fatal(err)
	}
	if err := AddAPIRoot(ctx, pool, APIRoot{Name: "api1", Title: "One"}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate root: %v", err)
	}
	if err := AddAPIRoot(ctx, pool, APIRoot{Name: "a/b", Title: "x"}); err == nil {
		t.Fatal("bad root name accepted")
	}
	c, err := AddCollection(ctx, pool, Collection{APIRoot: "api1", Title: "C", Alias: "c"})
	if err != nil || len(c.ID) != 36 {
		t.Fatalf("%+v %v", c, err)
	}
	if _, err := AddCollection(ctx, pool, Collection{APIRoot: "nope", Title: "C"}); err == nil || !strings.Contains(err.Error(), "no API root") {
		t.Fatalf("unknown root: %v", err)
	}
	if _, err := AddCollection(ctx, pool, Collection{APIRoot: "api1", Title: "D", Alias: "c"}); err == nil {
		t.Fatal("duplicate alias accepted")
	}
	if err := SetGrant(ctx, pool, Grant{CollectionID: c.ID, Principal: "group:g", Read: true}); err != nil {
		t.Fatal(err)
	}
	if err := SetGrant(ctx, pool, Grant{CollectionID: c.ID, Principal: "group:g", Write: true}); err != nil {
		t.Fatal(err)
	}
	if g, _ := ListGrants(ctx, pool, c.ID); len(g) != 1 || g[0].Read || !g[0].Write {
		t.Fatalf("grant replaced: %+v", g)
	}
	if err := SetGrant(ctx, pool, Grant{CollectionID: c.ID, Principal: "everyone", Read: true}); err == nil {
		t.Fatal("bad principal accepted")
	}
	if err := RemoveAPIRoot(ctx, pool, "api1"); err == nil || !strings.Contains(err.Error(), "still has") {
		t.Fatalf("root with collections removed: %v", err)
	}
	if err := RemoveGrant(ctx, pool, c.ID, "group:g"); err != nil {
		t.Fatal(err)
	}
	// Removing a collection removes its objects too.
	srv, err := New(ctx, pool, DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	objs := rawObjects([]map[string]any{indicator(newID("indicator"), "2020-01-01T00:00:00Z", "")})
	if _, _, err := srv.ingest(ctx, "api1", mustUUID(c.ID), "alice", objs); err != nil {
		t.Fatal(err)
	}
	if err := RemoveCollection(ctx, pool, c.ID); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM taxii_objects`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d objects left after removing their collection (%v)", left, err)
	}
	if err := RemoveAPIRoot(ctx, pool, "api1"); err != nil {
		t.Fatal(err)
	}
}
