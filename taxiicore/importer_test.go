package taxiicore

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"strings"
	"testing"
	"time"
)

const colImported = "365fed99-08fa-fdcd-a1b3-fb247eb41d01" // not a UUIDv4, as in medallion's data

func objectsOf(objs ...ImportedObject) iter.Seq2[ImportedObject, error] {
	return func(yield func(ImportedObject, error) bool) {
		for _, o := range objs {
			if !yield(o, nil) {
				return
			}
		}
	}
}

func imported(t *testing.T, obj map[string]any, added string) ImportedObject {
	t.Helper()
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, added)
	if err != nil {
		t.Fatal(err)
	}
	return ImportedObject{Raw: raw, DateAdded: at, Source: "test"}
}

func TestImportCollection(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	a, b, c := newID("indicator"), newID("indicator"), newID("indicator")
	ci := CollectionImport{
		Collection: Collection{ID: colImported, APIRoot: "api1", Title: "imported", Alias: "imp"},
		Grants:     []Grant{{Principal: "user:alice", Read: true}},
		Objects: objectsOf(
			imported(t, indicator(a, "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z"), "2021-01-01T00:00:00.000001Z"),
			imported(t, indicator(b, "2020-01-01T00:00:00Z", ""), "2021-01-01T00:00:00.000001Z"),                     // tie: moves 1µs
			imported(t, indicator(a, "2020-01-01T00:00:00Z", "2020-06-01T00:00:00Z"), "2021-01-01T00:00:00.000002Z"), // behind the moved one: moves 1µs
			imported(t, indicator(a, "2020-01-01T00:00:00Z", "2020-03-01T00:00:00Z"), "2022-01-01T00:00:00Z"),        // an older version added later
			imported(t, indicator(a, "2020-01-01T00:00:00Z", "2020-06-01T00:00:00.000Z"), "2022-02-01T00:00:00Z"),    // same version again
			imported(t, indicator(c, "2020-01-01T00:00:00Z", ""), "2023-01-01T00:00:00Z"),
		),
	}
	rep, err := ImportCollection(ctx, f.pool, ci, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Created || rep.Read != 6 || rep.Imported != 5 || rep.Duplicates != 1 || rep.Shifted != 2 || rep.MaxShift != time.Microsecond {
		t.Fatalf("report %+v", rep)
	}

	// Sizes as Add Objects records them, for the page byte cap.
	var wrongSizes, maxSize, largest int
	if err := f.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE object_size <> octet_length(object::text)), max(object_size)
		FROM taxii_objects WHERE collection_id = $1`, colImported).Scan(&wrongSizes, &largest); err != nil {
		t.Fatal(err)
	}
	if err := f.pool.QueryRow(ctx, `SELECT max_object_size FROM taxii_collections WHERE id = $1`, colImported).Scan(&maxSize); err != nil {
		t.Fatal(err)
	}
	if wrongSizes != 0 || largest == 0 || maxSize != largest {
		t.Fatalf("imported object sizes: %d wrong, largest %d, collection max_object_size %d", wrongSizes, largest, maxSize)
	}

	// Through the API: every version with its date_added, in order.
	res := f.expect(req{path: "/api1/collections/imp/manifest/?match[version]=all"}, http.StatusOK)
	var man struct {
		Objects []struct {
			ID        string `json:"id"`
			DateAdded string `json:"date_added"`
			Version   string `json:"version"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(res.body, &man); err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, o := range man.Objects {
		got = append(got, o.ID+" "+o.DateAdded+" "+o.Version)
	}
	want := []string{
		a + " 2021-01-01T00:00:00.000001Z 2020-01-01T00:00:00Z",
		b + " 2021-01-01T00:00:00.000002Z 2020-01-01T00:00:00Z",
		a + " 2021-01-01T00:00:00.000003Z 2020-06-01T00:00:00Z",
		a + " 2022-01-01T00:00:00.000000Z 2020-03-01T00:00:00Z",
		c + " 2023-01-01T00:00:00.000000Z 2020-01-01T00:00:00Z",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("manifest:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Latest and first flags: the default is the latest version of each.
	if ids := ids(t, f.expect(req{path: "/api1/collections/imp/objects/"}, http.StatusOK)); strings.Join(ids, ",") != strings.Join([]string{b, a, c}, ",") {
		t.Fatalf("latest versions %v", ids)
	}
	res = f.expect(req{path: "/api1/collections/imp/objects/" + a + "/?match[version]=first"}, http.StatusOK)
	if !strings.Contains(string(res.body), `"modified":"2020-01-01T00:00:00Z"`) {
		t.Fatalf("first version of a: %s", res.body)
	}
	// alice reads only; new objects get date_added after the imported ones.
	f.expect(req{method: http.MethodPost, path: "/api1/collections/imp/objects/", body: envelopeOf(indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))}, http.StatusForbidden)

	// Again: nothing twice.
	rep, err = ImportCollection(ctx, f.pool, ci, ImportOptions{})
	if err != nil || !rep.AlreadyImported || rep.Existing != 5 {
		t.Fatalf("second import: %+v %v", rep, err)
	}

	// The sync file may manage the imported collection by its id.
	spec := fixtureSpec()
	spec.APIRoots[0].Collections = append(spec.APIRoots[0].Collections, CatalogCollection{ID: colImported, Title: "imported", Alias: "imp",
		Grants: []CatalogGrant{{To: "user:alice", Read: true, Write: true}}})
	if _, err := Sync(ctx, f.pool, spec, false); err != nil {
		t.Fatal(err)
	}
	f.expect(req{method: http.MethodPost, path: "/api1/collections/imp/objects/", body: envelopeOf(indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""))}, http.StatusAccepted)
}

