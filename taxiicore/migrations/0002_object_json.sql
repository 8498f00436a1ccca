-- Objects come back as they were sent (README, "Hostile input"): json keeps
-- the text exactly as received (key order, number spelling, whitespace),
-- where jsonb normalises it, reorders keys and rewrites numbers such as
-- 1e999 as 1,000-digit integers or refuses them outside numeric's range.
-- No query reads inside the object: what filters and indexes need is in
-- columns. Rows stored before this migration keep jsonb's normalised text.
ALTER TABLE taxii_objects ALTER COLUMN object TYPE json USING object::text::json;

-- The object's length in bytes, so that a page can be cut by size (the
-- page byte cap) without reading the objects it leaves out: octet_length
-- of json goes through its text form and would detoast every one. The
-- default keeps cores of the previous release inserting during a rolling
-- upgrade; their rows only cost the cap's SQL some precision (the core
-- still cuts the page exactly).
ALTER TABLE taxii_objects ADD COLUMN object_size integer NOT NULL DEFAULT 0;
UPDATE taxii_objects SET object_size = octet_length(object::text);

-- The largest object_size a collection ever held (kept on write, never
-- lowered): a listing whose limit times this fits in the page byte cap
-- needs no size accounting at all, which is every collection of ordinary
-- STIX objects.
ALTER TABLE taxii_collections ADD COLUMN max_object_size integer NOT NULL DEFAULT 0;
UPDATE taxii_collections c SET max_object_size = coalesce(
    (SELECT max(object_size) FROM taxii_objects o WHERE o.collection_id = c.id), 0);
