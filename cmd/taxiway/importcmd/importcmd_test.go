package importcmd

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgtest"
	"github.com/taxiway/taxiway/taxiicore"
	"github.com/taxiway/taxiway/tokenservice"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func migratedPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	ctx := context.Background()
	if _, err := taxiicore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := tokenservice.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func grantsOf(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	gs, err := taxiicore.ListGrants(context.Background(), pool, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range gs {
		out = append(out, g.CollectionID[:8]+" "+g.Principal+" "+rw(g.Read, g.Write))
	}
	return out
}

func rw(r, w bool) string {
	s := ""
	if r {
		s += "r"
	}
	if w {
		s += "w"
	}
	return s
}

func TestImportMedallion(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	read := func() *Source {
		src, err := ReadMedallion("testdata/medallion/default_data.json", "testdata/medallion/config.json")
		if err != nil {
			t.Fatal(err)
		}
		return src
	}

	// A dry run reports and writes nothing.
	sum, err := Run(ctx, pool, read(), Options{DryRun: true})
	if err != nil || sum.Objects != 11 || sum.AccountsCreated != 3 {
		t.Fatalf("dry run: %v %+v", err, sum)
	}
	if n := count(t, pool, `SELECT count(*) FROM taxii_collections`) + count(t, pool, `SELECT count(*) FROM token_accounts`); n != 0 {
		t.Fatalf("the dry run wrote %d rows", n)
	}

	sum, err = Run(ctx, pool, read(), Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(sum.Lines, "\n"))
	}
	if sum.RootsCreated != 3 || sum.CollectionsImported != 5 || sum.Objects != 11 || sum.Shifted != 1 ||
		sum.AccountsCreated != 3 || sum.PasswordsHashed != 2 || !sum.DiscoverySet || sum.StatusesImported != 1 {
		t.Fatalf("summary %+v\n%s", sum, strings.Join(sum.Lines, "\n"))
	}
	// The non-v4 id is kept; medallion's can_read/can_write hold for every
	// logged-in user; the secret collection is for admins alone.
	want := []string{
		"365fed99 authenticated rw",
		"472c94ae authenticated w",
		"52892447 authenticated r",
		"91a7b528 authenticated rw",
	}
	if got := grantsOf(t, pool); !slices.Equal(got, want) {
		t.Fatalf("grants %v, want %v", got, want)
	}
	// Plain-text passwords were hashed; the Werkzeug hash is kept.
	for user, prefix := range map[string]string{"admin": "$argon2id$", "user1": "pbkdf2:sha256:", "user2": "$argon2id$"} {
		if n := count(t, pool, `SELECT count(*) FROM token_accounts WHERE username = $1 AND starts_with(password_hash, $2)`, user, prefix); n != 1 {
			t.Errorf("account %s: no %s hash", user, prefix)
		}
	}
	var def string
	if err := pool.QueryRow(ctx, `SELECT title || ' ' || default_root FROM taxii_settings`).Scan(&def); err != nil || def != "Some TAXII Server trustgroup1" {
		t.Fatalf("discovery %q %v", def, err)
	}

	// Again: nothing twice.
	sum, err = Run(ctx, pool, read(), Options{})
	if err != nil || sum.Objects != 0 || sum.CollectionsKept != 5 || sum.AccountsCreated != 0 || sum.AccountsKept != 3 || sum.RootsKept != 3 {
		t.Fatalf("second run: %v %+v", err, sum)
	}
	if n := count(t, pool, `SELECT count(*) FROM taxii_objects`); n != 11 {
		t.Fatalf("%d objects after two runs", n)
	}
	// The complete status, in the collection holding its objects; the
	// pending ones are reported.
	if n := count(t, pool, `SELECT count(*) FROM taxii_statuses WHERE collection_id = '365fed99-08fa-fdcd-a1b3-fb247eb41d01' AND success_count = 2`); n != 1 {
		t.Fatal("the complete status was not imported")
	}
	if sum.StatusesKept != 1 || !strings.Contains(strings.Join(sum.Lines, "\n"), "2 statuses not imported: pending") {
		t.Fatalf("statuses: %+v", sum)
	}
}

