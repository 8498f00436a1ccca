-- Grants for collections that live on another TAXII server (a fronted
-- backend): the gateways' taxii_policy enforces them. The same model as the
-- core's grants (user:, group:, authenticated, anonymous; read and write),
-- keyed by the backend's name (what taxii_policy's backend option selects),
-- the API root's path as the backend sees it, and the collection's id.

CREATE TABLE token_fronted_backends (
    name             text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'),
    -- Callers without credentials may read the backend's discovery resource.
    public_discovery boolean NOT NULL DEFAULT false
);

CREATE TABLE token_fronted_roots (
    backend text NOT NULL REFERENCES token_fronted_backends (name) ON DELETE CASCADE,
    -- /api1/ or /taxii/api1/: segments of unreserved characters, no dot segments.
    path    text NOT NULL CHECK (path ~ '^(/[A-Za-z0-9._~-]+)+/$' AND path !~ '/\.\.?/'),
    -- Callers without credentials may read the API root's resource and its
    -- collection list (which shows only collections granted to anonymous).
    public  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (backend, path)
);

CREATE TABLE token_fronted_collections (
    backend   text NOT NULL,
    root_path text NOT NULL,
    -- Lower-case UUID text, any version (imported servers keep their own).
    id        text NOT NULL CHECK (id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    -- The backend's alias of the collection, when it has one: requests by
    -- alias are judged as requests by id.
    alias     text CHECK (alias ~ '^[A-Za-z0-9._~-]{1,128}$'),
    PRIMARY KEY (backend, root_path, id),
    FOREIGN KEY (backend, root_path) REFERENCES token_fronted_roots (backend, path) ON DELETE CASCADE
);
-- Aliases are matched without regard to case (a backend may do so).
CREATE UNIQUE INDEX token_fronted_collections_alias ON token_fronted_collections (backend, root_path, lower(alias));

CREATE TABLE token_fronted_grants (
    backend       text NOT NULL,
    root_path     text NOT NULL,
    collection_id text NOT NULL,
    principal     text NOT NULL
                  CHECK (principal IN ('authenticated', 'anonymous') OR principal ~ '^(user|group):[^,]+$'),
    can_read      boolean NOT NULL,
    can_write     boolean NOT NULL CHECK (can_read OR can_write),
    PRIMARY KEY (backend, root_path, collection_id, principal),
    FOREIGN KEY (backend, root_path, collection_id)
        REFERENCES token_fronted_collections (backend, root_path, id) ON DELETE CASCADE
);

-- The version the gateways follow (GET /internal/policy). Every statement
-- that changes a table above moves it on in the same transaction, so that a
-- snapshot read in one transaction holds the data of exactly its version,
-- and notifies the token services, whose long polls then answer at once.
CREATE TABLE token_fronted_policy (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);
INSERT INTO token_fronted_policy (version) VALUES (1);

CREATE FUNCTION token_fronted_policy_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE v bigint;
BEGIN
    UPDATE token_fronted_policy SET version = version + 1 RETURNING version INTO v;
    PERFORM pg_notify('taxiway_policy', v::text);
    RETURN NULL;
END $$;
CREATE TRIGGER token_fronted_backends_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON token_fronted_backends
    FOR EACH STATEMENT EXECUTE FUNCTION token_fronted_policy_changed();
CREATE TRIGGER token_fronted_roots_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON token_fronted_roots
    FOR EACH STATEMENT EXECUTE FUNCTION token_fronted_policy_changed();
CREATE TRIGGER token_fronted_collections_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON token_fronted_collections
    FOR EACH STATEMENT EXECUTE FUNCTION token_fronted_policy_changed();
CREATE TRIGGER token_fronted_grants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON token_fronted_grants
    FOR EACH STATEMENT EXECUTE FUNCTION token_fronted_policy_changed();
