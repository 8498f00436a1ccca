package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ingestObject is one new indicator as the ingest measurement posts it.
func ingestObject() map[string]any {
	return map[string]any{"type": "indicator", "spec_version": "2.1", "id": "indicator--" + uuid.NewString(),
		"created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z", "name": "ingested",
		"pattern": "[ipv4-addr:value = '203.0.113.1']", "pattern_type": "stix", "valid_from": "2025-01-01T00:00:00Z"}
}

// copyFloor is the floor beside the ingest figure: the rows the core would
// store for the same envelopes (same table, indexes and Postgres settings,
// in the same run) loaded by raw COPY, one transaction per 1,000 rows, from
// one client, after the same untimed warm-up and checkpoint. It returns rows
// per second. What the core adds on top: HTTP, parsing and checking every
// object, reading the posted ids' stored versions, the collection lock and
// date_added allocation, the status row, and the round trips between them.
func copyFloor(ctx context.Context, ld *loader, warmup, envelopes int) (float64, error) {
	collection := uuid.MustParse(benchCollection)
	var last time.Time
	if err := ld.pool.QueryRow(ctx, `SELECT last_date_added FROM taxii_collections WHERE id = $1`, collection).Scan(&last); err != nil {
		return 0, fmt.Errorf("reading the collection's last date_added: %w", err)
	}
	build := func(n int) [][][]any {
		batches := make([][][]any, n)
		for b := range batches {
			rows := make([][]any, 1000)
			for i := range rows {
				last = last.Add(time.Microsecond)
				o := ingestObject()
				raw, _ := json.Marshal(o)
				rows[i] = []any{collection, last, o["id"], "indicator", "2025-01-01T00:00:00.000Z",
					"2025-01-01T00:00:00.000000000Z", "2.1", raw}
			}
			batches[b] = rows
		}
		return batches
	}
	load := func(batches [][][]any) error {
		for _, rows := range batches {
			if _, err := ld.pool.CopyFrom(ctx, pgx.Identifier{"taxii_objects"},
				[]string{"collection_id", "date_added", "id", "type", "version", "version_key", "spec_version", "object"},
				pgx.CopyFromRows(rows)); err != nil {
				return fmt.Errorf("COPY floor: %w", err)
			}
		}
		return nil
	}
	if err := load(build(warmup)); err != nil {
		return 0, err
	}
	timed := build(envelopes)
	// Keep the core's invariant: date_added increases past every stored row.
	if _, err := ld.pool.Exec(ctx, `UPDATE taxii_collections SET last_date_added = $2 WHERE id = $1`, collection, last); err != nil {
		return 0, err
	}
	if _, err := ld.pool.Exec(ctx, "CHECKPOINT"); err != nil {
		return 0, fmt.Errorf("checkpoint before the COPY floor: %w", err)
	}
	start := time.Now()
	if err := load(timed); err != nil {
		return 0, err
	}
	return float64(envelopes*1000) / time.Since(start).Seconds(), nil
}
