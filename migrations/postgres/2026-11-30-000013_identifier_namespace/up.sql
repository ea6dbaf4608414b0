-- One namespace for logins and institutional e-mails: the login page takes either in one
-- field, so no string may be one account's login and another account's e-mail. Every
-- account's login, and its e-mail when it differs from it, is a row here: the primary key
-- makes the second of two clashing writes fail inside its own transaction, whichever
-- instance runs it. Keep in step with ../../sqlite/<same directory>/up.sql.

CREATE TABLE account_identifiers (
    identifier TEXT NOT NULL PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE
);

CREATE INDEX account_identifiers_account_id_idx ON account_identifiers (account_id);

INSERT INTO account_identifiers (identifier, account_id)
    SELECT login, id FROM accounts;

-- An e-mail that is already another account's login (written before this rule) stays out
-- rather than stopping the upgrade; at the login page a login wins over an e-mail.
INSERT INTO account_identifiers (identifier, account_id)
    SELECT email, id FROM accounts WHERE email IS NOT NULL AND email <> login
    ON CONFLICT (identifier) DO NOTHING;
