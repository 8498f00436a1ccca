-- Password changes: a new password_hash voids the account's tokens whoever
-- writes it (admin commands, sync, plain SQL); only a re-hash on login
-- (which marks itself by setting password_rehashed_at) does not.
--
-- password_source is the SHA-256 (hex) of the hash an admin last gave the
-- account. A re-hash keeps it, so that `taxiway sync` can tell that the
-- stored Argon2id hash was derived from the hash its file lists and leave
-- the account alone, instead of writing the old hash back. It reveals
-- nothing a guesser could use: the source hash's salt is not stored.
ALTER TABLE token_accounts
    ADD COLUMN password_source text,
    ADD COLUMN password_rehashed_at timestamptz;
UPDATE token_accounts SET password_source = encode(sha256(convert_to(password_hash, 'UTF8')), 'hex');
ALTER TABLE token_accounts ALTER COLUMN password_source SET NOT NULL;

CREATE FUNCTION token_accounts_password_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.password_source := encode(sha256(convert_to(NEW.password_hash, 'UTF8')), 'hex');
        RETURN NEW;
    END IF;
    IF NEW.password_hash IS NOT DISTINCT FROM OLD.password_hash THEN
        RETURN NEW;
    END IF;
    IF NEW.password_rehashed_at IS DISTINCT FROM OLD.password_rehashed_at THEN
        -- A re-hash of the same password: the source stays, nothing is voided.
        NEW.password_source := OLD.password_source;
        RETURN NEW;
    END IF;
    NEW.password_source := encode(sha256(convert_to(NEW.password_hash, 'UTF8')), 'hex');
    -- Moving not_before is what voids the tokens: token_accounts_revoke
    -- (which fires after this trigger, by name order) publishes it.
    IF NEW.not_before IS NOT DISTINCT FROM OLD.not_before THEN
        NEW.not_before := clock_timestamp();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER token_accounts_password_change BEFORE INSERT OR UPDATE ON token_accounts
    FOR EACH ROW EXECUTE FUNCTION token_accounts_password_change();
