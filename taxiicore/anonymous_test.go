package taxiicore

import (
	"context"
	"net/http"
	"testing"
)

const (
	colPubRead  = "66666666-6666-4666-8666-666666666666" // anonymous reads
	colPubWrite = "77777777-7777-4777-8777-777777777777" // anonymous reads and writes
)

// TestAnonymous: a request without identity headers is the principal
// anonymous; it sees exactly what is granted to anonymous or public.
func TestAnonymous(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	anon := "-"
	// Nothing public yet: 401 everywhere, as before public collections.
	for _, p := range []string{"/taxii2/", "/api1/", "/api1/collections/", objectsPath(colAuth), objectsPath(colPubRead)} {
		f.expect(req{path: p, user: anon}, http.StatusUnauthorized)
	}

	spec := fixtureSpec()
	spec.Discovery.Public = true
	spec.APIRoots[0].Public = true
	spec.APIRoots[0].Collections = append(spec.APIRoots[0].Collections,
		CatalogCollection{ID: colPubRead, Title: "public", Alias: "pub", Grants: []CatalogGrant{{To: "anonymous", Read: true}, {To: "user:alice", Read: true, Write: true}}},
		CatalogCollection{ID: colPubWrite, Title: "public inbox", Grants: []CatalogGrant{{To: "anonymous", Read: true, Write: true}}})
	if _, err := Sync(ctx, f.pool, spec, false); err != nil {
		t.Fatal(err)
	}
	f.post(colPubRead, indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))

	f.expect(req{path: "/taxii2/", user: anon}, http.StatusOK)
	f.expect(req{path: "/api1/", user: anon}, http.StatusOK)
	f.expect(req{path: "/api2/", user: anon}, http.StatusUnauthorized) // not public
	f.expect(req{path: "/nope/", user: anon}, http.StatusUnauthorized) // nor known

	// The list holds only the collections granted to anonymous, with the
	// caller's own can_read/can_write.
	var got []string
	for _, c := range f.expect(req{path: "/api1/collections/", user: anon}, http.StatusOK).json(t)["collections"].([]any) {
		m := c.(map[string]any)
		got = append(got, m["id"].(string))
		if m["id"] == colPubRead && (m["can_read"] != true || m["can_write"] != false) {
			t.Fatalf("anonymous access to the read-only collection: %v", m)
		}
	}
	if len(got) != 2 || got[0] != colPubRead || got[1] != colPubWrite {
		t.Fatalf("anonymous sees collections %v", got)
	}

	if n := len(ids(t, f.expect(req{path: "/api1/collections/pub/objects/", user: anon}, http.StatusOK))); n != 1 {
		t.Fatalf("anonymous read %d objects", n)
	}
	// authenticated is not anonymous; invisible and unknown collections
	// answer alike.
	for _, c := range []string{colAuth, colRW, "99999999-9999-4999-8999-999999999999"} {
		f.expect(req{path: objectsPath(c), user: anon}, http.StatusUnauthorized)
	}
	// Writing needs an explicit write grant.
	obj := indicator(newID("indicator"), "2020-01-01T00:00:00Z", "")
	f.expect(req{method: http.MethodPost, path: objectsPath(colPubRead), user: anon, body: envelopeOf(obj)}, http.StatusForbidden)
	st := f.expect(req{method: http.MethodPost, path: objectsPath(colPubWrite), user: anon, body: envelopeOf(obj)}, http.StatusAccepted).json(t)
	if st["success_count"] != float64(1) {
		t.Fatalf("status %v", st)
	}
	// Anonymous callers share one name: a status is theirs to read only as
	// writers of its collection.
	f.expect(req{path: "/api1/status/" + st["id"].(string) + "/", user: anon}, http.StatusOK)
	f.expect(req{method: http.MethodDelete, path: objectsPath(colPubWrite) + obj["id"].(string) + "/", user: anon}, http.StatusOK)

	// Identity headers that are present but unusable are never anonymous.
	f.expect(req{path: "/taxii2/", user: " "}, http.StatusUnauthorized)
	f.expect(req{path: "/taxii2/", user: anon, groups: "analysts"}, http.StatusUnauthorized)
	// A logged-in user may do what anonymous callers may.
	f.expect(req{path: objectsPath(colPubWrite), user: "carol"}, http.StatusOK)
	f.expect(req{path: objectsPath(colRW), user: "carol"}, http.StatusNotFound)
}

func TestAnonymousIdentityFromUntrustedPeer(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.TrustedProxies = "192.0.2.0/24" })
	spec := fixtureSpec()
	spec.Discovery.Public = true
	if _, err := Sync(context.Background(), f.pool, spec, false); err != nil {
		t.Fatal(err)
	}
	// Without headers an outsider is anonymous; with them, refused.
	f.expect(req{path: "/taxii2/", user: "-"}, http.StatusOK)
	f.expect(req{path: "/taxii2/", user: "alice"}, http.StatusUnauthorized)
}
