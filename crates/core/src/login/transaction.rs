//! A login in progress: what it is for (its [`Continuation`]), the account once identified,
//! the factors done so far with their times, and the steps still due.
//!
//! A transaction lives in the ephemeral store under the SHA-256 of a random id, which the
//! browser holds (the server puts it in a `__Host-` cookie); it lives 30 minutes. Each step
//! *takes* it and puts it back under a **new** id ([`LoginTransactions::reissue`]), in one
//! atomic store operation: of two concurrent submissions one finds nothing, so a step is
//! neither replayed nor raced, and an id seen once (in a log, a Referer) is already dead.
//! Its model is `sesame_lifecycle::activation::flow`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::methods::{Authentication, AuthnRecord};
use super::steps::StepId;
use crate::error::StoreError;
use crate::ids::AccountId;
use crate::ports::EphemeralStore;
use crate::random;

/// How long a login transaction waits for the person.
pub const TRANSACTION_TTL: Duration = Duration::from_secs(30 * 60);

/// Longest id looked up (longer input costs no store round trip).
const MAX_ID_CHARS: usize = 128;

/// What to do once the login is done: whatever the server needs to resume, as plain data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Continuation {
    /// Nothing asked: show the "you are logged in" page.
    LoginPage,
    /// A CAS service asked (CAS Protocol 3.0 §2.1.1).
    Cas {
        /// The `service` URL, as given.
        service: String,
        /// `renew=true`: credentials must be entered.
        renew: bool,
        /// `gateway=true`: never show the login form.
        gateway: bool,
        /// `method=POST`: the ticket is posted, not put in a redirect.
        method_post: bool,
        /// `authn_method` asked for a second factor (as Apereo CAS's parameter).
        #[serde(default)]
        mfa: bool,
    },
    /// An OpenID Connect authorization request waits (OpenID Connect Core 1.0 §3.1.2).
    Oidc {
        /// The id under which the request is parked.
        request_id: String,
        /// The request's parameters, parsed and checked again when it resumes.
        params: Vec<(String, String)>,
        /// When the request first arrived (for `max_age`).
        #[serde(with = "time::serde::timestamp")]
        requested_at: OffsetDateTime,
    },
    /// A SAML authentication request waits (SAML 2.0 profiles §4.1.4.1).
    Saml {
        /// The id under which the request is parked (the server keeps what it needs).
        request_id: String,
    },
    /// A page of Sesame's own (account page, helpdesk console).
    Local {
        /// The path to go to (always starting with `/`).
        next: String,
    },
}

/// A login in progress, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginTransaction {
    /// What the login is for.
    pub continuation: Continuation,
    /// The account, once a factor identified it.
    pub identified: Option<AccountId>,
    /// "Remember me" was ticked.
    pub remember_me: bool,
    /// The factors done so far, with their times.
    pub factors: Vec<AuthnRecord>,
    /// The steps still due, in order; the first is the one the browser is at.
    pub steps_due: Vec<StepId>,
    /// A step-up: the browser's open session (of the account identified) gets the factors
    /// done added, instead of a new session being opened.
    #[serde(default)]
    pub step_up: bool,
    /// Steps the person acknowledged (a reminder read): done for this login, whatever the
    /// facts still say.
    #[serde(default)]
    pub acknowledged: Vec<StepId>,
    /// When the login began.
    #[serde(with = "time::serde::timestamp")]
    pub started_at: OffsetDateTime,
}

impl LoginTransaction {
    /// A login for `continuation` starting at `now`, nothing done yet.
    pub fn new(continuation: Continuation, now: OffsetDateTime) -> Self {
        Self {
            continuation,
            identified: None,
            remember_me: false,
            factors: Vec::new(),
            steps_due: Vec::new(),
            step_up: false,
            acknowledged: Vec::new(),
            started_at: now,
        }
    }

    /// The authentication the factors done add up to (what the session will record).
    pub fn authentication(&self) -> Authentication {
        Authentication::new(self.factors.clone())
    }

    /// The step the browser is at, if any remains.
    pub fn current_step(&self) -> Option<StepId> {
        self.steps_due.first().copied()
    }
}

/// Why a transaction could not be kept or read.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stored record could not be written or read back.
    #[error("login transaction record: {0}")]
    Encoding(#[from] serde_json::Error),
}

/// Login transactions in the ephemeral store.
#[derive(Debug, Clone)]
pub struct LoginTransactions {
    store: Arc<dyn EphemeralStore>,
}

fn key(id: &str) -> String {
    format!("login-tx:{}", random::sha256_hex(id))
}

