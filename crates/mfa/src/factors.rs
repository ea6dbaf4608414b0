//! A person's second factors: enrolling a TOTP application, checking a code or a recovery code
//! at login, listing and removing. The rules live here; the database behind
//! [`SecondFactorRepo`] and the pages are the storage crate's and the server's.
//!
//! - Enrolment is two-phase: [`SecondFactors::begin_totp`] draws a secret and keeps it, sealed,
//!   in the ephemeral store for 15 minutes under a random id the page holds; only
//!   [`SecondFactors::confirm_totp`] with a first correct code makes it a factor (a secret the
//!   person's application never read cannot lock them out). The first factor comes with ten
//!   recovery codes, shown once.
//! - At login, [`SecondFactors::verify`] accepts a current TOTP code once (RFC 6238 § 5.2, across
//!   instances: [`UsedSteps`]) or an unused recovery code (deleted as it is used). Wrong answers
//!   count per account: five within 15 minutes lock the factor for 15 minutes. Only someone who
//!   typed the correct password reaches this check, so an attacker without it cannot lock a
//!   person's second factor.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sesame_core::clock::Clock;
use sesame_core::error::{RepoError, StoreError};
use sesame_core::ids::AccountId;
use sesame_core::ports::EphemeralStore;
use sesame_core::random;
use time::OffsetDateTime;

use crate::passkeys::StoredPasskey;
use crate::recovery::{self, RecoveryCodeSet};
use crate::sealing::{SealingError, SecretSealer};
use crate::totp::{qr_svg, TotpError, TotpSecret, UsedSteps};

/// How long a begun enrolment waits for its first code.
pub const ENROLMENT_TTL: Duration = Duration::from_secs(15 * 60);
/// Wrong answers (codes or recovery codes) counted before the factor locks.
pub const MAX_WRONG_ANSWERS: u32 = 5;
/// The window wrong answers are counted in, and how long the factor then stays locked.
pub const WRONG_ANSWER_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Longest label kept for a factor.
pub const MAX_LABEL_CHARS: usize = 64;

/// The kind of a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorKind {
    /// A TOTP application (RFC 6238).
    Totp,
    /// A passkey or security key (WebAuthn; its credential in [`crate::passkeys`]).
    Passkey,
}

impl FactorKind {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Passkey => "passkey",
        }
    }

    /// The kind a stored name designates.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "totp" => Some(Self::Totp),
            "passkey" => Some(Self::Passkey),
            _ => None,
        }
    }
}

/// A second factor, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondFactorRecord {
    /// Random identifier.
    pub id: String,
    /// Whose factor it is.
    pub account_id: AccountId,
    /// What it is.
    pub kind: FactorKind,
    /// The person's name for it ("Téléphone").
    pub label: String,
    /// The TOTP secret, sealed ([`SecretSealer`], bound to the account); empty for a key
    /// (its public key is in [`StoredPasskey`]).
    pub sealed_secret: String,
    /// When it was enrolled.
    pub created_at: OffsetDateTime,
    /// When it last passed a login.
    pub last_used_at: Option<OffsetDateTime>,
}

/// Second factors and recovery codes in the database.
#[async_trait]
pub trait SecondFactorRepo: Send + Sync + std::fmt::Debug {
    /// The account's factors, oldest first.
    async fn factors(&self, account: AccountId) -> Result<Vec<SecondFactorRecord>, RepoError>;

    /// Adds a factor and, in the same transaction, replaces the account's recovery codes
    /// when `recovery_hashes` is given.
    async fn add_factor(
        &self,
        factor: &SecondFactorRecord,
        recovery_hashes: Option<&[String]>,
    ) -> Result<(), RepoError>;

    /// Records a login with factor `id`.
    async fn touch_factor(&self, id: &str, at: OffsetDateTime) -> Result<(), RepoError>;

    /// Removes factor `id` of `account`; when it was the last, the recovery codes go too.
    /// `true` if it existed.
    async fn remove_factor(&self, account: AccountId, id: &str) -> Result<bool, RepoError>;

    /// Removes every factor and recovery code of `account`; how many factors there were.
    async fn remove_all_factors(&self, account: AccountId) -> Result<usize, RepoError>;

    /// The SHA-256 of the account's unused recovery codes.
    async fn recovery_codes(&self, account: AccountId) -> Result<Vec<String>, RepoError>;

