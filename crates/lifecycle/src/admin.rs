//! Account administration shared by the `sesame` command line and the admin HTTP API:
//! create, update, disable, block with a reason, list and end sessions. Both front ends call
//! these, so the same rules and the same audit events apply whichever an operator uses.

use std::sync::Arc;

use sesame_core::account::{
    Account, AccountChanges, AccountProfile, AccountState, AccountWithProfile, Contact, NewAccount,
};
use sesame_core::accounts::AccountService;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::clock::Clock;
use sesame_core::error::AccountError;
use sesame_core::ids::{
    fold_for_search, AccountId, Affiliation, Email, HrId, IdentifierKind, LoginName, MobilePhone,
};
use sesame_core::ports::{AccountRepo, AuditLog, ProfileRepo};
use sesame_core::session::{SessionManager, SsoSession};

use crate::blocking::AccountBlocking;
use crate::import::read::MAX_NAME_CHARS;

/// Longest search accepted, in characters.
const MAX_SEARCH_CHARS: usize = 200;
/// Words of a search that count (all must match).
const MAX_SEARCH_WORDS: usize = 5;

/// A given or family name that is empty, too long or has control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be a non-empty name of at most {MAX_NAME_CHARS} characters, without control characters"
)]
pub struct InvalidName;

/// A given or family name, trimmed; the rule imports apply too.
///
/// # Errors
/// [`InvalidName`].
pub fn person_name(raw: &str) -> Result<String, InvalidName> {
    let name = raw.trim();
    if name.is_empty()
        || name.chars().any(char::is_control)
        || name.chars().count() > MAX_NAME_CHARS
    {
        return Err(InvalidName);
    }
    Ok(name.to_owned())
}

/// A new account, as an operator describes it (fields already parsed).
#[derive(Debug, Clone)]
pub struct AccountRequest {
    /// Login.
    pub login: LoginName,
    /// Institutional e-mail.
    pub email: Option<Email>,
    /// Given name (see [`person_name`]).
    pub given_name: String,
    /// Family name (see [`person_name`]).
    pub family_name: String,
    /// Affiliation.
    pub affiliation: Affiliation,
    /// Personal e-mail for activation and recovery.
    pub recovery_email: Option<Email>,
    /// Mobile phone for recovery.
    pub mobile: Option<MobilePhone>,
    /// The contacts were checked with the person (an operator at the helpdesk desk); else
    /// they are stored unverified until proven by a link or code.
    pub contacts_verified: bool,
}

/// A change an operator asks for: each `Some` is written; for the fields that can be removed,
/// `Some(None)` removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    /// New given name (see [`person_name`]).
    pub given_name: Option<String>,
    /// New family name (see [`person_name`]).
    pub family_name: Option<String>,
    /// New (or no) institutional e-mail.
    pub email: Option<Option<Email>>,
    /// New affiliation.
    pub affiliation: Option<Affiliation>,
    /// New (or no) recovery e-mail (not yet verified).
    pub recovery_email: Option<Option<Email>>,
    /// New (or no) mobile (not yet verified).
    pub mobile: Option<Option<MobilePhone>>,
}

/// Wiring for [`AccountAdmin::new`].
#[derive(Debug, Clone)]
pub struct AccountAdminParts {
    /// Account operations (state changes, audited).
    pub accounts: AccountService,
    /// Account database (e-mail changes).
    pub accounts_repo: Arc<dyn AccountRepo>,
    /// Profiles.
    pub profiles: Arc<dyn ProfileRepo>,
    /// Audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// SSO sessions.
    pub sessions: SessionManager,
    /// Blocking.
    pub blocking: AccountBlocking,
    /// Clock.
    pub clock: Arc<dyn Clock>,
}

/// Account administration for operators.
#[derive(Debug, Clone)]
pub struct AccountAdmin {
    parts: AccountAdminParts,
}

impl AccountAdmin {
    /// Administration over the given parts.
    pub fn new(parts: AccountAdminParts) -> Self {
        Self { parts }
    }

