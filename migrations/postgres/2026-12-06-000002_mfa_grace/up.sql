-- The enrolment grace of second factors (docs/mfa.md): how many logins a person whose
-- affiliation requires a second factor has made without one. Past [mfa] grace (a number of
-- logins, a date) such a person gets nothing issued until they enrol. A row appears at the
-- first such login. Times are unix seconds. Keep in step with ../../sqlite/<same directory>/up.sql.

CREATE TABLE mfa_grace (
    account_id TEXT PRIMARY KEY NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    logins_without_factor BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
