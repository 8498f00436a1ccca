package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const importTestdata = "../cmd/taxiway/importcmd/testdata/"

// version is one object version as a TAXII client sees it.
type version struct {
	id, version string
	dateAdded   time.Time
	object      map[string]any
}

// readAll pages through a collection (every version) by following next, and
// returns its objects with the manifest's date_added, in date_added order.
func readAll(t *testing.T, c client, col string) []version {
	t.Helper()
	var out []version
	for _, kind := range []string{"manifest", "objects"} {
		next, i := "", 0
		for {
			// Every version of every spec version: without match[spec_version]
			// only each object's latest spec version is listed (3.4.1).
			q := url.Values{"match[version]": {"all"}, "match[spec_version]": {"2.0,2.1"}, "limit": {"40"}}
			if next != "" {
				q.Set("next", next)
			}
			page, _ := c.json("GET", col+kind+"/?"+q.Encode(), nil, http.StatusOK)
			objs, _ := page["objects"].([]any)
			for _, o := range objs {
				m := o.(map[string]any)
				if kind == "manifest" {
					added, err := time.Parse(time.RFC3339Nano, m["date_added"].(string))
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, version{id: m["id"].(string), version: m["version"].(string), dateAdded: added})
					continue
				}
				if out[i].id != m["id"] {
					t.Fatalf("objects and manifest disagree at %d: %v, %s", i, m["id"], out[i].id)
				}
				out[i].object = m
				i++
			}
			if more, _ := page["more"].(bool); !more {
				break
			}
			next = page["next"].(string)
		}
	}
	return out
}

// compareVersions checks got against want object by object, version by
// version, in date_added order, with date_added equal but for the moved ones.
func compareVersions(t *testing.T, what string, got, want []version, moved int) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d versions, want %d", what, len(got), len(want))
	}
	shifted := 0
	for i := range want {
		g, w := got[i], want[i]
		if g.id != w.id || !reflect.DeepEqual(g.object, w.object) {
			t.Fatalf("%s: version %d is %s %v, want %s %v", what, i, g.id, g.object, w.id, w.object)
		}
		if !g.dateAdded.Equal(w.dateAdded) {
			if d := g.dateAdded.Sub(w.dateAdded); d <= 0 || d > time.Millisecond {
				t.Fatalf("%s: %s date_added %s, was %s", what, g.id, g.dateAdded, w.dateAdded)
			}
			shifted++
		}
		if i > 0 && !g.dateAdded.After(got[i-1].dateAdded) {
			t.Fatalf("%s: date_added not strictly increasing at %d", what, i)
		}
	}
	if shifted != moved {
		t.Fatalf("%s: %d date_added moved, want %d", what, shifted, moved)
	}
}

// TestImportMedallionThroughGateway imports a medallion data file shaped as
// medallion's default_data.json, with its users, and reads everything back
// through the gateway as those users.
func TestImportMedallionThroughGateway(t *testing.T) {
	out := taxiway(t, "", "import", "medallion", "-from", importTestdata+"medallion/default_data.json",
		"-config", importTestdata+"medallion/config.json", "-quiet")
	t.Logf("taxiway import medallion:\n%s", out)
	if !strings.Contains(out, "2 plain-text passwords hashed") {
		t.Fatalf("import output:\n%s", out)
	}
	raw, err := os.ReadFile(importTestdata + "medallion/default_data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Trustgroup1 struct {
			Collections []struct {
				ID       string           `json:"id"`
				CanRead  bool             `json:"can_read"`
				Objects  []map[string]any `json:"objects"`
				Manifest []struct {
					ID        string `json:"id"`
					DateAdded string `json:"date_added"`
					Version   string `json:"version"`
				} `json:"manifest"`
			} `json:"collections"`
		} `json:"trustgroup1"`
	}
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	user1, user2 := basic(t, "user1", "Password1"), basic(t, "user2", "Password2") // a Werkzeug hash; a hashed plain password
	for _, c := range data.Trustgroup1.Collections {
		path := "/trustgroup1/collections/" + c.ID + "/"
		if !c.CanRead {
			r, _ := user2.do("GET", path+"objects/", nil)
			if r.StatusCode != http.StatusNotFound && r.StatusCode != http.StatusForbidden {
				t.Fatalf("%s: status %d for a collection medallion let nobody read", c.ID, r.StatusCode)
			}
			continue
		}
		// What medallion served: each object with its manifest record's
		// date_added, in date_added order (the file's order for ties).
		var want []version
		for _, o := range c.Objects {
			v, _ := o["modified"].(string)
			if v == "" {
				v, _ = o["created"].(string)
			}
			for _, m := range c.Manifest {
				mv, _ := time.Parse(time.RFC3339Nano, m.Version)
				ov, _ := time.Parse(time.RFC3339Nano, v)
				if m.ID == o["id"] && mv.Equal(ov) {
					added, _ := time.Parse(time.RFC3339Nano, m.DateAdded)
					want = append(want, version{id: m.ID, dateAdded: added, object: o})
				}
			}
		}
		slices.SortStableFunc(want, func(a, b version) int { return a.dateAdded.Compare(b.dateAdded) })
		moved := 0
		if c.ID == "91a7b528-80eb-42ed-a74d-c6fbd5a26116" {
			moved = 1 // two malware versions added at the same instant
		}
		compareVersions(t, c.ID, readAll(t, user1, path), want, moved)
		compareVersions(t, c.ID, readAll(t, user2, path), want, moved)
	}
	// The non-UUIDv4 id works in URLs; the secret collection is hidden.
	user1.json("GET", "/trustgroup1/collections/365fed99-08fa-fdcd-a1b3-fb247eb41d01/", nil, http.StatusOK)
	user1.json("GET", "/trustgroup1/collections/64993447-4d7e-4f70-b94d-d7f33742ee63/", nil, http.StatusNotFound)
	anonymous(t).json("GET", "/trustgroup1/collections/", nil, http.StatusUnauthorized)

	// Again: nothing twice.
	out = taxiway(t, "", "import", "medallion", "-from", importTestdata+"medallion/default_data.json",
		"-config", importTestdata+"medallion/config.json", "-quiet")
	if !strings.Contains(out, " 0 object versions") || !strings.Contains(out, "5 already there") {
		t.Fatalf("second import output:\n%s", out)
	}
}