    /// The accounts a helpdesk agent's search names: the one whose HR or student number is
    /// `query`, then those in which every word of `query` occurs in the login, the
    /// institutional e-mail or a name, without case or accents ("Élodie" finds "elodie"); at
    /// most `limit`.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Account>, AccountError> {
        let query = query.trim();
        if query.is_empty() || query.chars().count() > MAX_SEARCH_CHARS {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        if let Ok(hr_id) = HrId::parse(query) {
            if let Some(a) = self.parts.profiles.find_by_hr_id(&hr_id).await? {
                found.push(a.account);
            }
        }
        let words: Vec<String> = query
            .split_whitespace()
            .take(MAX_SEARCH_WORDS)
            .map(fold_for_search)
            .collect();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        for account in self.parts.profiles.search_accounts(&words, limit).await? {
            if !found.iter().any(|a: &Account| a.id == account.id) {
                found.push(account);
            }
        }
        found.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(found)
    }

    /// The account with this login and its profile.
    ///
    /// # Errors
    /// [`AccountError::NotFound`], or a storage failure.
    pub async fn get(&self, login: &LoginName) -> Result<AccountWithProfile, AccountError> {
        let account = self.parts.accounts.get(login).await?;
        self.parts
            .profiles
            .find_with_profile(account.id)
            .await?
            .ok_or(AccountError::NotFound)
    }

    /// Refuses `identifier` as `field` of account `owner` (`None` for a new account) when
    /// another account holds it: logins and institutional e-mails share one namespace, since
    /// the login page takes either in one field. A login taken as a login (an e-mail as an
    /// e-mail) is the usual conflict; across kinds it is [`AccountError::IdentifierTaken`].
    /// The store refuses a clash again inside the write's transaction, so a concurrent write
    /// cannot slip between this check and the write.
    async fn check_namespace(
        &self,
        identifier: &str,
        field: IdentifierKind,
        owner: Option<AccountId>,
    ) -> Result<(), AccountError> {
        match self.parts.profiles.identifier_holder(identifier).await? {
            Some((holder, _)) if Some(holder) == owner => Ok(()),
            Some((_, held_as)) if held_as == field => {
                Err(AccountError::Conflict(field.as_str().to_owned()))
            }
            Some((_, held_as)) => Err(AccountError::IdentifierTaken { field, held_as }),
            None => Ok(()),
        }
    }

