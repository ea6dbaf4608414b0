-- The helpdesk's records: why an account is blocked, which accounts must change their
-- password at the next login (set by an unblock), when an account was disabled (retention
-- counts from there), and the assistance requests sent from the public form.
-- Times are unix seconds. Keep in step with ../../sqlite/<same directory>/up.sql.

-- The current block of a blocked account; removed by the unblock (the audit trail keeps the
-- history).
CREATE TABLE account_blocks (
    account_id TEXT NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    -- phishing, suspicious or other
    reason TEXT NOT NULL,
    -- Free text by the operator; never shown to the person.
    note TEXT,
    blocked_by TEXT NOT NULL,
    blocked_at BIGINT NOT NULL
);

-- A row here makes the next correct login go to the forced password change before any
-- session, ticket or code is issued.
CREATE TABLE password_change_requirements (
    account_id TEXT NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    required_since BIGINT NOT NULL,
    required_by TEXT NOT NULL
);

-- When a disabled account was disabled (written by every change to the disabled state).
CREATE TABLE account_disablements (
    account_id TEXT NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    disabled_at BIGINT NOT NULL
);

-- Accounts already disabled before this migration: counted from their last change.
INSERT INTO account_disablements (account_id, disabled_at)
    SELECT id, updated_at FROM accounts WHERE state = 'disabled';

CREATE INDEX account_disablements_at_idx ON account_disablements (disabled_at);

CREATE TABLE assistance_requests (
    -- The reference given to the person (e.g. AS-7K2M9QXD); also the CLI's id.
    reference TEXT NOT NULL PRIMARY KEY,
    created_at BIGINT NOT NULL,
    -- As typed on the form (bounded lengths, checked by the server).
    institutional_email TEXT NOT NULL,
    personal_email TEXT NOT NULL,
    phone TEXT NOT NULL,
    -- Student number (INE) or birth date, as typed.
    identity_hint TEXT NOT NULL,
    description TEXT NOT NULL,
    lang TEXT NOT NULL,
    client_ip TEXT,
    -- The account whose institutional address was typed, if there is one (never told to the
    -- sender); the request outlives the account.
    account_id TEXT REFERENCES accounts (id) ON DELETE SET NULL,
    closed_at BIGINT,
    closed_by TEXT,
    close_note TEXT
);

CREATE INDEX assistance_requests_open_idx ON assistance_requests (closed_at, created_at);
