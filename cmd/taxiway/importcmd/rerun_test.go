package importcmd

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestImportOpenTAXIIAgainAtTheSwitch imports an OpenTAXII database, lets
// OpenTAXII take objects and jobs as it would until the switch, and imports
// again: every version the first run missed comes over after what is there,
// statuses come only with their objects, and -public-discovery holds on a
// later run.
func TestImportOpenTAXIIAgainAtTheSwitch(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	url := openTAXIIFixture(t)
	run := func(opts OpenTAXIIOptions, skipBad bool) (Summary, error) {
		t.Helper()
		opts.AdminGroup = "taxiway-admin"
		src, err := ReadOpenTAXII(ctx, url, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		return Run(ctx, pool, src, Options{SkipBad: skipBad})
	}
	if sum, err := run(OpenTAXIIOptions{}, false); err != nil || sum.Objects != 127 {
		t.Fatalf("first run: %v %+v", err, sum)
	}
	if n := count(t, pool, `SELECT count(*) FROM taxii_api_roots WHERE max_content_length = 209715200`); n != 2 {
		t.Fatalf("%d API roots have OpenTAXII's max_content_length", n)
	}
	var lastBefore string
	if err := pool.QueryRow(ctx, `SELECT last_date_added::text FROM taxii_collections WHERE id = 'a1b2c3d4-0000-1000-8000-000000000001'`).Scan(&lastBefore); err != nil {
		t.Fatal(err)
	}

	// OpenTAXII goes on: a new version of an object, a new object, both
	// with jobs; an object holding \u0000 (which its json column keeps)
	// with a job; an object dated in the future.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const intel, admins = "a1b2c3d4-0000-1000-8000-000000000001", "c4c4c4c4-4444-4444-8444-444444444444"
	if _, err := conn.Exec(ctx, `
		INSERT INTO opentaxii_stixobject VALUES
		  ('00000000-0000-4000-8000-00000000a001', 'indicator--11111111-1111-4111-8111-111111111111', '`+intel+`', 'indicator', '2.1',
		   now() AT TIME ZONE 'UTC' - interval '1 hour', '2020-03-01 00:00:00',
		   '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-03-01T00:00:00.000Z", "name": "newer", "pattern": "[ipv4-addr:value = ''198.51.100.9'']", "pattern_type": "stix", "valid_from": "2020-01-01T00:00:00.000Z"}'),
		  ('00000000-0000-4000-8000-00000000a002', 'malware--44444444-4444-4444-8444-444444444444', '`+intel+`', 'malware', '2.1',
		   now() AT TIME ZONE 'UTC' - interval '30 minutes', '2020-01-01 00:00:00',
		   '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", "name": "new", "is_family": false}'),
		  ('00000000-0000-4000-8000-00000000a003', 'malware--55555555-5555-4555-8555-555555555555', '`+admins+`', 'malware', '2.1',
		   now() AT TIME ZONE 'UTC' - interval '20 minutes', '2020-01-01 00:00:00',
		   '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", "name": "nul\u0000here", "is_family": false}'),
		  ('00000000-0000-4000-8000-00000000a004', 'malware--66666666-6666-4666-8666-666666666666', '`+admins+`', 'malware', '2.1',
		   '9999-12-31 23:59:59.999999', '2020-01-01 00:00:00',
		   '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", "name": "future", "is_family": false}');
		INSERT INTO opentaxii_job VALUES
		  ('9a9a9a9a-0000-4000-8000-00000000b001', '6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'complete', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', 2, 2, 0, 0),
		  ('9a9a9a9a-0000-4000-8000-00000000b002', '6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'complete', now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC', 1, 1, 0, 0);
		INSERT INTO opentaxii_job_detail VALUES
		  ('9a9a9a9a-0000-4000-8000-00000000c001', '9a9a9a9a-0000-4000-8000-00000000b001', 'indicator--11111111-1111-4111-8111-111111111111', '2020-03-01 00:00:00', '', 'success'),
		  ('9a9a9a9a-0000-4000-8000-00000000c002', '9a9a9a9a-0000-4000-8000-00000000b001', 'malware--44444444-4444-4444-8444-444444444444', '2020-01-01 00:00:00', '', 'success'),
		  ('9a9a9a9a-0000-4000-8000-00000000c003', '9a9a9a9a-0000-4000-8000-00000000b002', 'malware--55555555-5555-4555-8555-555555555555', '2020-01-01 00:00:00', '', 'success');`); err != nil {
		t.Fatal(err)
	}

	sum, err := run(OpenTAXIIOptions{PublicDiscovery: true}, true)
	report := strings.Join(sum.Lines, "\n")
	if err == nil || sum.CollectionsUpdated != 1 || sum.CollectionsKept != 3 || sum.Objects != 2 || sum.Present != 127 ||
		sum.StatusesImported != 1 || sum.StatusesKept != 1 || sum.StatusesWaiting != 1 {
		t.Fatalf("second run: %v %+v\n%s", err, sum, report)
	}
	for _, want := range []string{`\u0000`, "lies in the future", "status 9a9a9a9a-0000-4000-8000-00000000b002: left out", "made public (-public-discovery)"} {
		if !strings.Contains(report, want) {
			t.Errorf("the report does not say %q:\n%s", want, report)
		}
	}
	// The new versions come after what was there; the newest version is
	// the latest one, once.
	if n := count(t, pool, `SELECT count(*) FROM taxii_objects WHERE collection_id = $1 AND date_added > $2::timestamptz`, intel, lastBefore); n != 2 {
		t.Fatalf("%d versions after the first run's last date_added", n)
	}
	if n := count(t, pool, `SELECT count(*) FROM taxii_objects WHERE id = 'indicator--11111111-1111-4111-8111-111111111111' AND newer_at IS NULL AND version = '2020-03-01T00:00:00.000Z'`); n != 1 {
		t.Fatal("the new version is not the latest")
	}
	if n := count(t, pool, `SELECT count(*) FROM taxii_objects WHERE id = 'indicator--11111111-1111-4111-8111-111111111111' AND newer_at IS NULL`); n != 1 {
		t.Fatal("more than one latest version")
	}
	if n := count(t, pool, `SELECT count(*) FROM taxii_statuses WHERE id = '9a9a9a9a-0000-4000-8000-00000000b002'`); n != 0 {
		t.Fatal("a status naming an object not imported was imported")
	}
	if n := count(t, pool, `SELECT count(*) FROM taxii_settings WHERE public_discovery`); n != 1 {
		t.Fatal("-public-discovery on a later run did nothing")
	}

	// Once the bad objects are fixed at the source, a last run brings them
	// and the status that waited for them.
	if _, err := conn.Exec(ctx, `UPDATE opentaxii_stixobject SET serialized_data = '{"created": "2020-01-01T00:00:00.000Z", "modified": "2020-01-01T00:00:00.000Z", "name": "fixed", "is_family": false}'
		WHERE pk = '00000000-0000-4000-8000-00000000a003'; DELETE FROM opentaxii_stixobject WHERE pk = '00000000-0000-4000-8000-00000000a004'`); err != nil {
		t.Fatal(err)
	}
	sum, err = run(OpenTAXIIOptions{}, false)
	if err != nil || sum.Objects != 1 || sum.CollectionsUpdated != 1 || sum.CollectionsKept != 3 || sum.StatusesImported != 1 || sum.StatusesWaiting != 0 {
		t.Fatalf("third run: %v %+v\n%s", err, sum, strings.Join(sum.Lines, "\n"))
	}
}

// TestImportOpenTAXIIManyJobs reads 10,000 jobs over 20,000 objects: all
// become statuses (the jobs are read in one pass; see BENCHMARKS.md for
// the time).
func TestImportOpenTAXIIManyJobs(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	url := openTAXIIFixture(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const intel, root = "a1b2c3d4-0000-1000-8000-000000000001", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	if _, err := conn.Exec(ctx, `
		INSERT INTO opentaxii_stixobject
		SELECT gen_random_uuid(), 'indicator--' || md5('bulk' || i)::uuid, '`+intel+`', 'indicator', '2.1',
		       timestamp '2022-01-01 00:00:00' + i * interval '1 millisecond', timestamp '2020-01-01 00:00:00',
		       json_build_object('created', '2020-01-01T00:00:00.000Z', 'modified', '2020-01-01T00:00:00.000Z', 'name', 'bulk ' || i,
		                         'pattern', '[ipv4-addr:value = ''198.51.100.1'']', 'pattern_type', 'stix', 'valid_from', '2020-01-01T00:00:00.000Z')
		FROM generate_series(1, 20000) i;
		INSERT INTO opentaxii_job
		SELECT md5('job' || j)::uuid, '`+root+`', 'complete', timestamp '2022-01-01 00:00:00' + j * interval '1 second', NULL, 2, 2, 0, 0
		FROM generate_series(1, 10000) j;
		INSERT INTO opentaxii_job_detail
		SELECT gen_random_uuid(), md5('job' || j)::uuid, 'indicator--' || md5('bulk' || (2 * j - k))::uuid, timestamp '2020-01-01 00:00:00', '', 'success'
		FROM generate_series(1, 10000) j, generate_series(0, 1) k;`); err != nil {
		t.Fatal(err)
	}
	src, err := ReadOpenTAXII(ctx, url, OpenTAXIIOptions{AdminGroup: "taxiway-admin"})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var progress strings.Builder
	sum, err := Run(ctx, pool, src, Options{Progress: &progress})
	if err != nil || sum.StatusesImported != 10001 || sum.StatusesWaiting != 0 {
		t.Fatalf("%v %+v", err, sum)
	}
	if n := count(t, pool, `SELECT count(*) FROM taxii_statuses WHERE success_count = 2`); n != 10001 {
		t.Fatalf("%d statuses with their two successes", n)
	}
	if !strings.Contains(progress.String(), "read 10001 jobs in ") {
		t.Fatalf("progress:\n%s", progress.String())
	}
	t.Logf("%s", progress.String())
}
