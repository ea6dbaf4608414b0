//! One-time links: password reset and address verification. The token (256 bits) is shown
//! once, in the mailed link; the store keeps its SHA-256 with what it is for. Issuing a new
//! link for the same account and purpose supersedes the older one (A49), and consuming a
//! link is one atomic *take*: of parallel submissions exactly one gets it (C07).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sesame_core::clock::Clock;
use sesame_core::error::StoreError;
use sesame_core::ids::AccountId;
use sesame_core::ports::EphemeralStore;
use sesame_core::random;
use time::OffsetDateTime;

use super::Refusal;

/// What a link is for; part of its key, so a link of one purpose never works for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Reset the password.
    PasswordReset,
    /// Prove a new recovery e-mail address.
    RecoveryEmail,
    /// Prove a mail redirect address.
    MailRedirect,
}

impl LinkPurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "reset",
            Self::RecoveryEmail => "recovery-email",
            Self::MailRedirect => "redirect",
        }
    }
}

/// A live link, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    /// The account it acts on.
    pub account_id: AccountId,
    /// What it carries (the address to prove; empty for a reset).
    pub payload: String,
    /// A flag the issuer attached (keep-a-copy for a redirect).
    pub flag: bool,
    /// Its end.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// Issues, checks and consumes one-time links.
#[derive(Debug, Clone)]
pub struct OneTimeLinks {
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
}

fn link_key(purpose: LinkPurpose, hash: &str) -> String {
    format!("link:{}:{hash}", purpose.as_str())
}

fn current_key(purpose: LinkPurpose, account_id: AccountId) -> String {
    format!("link-of:{}:{account_id}", purpose.as_str())
}

/// Tokens longer than this are not looked up.
const MAX_TOKEN_LEN: usize = 128;

impl OneTimeLinks {
    /// Links over `store`.
    pub fn new(store: Arc<dyn EphemeralStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Issues a link valid for `ttl`; any older link of the account for `purpose` stops
    /// working. Returns the token and the link's end.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn issue(
        &self,
        purpose: LinkPurpose,
        account_id: AccountId,
        payload: &str,
        flag: bool,
        ttl: Duration,
    ) -> Result<(String, OffsetDateTime), StoreError> {
        let token = random::token();
        let hash = random::sha256_hex(&token);
        let expires_at = self.clock.now() + ttl;
        let record = LinkRecord {
            account_id,
            payload: payload.to_owned(),
            flag,
            expires_at,
        };
        let text =
            serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // The store's expiry only collects garbage: the clock decides.
        let keep = ttl + Duration::from_secs(60);
        self.store
            .put(&link_key(purpose, &hash), &text, keep)
            .await?;
        self.store
            .put(&current_key(purpose, account_id), &hash, keep)
            .await?;
        Ok((token, expires_at))
    }

    /// Stores nothing useful but costs what [`OneTimeLinks::issue`] costs: the answer to a
    /// request for an unknown account must take as long as for a known one (A48).
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn decoy(&self) -> Result<(), StoreError> {
        let key = format!("link-decoy:{}", random::sha256_hex(&random::token()));
        self.store.put(&key, "{}", Duration::from_secs(1)).await?;
        self.store.put(&key, "{}", Duration::from_secs(1)).await
    }

    /// The link's record if it is valid now, without consuming it (to show the form).
    ///
    /// # Errors
    /// [`StoreError`] if the store fails; a link that is not valid is `Ok(Err(refusal))`.
    pub async fn check(
        &self,
        purpose: LinkPurpose,
        token: &str,
    ) -> Result<Result<LinkRecord, Refusal>, StoreError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(Err(Refusal::Unknown));
        }
        let hash = random::sha256_hex(token);
        let Some(raw) = self.store.get(&link_key(purpose, &hash)).await? else {
            return Ok(Err(Refusal::Unknown));
        };
        let record: LinkRecord =
            serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.judge(purpose, &hash, record).await
    }

    /// Consumes the link: of any number of concurrent callers, at most one gets `Ok`.
    ///
    /// # Errors
    /// As [`OneTimeLinks::check`].
    pub async fn consume(
        &self,
        purpose: LinkPurpose,
        token: &str,
    ) -> Result<Result<LinkRecord, Refusal>, StoreError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(Err(Refusal::Unknown));
        }
        let hash = random::sha256_hex(token);
        let Some(raw) = self.store.take(&link_key(purpose, &hash)).await? else {
            return Ok(Err(Refusal::Unknown));
        };
        let record: LinkRecord =
            serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let verdict = self.judge(purpose, &hash, record).await?;
        if let Ok(record) = &verdict {
            self.store
                .delete(&current_key(purpose, record.account_id))
                .await?;
        }
        Ok(verdict)
    }

    async fn judge(
        &self,
        purpose: LinkPurpose,
        hash: &str,
        record: LinkRecord,
    ) -> Result<Result<LinkRecord, Refusal>, StoreError> {
        if self.clock.now() >= record.expires_at {
            return Ok(Err(Refusal::Expired));
        }
        let current = self
            .store
            .get(&current_key(purpose, record.account_id))
            .await?;
        if !current.is_some_and(|c| random::constant_time_eq(&c, hash)) {
            return Ok(Err(Refusal::Superseded));
        }
        Ok(Ok(record))
    }
}
