//! What activation needs from durable storage: its one-time secrets (codes, links, redirect
//! proofs), kept as hashes. The helpdesk's password-reset codes live there too: like
//! activation codes they are issued by an operator, possibly from the command line, which
//! shares the database with the server but not (in the embedded mode) its ephemeral store.
//! Implemented in `sesame-store` on the SQL database.

use async_trait::async_trait;
use sesame_core::error::RepoError;
use sesame_core::ids::AccountId;
use time::OffsetDateTime;

/// What a one-time secret is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A code handed out by a school (`sesame activation-codes`).
    Code,
    /// The link of an activation mail.
    Link,
    /// The link that proves a mail-redirect address.
    Redirect,
    /// A password-reset code a helpdesk agent gives after checking identity
    /// (`recovery::helpdesk_codes`).
    ResetCode,
}

impl TokenKind {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::Link => "link",
            Self::Redirect => "redirect",
            Self::ResetCode => "reset_code",
        }
    }
}

/// A secret to store (its hash only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// Lowercase hex SHA-256 of the secret.
    pub token_hash: String,
    /// The account it activates.
    pub account_id: AccountId,
    /// What it is for.
    pub kind: TokenKind,
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
    /// For [`TokenKind::Redirect`]: the address it proves.
    pub detail: Option<String>,
}

/// What happened when a secret was presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumption {
    /// This request consumed it: no other request ever will.
    Consumed {
        /// The account.
        account_id: AccountId,
        /// What it carried.
        detail: Option<String>,
    },
    /// It exists but was already used (or replaced by a newer one).
    AlreadyUsed {
        /// The account.
        account_id: AccountId,
    },
    /// Unknown, or expired.
    Invalid,
}

/// What a secret is, looked at without using it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenState {
    /// Unused and unexpired.
    Usable {
        /// The account.
        account_id: AccountId,
    },
    /// Used (or replaced by a newer one) before its expiry.
    Used {
        /// The account.
        account_id: AccountId,
    },
    /// Unknown, or expired.
    Invalid,
}

/// Durable one-time secrets of activation.
#[async_trait]
pub trait ActivationTokenRepo: Send + Sync + std::fmt::Debug {
    /// Stores a secret. With `replace_older`, every other unused secret of the same account
    /// and kind is marked used in the same transaction (a newer link kills older ones).
    ///
    /// # Errors
    /// [`RepoError::Conflict`] if the hash exists.
    async fn insert_token(&self, token: NewToken, replace_older: bool) -> Result<(), RepoError>;

    /// [`ActivationTokenRepo::insert_token`] for many secrets (of different accounts) in one
    /// transaction: all or none.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] if a hash exists (nothing is stored).
    async fn insert_tokens(
        &self,
        tokens: Vec<NewToken>,
        replace_older: bool,
    ) -> Result<(), RepoError>;

    /// Consumes a secret in one conditional update: of any number of concurrent callers
    /// presenting the same unused, unexpired secret, exactly one gets
    /// [`Consumption::Consumed`].
    async fn consume_token(
        &self,
        kind: TokenKind,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Consumption, RepoError>;

    /// The hash of the account's newest secret of `kind` that is neither used nor expired at
    /// `now`, if any (with `replace_older` issuing, the only live one).
    async fn live_token(
        &self,
        account_id: AccountId,
        kind: TokenKind,
        now: OffsetDateTime,
    ) -> Result<Option<String>, RepoError>;

    /// What a secret is now, without consuming it (one indexed read; the same work whether
    /// or not it exists).
    async fn token_state(
        &self,
        kind: TokenKind,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<TokenState, RepoError>;
}
