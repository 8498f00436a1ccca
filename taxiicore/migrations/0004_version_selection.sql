-- TAXII 2.1 section 3.4.1: without match[spec_version] a listing returns
-- only the latest spec version of each object, and match[version]=last and
-- first pick among the versions "matching the remainder of the request"
-- (added_after and match[spec_version] included). Which versions those are
-- depends on added_after, so a flag per row cannot say it; a time can. Each
-- column is the latest date_added of a version of the same object that
-- would outrank the row (NULL: none does), so that "no outranking version
-- was added after T" is "col IS NULL OR col <= T", a filter on the row
-- itself, and every listing stays a range scan:
--   newer_at          a version with a later version (match[version]=last
--                     over every spec version);
--   older_at          one with an earlier version (first);
--   newer_in_spec_at  a later version in the same spec version (last within
--                     one spec version: the default, and one
--                     match[spec_version]);
--   older_in_spec_at  an earlier version in the same spec version (first);
--   newer_spec_at     a version in a later spec version (the spec_version
--                     default).
-- They replace is_latest (newer_at IS NULL) and is_first (older_at IS
-- NULL). Cores of the previous release cannot insert after this migration:
-- upgrade every core together.
ALTER TABLE taxii_objects
    ADD COLUMN newer_at timestamptz,
    ADD COLUMN older_at timestamptz,
    ADD COLUMN newer_in_spec_at timestamptz,
    ADD COLUMN older_in_spec_at timestamptz,
    ADD COLUMN newer_spec_at timestamptz;

-- Only versions of objects with several versions get a value. The window
-- definitions are the core's versionTimesSQL.
UPDATE taxii_objects o
SET newer_at = w.newer_at, older_at = w.older_at, newer_in_spec_at = w.newer_in_spec_at,
    older_in_spec_at = w.older_in_spec_at, newer_spec_at = w.newer_spec_at
FROM (SELECT collection_id, date_added,
        max(date_added) OVER (PARTITION BY collection_id, id ORDER BY version_key
            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS newer_at,
        max(date_added) OVER (PARTITION BY collection_id, id ORDER BY version_key
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS older_at,
        max(date_added) OVER (PARTITION BY collection_id, id, spec_version ORDER BY version_key
            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS newer_in_spec_at,
        max(date_added) OVER (PARTITION BY collection_id, id, spec_version ORDER BY version_key
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS older_in_spec_at,
        max(date_added) OVER (PARTITION BY collection_id, id ORDER BY spec_version COLLATE "C"
            GROUPS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS newer_spec_at
      FROM taxii_objects
      WHERE (collection_id, id) IN (SELECT collection_id, id FROM taxii_objects
                                    GROUP BY collection_id, id HAVING count(*) > 1)) w
WHERE o.collection_id = w.collection_id AND o.date_added = w.date_added;

DROP INDEX taxii_objects_latest;
ALTER TABLE taxii_objects DROP COLUMN is_latest, DROP COLUMN is_first;

-- Keyset scans for match[version]=last, with or without match[spec_version]
-- (the default): the versions that are the latest of their spec version
-- among those added after some T. Most rows are; the query's own filter
-- then skips the few that are not for its added_after.
CREATE INDEX taxii_objects_latest ON taxii_objects (collection_id, date_added)
    WHERE newer_in_spec_at IS NULL OR newer_in_spec_at < date_added;
