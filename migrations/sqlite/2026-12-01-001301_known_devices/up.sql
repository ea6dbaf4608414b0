-- Known devices (security spec decision 1, docs/adr/0012-lockout-known-devices.md): the
-- browsers that have logged in to an account with its password. A browser's failures count on
-- its own counter and lock only itself, so an attacker without the person's browser cannot
-- lock the person out of it. The device cookie's token is never stored: its SHA-256 only. One
-- token may be known for several accounts (a family computer). Durable here rather than in the
-- ephemeral store: a Redis restart must not make every browser unknown (and lockable) again.
-- Times are unix seconds. Keep in step with ../../postgres/<same directory>/up.sql.

CREATE TABLE known_devices (
    -- Lowercase hex SHA-256 of the device cookie's token.
    token_hash TEXT NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    first_seen BIGINT NOT NULL,
    -- The last password login (or completed reset) of this browser to this account; a row
    -- unseen for lockout.known_device_days is purged (its cookie has expired).
    last_seen BIGINT NOT NULL,
    -- Set while this browser's own failures lock it out of this account (written before the
    -- store, like login_locks: a store restart never unlocks).
    locked_until BIGINT,
    PRIMARY KEY (token_hash, account_id)
);

CREATE INDEX known_devices_account_idx ON known_devices (account_id);
CREATE INDEX known_devices_last_seen_idx ON known_devices (last_seen);