    /// Replaces the account's recovery codes.
    async fn replace_recovery_codes(
        &self,
        account: AccountId,
        hashes: &[String],
        at: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// Deletes the recovery code `hash` of `account`: `true` for the one caller that deleted
    /// it (a code is single-use, even raced).
    async fn use_recovery_code(&self, account: AccountId, hash: &str) -> Result<bool, RepoError>;

    /// Adds a key: its factor and its credential, in one transaction.
    async fn add_passkey(
        &self,
        factor: &SecondFactorRecord,
        key: &StoredPasskey,
    ) -> Result<(), RepoError>;

    /// The account's keys.
    async fn passkeys(&self, account: AccountId) -> Result<Vec<StoredPasskey>, RepoError>;

    /// The key of credential id `credential_id` (base64url), whoever's it is.
    async fn passkey(&self, credential_id: &str) -> Result<Option<StoredPasskey>, RepoError>;

    /// Saves a key's state after a login (`state`), and the use on its factor.
    async fn update_passkey(
        &self,
        credential_id: &str,
        state: &str,
        at: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// Logins `account` made without a factor while one was required (0 if none).
    async fn grace_logins(&self, account: AccountId) -> Result<u32, RepoError>;

    /// Counts one more such login; returns the new count.
    async fn count_grace_login(
        &self,
        account: AccountId,
        at: OffsetDateTime,
    ) -> Result<u32, RepoError>;
}

/// Why a second-factor operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// No sealing key is configured: second factors cannot be enrolled or checked.
    #[error("second factors are not enabled (no [mfa] sealing key)")]
    NotEnabled,
    /// The begun enrolment is unknown or expired.
    #[error("the enrolment expired")]
    EnrolmentExpired,
    /// The first code of an enrolment is wrong.
    #[error("wrong code")]
    WrongCode,
    /// A stored secret could not be opened (wrong key, tampered row).
    #[error(transparent)]
    Sealing(#[from] SealingError),
    /// A TOTP secret or URI could not be built.
    #[error(transparent)]
    Totp(#[from] TotpError),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The ephemeral store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A begun TOTP enrolment, as the page shows it.
#[derive(Clone)]
pub struct TotpEnrolment {
    /// The enrolment's id (the page's hidden field; single-use).
    pub id: String,
    /// The secret as people type it into an application without a camera.
    pub secret_text: String,
    /// The `otpauth://` URI.
    pub uri: String,
    /// The URI as a QR code, SVG.
    pub qr_svg: String,
}

/// The secret is shown to the person only: a `{:?}` shows neither it nor the URI.
impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment").finish_non_exhaustive()
    }
}

/// What a confirmed enrolment gives.
#[derive(Debug, Clone)]
pub struct Enrolled {
    /// The new factor's id.
    pub factor_id: String,
    /// Recovery codes to show once (with the account's first factor only).
    pub recovery_codes: Option<RecoveryCodeSet>,
}

/// The answer to a code typed at login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// A current TOTP code, accepted (and never again).
    Totp,
    /// An unused recovery code, now used; `left` remain.
    RecoveryCode {
        /// Unused codes left.
        left: usize,
    },
    /// Wrong, replayed or stale; `attempts_left` before the factor locks.
    Wrong {
        /// Wrong answers left before the lock.
        attempts_left: u32,
    },
    /// Too many wrong answers: locked until then (nothing was checked).
    Locked {
        /// When answers are taken again.
        until: OffsetDateTime,
    },
}

/// A factor as the account page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorSummary {
    /// Its id.
    pub id: String,
    /// What it is.
    pub kind: FactorKind,
    /// The person's name for it.
    pub label: String,
    /// When it was enrolled.
    pub created_at: OffsetDateTime,
    /// When it last passed a login.
    pub last_used_at: Option<OffsetDateTime>,
}

/// The second factors of every account.
#[derive(Debug, Clone)]
pub struct SecondFactors {
    repo: Arc<dyn SecondFactorRepo>,
    store: Arc<dyn EphemeralStore>,
    sealer: Option<Arc<SecretSealer>>,
    clock: Arc<dyn Clock>,
    issuer: String,
}

fn enrolment_key(account: AccountId, id: &str) -> String {
    format!("mfa:enrol:{account}:{}", random::sha256_hex(id))
}

fn wrong_answers_key(account: AccountId) -> String {
    format!("mfa:wrong:{account}")
}

