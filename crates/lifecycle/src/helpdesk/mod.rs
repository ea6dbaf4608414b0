//! The helpdesk: blocking with a reason and unblocking, after which the former password opens
//! nothing until a new one is set through a verified channel ([`Helpdesk::block`],
//! [`Helpdesk::unblock`]; the channels are those of `recovery`), comparing what a caller
//! says with the account's record ([`identity`]),
//! the public assistance form's requests ([`assistance`]), and the deletion of disabled
//! accounts after the retention period ([`retention`]). Every transition is an audit event.
//! See `docs/lifecycle.md`.

pub mod assistance;
pub mod identity;
pub mod retention;

use std::sync::Arc;

use sesame_core::account::{Account, AccountState};
use sesame_core::accounts::AccountService;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::clock::Clock;
use sesame_core::error::{AccountError, RepoError, StoreError};
use sesame_core::helpdesk::{BlockReason, BlockRecord};
use sesame_core::i18n::Lang;
use sesame_core::ids::LoginName;
use sesame_core::mail::{MailKind, MailMessage};
use sesame_core::national_id::NationalIdKey;
use sesame_core::ports::{
    AccountRepo, AuditLog, EphemeralStore, HelpdeskRepo, Mailer, ProfileRepo,
};

use crate::blocking::AccountBlocking;

/// Longest operator note kept with a block or a closed request.
pub const MAX_NOTE_CHARS: usize = 2000;

/// Why a helpdesk operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HelpdeskError {
    /// An account operation failed (not found, bad transition, storage).
    #[error(transparent)]
    Account(#[from] AccountError),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A note is too long or holds control characters.
    #[error("the note must be at most {MAX_NOTE_CHARS} characters, without control characters other than line breaks")]
    BadNote,
    /// No assistance request has this reference.
    #[error("no assistance request {0}")]
    NoSuchRequest(String),
    /// An identity comparison names no known field.
    #[error("unknown field to compare")]
    BadComparison,
    /// The agent compared this account's record too often lately.
    #[error("too many comparisons on this account until {until}")]
    TooManyComparisons {
        /// When comparisons are accepted again.
        until: time::OffsetDateTime,
    },
}

/// Wiring for [`Helpdesk::new`].
#[derive(Debug, Clone)]
pub struct HelpdeskParts {
    /// Operator account operations (state changes).
    pub accounts: AccountService,
    /// The account database (the assistance desk links requests to accounts).
    pub accounts_repo: Arc<dyn AccountRepo>,
    /// Profiles.
    pub profiles: Arc<dyn ProfileRepo>,
    /// Blocking and its session ending.
    pub blocking: AccountBlocking,
    /// The helpdesk's records.
    pub repo: Arc<dyn HelpdeskRepo>,
    /// Audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Outgoing mail (the assistance desk's).
    pub mailer: Arc<dyn Mailer>,
    /// Counters (identity comparisons per agent and account).
    pub store: Arc<dyn EphemeralStore>,
    /// The key of national ID hashes (without it, no national ID compares).
    pub national_id_key: Option<NationalIdKey>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Blocks and unblocks.
#[derive(Debug, Clone)]
pub struct Helpdesk {
    parts: HelpdeskParts,
}

/// A block that was made: the account, its record, and the sessions ended (for single logout).
#[derive(Debug, Clone)]
pub struct Blocked {
    /// The account, now blocked.
    pub account: Account,
    /// Why.
    pub record: BlockRecord,
    /// Handles of the SSO sessions ended.
    pub sessions_ended: Vec<String>,
}

/// Checks an operator's note: bounded, no control characters but line breaks and tabs.
///
/// # Errors
/// [`HelpdeskError::BadNote`].
pub fn checked_note(note: Option<&str>) -> Result<Option<String>, HelpdeskError> {
    let Some(note) = note.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if note.chars().count() > MAX_NOTE_CHARS
        || note
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(HelpdeskError::BadNote);
    }
    Ok(Some(note.to_owned()))
}

impl Helpdesk {
    /// The helpdesk over these parts.
    pub fn new(parts: HelpdeskParts) -> Self {
        Self { parts }
    }

    /// The helpdesk's records (for reads by the CLI and the login page).
    pub fn repo(&self) -> &Arc<dyn HelpdeskRepo> {
        &self.parts.repo
    }