    /// Creates an account in state `provisioned` (it can log in once a password is set or
    /// it is activated), with its recovery contacts if given.
    ///
    /// # Errors
    /// [`AccountError::Conflict`] naming `login` or `email` when another account has it as
    /// its login or e-mail, [`AccountError::IdentifierTaken`] when the login is another
    /// account's e-mail or the e-mail another's login, or a storage failure.
    pub async fn create(
        &self,
        request: AccountRequest,
        actor: &str,
    ) -> Result<AccountWithProfile, AccountError> {
        self.check_namespace(request.login.as_str(), IdentifierKind::Login, None)
            .await?;
        if let Some(email) = &request.email {
            if email.as_str() != request.login.as_str() {
                self.check_namespace(email.as_str(), IdentifierKind::Email, None)
                    .await?;
            }
        }
        let now = self.parts.clock.now();
        let affiliation = request.affiliation;
        let new = NewAccount {
            login: request.login,
            email: request.email,
            given_name: request.given_name,
            family_name: request.family_name,
            affiliation,
            state: AccountState::Provisioned,
        };
        let verified = request.contacts_verified;
        let profile = AccountProfile {
            recovery_email: request
                .recovery_email
                .map(|address| Contact { address, verified }),
            mobile: request.mobile.map(|address| Contact { address, verified }),
            ..AccountProfile::default()
        };
        let created = self
            .parts
            .profiles
            .create_with_profile(new, profile, now)
            .await?;
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::AccountCreated, now, actor)
                    .login(created.account.login.as_str())
                    .account(created.account.id)
                    .detail(serde_json::json!({
                        "state": created.account.state.as_str(),
                        "affiliation": affiliation.as_str(),
                        "contacts_verified": verified,
                    })),
            )
            .await?;
        Ok(created)
    }

    /// Writes the fields `update` sets, as one audit event listing their names (never their
    /// values). Nothing set: nothing written, no event.
    ///
    /// # Errors
    /// [`AccountError::NotFound`], [`AccountError::Conflict`] naming `email` if another
    /// account has it, [`AccountError::IdentifierTaken`] if it is another account's login,
    /// or a storage failure.
    pub async fn update(
        &self,
        login: &LoginName,
        update: AccountUpdate,
        actor: &str,
    ) -> Result<AccountWithProfile, AccountError> {
        let account = self.parts.accounts.get(login).await?;
        let now = self.parts.clock.now();
        let changes = AccountChanges {
            given_name: update.given_name,
            family_name: update.family_name,
            affiliation: update.affiliation,
            recovery_email: update
                .recovery_email
                .map(|contact| contact.map(Contact::unverified)),
            mobile: update
                .mobile
                .map(|contact| contact.map(Contact::unverified)),
            ..AccountChanges::default()
        };
        let mut fields = changes.field_names();
        if let Some(Some(email)) = &update.email {
            self.check_namespace(email.as_str(), IdentifierKind::Email, Some(account.id))
                .await?;
        }
        if let Some(email) = &update.email {
            self.parts
                .accounts_repo
                .set_email(account.id, email.as_ref(), now)
                .await?;
            fields.insert(0, "email");
        }
        if !changes.is_empty() {
            self.parts
                .profiles
                .update_account(account.id, &changes, now)
                .await?;
        }
        if !fields.is_empty() {
            self.parts
                .audit
                .record(
                    AuditEvent::new(AuditKind::AccountUpdated, now, actor)
                        .login(account.login.as_str())
                        .account(account.id)
                        .detail(serde_json::json!({ "fields": fields })),
                )
                .await?;
        }
        self.parts
            .profiles
            .find_with_profile(account.id)
            .await?
            .ok_or(AccountError::NotFound)
    }

    /// Disables an account (the person left) and ends its sessions. Returns the account and
    /// the handles of the sessions ended (for single logout). Disabling a disabled account
    /// changes nothing.
    ///
    /// # Errors
    /// [`AccountError::NotFound`], or a storage failure.
    pub async fn disable(
        &self,
        login: &LoginName,
        actor: &str,
    ) -> Result<(Account, Vec<String>), AccountError> {
        let account = self.parts.accounts.get(login).await?;
        let account = if account.state == AccountState::Disabled {
            account
        } else {
            self.parts
                .accounts
                .set_state(&account, AccountState::Disabled, actor)
                .await?
        };
        let ended = self.parts.sessions.close_all_for(account.id).await?;
        Ok((account, ended))
    }

    /// The live SSO sessions of an account, with their handles.
    ///
    /// # Errors
    /// [`AccountError::NotFound`], or a storage failure.
    pub async fn sessions(
        &self,
        login: &LoginName,
    ) -> Result<(Account, Vec<(String, SsoSession)>), AccountError> {
        let account = self.parts.accounts.get(login).await?;
        let sessions = self.parts.sessions.sessions_of(account.id).await?;
        Ok((account, sessions))
    }

    /// Ends every SSO session of an account ("log out everywhere", a lost phone). Returns
    /// the account and the handles of the sessions ended (for single logout).
    ///
    /// # Errors
    /// [`AccountError::NotFound`], or a storage failure.
    pub async fn end_sessions(
        &self,
        login: &LoginName,
        actor: &str,
    ) -> Result<(Account, Vec<String>), AccountError> {
        let account = self.parts.accounts.get(login).await?;
        let ended = self.parts.sessions.close_all_for(account.id).await?;
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::SessionsEnded, self.parts.clock.now(), actor)
                    .login(account.login.as_str())
                    .account(account.id)
                    .detail(serde_json::json!({ "sessions": ended.len() })),
            )
            .await?;
        Ok((account, ended))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(person_name("  Jean-Éric ").unwrap(), "Jean-Éric");
        assert!(person_name("   ").is_err());
        assert!(person_name("a\u{7}b").is_err());
        assert!(person_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
    }
}
