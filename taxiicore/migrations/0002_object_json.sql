-- Objects come back as they were sent (README, "Hostile input"): json keeps
-- the text exactly as received (key order, number spelling, whitespace),
-- where jsonb normalises it, reorders keys and rewrites numbers such as
-- 1e999 as 1,000-digit integers or refuses them outside numeric's range.
-- No query reads inside the object: what filters and indexes need is in
-- columns. Rows stored before this migration keep jsonb's normalised text.
ALTER TABLE taxii_objects ALTER COLUMN object TYPE json USING object::text::json;
