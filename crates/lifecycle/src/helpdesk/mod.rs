//! The helpdesk: blocking with a reason and unblocking with a forced password change
//! ([`Helpdesk::block`], [`Helpdesk::unblock`], [`Helpdesk::change_required_password`]),
//! the public assistance form's requests ([`assistance`]), and the deletion of disabled
//! accounts after the retention period ([`retention`]). Every transition is an audit event.
//! See `docs/lifecycle.md`.

pub mod assistance;
pub mod retention;

use std::sync::Arc;

use sesame_core::account::{Account, AccountState};
use sesame_core::accounts::AccountService;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::clock::Clock;
use sesame_core::credentials::hasher::PasswordHasher;
use sesame_core::credentials::policy::PolicyViolation;
use sesame_core::credentials::pool::HashingPool;
use sesame_core::credentials::Password;
use sesame_core::error::{AccountError, RepoError, StoreError};
use sesame_core::helpdesk::{BlockReason, BlockRecord};
use sesame_core::i18n::Lang;
use sesame_core::ids::LoginName;
use sesame_core::mail::{MailKind, MailMessage};
use sesame_core::ports::{AccountRepo, AuditLog, HelpdeskRepo, Mailer, ProfileRepo};
use sesame_core::session::SessionManager;

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
}

/// Why a forced password change was refused.
#[derive(Debug, thiserror::Error)]
pub enum PasswordChangeError {
    /// The current password typed is wrong.
    #[error("the current password is wrong")]
    WrongCurrent,
    /// The two new passwords differ.
    #[error("the two new passwords differ")]
    Mismatch,
    /// The new password is the current one.
    #[error("the new password must differ from the current one")]
    SameAsCurrent,
    /// The new password breaks the policy.
    #[error("the password does not meet the policy")]
    Policy(Vec<PolicyViolation>),
    /// The account has no pending requirement (already changed, or never required).
    #[error("no password change is required")]
    NotRequired,
    /// The hashing pool is saturated.
    #[error("password hashing pool saturated")]
    Busy,
    /// Anything else (storage, hashing).
    #[error(transparent)]
    Helpdesk(#[from] HelpdeskError),
}

impl From<AccountError> for PasswordChangeError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Policy(v) => Self::Policy(v),
            AccountError::Busy => Self::Busy,
            other => Self::Helpdesk(HelpdeskError::Account(other)),
        }
    }
}

impl From<RepoError> for PasswordChangeError {
    fn from(e: RepoError) -> Self {
        Self::Helpdesk(HelpdeskError::Repo(e))
    }
}

/// Wiring for [`Helpdesk::new`].
#[derive(Debug, Clone)]
pub struct HelpdeskParts {
    /// Operator account operations (state changes, passwords under the policy).
    pub accounts: AccountService,
    /// The account database (credentials for the current-password check).
    pub accounts_repo: Arc<dyn AccountRepo>,
    /// Profiles (where the password-changed notice goes).
    pub profiles: Arc<dyn ProfileRepo>,
    /// Blocking and its session ending.
    pub blocking: AccountBlocking,
    /// SSO sessions (a forced change ends those older than it).
    pub sessions: SessionManager,
    /// The helpdesk's records.
    pub repo: Arc<dyn HelpdeskRepo>,
    /// Audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Hasher, to check the current password.
    pub hasher: Arc<PasswordHasher>,
    /// The hashing pool.
    pub pool: HashingPool,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Blocks, unblocks and forced password changes.
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

    /// Unblocks the account; its next login must change the password before anything is
    /// issued. The requirement is written before the account becomes active again, so there
    /// is no moment when it is active without it.
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
                    .detail(serde_json::json!({ "password_change_required": true })),
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

    /// Whether the account must change its password before its next session.
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

    /// The forced password change after an unblock: the current password (the one just
    /// typed at login) again, the new one twice. The new one must meet the policy and differ
    /// from the current one; once stored, the requirement is lifted and a notice goes to the
    /// verified recovery address. Every SSO session the account still has is ended (they
    /// predate the block: with the in-process store, an operator's block could not reach
    /// them); their handles are returned for single logout.
    ///
    /// # Errors
    /// [`PasswordChangeError`] saying what to fix.
    pub async fn change_required_password(
        &self,
        account: &Account,
        current: &Password,
        new: &Password,
        confirm: &Password,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(Account, Vec<String>), PasswordChangeError> {
        if !self.password_change_required(account).await? {
            return Err(PasswordChangeError::NotRequired);
        }
        let stored = self
            .parts
            .accounts_repo
            .find_credential(account.login.as_str())
            .await?
            .filter(|c| c.account.id == account.id)
            .and_then(|c| c.password_hash);
        let hasher = Arc::clone(&self.parts.hasher);
        let typed = current.clone();
        let verification = self
            .parts
            .pool
            .run(move || hasher.verify(&typed, stored.as_deref()))
            .await
            .map_err(|_| PasswordChangeError::Busy)?
            .map_err(|e| AccountError::Hashing(e.to_string()))?
            .map_err(|e| AccountError::Hashing(e.to_string()))?;
        if !verification.matched {
            return Err(PasswordChangeError::WrongCurrent);
        }
        if new != confirm {
            return Err(PasswordChangeError::Mismatch);
        }
        if new == current {
            return Err(PasswordChangeError::SameAsCurrent);
        }
        self.parts.accounts.check_policy(account, new)?;
        let account = self
            .parts
            .accounts
            .set_password(&account.login, new.clone(), "self")
            .await?;
        let ended = self
            .parts
            .sessions
            .close_all_for(account.id)
            .await
            .map_err(|e| PasswordChangeError::Helpdesk(e.into()))?;
        self.parts.repo.clear_password_change(account.id).await?;
        self.notify_password_changed(&account, ip).await;
        Ok((account, ended))
    }

    /// Sends the password-changed notice to the verified recovery address, if there is one.
    /// A failure is logged, not returned: the password is changed either way.
    async fn notify_password_changed(&self, account: &Account, ip: Option<std::net::IpAddr>) {
        let profile = match self.parts.profiles.find_with_profile(account.id).await {
            Ok(Some(found)) => found.profile,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the profile for the password notice");
                return;
            }
        };
        let Some(to) = profile
            .recovery_email
            .filter(|c| c.verified)
            .map(|c| c.address)
        else {
            return;
        };
        let ip = ip.map(|i| i.to_string());
        let message = MailMessage::password_changed(
            to,
            Lang::default(),
            account.id,
            &account.login,
            self.parts.clock.now(),
            ip.as_deref(),
        );
        if let Err(e) = self.parts.mailer.send(message).await {
            tracing::warn!(error = %e, "could not queue the password-changed notice");
        }
    }
}