func TestImportCollectionBadObjects(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	good := imported(t, indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""), "2021-01-01T00:00:00Z")
	bad := ImportedObject{Raw: json.RawMessage(`{"type":"indicator","id":"nope"}`), DateAdded: good.DateAdded, Source: "objects[1]"}
	ci := CollectionImport{
		Collection: Collection{ID: colImported, APIRoot: "api1", Title: "imported"},
		Grants:     []Grant{{Principal: AnonymousPrincipal, Read: true}},
		Objects:    objectsOf(good, bad),
	}
	rep, err := ImportCollection(ctx, f.pool, ci, ImportOptions{})
	if !IsBadObjects(err) || len(rep.Bad) != 1 || rep.Bad[0].Source != "objects[1]" {
		t.Fatalf("bad object: %+v %v", rep, err)
	}
	if exists, _ := collectionExists(t, f, colImported); exists {
		t.Fatal("a collection refused for bad objects is visible")
	}

	// A dry run in a transaction that is rolled back leaves nothing.
	tx, err := f.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ci.Objects = objectsOf(good)
	if rep, err := ImportCollection(ctx, tx, ci, ImportOptions{}); err != nil || rep.Imported != 1 {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if exists, _ := collectionExists(t, f, colImported); exists {
		t.Fatal("a dry run left the collection")
	}

	ci.Objects = objectsOf(good, bad)
	rep, err = ImportCollection(ctx, f.pool, ci, ImportOptions{SkipBad: true})
	if err != nil || rep.Imported != 1 || len(rep.Bad) != 1 {
		t.Fatalf("skip bad: %+v %v", rep, err)
	}
	f.expect(req{path: "/api1/collections/" + colImported + "/objects/", user: "-"}, http.StatusOK)
}

