package importcmd

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taxiway/taxiway/internal/pgtest"
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
	t.Logf("imported %d object versions (%d objects) in %s: %.0f versions/s", sum.Objects, n, sum.Elapsed.Round(time.Millisecond),
		float64(sum.Objects)/sum.Elapsed.Seconds())
}
