package tokenservice

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// policyFeed reads the policy feed once.
func (ts *testService) policyFeed(t *testing.T, after int64, wait int) PolicySnapshot {
	t.Helper()
	resp, err := http.Get(ts.http.URL + "/internal/policy?after=" + strconv.FormatInt(after, 10) + "&wait=" + strconv.Itoa(wait))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("policy feed: status %d", resp.StatusCode)
	}
	var p PolicySnapshot
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

const (
	colA = "365fed99-08fa-fdcd-a1b3-fb247eb41d01" // an OpenTAXII-style id, not v4
	colB = "edaca48c-eae6-47e0-82b3-18a87ff3692f"
)

// TestFrontedPolicyFeed: grants set and removed by the admin functions
// reach a waiting long poll as soon as they commit, as whole snapshots;
// an unchanged policy answers "unchanged" after the wait.
func TestFrontedPolicyFeed(t *testing.T) {
	ts := startService(t, nil, nil)
	ctx := context.Background()

	first := ts.policyFeed(t, 0, 0)
	if first.Version == 0 || len(first.Backends) != 0 || first.Unchanged {
		t.Fatalf("fresh policy: %+v", first)
	}
	start := time.Now()
	if same := ts.policyFeed(t, first.Version, 1); !same.Unchanged || same.Version != first.Version || time.Since(start) < time.Second {
		t.Fatalf("unchanged poll: %+v after %v", same, time.Since(start))
	}

	got := make(chan PolicySnapshot, 1)
	go func() { got <- ts.policyFeed(t, first.Version, 20) }()
	time.Sleep(100 * time.Millisecond)
	changed := time.Now()
	spec := FrontedGrantSpec{Backend: "legacy", Root: "/api1/", Collection: strings.ToUpper(colA), Alias: "shared-iocs",
		Grant: FrontedGrant{To: "group:partners", Read: true}}
	if err := SetFrontedGrant(ctx, ts.pool, spec); err != nil {
		t.Fatal(err)
	}
	var snap PolicySnapshot
	select {
	case snap = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the long poll did not answer the change")
	}
	if d := time.Since(changed); d > 2*time.Second {
		t.Errorf("the change reached the poll after %v", d)
	}
	want := []FrontedBackend{{Name: "legacy", Roots: []FrontedRoot{{Path: "/api1/", Collections: []FrontedCollection{{
		ID: colA, Alias: "shared-iocs", Grants: []FrontedGrant{{To: "group:partners", Read: true}}}}}}}}
	if gotJSON, wantJSON := mustJSON(t, snap.Backends), mustJSON(t, want); gotJSON != wantJSON || snap.Version <= first.Version {
		t.Fatalf("snapshot v%d %s, want %s", snap.Version, gotJSON, wantJSON)
	}

	// A second grant on the same collection keeps the alias; removal goes.
	spec.Alias, spec.Grant = "", FrontedGrant{To: "group:analysts", Read: true, Write: true}
	if err := SetFrontedGrant(ctx, ts.pool, spec); err != nil {
		t.Fatal(err)
	}
	spec.Grant.To = "group:partners"
	if err := RemoveFrontedGrant(ctx, ts.pool, spec); err != nil {
		t.Fatal(err)
	}
	if err := RemoveFrontedGrant(ctx, ts.pool, spec); !errors.Is(err, errNoSuchGrant) {
		t.Fatalf("removing twice: %v", err)
	}
	snap = ts.policyFeed(t, snap.Version, 0)
	c := snap.Backends[0].Roots[0].Collections[0]
	if c.Alias != "shared-iocs" || len(c.Grants) != 1 || c.Grants[0].To != "group:analysts" || !c.Grants[0].Write {
		t.Fatalf("after the second grant and a removal: %+v", c)
	}

	for _, bad := range []FrontedGrantSpec{
		{Backend: "legacy", Root: "/api1", Collection: colA, Grant: FrontedGrant{To: "authenticated", Read: true}},
		{Backend: "legacy", Root: "/a/../b/", Collection: colA, Grant: FrontedGrant{To: "authenticated", Read: true}},
		{Backend: "legacy", Root: "/api1/", Collection: "not-a-uuid", Grant: FrontedGrant{To: "authenticated", Read: true}},
		{Backend: "legacy", Root: "/api1/", Collection: colA, Grant: FrontedGrant{To: "everyone", Read: true}},
		{Backend: "legacy", Root: "/api1/", Collection: colA, Grant: FrontedGrant{To: "authenticated"}},
		{Backend: "../x", Root: "/api1/", Collection: colA, Grant: FrontedGrant{To: "authenticated", Read: true}},
		{Backend: "legacy", Root: "/api1/", Collection: colB, Alias: "Shared-IOCs", Grant: FrontedGrant{To: "authenticated", Read: true}},
	} {
		if err := SetFrontedGrant(ctx, ts.pool, bad); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

// TestSyncFronted: a sync creates, then changes nothing; without prune it
// keeps what is not listed, with prune it removes it; invalid input writes
// nothing.
func TestSyncFronted(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	spec := []FrontedBackend{{Name: "legacy", PublicDiscovery: true, Roots: []FrontedRoot{{Path: "/api1/", Collections: []FrontedCollection{
		{ID: colA, Alias: "shared", Grants: []FrontedGrant{{To: "group:partners", Read: true}, {To: "group:analysts", Read: true, Write: true}}},
		{ID: colB, Grants: []FrontedGrant{{To: "group:analysts", Read: true, Write: true}}},
	}}}}}
	rep, err := SyncFronted(ctx, pool, spec, false)
	if err != nil || len(rep.Created) != 7 || rep.Component != PolicyComponent {
		t.Fatalf("first sync: %+v %v", rep, err)
	}
	if rep, err = SyncFronted(ctx, pool, spec, true); err != nil || rep.Changed() {
		t.Fatalf("second sync: %+v %v", rep, err)
	}
	spec[0].Roots[0].Public = true
	spec[0].Roots[0].Collections = spec[0].Roots[0].Collections[:1]
	spec[0].Roots[0].Collections[0].Grants = spec[0].Roots[0].Collections[0].Grants[:1]
	if rep, err = SyncFronted(ctx, pool, spec, false); err != nil || len(rep.Updated) != 1 || len(rep.Removed) != 0 {
		t.Fatalf("update without prune: %+v %v", rep, err)
	}
	if rep, err = SyncFronted(ctx, pool, spec, true); err != nil || len(rep.Removed) != 3 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	snap, err := ReadPolicy(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := mustJSON(t, snap.Backends), mustJSON(t, spec); got != want {
		t.Fatalf("after prune %s, want %s", got, want)
	}
	bad := cloneBackends(spec)
	bad[0].Roots = append(bad[0].Roots, FrontedRoot{Path: "/api2/", Collections: []FrontedCollection{{ID: colB, Grants: []FrontedGrant{{To: "nobody", Read: true}}}}})
	if _, err := SyncFronted(ctx, pool, bad, true); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Fatalf("invalid principal: %v", err)
	}
	if after, _ := ReadPolicy(ctx, pool); after.Version != snap.Version {
		t.Fatalf("an invalid sync moved the version from %d to %d", snap.Version, after.Version)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
