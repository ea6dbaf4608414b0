-- Accounts, their password hashes, durable login locks and the audit trail.
-- Portable column types only (TEXT, BIGINT) so one diesel schema serves PostgreSQL and SQLite;
-- times are unix seconds. Keep in step with ../../postgres/<same directory>/up.sql.

CREATE TABLE accounts (
    id TEXT NOT NULL PRIMARY KEY,
    login TEXT NOT NULL,
    email TEXT,
    given_name TEXT NOT NULL,
    family_name TEXT NOT NULL,
    affiliation TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT accounts_login_key UNIQUE (login),
    CONSTRAINT accounts_email_key UNIQUE (email)
);

CREATE TABLE credentials (
    account_id TEXT NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Security decision 2: a lock survives the loss of the counter store.
CREATE TABLE login_locks (
    login_key TEXT NOT NULL PRIMARY KEY,
    locked_until BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id TEXT NOT NULL PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    login TEXT,
    account_id TEXT,
    ip TEXT,
    actor TEXT NOT NULL,
    -- JSON document
    detail TEXT NOT NULL
);

CREATE INDEX audit_events_login_at_idx ON audit_events (login, at);
CREATE INDEX audit_events_at_idx ON audit_events (at);
