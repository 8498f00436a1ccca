package taxiicore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgtest"
	"github.com/taxiway/taxiway/internal/taxiierror"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Collections of the standard fixture and what alice may do in each.
const (
	colRW   = "11111111-1111-4111-8111-111111111111" // alice rw, group analysts read
	colRO   = "22222222-2222-4222-8222-222222222222" // alice read
	colWO   = "33333333-3333-4333-8333-333333333333" // alice write
	colNone = "44444444-4444-4444-8444-444444444444" // bob rw only
	colAuth = "55555555-5555-4555-8555-555555555555" // every authenticated user reads
)

type fixture struct {
	t    *testing.T
	pool *pgxpool.Pool
	srv  *Server
	ts   *httptest.Server
}

func fixtureSpec() Catalog {
	return Catalog{
		Discovery: &DiscoverySettings{Title: "Test TAXII", Description: "for tests", Contact: "ops@example.com", Default: "api1"},
		APIRoots: []CatalogRoot{{
			APIRoot: APIRoot{Name: "api1", Title: "API one", MaxContentLength: 64 << 10},
			Collections: []CatalogCollection{
				{ID: colRW, Title: "read-write", Alias: "rw", Grants: []CatalogGrant{{To: "user:alice", Read: true, Write: true}, {To: "group:analysts", Read: true}}},
				{ID: colRO, Title: "read-only", Grants: []CatalogGrant{{To: "user:alice", Read: true}}},
				{ID: colWO, Title: "write-only", Grants: []CatalogGrant{{To: "user:alice", Write: true}}},
				{ID: colNone, Title: "bob's", Grants: []CatalogGrant{{To: "user:bob", Read: true, Write: true}}},
				{ID: colAuth, Title: "everyone reads", Grants: []CatalogGrant{{To: "authenticated", Read: true}}},
			},
		}, {APIRoot: APIRoot{Name: "api2", Title: "API two"}}},
	}
}

func newPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewPool(t)
	if _, err := Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

// newFixture serves the standard catalog over real HTTP on loopback.
func newFixture(t *testing.T, mutate func(*Config)) *fixture {
	t.Helper()
	return newFixtureOn(t, newPool(t), mutate)
}

// newFixtureOn is newFixture on a migrated database of the caller's.
func newFixtureOn(t *testing.T, pool *pgxpool.Pool, mutate func(*Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	if _, err := Sync(ctx, pool, fixtureSpec(), false); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.MaxPageSize = 50
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(ctx, pool, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &fixture{t: t, pool: pool, srv: srv, ts: ts}
}

// req describes one request; zero values mean alice, TAXII Accept, GET.
type req struct {
	method      string
	path        string
	user        string // "-" for no identity headers
	groups      string
	accept      string // "-" for no Accept header
	contentType string
	body        string
	bodyReader  io.Reader
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

func (f *fixture) do(r req) resp {
	f.t.Helper()
	if r.method == "" {
		r.method = http.MethodGet
	}
	var body io.Reader = r.bodyReader
	if body == nil && r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, f.ts.URL+r.path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	switch r.user {
	case "":
		hr.Header.Set("X-Authenticated-User", "alice")
	case "-":
	default:
		hr.Header.Set("X-Authenticated-User", r.user)
	}
	if r.groups != "" {
		hr.Header.Set("X-Authenticated-Groups", r.groups)
	}
	switch r.accept {
	case "":
		hr.Header.Set("Accept", taxiierror.MediaType)
	case "-":
	default:
		hr.Header.Set("Accept", r.accept)
	}
	if r.method == http.MethodPost {
		ct := r.contentType
		if ct == "" {
			ct = taxiierror.MediaType
		}
		hr.Header.Set("Content-Type", ct)
	}
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(hr)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// expect checks the status, and for errors the TAXII error body.
func (f *fixture) expect(r req, status int) resp {
	f.t.Helper()
	res := f.do(r)
	if res.status != status {
		f.t.Fatalf("%s %s as %q: status %d, want %d\n%s", r.method, r.path, r.user, res.status, status, res.body)
	}
	if ct := res.header.Get("Content-Type"); ct != taxiierror.MediaType && status != http.StatusPermanentRedirect {
		f.t.Fatalf("%s %s: Content-Type %q", r.method, r.path, ct)
	}
	if status >= 400 {
		m := res.json(f.t)
		if m["http_status"] != fmt.Sprint(status) || m["title"] == "" {
			f.t.Fatalf("%s %s: error body %s", r.method, r.path, res.body)
		}
	}
	return res
}

func objectsPath(col string) string { return "/api1/collections/" + col + "/objects/" }

// indicator makes an SDO with the given id and modified time.
func indicator(id, created, modified string) map[string]any {
	o := map[string]any{"type": "indicator", "spec_version": "2.1", "id": id, "created": created,
		"pattern": "[ipv4-addr:value = '198.51.100.1']", "pattern_type": "stix", "valid_from": created}
	if modified != "" {
		o["modified"] = modified
	}
	return o
}

func newID(typ string) string { return typ + "--" + uuid.NewString() }

func envelopeOf(objs ...map[string]any) string {
	b, _ := json.Marshal(map[string]any{"objects": objs})
	return string(b)
}

// post adds objects as alice to colRW and returns the status.
func (f *fixture) post(col string, objs ...map[string]any) map[string]any {
	f.t.Helper()
	res := f.expect(req{method: http.MethodPost, path: objectsPath(col), body: envelopeOf(objs...)}, http.StatusAccepted)
	return res.json(f.t)
}

func (f *fixture) countRows(col string) int {
	f.t.Helper()
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM taxii_objects WHERE collection_id = $1`, col).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// ids returns the ids of an envelope's objects in order.
func ids(t *testing.T, r resp) []string {
	t.Helper()
	var env struct {
		Objects []struct {
			ID string `json:"id"`
		} `json:"objects"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(env.Objects))
	for i, o := range env.Objects {
		out[i] = o.ID
	}
	return out
}

func mustUUID(s string) uuid.UUID { return uuid.MustParse(s) }

func rawObjects(objs []map[string]any) []json.RawMessage {
	out := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		out[i], _ = json.Marshal(o)
	}
	return out
}