/// A label as kept: trimmed, without control characters, at most [`MAX_LABEL_CHARS`].
pub(crate) fn clean_label(label: &str, fallback: &str) -> String {
    let cleaned: String = label
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_LABEL_CHARS)
        .collect();
    if cleaned.is_empty() {
        fallback.to_owned()
    } else {
        cleaned
    }
}

impl SecondFactors {
    /// Second factors over these ports. Without a sealer (no key configured) nothing can be
    /// enrolled, and an account that has factors cannot have them checked (its logins fail
    /// closed: see [`Self::is_enabled`]). `issuer` names Sesame in authenticator applications.
    pub fn new(
        repo: Arc<dyn SecondFactorRepo>,
        store: Arc<dyn EphemeralStore>,
        sealer: Option<SecretSealer>,
        clock: Arc<dyn Clock>,
        issuer: impl Into<String>,
    ) -> Self {
        Self {
            repo,
            store,
            sealer: sealer.map(Arc::new),
            clock,
            issuer: issuer.into(),
        }
    }

    /// Whether second factors can be enrolled and checked (a sealing key is configured).
    pub fn is_enabled(&self) -> bool {
        self.sealer.is_some()
    }

    fn sealer(&self) -> Result<&SecretSealer, MfaError> {
        self.sealer.as_deref().ok_or(MfaError::NotEnabled)
    }

    /// Whether `account` has at least one second factor.
    ///
    /// # Errors
    /// The database failed.
    pub async fn enrolled(&self, account: AccountId) -> Result<bool, MfaError> {
        Ok(!self.repo.factors(account).await?.is_empty())
    }

    /// The account's factors, for its page.
    ///
    /// # Errors
    /// The database failed.
    pub async fn list(&self, account: AccountId) -> Result<Vec<FactorSummary>, MfaError> {
        Ok(self
            .repo
            .factors(account)
            .await?
            .into_iter()
            .map(|f| FactorSummary {
                id: f.id,
                kind: f.kind,
                label: f.label,
                created_at: f.created_at,
                last_used_at: f.last_used_at,
            })
            .collect())
    }

    /// How many unused recovery codes `account` has.
    ///
    /// # Errors
    /// The database failed.
    pub async fn recovery_codes_left(&self, account: AccountId) -> Result<usize, MfaError> {
        Ok(self.repo.recovery_codes(account).await?.len())
    }

    /// Begins enrolling a TOTP application for `account` (shown as `login` in the
    /// application): a new secret, kept sealed for [`ENROLMENT_TTL`] until confirmed.
    ///
    /// # Errors
    /// Not enabled, or the store failed.
    pub async fn begin_totp(
        &self,
        account: AccountId,
        login: &str,
    ) -> Result<TotpEnrolment, MfaError> {
        let sealer = self.sealer()?;
        let secret = TotpSecret::generate();
        let uri = secret.otpauth_uri(&self.issuer, login)?;
        let qr = qr_svg(&uri)?;
        let id = random::token();
        let sealed = sealer.seal(account, secret.as_bytes())?;
        self.store
            .put(&enrolment_key(account, &id), &sealed, ENROLMENT_TTL)
            .await?;
        Ok(TotpEnrolment {
            id,
            secret_text: secret.as_typed(),
            uri,
            qr_svg: qr,
        })
    }

    /// The begun enrolment `id` of `account` again (the page shown after a wrong first code),
    /// without consuming it.
    ///
    /// # Errors
    /// Expired or unknown, not enabled, or the store failed.
    pub async fn resume_totp(
        &self,
        account: AccountId,
        login: &str,
        id: &str,
    ) -> Result<TotpEnrolment, MfaError> {
        let sealer = self.sealer()?;
        let sealed = self
            .store
            .get(&enrolment_key(account, id))
            .await?
            .ok_or(MfaError::EnrolmentExpired)?;
        let secret = TotpSecret::from_bytes(sealer.open(account, &sealed)?)?;
        let uri = secret.otpauth_uri(&self.issuer, login)?;
        Ok(TotpEnrolment {
            id: id.to_owned(),
            secret_text: secret.as_typed(),
            qr_svg: qr_svg(&uri)?,
            uri,
        })
    }

