//! The login procedure: one place that decides whether a login and password open a session.
//!
//! Order matters (security spec decision 1, rows A01–A04, C01–C03, C12, C14–C15; ADR 0003,
//! ADR 0012):
//! 1. take a place in the hashing pool, or answer "busy" before touching any counter;
//! 2. reserve one attempt on the client address's counter;
//! 3. find the account and the browser's device cookie (by its hash alone); a browser known
//!    for the account counts on its own counter, any other on the login's counter;
//! 4. reserve one attempt on that counter; a lock (in the store, or in the database if the
//!    store lost it) ends the attempt here, before argon2, whether the password is right or
//!    not. The login's lock refuses unknown devices only: an attacker cannot lock a person
//!    out of the browser they use;
//! 5. verify, against a dummy hash if there is no account, so an unknown login costs what a
//!    wrong password costs;
//! 6. on failure, recognise an activation code typed as the password (not a failure), else
//!    lock the counter once it reaches the threshold, and before that answer after a delay
//!    that doubles with each failure; on success, clear the counter, give the address its
//!    attempt back, and rehash if the parameters changed.

use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::account::{Account, AccountState};
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::Clock;
use crate::credentials::hasher::PasswordHasher;
use crate::credentials::pool::HashingPool;
use crate::credentials::Password;
use crate::devices::{KnownDevices, PresentedDevice};
use crate::error::AuthError;
use crate::ids::{fold_identifier, AccountId};
use crate::lockout::{self, LockoutPolicy};
use crate::ports::{AccountRepo, AuditLog, EphemeralStore, PendingActivationCodes};

/// What a person submitted on the login form.
#[derive(Debug)]
pub struct LoginAttempt {
    /// The login as typed (login or institutional e-mail).
    pub login: String,
    /// The password.
    pub password: Password,
    /// The client address, as decided by the trusted-proxy rules.
    pub client_ip: Option<IpAddr>,
    /// The value of the browser's device cookie, if it sent one ([`crate::devices`]).
    pub device: Option<String>,
    /// Where the credentials were typed: the audit trail says so.
    pub channel: LoginChannel,
}

/// Where a login's credentials arrived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoginChannel {
    /// The login page (or the account page re-asking the password).
    #[default]
    Web,
    /// A simple bind on the LDAP interface (a mail client through Dovecot, an application).
    Ldap,
}

impl LoginChannel {
    /// The name in audit details (`via`), none for the web.
    fn audit_name(self) -> Option<&'static str> {
        match self {
            Self::Web => None,
            Self::Ldap => Some("ldap"),
        }
    }
}

/// Who an audit event of a login is about, besides the login: the client address and the
/// channel.
#[derive(Debug, Clone, Copy)]
struct AttemptOrigin {
    ip: Option<IpAddr>,
    channel: LoginChannel,
}

/// A successful login.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The account.
    pub account: Account,
    /// When the credentials were checked.
    pub at: OffsetDateTime,
}

/// Checks credentials against the account database under the lockout rules.
#[derive(Debug, Clone)]
pub struct Authenticator {
    accounts: Arc<dyn AccountRepo>,
    audit: Arc<dyn AuditLog>,
    store: Arc<dyn EphemeralStore>,
    hasher: Arc<PasswordHasher>,
    pool: HashingPool,
    lockout: LockoutPolicy,
    clock: Arc<dyn Clock>,
    devices: Option<KnownDevices>,
    activation_codes: Option<Arc<dyn PendingActivationCodes>>,
}

/// Longest login string looked up; longer ones fail like an unknown login.
const MAX_LOGIN_BYTES: usize = 1024;

/// Failures left before a lock from which a wrong password is told how many remain.
const WARN_WHEN_ATTEMPTS_LEFT: u32 = 2;

/// The counter an attempt counts on.
enum Counter {
    /// The login string's, for every browser not known for the account (and for unknown
    /// logins).
    Login { key: String },
    /// A known device's own, for the account it is known for.
    Device {
        key: String,
        token_hash: String,
        account_id: AccountId,
    },
}

impl Counter {
    fn key(&self) -> &str {
        match self {
            Self::Login { key } | Self::Device { key, .. } => key,
        }
    }

    /// For the audit trail: which kind of counter refused or locked.
    fn name(&self) -> &'static str {
        match self {
            Self::Login { .. } => "login",
            Self::Device { .. } => "device",
        }
    }
}

