package taxiicore

import (
	"context"
	"strings"
	"testing"
)

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