    /// Confirms the begun enrolment `id` with the first code the application shows: the
    /// secret becomes a factor named `label`. The enrolment stays open after a wrong code
    /// (the person types the next one) and is consumed by the right one.
    ///
    /// # Errors
    /// [`MfaError::WrongCode`], [`MfaError::EnrolmentExpired`], or storage failures.
    pub async fn confirm_totp(
        &self,
        account: AccountId,
        id: &str,
        code: &str,
        label: &str,
    ) -> Result<Enrolled, MfaError> {
        let sealer = self.sealer()?;
        let key = enrolment_key(account, id);
        let sealed = self
            .store
            .get(&key)
            .await?
            .ok_or(MfaError::EnrolmentExpired)?;
        let secret = TotpSecret::from_bytes(sealer.open(account, &sealed)?)?;
        let now = self.clock.now();
        let step = secret.matching_step(code, now).ok_or(MfaError::WrongCode)?;
        // The code that confirms is used: it cannot open a login next.
        if !UsedSteps.claim(self.store.as_ref(), account, step).await? {
            return Err(MfaError::WrongCode);
        }
        // Of two confirmations of one enrolment, one makes the factor.
        if self.store.take(&key).await?.is_none() {
            return Err(MfaError::EnrolmentExpired);
        }
        let first = self.repo.factors(account).await?.is_empty();
        let codes = first.then(RecoveryCodeSet::generate);
        let factor = SecondFactorRecord {
            id: random::token(),
            account_id: account,
            kind: FactorKind::Totp,
            label: clean_label(label, "TOTP"),
            sealed_secret: sealer.seal(account, secret.as_bytes())?,
            created_at: now,
            last_used_at: None,
        };
        self.repo
            .add_factor(&factor, codes.as_ref().map(|c| c.hashes.as_slice()))
            .await?;
        Ok(Enrolled {
            factor_id: factor.id,
            recovery_codes: codes,
        })
    }