impl Authenticator {
    /// An authenticator over the given ports.
    pub fn new(
        accounts: Arc<dyn AccountRepo>,
        audit: Arc<dyn AuditLog>,
        store: Arc<dyn EphemeralStore>,
        hasher: Arc<PasswordHasher>,
        pool: HashingPool,
        lockout: LockoutPolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            accounts,
            audit,
            store,
            hasher,
            pool,
            lockout,
            clock,
            devices: None,
            activation_codes: None,
        }
    }

    /// Counts the failures of known devices on their own counters (without it, every browser
    /// counts on the login's counter).
    #[must_use]
    pub fn with_known_devices(mut self, devices: KnownDevices) -> Self {
        self.devices = Some(devices);
        self
    }

    /// Recognises the activation code of a provisioned account typed as its password.
    #[must_use]
    pub fn recognising_activation_codes(mut self, codes: Arc<dyn PendingActivationCodes>) -> Self {
        self.activation_codes = Some(codes);
        self
    }

    /// The lockout settings in force.
    pub fn lockout_policy(&self) -> LockoutPolicy {
        self.lockout
    }

    /// Runs the login procedure.
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] for an unknown login and a wrong password alike;
    /// [`AuthError::Locked`] / [`AuthError::Throttled`] while locked (the password is then
    /// not checked); [`AuthError::ActivationCode`] when the password is the unused
    /// activation code of the provisioned account; [`AuthError::Blocked`] /
    /// [`AuthError::Disabled`] only after a correct password; [`AuthError::Busy`] when the
    /// hashing pool is saturated; storage errors.
    #[tracing::instrument(skip_all, fields(user.login = tracing::field::Empty))]
    pub async fn login(&self, attempt: LoginAttempt) -> Result<Authenticated, AuthError> {
        let slot = self.pool.try_enter().map_err(|_| AuthError::Busy)?;
        let folded = fold_identifier(&attempt.login);
        // Logged through Debug so control characters and escapes are encoded (A58).
        tracing::Span::current().record("user.login", tracing::field::debug(&folded));
        let now = self.clock.now();
        let ip = attempt.client_ip;
        let origin = AttemptOrigin {
            ip,
            channel: attempt.channel,
        };

        // Per-address throttle first: a sprayer must not move per-login counters (C14).
        let ip_key = ip.map(lockout::ip_key);
        if let Some(key) = &ip_key {
            let r = self
                .store
                .reserve_attempt(key, now, self.lockout.ip_window())
                .await?;
            if let Some(until) = r.locked_until {
                self.record(AuditKind::LoginRefusedThrottled, now, &folded, None, origin)
                    .await?;
                return Err(AuthError::Throttled { until });
            }
            if r.attempt > self.lockout.ip_threshold {
                let until = self.lockout.ip_throttle_until(now);
                self.store.lock_attempts(key, until, now).await?;
                self.record(AuditKind::LoginRefusedThrottled, now, &folded, None, origin)
                    .await?;
                return Err(AuthError::Throttled { until });
            }
        }

        if attempt.password.exceeds_hard_cap() {
            return Err(AuthError::PasswordTooLong);
        }
        // The account is looked up first so that its login, not the string typed (which
        // may be its e-mail address or another spelling), names the counter: one account,
        // one counter (A04).
        let found = if folded.len() <= MAX_LOGIN_BYTES {
            self.accounts.find_credential(&folded).await?
        } else {
            None
        };
        // The device is looked up by its token's hash alone, whatever login was typed.
        let device = match &self.devices {
            Some(devices) => devices.recognise(attempt.device.as_deref()).await?,
            None => PresentedDevice::default(),
        };
        let known = found.as_ref().and_then(|f| device.known_for(f.account.id));
        let (counter, db_lock) = match (known, &found) {
            (Some((token_hash, record)), Some(f)) => (
                Counter::Device {
                    key: lockout::device_key(f.account.id, token_hash),
                    token_hash: token_hash.to_owned(),
                    account_id: f.account.id,
                },
                record.locked_until,
            ),
            _ => {
                let key = match &found {
                    Some(f) => lockout::login_key(f.account.login.as_str()),
                    None => lockout::login_key(&folded),
                };
                let db_lock = self.accounts.login_locked_until(&key).await?;
                (Counter::Login { key }, db_lock)
            }
        };
        let account_id = found.as_ref().map(|f| f.account.id);
        if let Some(until) = db_lock.filter(|u| *u > now) {
            self.record_on(
                AuditKind::LoginRefusedLocked,
                now,
                &folded,
                account_id,
                origin,
                &counter,
            )
            .await?;
            return Err(AuthError::Locked { until });
        }
        let mut reservation = self
            .store
            .reserve_attempt(counter.key(), now, self.lockout.window())
            .await?;
        if reservation.locked_until.is_some()
            && db_lock.is_none()
            && self.database_lock(&counter).await?.is_none()
        {
            // Locks are written to the database before the store, so a store lock with no
            // database lock (read again now: the first read may predate a lock being taken
            // concurrently) was lifted by an operator or a password reset whose process
            // could not reach this store (embedded mode): honour the database.
            self.store.clear_attempts(counter.key()).await?;
            reservation = self
                .store
                .reserve_attempt(counter.key(), now, self.lockout.window())
                .await?;
        }
        if let Some(until) = reservation.locked_until {
            self.record_on(
                AuditKind::LoginRefusedLocked,
                now,
                &folded,
                account_id,
                origin,
                &counter,
            )
            .await?;
            return Err(AuthError::Locked { until });
        }
        if reservation.attempt > self.lockout.threshold {
            // Lost the race for the last allowed attempts: the lock is being taken by the
            // attempt that reached the threshold.
            self.record_on(
                AuditKind::LoginRefusedLocked,
                now,
                &folded,
                account_id,
                origin,
                &counter,
            )
            .await?;
            return Err(AuthError::Locked {
                until: self.lockout.lock_until(now),
            });
        }

        let stored_hash = found.as_ref().and_then(|f| f.password_hash.clone());
        let hasher = Arc::clone(&self.hasher);
        let password = attempt.password.clone();
        let verification = slot
            .run(move || hasher.verify(&password, stored_hash.as_deref()))
            .await
            .map_err(|e| AuthError::Hashing(e.to_string()))?
            .map_err(|e| AuthError::Hashing(e.to_string()))?;

        let account = match found {
            Some(found) if verification.matched => found.account,
            other => {
                let provisioned = other
                    .as_ref()
                    .filter(|f| f.account.state == AccountState::Provisioned)
                    .map(|f| f.account.id);
                if self
                    .is_activation_code(provisioned, &attempt.password, now)
                    .await?
                {
                    // Not a failure: the person holds the code their school gave them. The
                    // attempts go back, so typing it never locks anything.
                    self.store.forgive_attempt(counter.key()).await?;
                    if let Some(key) = &ip_key {
                        self.store.forgive_attempt(key).await?;
                    }
                    self.record(
                        AuditKind::LoginActivationCode,
                        now,
                        &folded,
                        account_id,
                        origin,
                    )
                    .await?;
                    return Err(AuthError::ActivationCode);
                }
                self.record_on(
                    AuditKind::LoginFailed,
                    now,
                    &folded,
                    account_id,
                    origin,
                    &counter,
                )
                .await?;
                if reservation.attempt >= self.lockout.threshold {
                    let until = self.lockout.lock_until(now);
                    self.set_database_lock(&counter, until).await?;
                    self.store.lock_attempts(counter.key(), until, now).await?;
                    sesame_metrics::lockout();
                    self.record_on(
                        AuditKind::LoginLocked,
                        now,
                        &folded,
                        account_id,
                        origin,
                        &counter,
                    )
                    .await?;
                    return Err(AuthError::Locked { until });
                }
                tokio::time::sleep(self.lockout.failure_delay(reservation.attempt)).await;
                let left = self.lockout.threshold - reservation.attempt;
                return Err(AuthError::InvalidCredentials {
                    attempts_left: (left <= WARN_WHEN_ATTEMPTS_LEFT).then_some(left),
                });
            }
        };

        self.store.clear_attempts(counter.key()).await?;
        if let Some(key) = &ip_key {
            self.store.forgive_attempt(key).await?;
        }
        match account.state {
            AccountState::Active => {}
            AccountState::Blocked => {
                self.record(
                    AuditKind::LoginRefusedState,
                    now,
                    &folded,
                    Some(account.id),
                    origin,
                )
                .await?;
                return Err(AuthError::Blocked);
            }
            AccountState::Provisioned | AccountState::Disabled => {
                self.record(
                    AuditKind::LoginRefusedState,
                    now,
                    &folded,
                    Some(account.id),
                    origin,
                )
                .await?;
                return Err(AuthError::Disabled);
            }
        }
        if verification.needs_rehash {
            self.rehash(&account, attempt.password, now).await;
        }
        self.record(
            AuditKind::LoginSucceeded,
            now,
            &folded,
            Some(account.id),
            origin,
        )
        .await?;
        Ok(Authenticated { account, at: now })
    }

    /// Whether the password is the unused activation code of `provisioned`. Asked for every
    /// failure (with `None` when there is no provisioned account), so that a provisioned
    /// account's wrong password costs what any wrong password costs.
    async fn is_activation_code(
        &self,
        provisioned: Option<AccountId>,
        typed: &Password,
        now: OffsetDateTime,
    ) -> Result<bool, AuthError> {
        match &self.activation_codes {
            Some(codes) => Ok(codes.is_pending_code(provisioned, typed, now).await?),
            None => Ok(false),
        }
    }

    /// The counter's lock as the database holds it now.
    async fn database_lock(&self, counter: &Counter) -> Result<Option<OffsetDateTime>, AuthError> {
        Ok(match (counter, &self.devices) {
            (Counter::Login { key }, _) => self.accounts.login_locked_until(key).await?,
            (
                Counter::Device {
                    token_hash,
                    account_id,
                    ..
                },
                Some(devices),
            ) => devices
                .repo()
                .devices_by_token(token_hash)
                .await?
                .into_iter()
                .find(|d| d.account_id == *account_id)
                .and_then(|d| d.locked_until),
            (Counter::Device { .. }, None) => None,
        })
    }

    /// Writes the counter's lock to the database (before the store: a store restart must
    /// never unlock, security decision 2).
    async fn set_database_lock(
        &self,
        counter: &Counter,
        until: OffsetDateTime,
    ) -> Result<(), AuthError> {
        match (counter, &self.devices) {
            (Counter::Login { key }, _) => self.accounts.set_login_lock(key, Some(until)).await?,
            (
                Counter::Device {
                    token_hash,
                    account_id,
                    ..
                },
                Some(devices),
            ) => {
                devices
                    .repo()
                    .set_device_lock(token_hash, *account_id, Some(until))
                    .await?;
            }
            (Counter::Device { .. }, None) => {}
        }
        Ok(())
    }

    /// Replaces an outdated hash. A failure here must not fail the login: the old hash still
    /// verifies, and the next login tries again.
    async fn rehash(&self, account: &Account, password: Password, now: OffsetDateTime) {
        let hasher = Arc::clone(&self.hasher);
        let result = match self.pool.run(move || hasher.hash(&password)).await {
            Ok(Ok(Ok(phc))) => self
                .accounts
                .set_password_hash(account.id, &phc, now)
                .await
                .map_err(|e| e.to_string()),
            Ok(Ok(Err(e))) => Err(e.to_string()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(()) => {
                let event = AuditEvent::new(AuditKind::PasswordRehashed, now, "self")
                    .login(account.login.as_str())
                    .account(account.id);
                if let Err(e) = self.audit.record(event).await {
                    tracing::warn!(error = %e, "could not record the rehash audit event");
                }
            }
            Err(e) => tracing::warn!(error = %e, user.id = %account.id, "rehash postponed"),
        }
    }

    /// [`Authenticator::record`], naming the counter the attempt counted on.
    async fn record_on(
        &self,
        kind: AuditKind,
        at: OffsetDateTime,
        login: &str,
        account: Option<AccountId>,
        origin: AttemptOrigin,
        counter: &Counter,
    ) -> Result<(), AuthError> {
        let ip = origin.ip;
        tracing::info!(audit.kind = kind.as_str(), client.ip = ?ip, lockout.counter = counter.name(), "authentication event");
        let mut detail = serde_json::json!({ "counter": counter.name() });
        if let Some(via) = origin.channel.audit_name() {
            detail["via"] = serde_json::Value::from(via);
        }
        let mut event = AuditEvent::new(kind, at, "self")
            .login(login)
            .ip(ip)
            .detail(detail);
        if let Some(id) = account {
            event = event.account(id);
        }
        self.audit.record(event).await?;
        Ok(())
    }

    async fn record(
        &self,
        kind: AuditKind,
        at: OffsetDateTime,
        login: &str,
        account: Option<AccountId>,
        origin: AttemptOrigin,
    ) -> Result<(), AuthError> {
        let ip = origin.ip;
        // The login is in the enclosing span, Debug-formatted (escaped).
        tracing::info!(audit.kind = kind.as_str(), client.ip = ?ip, "authentication event");
        let mut event = AuditEvent::new(kind, at, "self").login(login).ip(ip);
        if let Some(via) = origin.channel.audit_name() {
            event = event.detail(serde_json::json!({ "via": via }));
        }
        if let Some(id) = account {
            event = event.account(id);
        }
        self.audit.record(event).await?;
        Ok(())
    }
}
