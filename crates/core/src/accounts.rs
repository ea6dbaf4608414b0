//! Operator-side account management shared by the CLI and the admin API: create, set a
//! password under the policy, lift or impose a temporary lock.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::account::{Account, AccountState, NewAccount};
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::Clock;
use crate::credentials::hasher::PasswordHasher;
use crate::credentials::policy::{PasswordContext, PasswordPolicy};
use crate::credentials::pool::HashingPool;
use crate::credentials::Password;
use crate::error::AccountError;
use crate::ids::{Affiliation, LoginName};
use crate::lockout::{self, LockoutPolicy};
use crate::ports::{AccountRepo, AuditLog, EphemeralStore, KnownDeviceRepo};

/// The password policy of each affiliation, falling back to a default one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySet {
    /// Policy for affiliations not listed below.
    #[serde(flatten)]
    pub default: PasswordPolicy,
    /// Per-affiliation policies, e.g. `[password_policy.by_affiliation.pupil]`.
    pub by_affiliation: BTreeMap<Affiliation, PasswordPolicy>,
}

impl PolicySet {
    /// The policy that applies to `affiliation`.
    pub fn for_affiliation(&self, affiliation: Affiliation) -> &PasswordPolicy {
        self.by_affiliation
            .get(&affiliation)
            .unwrap_or(&self.default)
    }

    /// Checks every policy; the error names the affiliation and field.
    ///
    /// # Errors
    /// A message naming what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        self.default.validate()?;
        for (aff, p) in &self.by_affiliation {
            p.validate()
                .map_err(|e| format!("by_affiliation.{aff}: {e}"))?;
        }
        Ok(())
    }
}

/// Account operations for operators.
#[derive(Debug, Clone)]
pub struct AccountService {
    accounts: Arc<dyn AccountRepo>,
    audit: Arc<dyn AuditLog>,
    store: Arc<dyn EphemeralStore>,
    hasher: Arc<PasswordHasher>,
    pool: HashingPool,
    policies: PolicySet,
    lockout: LockoutPolicy,
    clock: Arc<dyn Clock>,
    context_words: Vec<String>,
    devices: Option<Arc<dyn KnownDeviceRepo>>,
}

/// Wiring for [`AccountService::new`].
#[derive(Debug, Clone)]
pub struct AccountServiceParts {
    /// Account database.
    pub accounts: Arc<dyn AccountRepo>,
    /// Audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Counter store (for locks).
    pub store: Arc<dyn EphemeralStore>,
    /// Hasher.
    pub hasher: Arc<PasswordHasher>,
    /// Hashing pool.
    pub pool: HashingPool,
    /// Password policies.
    pub policies: PolicySet,
    /// Lockout settings.
    pub lockout: LockoutPolicy,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Words no password may contain (institution name and the like).
    pub context_words: Vec<String>,
}

impl AccountService {
    /// A service over the given parts.
    pub fn new(parts: AccountServiceParts) -> Self {
        Self {
            accounts: parts.accounts,
            audit: parts.audit,
            store: parts.store,
            hasher: parts.hasher,
            pool: parts.pool,
            policies: parts.policies,
            lockout: parts.lockout,
            clock: parts.clock,
            context_words: parts.context_words,
            devices: None,
        }
    }

    /// Lifts the locks of the account's known devices too when unlocking.
    #[must_use]
    pub fn with_known_devices(mut self, devices: Arc<dyn KnownDeviceRepo>) -> Self {
        self.devices = Some(devices);
        self
    }

    /// The password policies.
    pub fn policies(&self) -> &PolicySet {
        &self.policies
    }

    /// Creates an account.
    ///
    /// # Errors
    /// [`AccountError::Conflict`] if the login or e-mail is taken.
    pub async fn create(&self, new: NewAccount, actor: &str) -> Result<Account, AccountError> {
        let now = self.clock.now();
        let account = self.accounts.create(new, now).await?;
        self.audit
            .record(
                AuditEvent::new(AuditKind::AccountCreated, now, actor)
                    .login(account.login.as_str())
                    .account(account.id)
                    .detail(serde_json::json!({ "state": account.state.as_str(), "affiliation": account.affiliation.as_str() })),
            )
            .await?;
        Ok(account)
    }

    /// The account with this login.
    ///
    /// # Errors
    /// [`AccountError::NotFound`] if there is none.
    pub async fn get(&self, login: &LoginName) -> Result<Account, AccountError> {
        self.accounts
            .find_by_login(login)
            .await?
            .ok_or(AccountError::NotFound)
    }

    /// Checks `password` against the policy of `account`'s affiliation.
    ///
    /// # Errors
    /// [`AccountError::Policy`] listing every broken rule.
    pub fn check_policy(&self, account: &Account, password: &Password) -> Result<(), AccountError> {
        let ctx = PasswordContext {
            login: account.login.as_str(),
            given_name: &account.given_name,
            family_name: &account.family_name,
            extra_words: &self.context_words,
        };
        self.policies
            .for_affiliation(account.affiliation)
            .check(password.expose(), &ctx)
            .map_err(AccountError::Policy)
    }