    /// Blocks the account for `reason`: the state changes first (no new login, ticket or
    /// code from then on, A54), then every SSO session ends on every instance, then the
    /// reason is recorded. Blocking a blocked account again updates the reason.
    ///
    /// # Errors
    /// [`HelpdeskError::Account`] (`NotFound`, `BadTransition` for a disabled account),
    /// [`HelpdeskError::BadNote`], storage errors.
    pub async fn block(
        &self,
        login: &LoginName,
        reason: BlockReason,
        note: Option<&str>,
        actor: &str,
    ) -> Result<Blocked, HelpdeskError> {
        let note = checked_note(note)?;
        let (account, sessions_ended) = self.parts.blocking.block(login, actor).await?;
        let record = BlockRecord {
            reason,
            note,
            blocked_by: actor.to_owned(),
            blocked_at: self.parts.clock.now(),
        };
        self.parts.repo.save_block(account.id, &record).await?;
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::AccountBlocked, record.blocked_at, actor)
                    .login(account.login.as_str())
                    .account(account.id)
                    // The note may name people or details: it stays in the block record.
                    .detail(serde_json::json!({
                        "reason": reason.as_str(),
                        "sessions_ended": sessions_ended.len(),
                    })),
            )
            .await?;
        Ok(Blocked {
            account,
            record,
            sessions_ended,
        })
    }

    /// Unblocks the account. Its password may be known to whoever made it be blocked, so from
    /// now on that password opens nothing (a correct one only learns how to set a new one)
    /// until a new password is set through a verified channel: a reset link to the verified
    /// address, an SMS code to the verified mobile, a helpdesk code, an identity check where
    /// configured (all of them end in `recovery`'s reset, which lifts the requirement). The
    /// requirement is written before the account becomes active again, so there is no moment
    /// when it is active without it.
    ///
    /// # Errors
    /// [`HelpdeskError::Account`] (`NotFound`, `BadTransition` if it is not blocked),
    /// storage errors.
    pub async fn unblock(&self, login: &LoginName, actor: &str) -> Result<Account, HelpdeskError> {
        let account = self.parts.accounts.get(login).await?;
        if account.state != AccountState::Blocked {
            return Err(AccountError::BadTransition {
                from: account.state.as_str(),
                to: AccountState::Active.as_str(),
            }
            .into());
        }
        let now = self.parts.clock.now();
        self.parts
            .repo
            .require_password_change(account.id, actor, now)
            .await?;
        let account = self.parts.blocking.unblock(login, actor).await?;
        self.parts.repo.clear_block(account.id).await?;
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::AccountUnblocked, now, actor)
                    .login(account.login.as_str())
                    .account(account.id)
                    .detail(serde_json::json!({ "password_reset_required": true })),
            )
            .await?;
        self.notify_unblocked(&account).await;
        Ok(account)
    }

    /// Tells the person their account was unblocked, at the addresses that are theirs: the
    /// institutional one and the verified recovery one (never an address nobody proved). A
    /// failure is logged, not returned: the unblock is done either way.
    async fn notify_unblocked(&self, account: &Account) {
        let recovery = match self.parts.profiles.find_with_profile(account.id).await {
            Ok(found) => found
                .and_then(|f| f.profile.recovery_email)
                .filter(|c| c.verified)
                .map(|c| c.address),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the profile for the unblock notice");
                None
            }
        };
        let mut to: Vec<_> = account.email.iter().cloned().collect();
        to.extend(recovery.filter(|r| !to.contains(r)));
        let now = self.parts.clock.now();
        for address in to {
            let message = MailMessage::new(MailKind::AccountUnblocked, address, Lang::default())
                .account(account.id)
                .value("login", account.login.as_str())
                .time("unblocked_at", now);
            if let Err(e) = self.parts.mailer.send(message).await {
                tracing::warn!(error = %e, "could not queue the unblock notice");
            }
        }
    }

    /// Whether the account's password was voided by an unblock and no new one was set since:
    /// such an account gets no session.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn password_change_required(&self, account: &Account) -> Result<bool, RepoError> {
        Ok(self
            .parts
            .repo
            .password_change_required(account.id)
            .await?
            .is_some())
    }
}
