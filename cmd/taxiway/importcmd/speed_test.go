package importcmd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/pgtest"
	"github.com/taxiway/taxiway/taxiicore"
)

// TestImportSpeed measures `taxiway import opentaxii` on a generated
// OpenTAXII database, as in BENCHMARKS.md:
//
//	TAXIWAY_IMPORT_BENCH_OBJECTS=1000000 go test ./cmd/taxiway/importcmd -run TestImportSpeed -v
//
// One collection; every tenth object in three versions, as cmd/benchcore
// loads (so N objects are 1.2 N rows).
func TestImportSpeed(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TAXIWAY_IMPORT_BENCH_OBJECTS"))
	if n <= 0 {
		t.Skip("set TAXIWAY_IMPORT_BENCH_OBJECTS to run")
	}
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema, err := os.ReadFile("testdata/opentaxii/schema.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, string(schema)); err != nil {
		t.Fatal(err)
	}
	const col = "a1b2c3d4-0000-1000-8000-000000000001"
	start := time.Now()
	if _, err := conn.Exec(ctx, `
		INSERT INTO opentaxii_api_root VALUES ('6ba7b810-9dad-11d1-80b4-00c04fd430c8', true, 'Default', NULL, false);
		INSERT INTO opentaxii_collection VALUES ('`+col+`', '6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'Bulk', NULL, NULL, false, false);
		INSERT INTO opentaxii_stixobject
		SELECT gen_random_uuid(), 'indicator--' || md5('id' || i)::uuid, '`+col+`', 'indicator', '2.1',
		       timestamp '2021-01-01 00:00:00' + (i * 3 + v) * interval '1 millisecond',
		       timestamp '2020-03-01 00:00:00' + v * interval '1 day',
		       json_build_object('created', '2020-03-01T00:00:00.000Z',
		                         'modified', to_char(timestamp '2020-03-01 00:00:00' + v * interval '1 day', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
		                         'name', 'Indicator ' || i, 'description', 'A bulk indicator for the import benchmark, about as large as a real one.',
		                         'indicator_types', json_build_array('malicious-activity'),
		                         'pattern', format('[ipv4-addr:value = ''10.%s.%s.%s'']', i / 65536 % 256, i / 256 % 256, i % 256),
		                         'pattern_type', 'stix', 'valid_from', '2020-03-01T00:00:00Z', 'labels', json_build_array('benchmark'))
		FROM generate_series(1, `+strconv.Itoa(n)+`) i, generate_series(0, CASE WHEN i % 10 = 0 THEN 2 ELSE 0 END) v;
		ANALYZE opentaxii_stixobject;`); err != nil {
		t.Fatal(err)
	}
	t.Logf("generated the OpenTAXII database in %s", time.Since(start).Round(time.Millisecond))

	pool := migratedPool(t)
	src, err := ReadOpenTAXII(ctx, url, OpenTAXIIOptions{AdminGroup: "taxiway-admin"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := pool.Exec(ctx, `CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	sum, err := Run(ctx, pool, src, Options{Progress: os.Stderr, ProgressEvery: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	importRate := float64(sum.Objects) / sum.Elapsed.Seconds()
	t.Logf("imported %d object versions (%d objects) in %s: %.0f versions/s", sum.Objects, n, sum.Elapsed.Round(time.Millisecond), importRate)

	// The core's own ingest in the same conditions (the machine is shared,
	// so only a ratio from one run means much): Add Objects with
	// 1,000-object envelopes into a fresh collection, one client.
	ingestRate := ingestRate(t, pool, min(sum.Objects, 100_000))
	t.Logf("core ingest in the same run: %.0f objects/s; import/ingest = %.2f", ingestRate, importRate/ingestRate)
}

func ingestRate(t *testing.T, pool *pgxpool.Pool, objects int) float64 {
	t.Helper()
	ctx := context.Background()
	if err := taxiicore.AddAPIRoot(ctx, pool, taxiicore.APIRoot{Name: "ingest", Title: "ingest", MaxContentLength: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	col, err := taxiicore.AddCollection(ctx, pool, taxiicore.Collection{APIRoot: "ingest", Title: "ingest"})
	if err != nil {
		t.Fatal(err)
	}
	if err := taxiicore.SetGrant(ctx, pool, taxiicore.Grant{CollectionID: col.ID, Principal: "user:bench", Read: true, Write: true}); err != nil {
		t.Fatal(err)
	}
	srv, err := taxiicore.New(ctx, pool, taxiicore.DefaultConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	var elapsed time.Duration
	for done := 0; done < objects; done += 1000 {
		var b strings.Builder
		b.WriteString(`{"objects":[`)
		for i := range 1000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"type":"indicator","spec_version":"2.1","id":"indicator--%s","created":"2020-03-01T00:00:00.000Z",`+
				`"modified":"2020-03-01T00:00:00.000Z","name":"Indicator %d","description":"A bulk indicator for the import benchmark, about as large as a real one.",`+
				`"indicator_types":["malicious-activity"],"pattern":"[ipv4-addr:value = '10.0.%d.%d']","pattern_type":"stix",`+
				`"valid_from":"2020-03-01T00:00:00Z","labels":["benchmark"]}`, uuid.NewString(), done+i, i/256, i%256)
		}
		b.WriteString(`]}`)
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/ingest/collections/"+col.ID+"/objects/", strings.NewReader(b.String()))
		req.Header.Set("Accept", "application/taxii+json;version=2.1")
		req.Header.Set("Content-Type", "application/taxii+json;version=2.1")
		req.Header.Set("X-Authenticated-User", "bench")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		elapsed += time.Since(start)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("ingest: status %d", resp.StatusCode)
		}
	}
	return float64(objects) / elapsed.Seconds()
}
