-- OpenID Connect: JWT signing keys and the consents people gave to clients.
-- Times are unix seconds. The private key is the one column whose type differs between the
-- dialects (BYTEA here); diesel reads both as binary. Keep in step with
-- ../../sqlite/<same directory>/up.sql.

-- A key is published (JWKS) from its creation until publish_until, and signs from active_from
-- until retired_at (NULL: not retired, published indefinitely).
CREATE TABLE signing_keys (
    kid TEXT NOT NULL PRIMARY KEY,
    alg TEXT NOT NULL,
    -- PKCS#8 DER
    private_pkcs8_der BYTEA NOT NULL,
    -- JWK, JSON object text
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    active_from BIGINT NOT NULL,
    retired_at BIGINT,
    publish_until BIGINT
);

CREATE TABLE oauth_consents (
    account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    client_id TEXT NOT NULL,
    -- The granted scopes, sorted, separated by one space.
    scopes TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, client_id)
);