    /// Sets a new password after checking it against the policy. A provisioned account
    /// becomes active: an operator who sets a password hands the account over.
    ///
    /// # Errors
    /// [`AccountError::Policy`], [`AccountError::NotFound`], [`AccountError::Busy`].
    pub async fn set_password(
        &self,
        login: &LoginName,
        password: Password,
        actor: &str,
    ) -> Result<Account, AccountError> {
        let mut account = self.get(login).await?;
        self.check_policy(&account, &password)?;
        let hasher = Arc::clone(&self.hasher);
        let phc = self
            .pool
            .run(move || hasher.hash(&password))
            .await
            .map_err(|_| AccountError::Busy)?
            .map_err(|e| AccountError::Hashing(e.to_string()))?
            .map_err(|e| AccountError::Hashing(e.to_string()))?;
        let now = self.clock.now();
        self.accounts
            .set_password_hash(account.id, &phc, now)
            .await?;
        self.audit
            .record(
                AuditEvent::new(AuditKind::PasswordChanged, now, actor)
                    .login(account.login.as_str())
                    .account(account.id),
            )
            .await?;
        if account.state == AccountState::Provisioned {
            account = self
                .set_state(&account, AccountState::Active, actor)
                .await?;
        }
        Ok(account)
    }

    /// Moves an account to `state`, recording the transition.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn set_state(
        &self,
        account: &Account,
        state: AccountState,
        actor: &str,
    ) -> Result<Account, AccountError> {
        let now = self.clock.now();
        self.accounts.set_state(account.id, state, now).await?;
        self.audit
            .record(
                AuditEvent::new(AuditKind::AccountStateChanged, now, actor)
                    .login(account.login.as_str())
                    .account(account.id)
                    .detail(
                        serde_json::json!({ "from": account.state.as_str(), "to": state.as_str() }),
                    ),
            )
            .await?;
        Ok(Account {
            state,
            updated_at: now,
            ..account.clone()
        })
    }

    /// Until when the login is temporarily locked, if it is.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn locked_until(&self, login: &str) -> Result<Option<OffsetDateTime>, AccountError> {
        let now = self.clock.now();
        let key = lockout::login_key(login);
        let until = self.accounts.login_locked_until(&key).await?;
        Ok(until.filter(|u| *u > now))
    }

    /// Locks a login string for `secs` seconds (the lockout duration if `None`).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn lock(
        &self,
        login: &str,
        secs: Option<u64>,
        actor: &str,
    ) -> Result<OffsetDateTime, AccountError> {
        let now = self.clock.now();
        let until = now + std::time::Duration::from_secs(secs.unwrap_or(self.lockout.lock_secs));
        let key = lockout::login_key(login);
        // Database first: the login procedure treats a store lock without a database lock as
        // lifted.
        self.accounts.set_login_lock(&key, Some(until)).await?;
        self.store.lock_attempts(&key, until, now).await?;
        self.audit
            .record(
                AuditEvent::new(AuditKind::LoginLocked, now, actor)
                    .login(&crate::ids::fold_identifier(login)),
            )
            .await?;
        Ok(until)
    }

    /// Lifts the temporary locks of a login and forgets its failure counters: the login's
    /// (unknown devices), and, when it names an account, those of each of the account's
    /// known devices. The helpdesk's and the CLI's unlock, and the end of a completed
    /// password reset by a verified channel (security spec decision 1).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn unlock(&self, login: &str, actor: &str) -> Result<(), AccountError> {
        let now = self.clock.now();
        let folded = crate::ids::fold_identifier(login);
        let account = self.accounts.find_credential(&folded).await?;
        // One account, one counter: its login names it, whichever of its identifiers was typed.
        let key = match &account {
            Some(found) => lockout::login_key(found.account.login.as_str()),
            None => lockout::login_key(login),
        };
        // The database first: the login procedure takes a store lock without its database
        // lock for lifted (by a process that could not reach the store).
        self.accounts.set_login_lock(&key, None).await?;
        self.store.clear_attempts(&key).await?;
        let mut devices = 0;
        if let (Some(found), Some(repo)) = (&account, &self.devices) {
            for token_hash in repo.clear_device_locks(found.account.id).await? {
                self.store
                    .clear_attempts(&lockout::device_key(found.account.id, &token_hash))
                    .await?;
                devices += 1;
            }
        }
        let mut event = AuditEvent::new(AuditKind::LoginUnlocked, now, actor)
            .login(&folded)
            .detail(serde_json::json!({ "known_devices": devices }));
        if let Some(found) = &account {
            event = event.account(found.account.id);
        }
        self.audit.record(event).await?;
        Ok(())
    }
}