/// Whether `id` has the shape of a transaction id (so junk costs no store round trip).
pub fn is_transaction_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_CHARS && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl LoginTransactions {
    /// Transactions over `store`.
    pub fn new(store: Arc<dyn EphemeralStore>) -> Self {
        Self { store }
    }

    /// Stores a new transaction; returns its id (the only copy).
    ///
    /// # Errors
    /// Store or encoding errors.
    pub async fn start(&self, tx: &LoginTransaction) -> Result<String, TransactionError> {
        let id = random::token();
        let json = serde_json::to_string(tx)?;
        self.store.put(&key(&id), &json, TRANSACTION_TTL).await?;
        Ok(id)
    }

    /// The transaction `id` designates, left in place.
    ///
    /// # Errors
    /// Store errors, or a record that cannot be read back.
    pub async fn get(&self, id: &str) -> Result<Option<LoginTransaction>, TransactionError> {
        if !is_transaction_id(id) {
            return Ok(None);
        }
        match self.store.get(&key(id)).await? {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }

    /// Takes the transaction `id` designates: of concurrent callers, one gets it.
    ///
    /// # Errors
    /// Store errors, or a record that cannot be read back.
    pub async fn take(&self, id: &str) -> Result<Option<LoginTransaction>, TransactionError> {
        if !is_transaction_id(id) {
            return Ok(None);
        }
        match self.store.take(&key(id)).await? {
            Some(json) => Ok(Some(serde_json::from_str(&json)?)),
            None => Ok(None),
        }
    }

    /// Takes the transaction `id` and, in the same atomic step, stores `next` under a new
    /// id, which it returns: one id per step. `None` when `id` was already used or is gone
    /// (nothing is stored then).
    ///
    /// # Errors
    /// Store or encoding errors.
    pub async fn reissue(
        &self,
        id: &str,
        next: &LoginTransaction,
    ) -> Result<Option<(String, LoginTransaction)>, TransactionError> {
        if !is_transaction_id(id) {
            return Ok(None);
        }
        let new_id = random::token();
        let new_key = key(&new_id);
        let json = serde_json::to_string(next)?;
        let taken = self
            .store
            .take_and_put(
                &key(id),
                &[(new_key.as_str(), json.as_str(), TRANSACTION_TTL)],
            )
            .await?;
        match taken {
            Some(old) => Ok(Some((new_id, serde_json::from_str(&old)?))),
            None => Ok(None),
        }
    }

    /// Drops the transaction `id` (abandoned, or too many wrong answers).
    ///
    /// # Errors
    /// Store errors.
    pub async fn discard(&self, id: &str) -> Result<(), TransactionError> {
        if is_transaction_id(id) {
            self.store.delete(&key(id)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::login::methods::AuthnMethod;
    use crate::testing::MapStore;

    const T0: OffsetDateTime = datetime!(2026-01-05 08:00 UTC);

    fn cas() -> LoginTransaction {
        LoginTransaction::new(
            Continuation::Cas {
                service: "https://app.example.org/".to_owned(),
                renew: true,
                gateway: false,
                method_post: false,
                mfa: false,
            },
            T0,
        )
    }

    fn transactions() -> (Arc<MapStore>, LoginTransactions) {
        let store = Arc::new(MapStore::default());
        (store.clone(), LoginTransactions::new(store))
    }

    #[tokio::test]
    async fn start_get_take_is_single_use() {
        let (store, txs) = transactions();
        let id = txs.start(&cas()).await.unwrap();
        assert!(is_transaction_id(&id));
        // Keyed by the hash: the id itself is nowhere in the store.
        assert!(store.keys().iter().all(|k| !k.contains(&id)));
        assert!(store.keys()[0].starts_with("login-tx:"));
        assert_eq!(txs.get(&id).await.unwrap(), Some(cas()));
        assert_eq!(txs.take(&id).await.unwrap(), Some(cas()));
        assert_eq!(txs.take(&id).await.unwrap(), None);
        assert_eq!(txs.get(&id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn reissue_moves_the_transaction_to_a_new_id() {
        let (_, txs) = transactions();
        let id = txs.start(&cas()).await.unwrap();
        let mut next = cas();
        next.identified = Some(AccountId(uuid::Uuid::nil()));
        next.factors.push(AuthnRecord::new(AuthnMethod::Pwd, T0));
        let (new_id, old) = txs.reissue(&id, &next).await.unwrap().unwrap();
        assert_ne!(new_id, id);
        assert_eq!(old, cas());
        assert_eq!(txs.get(&id).await.unwrap(), None);
        let got = txs.get(&new_id).await.unwrap().unwrap();
        assert_eq!(got, next);
        assert_eq!(got.authentication().amr(), vec!["pwd"]);
        // The old id is spent: reissuing it again stores nothing.
        assert_eq!(txs.reissue(&id, &next).await.unwrap(), None);
    }

    #[tokio::test]
    async fn junk_ids_cost_nothing_and_discard_drops() {
        let (store, txs) = transactions();
        assert_eq!(txs.get("").await.unwrap(), None);
        assert_eq!(txs.take("a/b").await.unwrap(), None);
        assert_eq!(txs.get(&"a".repeat(129)).await.unwrap(), None);
        assert_eq!(store.calls(), 0);
        let id = txs.start(&cas()).await.unwrap();
        txs.discard(&id).await.unwrap();
        assert_eq!(txs.get(&id).await.unwrap(), None);
    }

    #[test]
    fn continuations_are_tagged_data() {
        let oidc = Continuation::Oidc {
            request_id: "r".to_owned(),
            params: vec![("client_id".to_owned(), "moodle".to_owned())],
            requested_at: T0,
        };
        let value = serde_json::to_value(&oidc).unwrap();
        assert_eq!(value["for"], "oidc");
        assert_eq!(serde_json::from_value::<Continuation>(value).unwrap(), oidc);
        let local = Continuation::Local {
            next: "/account".to_owned(),
        };
        assert_eq!(serde_json::to_value(&local).unwrap()["for"], "local");
        assert_eq!(
            serde_json::to_value(Continuation::LoginPage).unwrap()["for"],
            "login_page"
        );
    }
}
