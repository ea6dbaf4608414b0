//! Six-digit codes sent by SMS (password reset, mobile verification) or by mail (the
//! recovery address typed during an activation). A code is bound to the request that asked
//! for it (a random request id the page carries, or the activation flow keeps) and through it
//! to one account and number or address; it lives ten minutes (a mailed one as long as a
//! verification link), allows a few wrong tries and is then invalidated, and is consumed
//! atomically (A50). Sending SMS is limited per number and per account per day, so nobody
//! can run up the SMS bill.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sesame_core::clock::Clock;
use sesame_core::error::StoreError;
use sesame_core::ids::{AccountId, Email, MobilePhone};
use sesame_core::ports::EphemeralStore;
use sesame_core::random;
use sesame_core::sms::{SmsMessage, SmsSender};
use time::OffsetDateTime;

use super::{RecoveryPolicy, Refusal};

/// What a code is for; part of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodePurpose {
    /// Reset the password.
    PasswordReset,
    /// Prove a new mobile number.
    MobileVerification,
    /// Prove an e-mail address (the code is mailed to it).
    EmailVerification,
}

impl CodePurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::PasswordReset => "reset",
            Self::MobileVerification => "mobile",
            Self::EmailVerification => "email",
        }
    }
}

/// A pending code, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The account, or none for a request about an unknown account (its code never matches).
    pub account_id: Option<AccountId>,
    /// The number (or, for [`CodePurpose::EmailVerification`], the address) the code went to.
    pub number: String,
    /// SHA-256 of request id and code.
    pub code_hash: String,
    /// Its end.
    #[serde(with = "time::serde::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// Issues and checks SMS codes.
#[derive(Debug, Clone)]
pub struct SmsCodes {
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    sms: Arc<dyn SmsSender>,
    policy: RecoveryPolicy,
}

/// Length of a code.
pub const CODE_DIGITS: usize = 6;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn code_key(purpose: CodePurpose, request_id: &str) -> String {
    format!(
        "smscode:{}:{}",
        purpose.as_str(),
        random::sha256_hex(request_id)
    )
}

fn tries_key(purpose: CodePurpose, request_id: &str) -> String {
    format!(
        "smscode-tries:{}:{}",
        purpose.as_str(),
        random::sha256_hex(request_id)
    )
}

fn code_hash(request_id: &str, code: &str) -> String {
    random::sha256_hex(&format!("{request_id}:{code}"))
}

/// Longest request id looked up.
const MAX_REQUEST_ID_LEN: usize = 128;

impl SmsCodes {
    /// Codes over `store`, sent with `sms`.
    pub fn new(
        store: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
        sms: Arc<dyn SmsSender>,
        policy: RecoveryPolicy,
    ) -> Self {
        Self {
            store,
            clock,
            sms,
            policy,
        }
    }

    /// Starts a request: draws a code, stores it under a new request id and, when there is
    /// an account and a number and the day's budgets allow, queues an SMS with `text`
    /// (`{code}` replaced). Returns the request id, the same way whether or not anything was
    /// sent (A48). Returns whether an SMS was queued as the second value (for the audit).
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn start(
        &self,
        purpose: CodePurpose,
        target: Option<(AccountId, &MobilePhone)>,
        text: &str,
    ) -> Result<(String, bool), StoreError> {
        let (request_id, code) = self
            .store_code(
                purpose,
                target.map(|(id, _)| id),
                target
                    .map(|(_, n)| n.as_str().to_owned())
                    .unwrap_or_default(),
                self.policy.sms_code_ttl,
            )
            .await?;
        let now = self.clock.now();
        let mut sent = false;
        if let Some((account_id, number)) = target {
            if self.within_budget(account_id, number, now).await? {
                let message = SmsMessage {
                    to: number.clone(),
                    text: text.replace("{code}", &code),
                };
                match self.sms.queue(message) {
                    Ok(()) => sent = true,
                    Err(e) => tracing::error!(error = %e, "could not queue an SMS"),
                }
            } else {
                tracing::warn!(user.id = %account_id, "SMS budget of the day spent: no SMS sent");
            }
        }
        Ok((request_id, sent))
    }

