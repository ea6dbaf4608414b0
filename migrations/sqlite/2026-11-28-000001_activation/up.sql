-- One-time secrets of account activation: codes handed out by a school, e-mailed activation
-- links, and links that prove a mail-redirect address. Only a SHA-256 of each secret is kept,
-- so a copy of the table yields nothing that can be replayed. Times are unix seconds.
-- Identical in both dialects; keep in step with the other dialect's <same directory>/up.sql.

CREATE TABLE activation_tokens (
    -- Lowercase hex SHA-256 of the secret (a code is hashed with its account id).
    token_hash TEXT NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- code, link or redirect.
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- Set once, by the one request that consumes it (or when a newer secret replaces it).
    used_at BIGINT,
    -- What the secret proves, for kind redirect: the address to forward to.
    detail TEXT
);

-- "The other live secrets of this account and kind" (a newer one replaces them).
CREATE INDEX activation_tokens_account_idx ON activation_tokens (account_id, kind);
