-- Revocation: account versions and the revocation feed the gateways follow.

-- Every account carries a version from one global sequence; tokens carry the
-- version they were issued at (claim account_version). A change that must
-- void an account's tokens gives it a new version and appends the lowest
-- valid version to the feed. Global, so that an account deleted and created
-- again never reuses a version.
CREATE SEQUENCE token_account_versions;
ALTER TABLE token_accounts ADD COLUMN version bigint NOT NULL DEFAULT nextval('token_account_versions');

-- The feed: one row per revocation, in commit order (seq). Either every
-- token of an account below min_version, or one token by jti. Rows are kept
-- until keep_until, past the exp of every token they can refuse, and then
-- pruned; a gateway reading from cursor 0 therefore gets the whole state.
CREATE SEQUENCE token_revocation_seq;
CREATE TABLE token_revocations (
    seq         bigint PRIMARY KEY,
    username    text,
    min_version bigint,
    jti         text,
    -- The account is disabled (or deleted) as of this entry: gateways
    -- refuse its Basic credentials without asking the token service.
    disabled    boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    keep_until  timestamptz NOT NULL,
    CHECK ((username IS NOT NULL AND min_version IS NOT NULL AND jti IS NULL)
        OR (jti IS NOT NULL AND username IS NULL AND min_version IS NULL))
);
CREATE INDEX token_revocations_keep_until ON token_revocations (keep_until);
CREATE INDEX token_revocations_username ON token_revocations (username) WHERE username IS NOT NULL;

-- seq is taken under a transaction-scoped advisory lock, so that seq order
-- is commit order: a reader that has seen seq n has seen every row below n,
-- and a cursor never skips a row committed late. Revocations are rare admin
-- actions; the lock costs nothing that matters. The notification wakes the
-- token services' long polls at commit.
CREATE FUNCTION token_revocations_sequence() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(8679428461252670835); -- "taxiway revocations"
    NEW.seq := nextval('token_revocation_seq');
    PERFORM pg_notify('taxiway_revocations', NEW.seq::text);
    RETURN NEW;
END $$;
CREATE TRIGGER token_revocations_sequence BEFORE INSERT ON token_revocations
    FOR EACH ROW EXECUTE FUNCTION token_revocations_sequence();

-- Any change of not_before (password, disable/enable, "revoke all"), of the
-- groups or of the disabled flag voids the account's tokens, whoever makes
-- it (admin commands, sync, plain SQL). A re-hash on login changes only
-- password_hash and voids nothing. Account rows are kept 25 hours: past the
-- longest token lifetime the token service allows (24h) and any leeway.
CREATE FUNCTION token_accounts_revoke() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- An account created again under a deleted one's name: publish it,
        -- so that gateways stop treating the name as deleted.
        IF EXISTS (SELECT 1 FROM token_revocations WHERE username = NEW.username) THEN
            INSERT INTO token_revocations (username, min_version, disabled, keep_until)
                VALUES (NEW.username, NEW.version, NEW.disabled, clock_timestamp() + interval '25 hours');
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO token_revocations (username, min_version, disabled, keep_until)
            VALUES (OLD.username, nextval('token_account_versions'), true, clock_timestamp() + interval '25 hours');
        RETURN OLD;
    END IF;
    IF NEW.not_before IS DISTINCT FROM OLD.not_before OR NEW.groups IS DISTINCT FROM OLD.groups
            OR NEW.disabled IS DISTINCT FROM OLD.disabled THEN
        NEW.version := nextval('token_account_versions');
        INSERT INTO token_revocations (username, min_version, disabled, keep_until)
            VALUES (NEW.username, NEW.version, NEW.disabled, clock_timestamp() + interval '25 hours');
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER token_accounts_revoke_update BEFORE UPDATE ON token_accounts
    FOR EACH ROW EXECUTE FUNCTION token_accounts_revoke();
CREATE TRIGGER token_accounts_revoke_delete AFTER DELETE ON token_accounts
    FOR EACH ROW EXECUTE FUNCTION token_accounts_revoke();
CREATE TRIGGER token_accounts_revoke_insert AFTER INSERT ON token_accounts
    FOR EACH ROW EXECUTE FUNCTION token_accounts_revoke();
