//! The login procedure: one place that decides whether a login and password open a session.
//!
//! Order matters (security spec decision 1, rows A01–A04, C01–C03, C12, C14–C15):
//! 1. take a place in the hashing pool, or answer "busy" before touching any counter;
//! 2. reserve one attempt on the client address's counter, then on the login's counter;
//!    a lock (in the store, or in the database if the store lost it) ends the attempt here,
//!    before argon2, whether the password is right or not;
//! 3. load the account and verify, against a dummy hash if there is no account, so an
//!    unknown login costs what a wrong password costs;
//! 4. on failure, lock the login once it reaches the threshold, and before that answer after
//!    a delay that doubles with each failure; on success, clear its counter, give the
//!    address its attempt back, and rehash if the parameters changed.

use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::account::{Account, AccountState};
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::Clock;
use crate::credentials::hasher::PasswordHasher;
use crate::credentials::pool::HashingPool;
use crate::credentials::Password;
use crate::error::AuthError;
use crate::ids::fold_identifier;
use crate::lockout::{self, LockoutPolicy};
use crate::ports::{AccountRepo, AuditLog, EphemeralStore};

/// What a person submitted on the login form.
#[derive(Debug)]
pub struct LoginAttempt {
    /// The login as typed (login or institutional e-mail).
    pub login: String,
    /// The password.
    pub password: Password,
    /// The client address, as decided by the trusted-proxy rules.
    pub client_ip: Option<IpAddr>,
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
}

/// Longest login string looked up; longer ones fail like an unknown login.
const MAX_LOGIN_BYTES: usize = 1024;

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
        }
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
    /// not checked); [`AuthError::Blocked`] / [`AuthError::Disabled`] only after a correct
    /// password; [`AuthError::Busy`] when the hashing pool is saturated; storage errors.
    #[tracing::instrument(skip_all, fields(user.login = tracing::field::Empty))]
    pub async fn login(&self, attempt: LoginAttempt) -> Result<Authenticated, AuthError> {
        let slot = self.pool.try_enter().map_err(|_| AuthError::Busy)?;
        let folded = fold_identifier(&attempt.login);
        // Logged through Debug so control characters and escapes are encoded (A58).
        tracing::Span::current().record("user.login", tracing::field::debug(&folded));
        let now = self.clock.now();
        let ip = attempt.client_ip;

        // Per-address throttle first: a sprayer must not move per-login counters (C14).
        let ip_key = ip.map(lockout::ip_key);
        if let Some(key) = &ip_key {
            let r = self
                .store
                .reserve_attempt(key, now, self.lockout.ip_window())
                .await?;
            if let Some(until) = r.locked_until {
                self.record(AuditKind::LoginRefusedThrottled, now, &folded, None, ip)
                    .await?;
                return Err(AuthError::Throttled { until });
            }
            if r.attempt > self.lockout.ip_threshold {
                let until = self.lockout.ip_throttle_until(now);
                self.store.lock_attempts(key, until, now).await?;
                self.record(AuditKind::LoginRefusedThrottled, now, &folded, None, ip)
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
        let login_key = match &found {
            Some(f) => lockout::login_key(f.account.login.as_str()),
            None => lockout::login_key(&folded),
        };
        let db_lock = self.accounts.login_locked_until(&login_key).await?;
        if let Some(until) = db_lock.filter(|u| *u > now) {
            self.record(AuditKind::LoginRefusedLocked, now, &folded, None, ip)
                .await?;
            return Err(AuthError::Locked { until });
        }
        let mut reservation = self
            .store
            .reserve_attempt(&login_key, now, self.lockout.window())
            .await?;
        if reservation.locked_until.is_some()
            && db_lock.is_none()
            && self
                .accounts
                .login_locked_until(&login_key)
                .await?
                .is_none()
        {
            // Locks are written to the database before the store, so a store lock with no
            // database lock (read again now: the first read may predate a lock being taken
            // concurrently) was lifted by an operator whose process could not reach this
            // store (embedded mode): honour the database.
            self.store.clear_attempts(&login_key).await?;
            reservation = self
                .store
                .reserve_attempt(&login_key, now, self.lockout.window())
                .await?;
        }
        if let Some(until) = reservation.locked_until {
            self.record(AuditKind::LoginRefusedLocked, now, &folded, None, ip)
                .await?;
            return Err(AuthError::Locked { until });
        }
        if reservation.attempt > self.lockout.threshold {
            // Lost the race for the last allowed attempts: the lock is being taken by the
            // attempt that reached the threshold.
            self.record(AuditKind::LoginRefusedLocked, now, &folded, None, ip)
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
                let account_id = other.map(|f| f.account.id);
                self.record(AuditKind::LoginFailed, now, &folded, account_id, ip)
                    .await?;
                if reservation.attempt >= self.lockout.threshold {
                    let until = self.lockout.lock_until(now);
                    self.accounts
                        .set_login_lock(&login_key, Some(until))
                        .await?;
                    self.store.lock_attempts(&login_key, until, now).await?;
                    sesame_metrics::lockout();
                    self.record(AuditKind::LoginLocked, now, &folded, account_id, ip)
                        .await?;
                    return Err(AuthError::Locked { until });
                }
                tokio::time::sleep(self.lockout.failure_delay(reservation.attempt)).await;
                return Err(AuthError::InvalidCredentials);
            }
        };

        self.store.clear_attempts(&login_key).await?;
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
                    ip,
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
                    ip,
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
            ip,
        )
        .await?;
        Ok(Authenticated { account, at: now })
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

    async fn record(
        &self,
        kind: AuditKind,
        at: OffsetDateTime,
        login: &str,
        account: Option<crate::ids::AccountId>,
        ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        // The login is in the enclosing span, Debug-formatted (escaped).
        tracing::info!(audit.kind = kind.as_str(), client.ip = ?ip, "authentication event");
        let mut event = AuditEvent::new(kind, at, "self").login(login).ip(ip);
        if let Some(id) = account {
            event = event.account(id);
        }
        self.audit.record(event).await?;
        Ok(())
    }
}
