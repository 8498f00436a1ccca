-- Accounts, signing keys and failed-login windows of the token service.
-- Tables carry a token_ prefix: the core may share the database.

CREATE TABLE token_accounts (
    username      text PRIMARY KEY,
    -- PHC argon2id, bcrypt, or an imported Werkzeug pbkdf2:/scrypt: hash.
    password_hash text NOT NULL,
    groups        text[] NOT NULL DEFAULT '{}',
    disabled      boolean NOT NULL DEFAULT false,
    -- No token is issued before this instant; a password change or a
    -- disable moves it forward so verifiers may refuse older tokens.
    not_before    timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE token_signing_keys (
    kid         text PRIMARY KEY,
    alg         text NOT NULL,
    -- Ed25519 seed (32 bytes), or AES-256-GCM sealed seed when encrypted.
    private_key bytea NOT NULL,
    encrypted   boolean NOT NULL DEFAULT false,
    public_key  bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- Set when a newer key replaces this one; the public key stays in the
    -- JWKS until tokens signed before then have expired.
    retired_at  timestamptz
);

-- At most one key signs at a time.
CREATE UNIQUE INDEX token_signing_keys_one_active ON token_signing_keys ((true)) WHERE retired_at IS NULL;

-- Fixed windows of failed logins, keyed by a hash of the scope (client
-- address, or username and address), shared by every replica.
CREATE TABLE token_login_failures (
    key          bytea PRIMARY KEY,
    window_start timestamptz NOT NULL,
    failures     integer NOT NULL
);

CREATE INDEX token_login_failures_window ON token_login_failures (window_start);
