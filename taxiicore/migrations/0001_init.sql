-- Taxiway TAXII 2.1 core schema. Every table is prefixed taxii_ so the core
-- can share a database with the token service.

-- API roots: the path segment is the name (/api1/ for name api1).
CREATE TABLE taxii_api_roots (
    name               text PRIMARY KEY
                       CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$' AND name <> 'taxii2'),
    title              text NOT NULL CHECK (title <> ''),
    description        text NOT NULL DEFAULT '',
    max_content_length bigint NOT NULL
                       CHECK (max_content_length > 0 AND max_content_length <= 9007199254740991)
);

-- One row: the discovery resource and the key that signs paging cursors, kept
-- here so that every replica agrees and cursors survive restarts.
CREATE TABLE taxii_settings (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    title        text NOT NULL DEFAULT 'Taxiway' CHECK (title <> ''),
    description  text NOT NULL DEFAULT '',
    contact      text NOT NULL DEFAULT '',
    default_root text REFERENCES taxii_api_roots (name) ON DELETE SET NULL,
    cursor_key   bytea CHECK (length(cursor_key) >= 32)
);

CREATE TABLE taxii_collections (
    id              uuid PRIMARY KEY,
    api_root        text NOT NULL REFERENCES taxii_api_roots (name) ON DELETE CASCADE,
    title           text NOT NULL CHECK (title <> ''),
    description     text NOT NULL DEFAULT '',
    alias           text CHECK (alias <> ''),
    -- The last date_added handed out; the row is also the per-collection
    -- lock that makes date_added strictly increasing in commit order.
    last_date_added timestamptz NOT NULL DEFAULT '-infinity',
    UNIQUE (api_root, alias)
);
CREATE INDEX taxii_collections_root ON taxii_collections (api_root, id);

CREATE TABLE taxii_grants (
    collection_id uuid NOT NULL REFERENCES taxii_collections (id) ON DELETE CASCADE,
    principal     text NOT NULL
                  CHECK (principal = 'authenticated' OR principal ~ '^(user|group):.+$'),
    can_read      boolean NOT NULL,
    can_write     boolean NOT NULL,
    PRIMARY KEY (collection_id, principal)
);

-- One row per object version. version keeps the string as received;
-- version_key is the parsed instant as a fixed-width 9-fraction-digit string,
-- so it compares and sorts at full precision.
-- No foreign key to taxii_collections: a per-row check would cost Add
-- Objects a third of its time. Rows are only inserted under the collection's
-- row lock, and the trigger below removes them with their collection.
CREATE TABLE taxii_objects (
    collection_id uuid NOT NULL,
    date_added    timestamptz NOT NULL,
    id            text NOT NULL,
    type          text NOT NULL,
    version       text NOT NULL,
    version_key   text NOT NULL,
    spec_version  text NOT NULL,
    is_latest     boolean NOT NULL,
    is_first      boolean NOT NULL,
    object        jsonb NOT NULL,
    PRIMARY KEY (collection_id, date_added),
    UNIQUE (collection_id, id, version_key)
);
-- Keyset scans for the default (latest version) and match[type] queries. The
-- type index also serves latest-only type queries (most rows are latest, so
-- the is_latest filter skips little); one index fewer keeps ingest fast.
CREATE INDEX taxii_objects_latest ON taxii_objects (collection_id, date_added) WHERE is_latest;
CREATE INDEX taxii_objects_type ON taxii_objects (collection_id, type, date_added);

CREATE FUNCTION taxii_collection_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM taxii_objects WHERE collection_id = OLD.id;
    RETURN OLD;
END $$;
CREATE TRIGGER taxii_collection_deleted AFTER DELETE ON taxii_collections
    FOR EACH ROW EXECUTE FUNCTION taxii_collection_deleted();

CREATE TABLE taxii_statuses (
    id                uuid PRIMARY KEY,
    api_root          text NOT NULL,
    collection_id     uuid NOT NULL REFERENCES taxii_collections (id) ON DELETE CASCADE,
    created_by        text NOT NULL,
    request_timestamp timestamptz NOT NULL,
    total_count       integer NOT NULL,
    success_count     integer NOT NULL,
    failure_count     integer NOT NULL,
    pending_count     integer NOT NULL,
    -- The detail lists, kept as the core wrote them (json, not jsonb: they
    -- are only ever read back whole, and parsing ~80 kB of jsonb would cost
    -- every 1,000-object Add Objects request).
    successes         json,
    failures          json
);
CREATE INDEX taxii_statuses_time ON taxii_statuses (request_timestamp);
