package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	collectionPath = "/" + benchRoot + "/collections/" + benchCollection
	objectsPath    = collectionPath + "/objects/"
)

// pathPoints are the places in the collection the read measurements name.
type pathPoints struct {
	multiID  string    // an object with several versions
	middleID string    // an object from the middle of the collection
	nearEnd  time.Time // an added_after 200 rows before the end
}

type readPath struct{ name, path string }

// readPaths are the timed reads, in report order: the first two give the
// last/first page ratio.
func readPaths(p pathPoints) []readPath {
	nearEnd := url.QueryEscape(p.nearEnd.UTC().Format("2006-01-02T15:04:05.000000Z"))
	return []readPath{
		{"objects limit=100, first page", objectsPath + "?limit=100"},
		{"objects limit=100, page near the end (added_after)", objectsPath + "?limit=100&added_after=" + nearEnd},
		{"objects match[id] (one object)", objectsPath + "?match[id]=" + p.middleID},
		{"objects match[type]=malware limit=100", objectsPath + "?match[type]=malware&limit=100"},
		{"objects match[type]=malware limit=100, near the end", objectsPath + "?match[type]=malware&limit=100&added_after=" + nearEnd},
		{"objects match[version]=all limit=100", objectsPath + "?match[version]=all&limit=100"},
		{"manifest limit=100, first page", collectionPath + "/manifest/?limit=100"},
		{"manifest limit=100, near the end", collectionPath + "/manifest/?limit=100&added_after=" + nearEnd},
		{"versions of one object (3 versions)", objectsPath + p.multiID + "/versions/"},
		{"get an object", objectsPath + p.multiID + "/"},
	}
}

// pointsFrom finds the path points in a loaded database with queries on the
// columns every schema version has (id, date_added), so that a baseline
// loaded by an older benchcore is measured at the same places as this one.
func pointsFrom(ctx context.Context, pool *pgxpool.Pool) (pathPoints, error) {
	var p pathPoints
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM taxii_objects WHERE collection_id = $1`, benchCollection).Scan(&rows); err != nil {
		return p, fmt.Errorf("counting the loaded rows: %w", err)
	}
	if rows < 400 {
		return p, fmt.Errorf("%d rows loaded: too few to measure", rows)
	}
	err := pool.QueryRow(ctx, `SELECT id FROM taxii_objects WHERE collection_id = $1
		GROUP BY id HAVING count(*) > 1 ORDER BY min(date_added) LIMIT 1`, benchCollection).Scan(&p.multiID)
	if err != nil {
		return p, fmt.Errorf("finding an object with several versions: %w", err)
	}
	err = pool.QueryRow(ctx, `SELECT id FROM taxii_objects WHERE collection_id = $1
		ORDER BY date_added OFFSET $2 LIMIT 1`, benchCollection, rows/2).Scan(&p.middleID)
	if err != nil {
		return p, fmt.Errorf("finding an object in the middle: %w", err)
	}
	err = pool.QueryRow(ctx, `SELECT date_added FROM taxii_objects WHERE collection_id = $1
		ORDER BY date_added DESC OFFSET 199 LIMIT 1`, benchCollection).Scan(&p.nearEnd)
	if err != nil {
		return p, fmt.Errorf("finding a position near the end: %w", err)
	}
	p.nearEnd = p.nearEnd.Add(-time.Microsecond)
	return p, nil
}