func collectionExists(t *testing.T, f *fixture, id string) (bool, error) {
	t.Helper()
	var ok bool
	err := f.pool.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM taxii_collections WHERE id = $1)`, id).Scan(&ok)
	if err != nil {
		t.Fatal(err)
	}
	return ok, nil
}

// TestImportCollectionLimits: what Add Objects could not have stored is
// refused by name, and so is a date_added in the future.
func TestImportCollectionLimits(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `UPDATE taxii_api_roots SET max_content_length = 1000 WHERE name = 'api1'`); err != nil {
		t.Fatal(err)
	}
	big := indicator(newID("indicator"), "2020-01-01T00:00:00Z", "")
	big["description"] = strings.Repeat("x", 1000)
	fits := indicator(newID("indicator"), "2020-01-01T00:00:00Z", "")
	nul := indicator(newID("indicator"), "2020-01-01T00:00:00Z", "")
	nul["name"] = "a\u0000b"
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)
	ci := CollectionImport{
		Collection: Collection{ID: colImported, APIRoot: "api1", Title: "imported"},
		Objects: objectsOf(imported(t, fits, "2021-01-01T00:00:00Z"), imported(t, big, "2021-01-02T00:00:00Z"),
			imported(t, nul, "2021-01-03T00:00:00Z"), imported(t, indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""), future),
			imported(t, indicator(newID("indicator"), "2020-01-01T00:00:00Z", ""), "9999-12-31T23:59:59.999999Z")),
	}
	rep, err := ImportCollection(ctx, f.pool, ci, ImportOptions{SkipBad: true})
	if err != nil || rep.Imported != 1 || len(rep.Bad) != 4 {
		t.Fatalf("%+v %v", rep, err)
	}
	for i, want := range []string{"max_content_length of 1000", `\u0000`, "lies in the future", "lies in the future"} {
		if !strings.Contains(rep.Bad[i].Error(), want) {
			t.Errorf("bad object %d: %v, want %q", i, rep.Bad[i], want)
		}
	}
}

// TestImportCollectionAgain: a second import into a collection that holds
// objects adds only the versions it lacks, after what is there, with the
// latest-version flags right across old and new rows.
func TestImportCollectionAgain(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	id, other := newID("indicator"), newID("indicator")
	v1 := imported(t, indicator(id, "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z"), "2021-01-01T00:00:00Z")
	v2 := imported(t, indicator(id, "2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"), "2021-01-02T00:00:00Z")
	o1 := imported(t, indicator(other, "2020-01-01T00:00:00Z", ""), "2021-01-03T00:00:00Z")
	ci := CollectionImport{Collection: Collection{ID: colImported, APIRoot: "api1", Title: "imported"},
		Grants: []Grant{{Principal: AnonymousPrincipal, Read: true}}, Objects: objectsOf(v1, o1)}
	if rep, err := ImportCollection(ctx, f.pool, ci, ImportOptions{}); err != nil || rep.Imported != 2 {
		t.Fatalf("first: %+v %v", rep, err)
	}
	// A version the source gained, with a date_added before what is there.
	ci.Objects = objectsOf(v1, v2, o1)
	rep, err := ImportCollection(ctx, f.pool, ci, ImportOptions{})
	if err != nil || !rep.AlreadyImported || rep.Existing != 2 || rep.Present != 2 || rep.Imported != 1 || rep.Duplicates != 0 || rep.Shifted != 1 {
		t.Fatalf("again: %+v %v", rep, err)
	}
	var latest string
	var added time.Time
	if err := f.pool.QueryRow(ctx, `SELECT string_agg(version || ':' || (newer_at IS NULL) || (older_at IS NULL), ' ' ORDER BY version_key),
		max(date_added) FILTER (WHERE version = '2020-02-01T00:00:00Z') FROM taxii_objects WHERE id = $1`, id).Scan(&latest, &added); err != nil {
		t.Fatal(err)
	}
	if latest != "2020-01-01T00:00:00Z:falsetrue 2020-02-01T00:00:00Z:truefalse" || !added.After(o1.DateAdded) {
		t.Fatalf("flags %s, date_added %s", latest, added)
	}
	checkVersionTimes(t, f, colImported)
	body := f.expect(req{path: "/api1/collections/" + colImported + "/objects/" + id + "/", user: "-"}, http.StatusOK).body
	if !strings.Contains(string(body), "2020-02-01T00:00:00Z") {
		t.Fatalf("latest version: %s", body)
	}
	// Once more: nothing.
	ci.Objects = objectsOf(v1, v2, o1)
	if rep, err := ImportCollection(ctx, f.pool, ci, ImportOptions{}); err != nil || rep.Imported != 0 || rep.Present != 3 {
		t.Fatalf("third: %+v %v", rep, err)
	}
}

// TestImportVersionTimes imports versions in both spec versions, out of
// order: the import must store the version times Add Objects would.
func TestImportVersionTimes(t *testing.T) {
	f := newFixture(t, nil)
	a, b, c := newID("indicator"), newID("indicator"), newID("indicator")
	ci := CollectionImport{
		Collection: Collection{ID: colImported, APIRoot: "api1", Title: "imported", Alias: "imp"},
		Grants:     []Grant{{Principal: "user:alice", Read: true}},
		Objects: objectsOf(
			imported(t, indicatorIn("2.1", a, "2020-01-01T00:00:00Z"), "2021-01-01T00:00:00Z"),
			imported(t, indicatorIn("2.0", a, "2020-02-01T00:00:00Z"), "2021-01-02T00:00:00Z"),
			imported(t, indicatorIn("2.1", b, "2020-03-01T00:00:00Z"), "2021-01-03T00:00:00Z"),
			imported(t, indicatorIn("2.0", c, "2020-05-01T00:00:00Z"), "2021-01-04T00:00:00Z"),
			imported(t, indicatorIn("2.1", b, "2020-01-01T00:00:00Z"), "2021-01-05T00:00:00Z"),
			imported(t, indicatorIn("2.1", c, "2020-04-01T00:00:00Z"), "2021-01-06T00:00:00Z"),
			imported(t, indicatorIn("2.1", b, "2020-02-01T00:00:00Z"), "2021-01-07T00:00:00Z"),
		),
	}
	if _, err := ImportCollection(context.Background(), f.pool, ci, ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	checkVersionTimes(t, f, colImported)
	rows := readStoredRows(t, f, colImported)
	for _, q := range []selReq{{ep: "objects"}, {ep: "objects", spec: "2.0,2.1"}, {ep: "objects", version: "first"},
		{ep: "objects", after: rows[2].added}, {ep: "manifest", spec: "2.0"}, {ep: "versions", oid: b}} {
		q.maxLimit = 50
		listAll(t, f, colImported, rows, q)
	}
}