func TestImportMedallionBadData(t *testing.T) {
	pool := migratedPool(t)
	raw, err := os.ReadFile("testdata/medallion/default_data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	// An object without its manifest record, and one that is not STIX.
	cols := data["trustgroup1"].(map[string]any)["collections"].([]any)
	c := cols[2].(map[string]any)
	c["manifest"] = c["manifest"].([]any)[1:]
	c["objects"] = append(c["objects"].([]any), map[string]any{"type": "indicator", "id": "not-an-id"})
	// An API root whose name cannot be a path segment.
	data["bad root"] = map[string]any{"information": map[string]any{"title": "Bad"},
		"collections": []any{map[string]any{"id": "0e0e0e0e-0000-4000-8000-000000000000", "title": "orphan", "can_read": true}}}
	path := filepath.Join(t.TempDir(), "data.json")
	raw, _ = json.Marshal(data)
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var sum Summary
	// A dry run reports the same (each collection in a savepoint of its
	// transaction, so that a failed one does not end it) and writes nothing.
	for _, dry := range []bool{true, false} {
		src, err := ReadMedallion(path, "")
		if err != nil {
			t.Fatal(err)
		}
		sum, err = Run(context.Background(), pool, src, Options{DryRun: dry})
		if !errors.Is(err, ErrIncomplete) || sum.CollectionsFailed != 2 || sum.CollectionsImported != 4 || sum.RootsCreated != 3 || sum.StatusesImported != 1 {
			t.Fatalf("dry %t: %v %+v", dry, err, sum)
		}
		if n := count(t, pool, `SELECT count(*) FROM taxii_collections`); dry && n != 0 {
			t.Fatalf("the dry run left %d collections", n)
		}
	}
	report := strings.Join(sum.Lines, "\n")
	for _, want := range []string{"objects[0] (relationship--2f9a9aa9-108a-4333-83e2-4fb25add0463): no manifest record", "objects[8] (not-an-id): id must be", `API root name "bad root" must be`, `its API root "bad root" was not imported`} {
		if !strings.Contains(report, want) {
			t.Errorf("the report does not say %q:\n%s", want, report)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM taxii_collections WHERE id = '91a7b528-80eb-42ed-a74d-c6fbd5a26116'`); n != 0 {
		t.Fatal("the collection with bad objects is visible")
	}
}

// openTAXIIFixture creates OpenTAXII's schema (testdata/opentaxii/schema.sql,
// from its SQLAlchemy models) in a fresh database and fills it.
func openTAXIIFixture(t *testing.T) string {
	t.Helper()
	url := pgtest.NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, f := range []string{"testdata/opentaxii/schema.sql", "testdata/opentaxii/data.sql"} {
		sql, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, string(sql)); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return url
}

func TestImportOpenTAXII(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	url := openTAXIIFixture(t)
	read := func() *Source {
		src, err := ReadOpenTAXII(ctx, strings.Replace(url, "postgres://", "postgresql+psycopg2://", 1), OpenTAXIIOptions{AdminGroup: "taxiway-admin"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(src.Close)
		return src
	}
	sum, err := Run(ctx, pool, read(), Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, strings.Join(sum.Lines, "\n"))
	}
	if sum.RootsCreated != 2 || sum.CollectionsImported != 4 || sum.Objects != 127 || sum.Shifted != 1 || sum.AccountsCreated != 3 {
		t.Fatalf("summary %+v\n%s", sum, strings.Join(sum.Lines, "\n"))
	}
	want := []string{
		"a1b2c3d4 user:alice r",
		"a1b2c3d4 user:bob rw",
		"c2c2c2c2 anonymous r",
		"c3c3c3c3 anonymous rw",
		"c4c4c4c4 user:alice rw",
	}
	if got := grantsOf(t, pool); !slices.Equal(got, want) {
		t.Fatalf("grants %v, want %v", got, want)
	}
	report := strings.Join(sum.Lines, "\n")
	if sum.StatusesImported != 1 || count(t, pool, `SELECT count(*) FROM taxii_statuses WHERE collection_id = 'a1b2c3d4-0000-1000-8000-000000000001' AND success_count = 2`) != 1 {
		t.Fatalf("OpenTAXII's job: %+v", sum)
	}
	for _, w := range []string{"account alice: permissions on old-taxii1-collection"} {
		if !strings.Contains(report, w) {
			t.Errorf("the report does not say %q:\n%s", w, report)
		}
	}
	if n := count(t, pool, `SELECT count(*) FROM token_accounts WHERE username = 'root' AND groups = '{taxiway-admin}'`); n != 1 {
		t.Fatal("OpenTAXII's admin is not in the admin group")
	}
	if n := count(t, pool, `SELECT count(*) FROM taxii_api_roots WHERE name = '8f7b6c1e-2f4a-4c3b-9d5e-0a1b2c3d4e5f' AND public`); n != 1 {
		t.Fatal("the public API root is not public")
	}
	sum, err = Run(ctx, pool, read(), Options{})
	if err != nil || sum.Objects != 0 || sum.CollectionsKept != 4 || sum.AccountsKept != 3 {
		t.Fatalf("second run: %v %+v", err, sum)
	}
}

// TestReadMedallionObjectsAsInTheFile: the streamed reader hands out each
// object exactly as the file holds it.
func TestReadMedallionObjectsAsInTheFile(t *testing.T) {
	raw, err := os.ReadFile("testdata/medallion/default_data.json")
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]struct {
		Collections []struct {
			ID      string            `json:"id"`
			Objects []json.RawMessage `json:"objects"`
		} `json:"collections"`
	}
	_ = json.Unmarshal(raw, &data) // /discovery is not a root
	want := map[string]bool{}
	for _, r := range data {
		for _, c := range r.Collections {
			for _, o := range c.Objects {
				want[c.ID+" "+string(o)] = true
			}
		}
	}
	src, err := ReadMedallion("testdata/medallion/default_data.json", "")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	got := 0
	for _, c := range src.Collections {
		for o, err := range c.CollectionImport.Objects {
			if err != nil || !want[c.Collection.ID+" "+string(o.Raw)] {
				t.Fatalf("%s: %s %v is not an object of the file's collection", o.Source, o.Raw, err)
			}
			got++
		}
	}
	if got != len(want) || got == 0 {
		t.Fatalf("%d objects read, the file holds %d", got, len(want))
	}
}
