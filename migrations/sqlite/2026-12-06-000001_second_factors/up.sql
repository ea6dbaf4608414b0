-- Second factors (issue 15, docs/mfa.md): TOTP applications a person enrolled, and the
-- recovery codes that come with the first one. A TOTP secret is stored sealed (AES-256-GCM
-- with the [mfa] sealing key, the account bound as associated data, "keyid:nonce+ciphertext"):
-- a copy of the database alone does not give anyone's codes. A recovery code is stored as its
-- SHA-256 (79 random bits: no slow hash needed) and deleted when used.
-- Times are unix seconds. Keep in step with ../../postgres/<same directory>/up.sql.

CREATE TABLE second_factors (
    id TEXT PRIMARY KEY NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- 'totp' (passkeys next).
    kind TEXT NOT NULL,
    -- The person's name for it ("Téléphone").
    label TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE INDEX second_factors_account_idx ON second_factors (account_id);

CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Lowercase hex SHA-256 of the normalized code.
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, code_hash)
);