    /// Starts a request whose code the caller mails to `address`: draws a code, stores it
    /// (bound to the account and the address) under a new request id for `ttl`, and returns
    /// the request id, the code and its end. Nothing is sent here: the mail goes through the
    /// mail queue, under the caller's budget.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn start_mailed(
        &self,
        purpose: CodePurpose,
        account_id: AccountId,
        address: &Email,
        ttl: Duration,
    ) -> Result<(String, String, OffsetDateTime), StoreError> {
        let (request_id, code) = self
            .store_code(purpose, Some(account_id), address.as_str().to_owned(), ttl)
            .await?;
        Ok((request_id, code, self.clock.now() + ttl))
    }

    /// Draws a code and stores its record under a new request id for `ttl`.
    async fn store_code(
        &self,
        purpose: CodePurpose,
        account_id: Option<AccountId>,
        target: String,
        ttl: Duration,
    ) -> Result<(String, String), StoreError> {
        let request_id = random::token();
        let code = random::digits(CODE_DIGITS);
        let record = CodeRecord {
            account_id,
            number: target,
            code_hash: code_hash(&request_id, &code),
            expires_at: self.clock.now() + ttl,
        };
        let raw = serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store
            .put(
                &code_key(purpose, &request_id),
                &raw,
                ttl + Duration::from_secs(60),
            )
            .await?;
        Ok((request_id, code))
    }

    async fn within_budget(
        &self,
        account_id: AccountId,
        number: &MobilePhone,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let by_number = self
            .store
            .reserve_attempt(
                &format!("sms-budget-number:{}", random::sha256_hex(number.as_str())),
                now,
                DAY,
            )
            .await?;
        let by_account = self
            .store
            .reserve_attempt(&format!("sms-budget-account:{account_id}"), now, DAY)
            .await?;
        Ok(by_number.attempt <= self.policy.sms_per_number_per_day
            && by_account.attempt <= self.policy.sms_per_account_per_day)
    }

    /// Checks `code` for the request `request_id`. A right code is consumed (single use);
    /// each wrong one counts, and once the tries are spent the code is invalidated, so even
    /// the right code is then refused.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails; a refused code is `Ok(Err(refusal))`.
    pub async fn verify(
        &self,
        purpose: CodePurpose,
        request_id: &str,
        code: &str,
    ) -> Result<Result<CodeRecord, Refusal>, StoreError> {
        if request_id.is_empty() || request_id.len() > MAX_REQUEST_ID_LEN {
            return Ok(Err(Refusal::Unknown));
        }
        let key = code_key(purpose, request_id);
        let Some(raw) = self.store.get(&key).await? else {
            return Ok(Err(Refusal::Unknown));
        };
        let record: CodeRecord =
            serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let now = self.clock.now();
        if now >= record.expires_at {
            self.store.delete(&key).await?;
            return Ok(Err(Refusal::Expired));
        }
        // The tries are counted for as long as the code lives (a mailed code lives longer
        // than an SMS one), so waiting never gives a code new tries.
        let lifetime_left = Duration::try_from(record.expires_at - now).unwrap_or_default();
        let tries = self
            .store
            .reserve_attempt(
                &tries_key(purpose, request_id),
                now,
                lifetime_left + Duration::from_secs(60),
            )
            .await?;
        if tries.attempt > self.policy.sms_max_tries {
            self.store.delete(&key).await?;
            return Ok(Err(Refusal::TooManyTries));
        }
        let typed: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let matches = typed.len() == CODE_DIGITS
            && record.account_id.is_some()
            && random::constant_time_eq(&code_hash(request_id, &typed), &record.code_hash);
        if !matches {
            if tries.attempt >= self.policy.sms_max_tries {
                self.store.delete(&key).await?;
            }
            return Ok(Err(Refusal::WrongCode));
        }
        // Single use: of two right submissions, one takes it.
        if self.store.take(&key).await?.is_none() {
            return Ok(Err(Refusal::Unknown));
        }
        Ok(Ok(record))
    }
}
