-- Keys of the admin HTTP API. The key itself is never stored: its id (the public part, so a
-- request finds its row without scanning) and the SHA-256 of the whole key. Times are unix
-- seconds. Identical in both dialects; keep in step with ../../sqlite/<same directory>/up.sql.

CREATE TABLE api_keys (
    id TEXT NOT NULL PRIMARY KEY,
    -- Who holds it; the audit actor of what it does (api:<name>).
    name TEXT NOT NULL,
    -- Lowercase hex SHA-256 of sesame_ak_<id>_<secret>.
    key_sha256 TEXT NOT NULL,
    -- The scopes, sorted, separated by one space.
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- NULL: never expires.
    expires_at BIGINT,
    revoked_at BIGINT,
    -- Refreshed at most once a minute.
    last_used_at BIGINT
);
