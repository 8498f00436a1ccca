package taxiicore

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgtest"
	"github.com/taxiway/taxiway/internal/taxiierror"
)

// benchObjects is the collection size of the listing benchmarks: every
// tenth object in three versions, posted through Add Objects (the second
// and third versions later, as clients update objects).
const benchObjects = 20_000

// benchServer is a core on loopback with benchObjects objects in colRW.
type benchServer struct {
	pool   *pgxpool.Pool
	ts     *httptest.Server
	srv    *Server
	multi  string // an object with three versions
	client *http.Client
}

func newBenchServer(b testing.TB) *benchServer {
	b.Helper()
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	if _, err := Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	if _, err := Sync(ctx, pool, fixtureSpec(), false); err != nil {
		b.Fatal(err)
	}
	srv, err := New(ctx, pool, DefaultConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	bs := &benchServer{pool: pool, srv: srv, ts: httptest.NewServer(srv.Handler()), client: &http.Client{Timeout: time.Minute}}
	b.Cleanup(bs.ts.Close)
	var updates []map[string]any
	for start := 0; start < benchObjects; start += 1000 {
		var objs []map[string]any
		for i := start; i < start+1000; i++ {
			typ := "indicator"
			if i%10 == 3 || i%10 == 7 {
				typ = "malware"
			}
			o := map[string]any{"type": typ, "spec_version": "2.1", "id": typ + "--" + uuid.NewString(),
				"created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z", "name": fmt.Sprintf("bench object %d", i),
				"description": "Generated to measure list latency on a large collection."}
			if typ == "indicator" {
				o["pattern"], o["pattern_type"], o["valid_from"] = "[ipv4-addr:value = '198.51.100.1']", "stix", "2024-01-01T00:00:00Z"
			} else {
				o["is_family"] = false
			}
			objs = append(objs, o)
			if i%10 == 0 {
				for _, day := range []string{"02", "03"} {
					u := map[string]any{}
					for k, v := range o {
						u[k] = v
					}
					u["modified"] = "2024-01-" + day + "T00:00:00.000Z"
					updates = append(updates, u)
				}
				if bs.multi == "" {
					bs.multi = o["id"].(string)
				}
			}
		}
		bs.post(b, objs)
	}
	for start := 0; start < len(updates); start += 1000 {
		bs.post(b, updates[start:min(start+1000, len(updates))])
	}
	if _, err := pool.Exec(ctx, "VACUUM ANALYZE taxii_objects"); err != nil {
		b.Fatal(err)
	}
	return bs
}

func (bs *benchServer) post(b testing.TB, objs []map[string]any) {
	b.Helper()
	raws := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		raws[i], _ = json.Marshal(o)
	}
	st, _, err := bs.srv.ingest(context.Background(), "api1", uuid.MustParse(colRW), "alice", raws)
	if err != nil || st.FailureCount != 0 {
		b.Fatalf("ingest: %v %+v", err, st.Failures)
	}
}

// get requests path as alice.
func (bs *benchServer) get(b *testing.B, path string) {
	req, err := http.NewRequest(http.MethodGet, bs.ts.URL+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Accept", taxiierror.MediaType)
	req.Header.Set("X-Authenticated-User", "alice")
	res, err := bs.client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b.Fatalf("%s: %d", path, res.StatusCode)
	}
}

// BenchmarkList measures the listing endpoints on benchObjects objects,
// limit 100: the first page, a page near the end (added_after), and the
// filtered variants.
func BenchmarkList(b *testing.B) {
	bs := newBenchServer(b)
	objects := "/api1/collections/" + colRW + "/objects/"
	// A position near the end: 150 versions before the last.
	var t time.Time
	if err := bs.pool.QueryRow(context.Background(), `SELECT date_added FROM taxii_objects WHERE collection_id = $1
		ORDER BY date_added DESC OFFSET 150 LIMIT 1`, colRW).Scan(&t); err != nil {
		b.Fatal(err)
	}
	nearEnd := url.QueryEscape(formatTimestamp(t))
	for _, c := range []struct{ name, path string }{
		{"objects/first", objects + "?limit=100"},
		{"objects/near-end", objects + "?limit=100&added_after=" + nearEnd},
		{"objects/type", objects + "?limit=100&match[type]=malware"},
		{"objects/spec21", objects + "?limit=100&match[spec_version]=2.1"},
		{"objects/all", objects + "?limit=100&match[version]=all"},
		{"objects/first-version", objects + "?limit=100&match[version]=first"},
		{"manifest/first", "/api1/collections/" + colRW + "/manifest/?limit=100"},
		{"manifest/near-end", "/api1/collections/" + colRW + "/manifest/?limit=100&added_after=" + nearEnd},
		{"object", objects + bs.multi + "/"},
		{"versions", objects + bs.multi + "/versions/"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				bs.get(b, c.path)
			}
		})
	}
}

// BenchmarkIngest measures Add Objects of 1,000 new objects, and of 1,000
// new versions of stored objects, into a collection of benchObjects.
func BenchmarkIngest(b *testing.B) {
	bs := newBenchServer(b)
	newObjects := func(n int) []map[string]any {
		objs := make([]map[string]any, n)
		for i := range objs {
			objs[i] = map[string]any{"type": "indicator", "spec_version": "2.1", "id": "indicator--" + uuid.NewString(),
				"created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z", "name": "ingested",
				"pattern": "[ipv4-addr:value = '203.0.113.1']", "pattern_type": "stix", "valid_from": "2025-01-01T00:00:00Z"}
		}
		return objs
	}
	b.Run("new", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			objs := newObjects(1000)
			b.StartTimer()
			bs.post(b, objs)
		}
	})
	b.Run("new-versions", func(b *testing.B) {
		day := 0
		for b.Loop() {
			b.StopTimer()
			objs := newObjects(1000)
			bs.post(b, objs)
			day++
			for _, o := range objs {
				o["modified"] = fmt.Sprintf("2025-02-01T00:00:00.%06dZ", day)
			}
			b.StartTimer()
			bs.post(b, objs)
		}
	})
}
