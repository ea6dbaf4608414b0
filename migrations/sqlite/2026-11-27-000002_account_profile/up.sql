-- The account profile: the HR link, identity-check data, recovery contacts and the choices
-- made at activation, one row per account beside `accounts` (whose columns, which the login
-- path reads, stay as they are). An account without a row has an empty profile; the store
-- writes the row on the first change. See docs/lifecycle.md.
-- Times are unix seconds. Keep in step with ../../postgres/<same directory>/up.sql.

CREATE TABLE account_profiles (
    account_id TEXT NOT NULL PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    -- Staff number, student file number or INE (upper case); unique when present.
    hr_id TEXT,
    -- ISO 8601 date, YYYY-MM-DD.
    birth_date TEXT,
    -- HMAC-SHA-256 (lifecycle.national_id_key) of the normalised number, lowercase hex; never
    -- the number itself.
    national_id_hash TEXT,
    recovery_email TEXT,
    recovery_email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    mobile TEXT,
    mobile_verified BOOLEAN NOT NULL DEFAULT FALSE,
    charter_version TEXT,
    charter_accepted_at BIGINT,
    directory_opt_in BOOLEAN NOT NULL DEFAULT FALSE,
    mail_redirect TEXT,
    mail_redirect_verified BOOLEAN NOT NULL DEFAULT FALSE,
    mail_keep_copy BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- NULLs do not collide: many accounts have no HR identifier.
    CONSTRAINT account_profiles_hr_id_key UNIQUE (hr_id)
);
