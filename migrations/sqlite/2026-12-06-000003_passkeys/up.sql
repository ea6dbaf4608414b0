-- Passkeys and security keys (issue 15, ADR 0014, docs/mfa.md). Each key is a second factor
-- (a second_factors row of kind 'passkey': its name, dates, removal) with its WebAuthn
-- credential here. Nothing here is secret: the public key verifies signatures only; the
-- state (signature counter, flags) is updated at each use so a cloned key whose counter goes
-- back is refused. Both are webauthn_rp's encodings, base64.
-- Keep in step with ../../postgres/<same directory>/up.sql.

CREATE TABLE passkeys (
    -- The credential id, base64url without padding (unique across accounts).
    credential_id TEXT PRIMARY KEY NOT NULL,
    factor_id TEXT NOT NULL REFERENCES second_factors (id) ON DELETE CASCADE,
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    public_key TEXT NOT NULL,
    state TEXT NOT NULL
);

CREATE INDEX passkeys_account_idx ON passkeys (account_id);
CREATE INDEX passkeys_factor_idx ON passkeys (factor_id);