// openTAXIIDatabase builds OpenTAXII's schema (from its SQLAlchemy models)
// and data in a second database of the stack's cluster.
func openTAXIIDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, stack.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP DATABASE IF EXISTS opentaxii_fixture`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE opentaxii_fixture`); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(stack.DatabaseURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/opentaxii_fixture"
	fixture, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer fixture.Close(ctx)
	for _, f := range []string{"opentaxii/schema.sql", "opentaxii/data.sql"} {
		sql, err := os.ReadFile(importTestdata + f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fixture.Exec(ctx, string(sql)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return u.String()
}

// openTAXIIServed is what OpenTAXII serves from a collection:
// serialized_data with id, type and spec_version, in its paging order
// (date_added, id).
func openTAXIIServed(t *testing.T, conn *pgx.Conn, collection string) []version {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT id, type, spec_version, date_added, serialized_data::text FROM opentaxii_stixobject
		WHERE collection_id = $1 ORDER BY date_added, id, version`, collection)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var want []version
	for rows.Next() {
		var id, typ, spec, data string
		var added time.Time
		if err := rows.Scan(&id, &typ, &spec, &added, &data); err != nil {
			t.Fatal(err)
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(data), &obj); err != nil {
			t.Fatal(err)
		}
		obj["id"], obj["type"], obj["spec_version"] = id, typ, spec
		want = append(want, version{id: id, dateAdded: added, object: obj})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestImportOpenTAXIIThroughGateway moves an OpenTAXII deployment in the
// way README says: a first import while OpenTAXII still serves, objects and
// jobs added to OpenTAXII meanwhile, a second import at the switch. Then
// every object is read back through the gateway on the URLs OpenTAXII
// served (/taxii2/<api root id>/...), with OpenTAXII's accounts, and
// anonymously where OpenTAXII made things public.
func TestImportOpenTAXIIThroughGateway(t *testing.T) {
	src := openTAXIIDatabase(t)
	const (
		root1 = "/taxii2/6ba7b810-9dad-11d1-80b4-00c04fd430c8/"
		root2 = "/taxii2/8f7b6c1e-2f4a-4c3b-9d5e-0a1b2c3d4e5f/"
		intel = "a1b2c3d4-0000-1000-8000-000000000001"
	)
	out := taxiway(t, "", "import", "opentaxii", "-from", src, "-quiet")
	t.Logf("taxiway import opentaxii:\n%s", out)
	if !strings.Contains(out, "127 object versions") || !strings.Contains(out, "3 accounts created") {
		t.Fatalf("import output:\n%s", out)
	}

	// OpenTAXII takes more until the switch: a new version of an object, a
	// new object, and the job that added them.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `
		INSERT INTO opentaxii_stixobject VALUES
		  ('00000000-0000-4000-8000-00000000a001', 'indicator--11111111-1111-4111-8111-111111111111', '`+intel+`', 'indicator', '2.1',
		   now() AT TIME ZONE 'UTC' - interval '1 hour', '2020-03-01 00:00:00',
		   '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-03-01T00:00:00.000Z", "name": "newer", "pattern": "[ipv4-addr:value = ''198.51.100.9'']", "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00.000Z"}'),
		  ('00000000-0000-4000-8000-00000000a002', 'malware--44444444-4444-4444-8444-444444444444', '`+intel+`', 'malware', '2.1',
		   now() AT TIME ZONE 'UTC' - interval '30 minutes', '2020-01-01 00:00:00',
		   '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", "name": "new", "is_family": false}');
		INSERT INTO opentaxii_job VALUES ('9a9a9a9a-0000-4000-8000-00000000b001', '6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'complete',
		  now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', 2, 2, 0, 0);
		INSERT INTO opentaxii_job_detail VALUES
		  ('9a9a9a9a-0000-4000-8000-00000000c001', '9a9a9a9a-0000-4000-8000-00000000b001', 'indicator--11111111-1111-4111-8111-111111111111', '2020-03-01 00:00:00', '', 'success'),
		  ('9a9a9a9a-0000-4000-8000-00000000c002', '9a9a9a9a-0000-4000-8000-00000000b001', 'malware--44444444-4444-4444-8444-444444444444', '2020-01-01 00:00:00', '', 'success');`); err != nil {
		t.Fatal(err)
	}
	out = taxiway(t, "", "import", "opentaxii", "-from", src, "-quiet")
	t.Logf("taxiway import opentaxii, at the switch:\n%s", out)
	if !strings.Contains(out, " 2 object versions") || !strings.Contains(out, "1 updated") || !strings.Contains(out, "1 statuses imported") {
		t.Fatalf("import output at the switch:\n%s", out)
	}

	alice, bob, root := basic(t, "alice", "alice-pass"), basic(t, "bob", "bob-pass"), basic(t, "root", "root-pass")
	anon := anonymous(t)
	// Every object of every collection, as OpenTAXII served it, on its URLs.
	for _, c := range []struct {
		id, path string
		reader   client
		moved    int
	}{
		{intel, root1 + "collections/" + intel + "/", alice, 1}, // pbkdf2 hash
		{intel, root1 + "collections/intel/", bob, 1},           // scrypt hash; by alias
		{"c4c4c4c4-4444-4444-8444-444444444444", root1 + "collections/c4c4c4c4-4444-4444-8444-444444444444/", root, 0},
		{"c2c2c2c2-2222-4222-8222-222222222222", root2 + "collections/public-feed/", anon, 0},
		{"c3c3c3c3-3333-4333-8333-333333333333", root2 + "collections/c3c3c3c3-3333-4333-8333-333333333333/", anon, 0},
	} {
		want := openTAXIIServed(t, conn, c.id)
		if c.id == intel && len(want) != 127 {
			t.Fatalf("the fixture's intel collection holds %d versions", len(want))
		}
		compareVersions(t, c.path, readAll(t, c.reader, c.path), want, c.moved)
	}
	colPath := root1 + "collections/" + intel + "/"
	// Taxiway's own path for the root answers the same.
	compareVersions(t, "intel at /<root>/", readAll(t, alice, strings.TrimPrefix(colPath, "/taxii2")), openTAXIIServed(t, conn, intel), 1)
	// The latest version of the indicator is the one added at the switch.
	page, _ := alice.json("GET", colPath+"objects/indicator--11111111-1111-4111-8111-111111111111/", nil, http.StatusOK)
	if objs := page["objects"].([]any); len(objs) != 1 || objs[0].(map[string]any)["modified"] != "2020-03-01T00:00:00.000Z" {
		t.Fatalf("latest version: %v", page)
	}
	// Both OpenTAXII jobs are statuses for the writers of their collection.
	for _, job := range []string{"9a9a9a9a-0000-4000-8000-000000000001", "9a9a9a9a-0000-4000-8000-00000000b001"} {
		st, _ := bob.json("GET", root1+"status/"+job+"/", nil, http.StatusOK)
		if st["status"] != "complete" || st["success_count"] != float64(2) {
			t.Fatalf("imported status %s: %v", job, st)
		}
		alice.json("GET", root1+"status/"+job+"/", nil, http.StatusNotFound)
	}
	// Permissions: alice reads, bob writes, the admin sees everything.
	post := map[string]any{"objects": []any{indicator(time.Now())}}
	alice.json("POST", colPath+"objects/", post, http.StatusForbidden)
	bob.json("POST", colPath+"objects/", post, http.StatusAccepted)
	bob.json("GET", root1+"collections/c4c4c4c4-4444-4444-8444-444444444444/", nil, http.StatusNotFound)

	// Public: the public API root and its public collections, anonymously.
	anon.json("GET", root2, nil, http.StatusOK)
	cols, _ := anon.json("GET", root2+"collections/", nil, http.StatusOK)
	if n := len(cols["collections"].([]any)); n != 2 {
		t.Fatalf("anonymous sees %d collections: %v", n, cols)
	}
	anon.json("POST", root2+"collections/public-feed/objects/", post, http.StatusForbidden)
	anon.json("POST", root2+"collections/c3c3c3c3-3333-4333-8333-333333333333/objects/", post, http.StatusAccepted)
	// Nothing else is public, and bad credentials are never anonymous.
	anon.json("GET", root1, nil, http.StatusUnauthorized)
	anon.json("GET", colPath+"objects/", nil, http.StatusUnauthorized)
	anon.json("GET", "/taxii2/", nil, http.StatusUnauthorized)
	basic(t, "alice", "wrong").json("GET", root2+"collections/public-feed/objects/", nil, http.StatusUnauthorized)
	bearer(t, "expired.or.forged").json("GET", root2, nil, http.StatusUnauthorized)
	// Logged-in users see public collections too.
	alice.json("GET", root2+"collections/public-feed/objects/", nil, http.StatusOK)

	out = taxiway(t, "", "import", "opentaxii", "-from", src, "-quiet")
	if !strings.Contains(out, " 0 object versions") || !strings.Contains(out, "3 kept") {
		t.Fatalf("third import output:\n%s", out)
	}
}
