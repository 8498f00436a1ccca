package taxiicore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Which versions of an object a listing returns (TAXII 2.1 section 3.4.1)
// depends on the versions "matching the remainder of the request", and so
// on added_after. Each stored version therefore keeps, on write, the latest
// date_added of a version of the same object that outranks it in each sense
// below (migration 0004; NULL when none does). A version is, say, the
// latest among those added after T exactly when its newer_at is NULL or
// not after T: a condition on the row alone, so listings stay range scans.
//
// Spec versions compare as strings: the core stores only 2.0 and 2.1.
type versionTimes struct {
	newer, older             pgtype.Timestamptz // a later / earlier version
	newerInSpec, olderInSpec pgtype.Timestamptz // the same, within the row's spec version
	newerSpec                pgtype.Timestamptz // any version in a later spec version
}

// versionTimeColumns are the columns of versionTimes, in its order.
var versionTimeColumns = []string{"newer_at", "older_at", "newer_in_spec_at", "older_in_spec_at", "newer_spec_at"}

// storedVersion is one version of an object as far as flags need it.
type storedVersion struct {
	key, version, spec string
	added              time.Time
}

// timesOf computes v's versionTimes among all, the object's every version
// (v included).
func timesOf(v storedVersion, all []storedVersion) versionTimes {
	var t versionTimes
	later := func(dst *pgtype.Timestamptz, at time.Time) {
		if !dst.Valid || at.After(dst.Time) {
			*dst = pgtype.Timestamptz{Time: at, Valid: true}
		}
	}
	for _, o := range all {
		switch {
		case o.key > v.key:
			later(&t.newer, o.added)
			if o.spec == v.spec {
				later(&t.newerInSpec, o.added)
			}
		case o.key < v.key:
			later(&t.older, o.added)
			if o.spec == v.spec {
				later(&t.olderInSpec, o.added)
			}
		}
		if o.spec > v.spec {
			later(&t.newerSpec, o.added)
		}
	}
	return t
}

func (t versionTimes) values() []any {
	return []any{t.newer, t.older, t.newerInSpec, t.olderInSpec, t.newerSpec}
}

// versionTimesSelect computes the versionTimes of the rows of from (a table
// with the taxii_objects columns and its WHERE clause), with their
// date_added. The migration that added the columns fills them the same way.
func versionTimesSelect(from string) string {
	return `SELECT date_added,
		max(date_added) OVER (PARTITION BY id ORDER BY version_key ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS newer_at,
		max(date_added) OVER (PARTITION BY id ORDER BY version_key ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS older_at,
		max(date_added) OVER (PARTITION BY id, spec_version ORDER BY version_key ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS newer_in_spec_at,
		max(date_added) OVER (PARTITION BY id, spec_version ORDER BY version_key ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS older_in_spec_at,
		max(date_added) OVER (PARTITION BY id ORDER BY spec_version COLLATE "C" GROUPS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS newer_spec_at
	FROM ` + from
}

// fixVersionFlagsSQL recomputes the versionTimes (what were the latest and
// first flags before migration 0004) of every version of the
// ids in $2 of collection $1, after versions were added or deleted, and
// writes the rows whose values changed.
var fixVersionFlagsSQL = `UPDATE taxii_objects o
	SET newer_at = w.newer_at, older_at = w.older_at, newer_in_spec_at = w.newer_in_spec_at,
		older_in_spec_at = w.older_in_spec_at, newer_spec_at = w.newer_spec_at
	FROM (` + versionTimesSelect("taxii_objects WHERE collection_id = $1 AND id = ANY($2)") + `) w
	WHERE o.collection_id = $1 AND o.date_added = w.date_added
	  AND (o.newer_at, o.older_at, o.newer_in_spec_at, o.older_in_spec_at, o.newer_spec_at)
	      IS DISTINCT FROM (w.newer_at, w.older_at, w.newer_in_spec_at, w.older_in_spec_at, w.newer_spec_at)`

// fixVersionFlags runs fixVersionFlagsSQL on its own.
func fixVersionFlags(ctx context.Context, tx pgx.Tx, collection uuid.UUID, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, fixVersionFlagsSQL, collection, ids); err != nil {
		return fmt.Errorf("updating the version times: %w", err)
	}
	return nil
}
