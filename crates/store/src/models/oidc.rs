//! Rows of `signing_keys` and `oauth_consents`.

use std::str::FromStr;

use diesel::{Insertable, Queryable, Selectable};
use sesame_core::error::RepoError;
use sesame_core::ids::AccountId;
use sesame_core::ports::{Consent, SigningKeyRecord};

use super::{from_unix, to_unix, to_unix_ceil};
use crate::schema::{oauth_consents, signing_keys};

/// A row of `signing_keys`. Holds a private key: never printed.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub(crate) struct SigningKeyRow {
    pub(crate) kid: String,
    pub(crate) alg: String,
    pub(crate) private_pkcs8_der: Vec<u8>,
    pub(crate) public_jwk: String,
    pub(crate) created_at: i64,
    pub(crate) active_from: i64,
    pub(crate) retired_at: Option<i64>,
    pub(crate) publish_until: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("active_from", &self.active_from)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

impl SigningKeyRow {
    /// The row for a key. Times are stored in whole seconds, rounded down, except
    /// `publish_until`, which is rounded up so a key never leaves the JWKS early. (`active_from`
    /// is rounded down so a key created active at once is active when read back at once.)
    pub(crate) fn new(key: SigningKeyRecord) -> Self {
        Self {
            kid: key.kid,
            alg: key.alg,
            private_pkcs8_der: key.private_pkcs8_der,
            public_jwk: key.public_jwk,
            created_at: to_unix(key.created_at),
            active_from: to_unix(key.active_from),
            retired_at: key.retired_at.map(to_unix),
            publish_until: key.publish_until.map(to_unix_ceil),
        }
    }

    /// The key this row stores.
    ///
    /// # Errors
    /// [`RepoError::Corrupt`] if a time is out of range.
    pub(crate) fn into_record(self) -> Result<SigningKeyRecord, RepoError> {
        Ok(SigningKeyRecord {
            created_at: from_unix("signing_keys.created_at", self.created_at)?,
            active_from: from_unix("signing_keys.active_from", self.active_from)?,
            retired_at: self
                .retired_at
                .map(|secs| from_unix("signing_keys.retired_at", secs))
                .transpose()?,
            publish_until: self
                .publish_until
                .map(|secs| from_unix("signing_keys.publish_until", secs))
                .transpose()?,
            kid: self.kid,
            alg: self.alg,
            private_pkcs8_der: self.private_pkcs8_der,
            public_jwk: self.public_jwk,
        })
    }
}

/// A row of `oauth_consents`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oauth_consents)]
pub(crate) struct ConsentRow {
    pub(crate) account_id: String,
    pub(crate) client_id: String,
    pub(crate) scopes: String,
    pub(crate) granted_at: i64,
}

impl ConsentRow {
    /// The row for a consent: scopes sorted, without duplicates, joined by one space.
    ///
    /// # Errors
    /// [`RepoError::Corrupt`] if a scope is empty or contains whitespace: it could not be read
    /// back as the same scope (OAuth scope tokens never do).
    pub(crate) fn new(consent: Consent) -> Result<Self, RepoError> {
        let mut scopes = consent.scopes;
        if let Some(bad) = scopes
            .iter()
            .find(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(RepoError::Corrupt(format!(
                "refusing to store the scope {bad:?} in oauth_consents.scopes: empty or contains whitespace"
            )));
        }
        scopes.sort_unstable();
        scopes.dedup();
        Ok(Self {
            account_id: consent.account_id.to_string(),
            client_id: consent.client_id,
            scopes: scopes.join(" "),
            granted_at: to_unix(consent.granted_at),
        })
    }

    /// The consent this row stores.
    ///
    /// # Errors
    /// [`RepoError::Corrupt`] if a column does not parse.
    pub(crate) fn into_consent(self) -> Result<Consent, RepoError> {
        let mut scopes: Vec<String> = self.scopes.split_whitespace().map(str::to_owned).collect();
        scopes.sort_unstable();
        scopes.dedup();
        Ok(Consent {
            account_id: AccountId::from_str(&self.account_id)
                .map_err(|e| RepoError::Corrupt(format!("oauth_consents.account_id: {e}")))?,
            client_id: self.client_id,
            scopes,
            granted_at: from_unix("oauth_consents.granted_at", self.granted_at)?,
        })
    }
}
