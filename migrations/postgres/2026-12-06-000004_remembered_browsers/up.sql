-- Browsers remembered for the second factor (issue 15, docs/mfa.md, [mfa]
-- remember_browser_days): the browser holds a random 256-bit token in a cookie, kept here as
-- its SHA-256 with the account, a name from the User-Agent, and the dates. Times are unix
-- seconds. Keep in step with ../../sqlite/<same directory>/up.sql.

CREATE TABLE remembered_browsers (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE INDEX remembered_browsers_account_idx ON remembered_browsers (account_id);