    /// Checks what was typed at the second-factor step of `account`'s login: a TOTP code of
    /// one of its factors, or one of its recovery codes.
    ///
    /// # Errors
    /// Not enabled, or storage failures (the caller refuses: fail closed).
    pub async fn verify(&self, account: AccountId, typed: &str) -> Result<Verification, MfaError> {
        let sealer = self.sealer()?;
        let now = self.clock.now();
        let counter = wrong_answers_key(account);
        let reservation = self
            .store
            .reserve_attempt(&counter, now, WRONG_ANSWER_WINDOW)
            .await?;
        if let Some(until) = reservation.locked_until {
            return Ok(Verification::Locked { until });
        }
        let digits: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
        if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
            let applications = self.repo.factors(account).await?;
            for factor in applications.iter().filter(|f| f.kind == FactorKind::Totp) {
                let secret = TotpSecret::from_bytes(sealer.open(account, &factor.sealed_secret)?)?;
                if let Some(step) = secret.matching_step(&digits, now) {
                    if UsedSteps.claim(self.store.as_ref(), account, step).await? {
                        self.store.clear_attempts(&counter).await?;
                        self.repo.touch_factor(&factor.id, now).await?;
                        return Ok(Verification::Totp);
                    }
                }
            }
        } else {
            let unused = self.repo.recovery_codes(account).await?;
            if let Some(index) = recovery::find(typed, &unused) {
                if self.repo.use_recovery_code(account, &unused[index]).await? {
                    self.store.clear_attempts(&counter).await?;
                    return Ok(Verification::RecoveryCode {
                        left: unused.len().saturating_sub(1),
                    });
                }
            }
        }
        if reservation.attempt >= MAX_WRONG_ANSWERS {
            let until = now + WRONG_ANSWER_WINDOW;
            self.store.lock_attempts(&counter, until, now).await?;
            return Ok(Verification::Locked { until });
        }
        Ok(Verification::Wrong {
            attempts_left: MAX_WRONG_ANSWERS - reservation.attempt,
        })
    }

    /// Removes factor `id` of `account` (the last one takes the recovery codes with it).
    ///
    /// # Errors
    /// The database failed.
    pub async fn remove(&self, account: AccountId, id: &str) -> Result<bool, MfaError> {
        Ok(self.repo.remove_factor(account, id).await?)
    }

    /// Removes every factor of `account` (the helpdesk, for a lost phone); how many there were.
    ///
    /// # Errors
    /// The database failed.
    pub async fn remove_all(&self, account: AccountId) -> Result<usize, MfaError> {
        self.store
            .clear_attempts(&wrong_answers_key(account))
            .await?;
        Ok(self.repo.remove_all_factors(account).await?)
    }

    /// Logins `account` made without a factor while one was required.
    ///
    /// # Errors
    /// The database failed.
    pub async fn grace_logins(&self, account: AccountId) -> Result<u32, MfaError> {
        Ok(self.repo.grace_logins(account).await?)
    }

    /// Counts one more login of `account` without the factor it is required to have.
    ///
    /// # Errors
    /// The database failed.
    pub async fn count_grace_login(&self, account: AccountId) -> Result<u32, MfaError> {
        Ok(self
            .repo
            .count_grace_login(account, self.clock.now())
            .await?)
    }

    /// Ten new recovery codes for `account`, replacing the old ones: shown once.
    ///
    /// # Errors
    /// The database failed.
    pub async fn regenerate_recovery_codes(
        &self,
        account: AccountId,
    ) -> Result<RecoveryCodeSet, MfaError> {
        let codes = RecoveryCodeSet::generate();
        self.repo
            .replace_recovery_codes(account, &codes.hashes, self.clock.now())
            .await?;
        Ok(codes)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use sesame_core::clock::ManualClock;
    use sesame_store::MemoryStore;
    use time::macros::datetime;

    use super::*;

    /// The repository as a list, for the rules' tests (the SQL one has its own).
    #[derive(Debug, Default)]
    struct ListRepo {
        factors: Mutex<Vec<SecondFactorRecord>>,
        codes: Mutex<Vec<(AccountId, String)>>,
        grace: Mutex<Vec<(AccountId, u32)>>,
        keys: Mutex<Vec<StoredPasskey>>,
    }

    #[async_trait]
    impl SecondFactorRepo for ListRepo {
        async fn factors(&self, account: AccountId) -> Result<Vec<SecondFactorRecord>, RepoError> {
            let all = self
                .factors
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            Ok(all
                .iter()
                .filter(|f| f.account_id == account)
                .cloned()
                .collect())
        }
        async fn add_factor(
            &self,
            factor: &SecondFactorRecord,
            recovery_hashes: Option<&[String]>,
        ) -> Result<(), RepoError> {
            if let Some(hashes) = recovery_hashes {
                self.replace_recovery_codes(factor.account_id, hashes, factor.created_at)
                    .await?;
            }
            self.factors
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?
                .push(factor.clone());
            Ok(())
        }
        async fn touch_factor(&self, id: &str, at: OffsetDateTime) -> Result<(), RepoError> {
            let mut all = self
                .factors
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            for f in all.iter_mut().filter(|f| f.id == id) {
                f.last_used_at = Some(at);
            }
            Ok(())
        }
        async fn remove_factor(&self, account: AccountId, id: &str) -> Result<bool, RepoError> {
            let mut all = self
                .factors
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            let before = all.len();
            all.retain(|f| !(f.account_id == account && f.id == id));
            Ok(all.len() < before)
        }
        async fn remove_all_factors(&self, account: AccountId) -> Result<usize, RepoError> {
            let mut all = self
                .factors
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            let before = all.len();
            all.retain(|f| f.account_id != account);
            Ok(before - all.len())
        }
        async fn recovery_codes(&self, account: AccountId) -> Result<Vec<String>, RepoError> {
            let codes = self
                .codes
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            Ok(codes
                .iter()
                .filter(|(a, _)| *a == account)
                .map(|(_, h)| h.clone())
                .collect())
        }
        async fn replace_recovery_codes(
            &self,
            account: AccountId,
            hashes: &[String],
            _at: OffsetDateTime,
        ) -> Result<(), RepoError> {
            let mut codes = self
                .codes
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            codes.retain(|(a, _)| *a != account);
            codes.extend(hashes.iter().map(|h| (account, h.clone())));
            Ok(())
        }
        async fn use_recovery_code(
            &self,
            account: AccountId,
            hash: &str,
        ) -> Result<bool, RepoError> {
            let mut codes = self
                .codes
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            let before = codes.len();
            codes.retain(|(a, h)| !(*a == account && h == hash));
            Ok(codes.len() < before)
        }
        async fn add_passkey(
            &self,
            factor: &SecondFactorRecord,
            key: &StoredPasskey,
        ) -> Result<(), RepoError> {
            self.add_factor(factor, None).await?;
            self.keys
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?
                .push(key.clone());
            Ok(())
        }
        async fn passkeys(&self, account: AccountId) -> Result<Vec<StoredPasskey>, RepoError> {
            let keys = self
                .keys
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            Ok(keys
                .iter()
                .filter(|k| k.account_id == account)
                .cloned()
                .collect())
        }
        async fn passkey(&self, credential_id: &str) -> Result<Option<StoredPasskey>, RepoError> {
            let keys = self
                .keys
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            Ok(keys
                .iter()
                .find(|k| k.credential_id == credential_id)
                .cloned())
        }
        async fn update_passkey(
            &self,
            credential_id: &str,
            state: &str,
            _at: OffsetDateTime,
        ) -> Result<(), RepoError> {
            let mut keys = self
                .keys
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            for k in keys.iter_mut().filter(|k| k.credential_id == credential_id) {
                k.state = state.to_owned();
            }
            Ok(())
        }
        async fn grace_logins(&self, account: AccountId) -> Result<u32, RepoError> {
            let grace = self
                .grace
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            Ok(grace
                .iter()
                .find(|(a, _)| *a == account)
                .map_or(0, |(_, n)| *n))
        }
        async fn count_grace_login(
            &self,
            account: AccountId,
            _at: OffsetDateTime,
        ) -> Result<u32, RepoError> {
            let mut grace = self
                .grace
                .lock()
                .map_err(|e| RepoError::Unavailable(e.to_string()))?;
            if let Some(entry) = grace.iter_mut().find(|(a, _)| *a == account) {
                entry.1 += 1;
                return Ok(entry.1);
            }
            grace.push((account, 1));
            Ok(1)
        }
    }

    const T0: OffsetDateTime = datetime!(2026-12-06 08:00:10 UTC);

    fn factors() -> (SecondFactors, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::starting_at(T0));
        let sealer = SecretSealer::new(("k1", &[7u8; 32]), &[]).unwrap();
        let f = SecondFactors::new(
            Arc::new(ListRepo::default()),
            Arc::new(MemoryStore::new()),
            Some(sealer),
            clock.clone(),
            "Sesame",
        );
        (f, clock)
    }

    fn account() -> AccountId {
        AccountId(uuid::Uuid::now_v7())
    }

    fn secret_of(enrolment: &TotpEnrolment) -> TotpSecret {
        let b32 = enrolment
            .uri
            .split("secret=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        TotpSecret::from_bytes(base32_decode(b32)).unwrap()
    }

    /// RFC 4648 base32 without padding, as the `otpauth://` URI carries the secret.
    fn base32_decode(text: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let mut bits = 0u64;
        let mut count = 0;
        let mut out = Vec::new();
        for c in text.bytes().filter(|c| *c != b'=') {
            let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u64;
            bits = (bits << 5) | v;
            count += 5;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
            }
        }
        out
    }

    #[tokio::test]
    async fn an_enrolment_counts_only_once_confirmed_and_gives_recovery_codes_once() {
        let (f, clock) = factors();
        let a = account();
        let e = f.begin_totp(a, "jean.dupont").await.unwrap();
        assert!(
            e.uri.starts_with("otpauth://totp/Sesame:jean.dupont?"),
            "{}",
            e.uri
        );
        assert!(e.qr_svg.contains("<svg"));
        assert!(!f.enrolled(a).await.unwrap());
        let secret = secret_of(&e);
        // A wrong first code keeps the enrolment open; the right one confirms it.
        let code = secret.code_at(clock.now()).unwrap();
        let wrong: String = code
            .chars()
            .map(|c| char::from(b'0' + (c as u8 - b'0' + 5) % 10))
            .collect();
        assert!(matches!(
            f.confirm_totp(a, &e.id, &wrong, "").await,
            Err(MfaError::WrongCode)
        ));
        let done = f.confirm_totp(a, &e.id, &code, "Téléphone").await.unwrap();
        assert_eq!(done.recovery_codes.as_ref().unwrap().shown.len(), 10);
        assert!(f.enrolled(a).await.unwrap());
        assert_eq!(f.list(a).await.unwrap()[0].label, "Téléphone");
        // The enrolment is used up; a second factor brings no new recovery codes.
        assert!(matches!(
            f.confirm_totp(a, &e.id, &code, "").await,
            Err(MfaError::EnrolmentExpired)
        ));
        let e2 = f.begin_totp(a, "jean.dupont").await.unwrap();
        clock.advance(time::Duration::seconds(30));
        let code2 = secret_of(&e2).code_at(clock.now()).unwrap();
        let done2 = f.confirm_totp(a, &e2.id, &code2, "").await.unwrap();
        assert!(done2.recovery_codes.is_none());
        assert_eq!(f.list(a).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_code_opens_one_login_and_a_recovery_code_one_only() {
        let (f, clock) = factors();
        let a = account();
        let e = f.begin_totp(a, "p").await.unwrap();
        let secret = secret_of(&e);
        let codes = f
            .confirm_totp(a, &e.id, &secret.code_at(clock.now()).unwrap(), "")
            .await
            .unwrap()
            .recovery_codes
            .unwrap();
        // The confirming code is used; the next step's code opens a login, once.
        assert!(matches!(
            f.verify(a, &secret.code_at(clock.now()).unwrap())
                .await
                .unwrap(),
            Verification::Wrong { .. }
        ));
        clock.advance(time::Duration::seconds(30));
        let code = secret.code_at(clock.now()).unwrap();
        assert_eq!(f.verify(a, &code).await.unwrap(), Verification::Totp);
        assert!(matches!(
            f.verify(a, &code).await.unwrap(),
            Verification::Wrong { .. }
        ));
        assert!(f.list(a).await.unwrap()[0].last_used_at.is_some());
        // A recovery code, typed in capitals with spaces, once.
        let typed = codes.shown[3].to_uppercase().replace('-', " ");
        assert_eq!(
            f.verify(a, &typed).await.unwrap(),
            Verification::RecoveryCode { left: 9 }
        );
        assert!(matches!(
            f.verify(a, &typed).await.unwrap(),
            Verification::Wrong { .. }
        ));
        assert_eq!(f.recovery_codes_left(a).await.unwrap(), 9);
    }

    #[tokio::test]
    async fn five_wrong_answers_lock_the_factor_even_for_the_right_code() {
        let (f, clock) = factors();
        let a = account();
        let e = f.begin_totp(a, "p").await.unwrap();
        let secret = secret_of(&e);
        f.confirm_totp(a, &e.id, &secret.code_at(clock.now()).unwrap(), "")
            .await
            .unwrap();
        for left in (0..MAX_WRONG_ANSWERS).rev() {
            let answer = f.verify(a, "abcd-efgh-jkmn-pqrs").await.unwrap();
            if left == 0 {
                assert!(matches!(answer, Verification::Locked { .. }), "{answer:?}");
            } else {
                assert_eq!(
                    answer,
                    Verification::Wrong {
                        attempts_left: left
                    }
                );
            }
        }
        clock.advance(time::Duration::seconds(30));
        let right = secret.code_at(clock.now()).unwrap();
        assert!(matches!(
            f.verify(a, &right).await.unwrap(),
            Verification::Locked { .. }
        ));
        // Once the lock is over, the right code (of the step then) passes.
        clock.advance(time::Duration::minutes(16));
        let right = secret.code_at(clock.now()).unwrap();
        assert_eq!(f.verify(a, &right).await.unwrap(), Verification::Totp);
    }

    #[tokio::test]
    async fn debug_output_never_shows_a_secret_or_a_recovery_code() {
        let (f, clock) = factors();
        let a = account();
        let e = f.begin_totp(a, "p").await.unwrap();
        let shown = format!("{e:?}");
        assert!(
            !shown.contains(&e.secret_text) && !shown.contains(&e.uri),
            "{shown}"
        );
        let code = secret_of(&e).code_at(clock.now()).unwrap();
        let done = f.confirm_totp(a, &e.id, &code, "").await.unwrap();
        let codes = done.recovery_codes.unwrap();
        let shown = format!("{codes:?}");
        assert!(
            codes.shown.iter().all(|c| !shown.contains(c.as_str())),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn without_a_sealing_key_nothing_is_enrolled() {
        let f = SecondFactors::new(
            Arc::new(ListRepo::default()),
            Arc::new(MemoryStore::new()),
            None,
            Arc::new(ManualClock::starting_at(T0)),
            "Sesame",
        );
        assert!(!f.is_enabled());
        assert!(matches!(
            f.begin_totp(account(), "p").await,
            Err(MfaError::NotEnabled)
        ));
    }
}
