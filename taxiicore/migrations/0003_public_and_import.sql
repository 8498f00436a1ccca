-- Public collections and imports from OpenTAXII and medallion.

-- The principal anonymous: callers without credentials, when the gateway lets
-- them through.
ALTER TABLE taxii_grants DROP CONSTRAINT taxii_grants_principal_check;
ALTER TABLE taxii_grants ADD CONSTRAINT taxii_grants_principal_check
    CHECK (principal IN ('authenticated', 'anonymous') OR principal ~ '^(user|group):.+$');

-- Whether anonymous callers may read the discovery resource and an API
-- root's resource (OpenTAXII's public API roots). Collections stay governed
-- by their grants alone.
ALTER TABLE taxii_settings ADD COLUMN public_discovery boolean NOT NULL DEFAULT false;
ALTER TABLE taxii_api_roots ADD COLUMN public boolean NOT NULL DEFAULT false;
