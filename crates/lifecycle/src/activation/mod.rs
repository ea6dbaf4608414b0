//! Account activation: a provisioned person proves who they are (identity check, a code
//! handed out by the school, or a mailed link), then goes through the steps (charter,
//! directory, recovery contacts and the codes that prove them, mail redirect, password) and
//! the account becomes active. Also the forgotten-login check, the forgotten password by
//! identity check (where `lifecycle.recovery.identity_check` opens it to an affiliation; the
//! new password is then set by `recovery`), and the charter acceptance required after a
//! version bump.
//! See `docs/lifecycle.md`.

pub mod challenge;
pub mod codes;
pub mod error;
pub mod flow;
pub mod limits;
pub mod ports;
pub mod settings;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sesame_core::account::{
    Account, AccountChanges, AccountState, AccountWithProfile, CharterAcceptance, Contact,
    MailRedirect,
};
use sesame_core::accounts::AccountService;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::clock::Clock;
use sesame_core::error::RepoError;
use sesame_core::i18n::Lang;
use sesame_core::ids::{AccountId, Affiliation, Email, HrId, LoginName, MobilePhone};
use sesame_core::mail::{MailKind, MailMessage};
use sesame_core::national_id::{NationalId, NationalIdKey};
use sesame_core::ports::{
    AccountRepo, AuditLog, EphemeralStore, Mailer, PendingActivationCodes, ProfileRepo,
};
use sesame_core::random;
use sesame_core::sms::SmsSender;
use time::{OffsetDateTime, PrimitiveDateTime, Time};
use time_tz::{OffsetDateTimeExt, PrimitiveDateTimeExt};

use self::challenge::Challenge;
use self::codes::{code_hash, token_hash};
use self::error::ActivationError;
use self::flow::{
    Activated, Advance, CodeProblem, FlowState, Step, StepInput, StepProblem, VerifyAction,
};
use self::limits::{FailureCounters, Reserved};
use self::ports::{ActivationTokenRepo, Consumption, NewToken, TokenKind, TokenState};
use self::settings::{ActivationPath, ActivationPolicy, CharterPolicy};
use crate::error::OperatorLinkError;
use crate::import::{ImportReport, Outcome};
use crate::recovery::codes::{CodePurpose, SmsCodes};
use crate::recovery::{RecoveryPolicy, Refusal};
use crate::self_service::mobile_sms_text;

/// How long an identity-form challenge stays valid.
const CHALLENGE_TTL: Duration = Duration::from_secs(30 * 60);
/// How long a mail-redirect proof link stays valid.
const REDIRECT_LINK_TTL: time::Duration = time::Duration::days(7);
/// How long the final step holds its per-account guard.
const COMMIT_GUARD_TTL: Duration = Duration::from_secs(60);

/// Wiring for [`Activation::new`].
#[derive(Debug, Clone)]
pub struct ActivationParts {
    /// Profiles (HR number lookups, the choices written at the end).
    pub profiles: Arc<dyn ProfileRepo>,
    /// Accounts (login lookups).
    pub accounts_repo: Arc<dyn AccountRepo>,
    /// Password policy, password setting and the audited state change.
    pub accounts: AccountService,
    /// Audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Flows, challenges, failure counters.
    pub store: Arc<dyn EphemeralStore>,
    /// Codes and links.
    pub tokens: Arc<dyn ActivationTokenRepo>,
    /// Mail.
    pub mailer: Arc<dyn Mailer>,
    /// SMS (the code that proves the mobile).
    pub sms: Arc<dyn SmsSender>,
    /// `[lifecycle.recovery]`: lifetimes, tries and SMS budgets of the codes that prove the
    /// contacts, the same as on the account page.
    pub recovery: RecoveryPolicy,
    /// `ui.institution_name` (the SMS text names it).
    pub institution: String,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// `[lifecycle.activation]`.
    pub policy: ActivationPolicy,
    /// `[lifecycle.charter]`.
    pub charter: CharterPolicy,
    /// The key of national ID hashes (without it, a national ID on file never matches).
    pub national_id_key: Option<NationalIdKey>,
    /// `server.public_url`, without trailing slash (links in mails).
    pub public_url: String,
    /// `ui.time_zone` (links expire at 23:59 the next day there).
    pub time_zone: String,
    /// `lifecycle.recovery.identity_check`: the affiliations that may reset a forgotten
    /// password by identity check.
    pub reset_by_identity: Vec<Affiliation>,
}

/// Activation, forgotten login and charter acceptance.
#[derive(Debug, Clone)]
pub struct Activation {
    parts: Arc<ActivationParts>,
    /// The codes that prove the contacts typed during an activation.
    codes: SmsCodes,
}

/// What [`Activation::after_import`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportMails {
    /// Activation links queued.
    pub sent: usize,
    /// The people who may activate by a mailed link but have no recovery address to send it
    /// to: someone must give them a code or get their address.
    pub no_address: Vec<LoginName>,
}

/// People whose activation links [`Activation::after_import`] queues in one write.
const IMPORT_LINKS_PER_WRITE: usize = 500;

/// What a person typed on the identity form.
#[derive(Debug, Default)]
pub struct IdentityClaim {
    /// HR or student number.
    pub hr_id: String,
    /// National ID number (never logged).
    pub national_id: String,
    /// Birth date, `dd-mm-yyyy` (other forms of the import accepted).
    pub birth_date: String,
    /// Personal e-mail.
    pub email: String,
    /// Personal e-mail again.
    pub email_confirm: String,
}

/// The answer to the identity form's challenge.
#[derive(Debug, Default)]
pub struct ChallengeAnswer {
    /// The challenge id the page carried.
    pub id: String,
    /// The proof-of-work nonce (filled by the page's script).
    pub nonce: String,
    /// The answer to the question (without JavaScript).
    pub answer: String,
}

/// A challenge to show, with its id.
#[derive(Debug, Clone)]
pub struct IssuedChallenge {
    /// Id (hidden field).
    pub id: String,
    /// Its content.
    pub challenge: Challenge,
}

/// What the identity check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityPurpose {
    /// Start an activation.
    Activation,
    /// Show a forgotten login.
    ForgotLogin,
    /// Set a new password (HR number, national ID and birth date; no personal address): the
    /// account must be active, of an affiliation `lifecycle.recovery.identity_check` lists,
    /// and have a national ID on file.
    ResetPassword,
}

/// A successful identity check.
#[derive(Debug)]
pub enum IdentityOutcome {
    /// An activation started: the flow id to give the browser.
    Started {
        /// Flow id.
        flow_id: String,
    },
    /// The login asked for on the forgotten-login page.
    Login {
        /// The login.
        login: String,
    },
    /// The person proved who they are to reset their password: `recovery` gives the token of
    /// the new-password step for this account.
    ResetAllowed {
        /// The account.
        account_id: AccountId,
    },
}

fn flow_key(flow_id: &str) -> String {
    format!("act:flow:{}", random::sha256_hex(flow_id))
}

fn challenge_key(id: &str) -> String {
    format!("act:challenge:{}", random::sha256_hex(id))
}

impl Activation {
    /// Activation over the given parts.
    pub fn new(parts: ActivationParts) -> Self {
        let codes = SmsCodes::new(
            Arc::clone(&parts.store),
            Arc::clone(&parts.clock),
            Arc::clone(&parts.sms),
            parts.recovery,
        );
        Self {
            parts: Arc::new(parts),
            codes,
        }
    }

    /// `[lifecycle.activation]`.
    pub fn policy(&self) -> &ActivationPolicy {
        &self.parts.policy
    }

    /// `[lifecycle.charter]`.
    pub fn charter(&self) -> &CharterPolicy {
        &self.parts.charter
    }

    /// Whether people of `affiliation` may reset a forgotten password by identity check.
    pub fn resets_by_identity(&self, affiliation: Affiliation) -> bool {
        self.parts.reset_by_identity.contains(&affiliation)
    }

    /// Whether anybody may reset a forgotten password by identity check (the page exists).
    pub fn any_reset_by_identity(&self) -> bool {
        !self.parts.reset_by_identity.is_empty()
    }

    /// The password rules of an affiliation, to show before the password is typed.
    pub fn password_rules(&self, flow: &FlowState, lang: Lang) -> Vec<String> {
        self.parts
            .accounts
            .policies()
            .for_affiliation(flow.affiliation)
            .describe(lang)
    }

    fn now(&self) -> OffsetDateTime {
        self.parts.clock.now()
    }

    async fn audit(&self, event: AuditEvent) -> Result<(), ActivationError> {
        self.parts.audit.record(event).await?;
        Ok(())
    }

    /// Reserves one attempt on the counters of an identifier from a source
    /// ([`limits`]); an attempt that succeeds gives them back ([`FailureCounters::forgive`]).
    async fn reserve(&self, counters: &FailureCounters) -> Result<Reserved, ActivationError> {
        counters
            .reserve(self.parts.store.as_ref(), &self.parts.policy, self.now())
            .await
    }

    /// Waits before answering a failure, longer with each failure from the same source.
    async fn delay_failure(&self, reserved: Reserved) {
        tokio::time::sleep(limits::failure_delay(&self.parts.policy, reserved.rank)).await;
    }

    // --- identity check -------------------------------------------------------------

    /// A fresh challenge for the identity form.
    ///
    /// # Errors
    /// [`ActivationError::Unavailable`] if the store fails.
    pub async fn issue_challenge(&self) -> Result<IssuedChallenge, ActivationError> {
        let id = random::token();
        let challenge = Challenge::generate(self.parts.policy.challenge_bits);
        let json = serde_json::to_string(&challenge)
            .map_err(|e| ActivationError::Unavailable(e.to_string()))?;
        self.parts
            .store
            .put(&challenge_key(&id), &json, CHALLENGE_TTL)
            .await?;
        Ok(IssuedChallenge { id, challenge })
    }

    /// Takes the challenge (it works once) and checks the answer.
    async fn check_challenge(&self, answer: &ChallengeAnswer) -> Result<(), ActivationError> {
        if answer.id.is_empty() || answer.id.len() > 128 {
            return Err(ActivationError::ChallengeFailed);
        }
        let Some(stored) = self.parts.store.take(&challenge_key(&answer.id)).await? else {
            return Err(ActivationError::ChallengeFailed);
        };
        let challenge: Challenge = serde_json::from_str(&stored)
            .map_err(|e| ActivationError::Unavailable(e.to_string()))?;
        if challenge.accepts_nonce(answer.nonce.trim()) || challenge.accepts_answer(&answer.answer)
        {
            Ok(())
        } else {
            Err(ActivationError::ChallengeFailed)
        }
    }

    /// The identity check (activation, forgotten login, forgotten password): HR number,
    /// national ID, birth date and (but for a password reset) personal e-mail twice, after the
    /// challenge, under the failure counters, which the three purposes share. Every mismatch
    /// is [`ActivationError::Mismatch`].
    ///
    /// # Errors
    /// [`ActivationError::Mismatch`], [`ActivationError::EmailsDiffer`],
    /// [`ActivationError::ChallengeFailed`], [`ActivationError::Throttled`],
    /// [`ActivationError::AlreadyActive`], [`ActivationError::Unavailable`].
    #[tracing::instrument(skip_all, fields(purpose = ?purpose))]
    pub async fn check_identity(
        &self,
        claim: &IdentityClaim,
        answer: &ChallengeAnswer,
        ip: Option<std::net::IpAddr>,
        purpose: IdentityPurpose,
    ) -> Result<IdentityOutcome, ActivationError> {
        // A password reset asks no personal address: the person may have none that works.
        let asks_email = purpose != IdentityPurpose::ResetPassword;
        if asks_email
            && claim.email.trim().to_lowercase() != claim.email_confirm.trim().to_lowercase()
        {
            return Err(ActivationError::EmailsDiffer);
        }
        let email = if asks_email {
            Email::parse(&claim.email)
                .map(Some)
                .map_err(|_| ActivationError::Mismatch)
        } else {
            Ok(None)
        };
        self.check_challenge(answer).await?;
        let hr_id = HrId::parse(&claim.hr_id).ok();
        let counters = FailureCounters::new(
            "identity",
            &random::sha256_hex(&claim.hr_id.trim().to_uppercase()),
            ip,
        );
        let reserved = self.reserve(&counters).await?;
        let matched = match &hr_id {
            Some(hr_id) => self.parts.profiles.find_by_hr_id(hr_id).await?,
            None => None,
        };
        let birth_date = crate::import::read::parse_date(claim.birth_date.trim());
        let matched = matched.filter(|found| {
            let birth_ok =
                found.profile.birth_date.is_some() && found.profile.birth_date == birth_date;
            let national_ok = match &found.profile.national_id {
                // A password reset takes over an account in use: the number and birth date
                // alone (a classmate may know both) are not enough.
                None => purpose != IdentityPurpose::ResetPassword,
                Some(stored) => match (
                    &self.parts.national_id_key,
                    NationalId::parse(&claim.national_id),
                ) {
                    (Some(key), Ok(typed)) => key.matches(&typed, stored),
                    _ => false,
                },
            };
            let path_ok = match purpose {
                IdentityPurpose::ForgotLogin => true,
                IdentityPurpose::Activation => self
                    .parts
                    .policy
                    .allows(found.account.affiliation, ActivationPath::Identity),
                IdentityPurpose::ResetPassword => {
                    self.resets_by_identity(found.account.affiliation)
                }
            };
            let state_ok = match purpose {
                // Only an active account resets: a provisioned one activates, a blocked one
                // goes to the helpdesk.
                IdentityPurpose::ResetPassword => found.account.state == AccountState::Active,
                _ => matches!(
                    found.account.state,
                    AccountState::Provisioned | AccountState::Active
                ),
            };
            birth_ok && national_ok && path_ok && state_ok
        });
        let (Some(found), Ok(email)) = (matched, email) else {
            self.audit(
                AuditEvent::new(AuditKind::ActivationFailed, self.now(), "self")
                    .ip(ip)
                    .detail(
                        serde_json::json!({ "path": "identity", "purpose": purpose_name(purpose) }),
                    ),
            )
            .await?;
            self.delay_failure(reserved).await;
            return Err(ActivationError::Mismatch);
        };
        counters.forgive(self.parts.store.as_ref()).await?;
        let account = found.account;
        if purpose == IdentityPurpose::ResetPassword {
            self.audit(
                AuditEvent::new(AuditKind::PasswordResetRequested, self.now(), "self")
                    .login(account.login.as_str())
                    .account(account.id)
                    .ip(ip)
                    .detail(serde_json::json!({ "channel": "identity", "sent": false })),
            )
            .await?;
            return Ok(IdentityOutcome::ResetAllowed {
                account_id: account.id,
            });
        }
        if purpose == IdentityPurpose::ForgotLogin {
            self.audit(
                AuditEvent::new(AuditKind::LoginReminded, self.now(), "self")
                    .login(account.login.as_str())
                    .account(account.id)
                    .ip(ip),
            )
            .await?;
            return Ok(IdentityOutcome::Login {
                login: account.login.as_str().to_owned(),
            });
        }
        if account.state == AccountState::Active {
            return Err(ActivationError::AlreadyActive {
                login: account.login.as_str().to_owned(),
            });
        }
        let flow_id = self
            .start_flow(
                &account,
                ActivationPath::Identity,
                email.map(|e| e.as_str().to_owned()),
                None,
                ip,
                None,
            )
            .await?;
        Ok(IdentityOutcome::Started { flow_id })
    }

    // --- codes ----------------------------------------------------------------------

    /// Generates a code for the account `login` (replacing its unused ones); returns the
    /// account and the code to hand out, and when it expires.
    ///
    /// # Errors
    /// [`ActivationError::Mismatch`] if there is no such provisioned account of an
    /// affiliation allowed to use codes; [`ActivationError::Unavailable`].
    pub async fn issue_code(
        &self,
        login: &LoginName,
        actor: &str,
    ) -> Result<(Account, String, OffsetDateTime), ActivationError> {
        let account = self
            .parts
            .accounts_repo
            .find_by_login(login)
            .await?
            .ok_or(ActivationError::Mismatch)?;
        if account.state != AccountState::Provisioned
            || !self
                .parts
                .policy
                .allows(account.affiliation, ActivationPath::Code)
        {
            return Err(ActivationError::Mismatch);
        }
        let code = codes::generate_code();
        let now = self.now();
        let expires_at = now + time::Duration::days(i64::from(self.parts.policy.code_ttl_days));
        self.parts
            .tokens
            .insert_token(
                NewToken {
                    token_hash: code_hash(account.id, &code),
                    account_id: account.id,
                    kind: TokenKind::Code,
                    created_at: now,
                    expires_at,
                    detail: None,
                },
                true,
            )
            .await?;
        self.audit(
            AuditEvent::new(AuditKind::ActivationCodeIssued, now, actor)
                .login(account.login.as_str())
                .account(account.id),
        )
        .await?;
        Ok((account, code, expires_at))
    }

    /// Starts an activation with a login and a code. The code is only looked at here: it is
    /// consumed when the activation completes (atomically then: of 20 parallel completions
    /// exactly one activates, C07), so an activation abandoned half way can start again with
    /// the same code for as long as the code lives. Failures count per login and source and
    /// per login (A47, [`limits`]).
    ///
    /// # Errors
    /// [`ActivationError::InvalidCode`], [`ActivationError::Throttled`],
    /// [`ActivationError::AlreadyActive`], [`ActivationError::Unavailable`].
    #[tracing::instrument(skip_all)]
    pub async fn start_with_code(
        &self,
        login: &str,
        code: &str,
        ip: Option<std::net::IpAddr>,
    ) -> Result<String, ActivationError> {
        let folded = sesame_core::ids::fold_identifier(login);
        let counters = FailureCounters::new("code", &random::sha256_hex(&folded), ip);
        let reserved = self.reserve(&counters).await?;
        let account = match LoginName::parse(login) {
            Ok(l) => self.parts.accounts_repo.find_by_login(&l).await?,
            Err(_) => None,
        };
        let presented = account.as_ref().and_then(|a| {
            self.parts
                .policy
                .allows(a.affiliation, ActivationPath::Code)
                .then(|| code_hash(a.id, code))
        });
        let state = match &presented {
            Some(hash) => {
                self.parts
                    .tokens
                    .token_state(TokenKind::Code, hash, self.now())
                    .await?
            }
            None => TokenState::Invalid,
        };
        match (account, state, presented) {
            (Some(account), TokenState::Usable { account_id }, Some(hash))
                if account_id == account.id && account.state == AccountState::Provisioned =>
            {
                counters.forgive(self.parts.store.as_ref()).await?;
                self.start_flow(&account, ActivationPath::Code, None, None, ip, Some(hash))
                    .await
            }
            (Some(account), TokenState::Used { .. } | TokenState::Usable { .. }, _)
                if account.state == AccountState::Active =>
            {
                // The code was right: say so, and give the login (the seeds' "second attempt").
                counters.forgive(self.parts.store.as_ref()).await?;
                Err(ActivationError::AlreadyActive {
                    login: account.login.as_str().to_owned(),
                })
            }
            (account, _, _) => {
                let mut event = AuditEvent::new(AuditKind::ActivationFailed, self.now(), "self")
                    .login(&folded)
                    .ip(ip)
                    .detail(serde_json::json!({ "path": "code" }));
                if let Some(a) = &account {
                    event = event.account(a.id);
                }
                self.audit(event).await?;
                self.delay_failure(reserved).await;
                Err(ActivationError::InvalidCode)
            }
        }
    }

    /// The check the login procedure makes on a wrong password ([`PendingActivationCodes`]).
    pub fn pending_codes(&self) -> Arc<dyn PendingActivationCodes> {
        Arc::new(PendingCodes {
            tokens: Arc::clone(&self.parts.tokens),
        })
    }

    // --- mailed links ---------------------------------------------------------------

    /// When a link mailed now expires: 23:59 (:59) the next day in the institution's time zone.
    pub fn link_deadline(&self, now: OffsetDateTime) -> OffsetDateTime {
        let tz = time_tz::timezones::get_by_name(&self.parts.time_zone)
            .unwrap_or(time_tz::timezones::db::UTC);
        let local = now.to_timezone(tz);
        let next_day = local.date().next_day().unwrap_or(local.date());
        let end = Time::from_hms(23, 59, 59).unwrap_or(Time::MIDNIGHT);
        PrimitiveDateTime::new(next_day, end)
            .assume_timezone_utc(tz)
            .to_offset(time::UtcOffset::UTC)
    }

    /// Mails an activation link to the recovery address of a provisioned account whose
    /// affiliation may use links (replacing any older link). Returns whether a mail was
    /// queued.
    ///
    /// # Errors
    /// [`ActivationError::Unavailable`].
    pub async fn send_link(
        &self,
        account_id: AccountId,
        actor: &str,
    ) -> Result<bool, ActivationError> {
        let Some(found) = self.parts.profiles.find_with_profile(account_id).await? else {
            return Ok(false);
        };
        let account = found.account;
        let Some(recovery) = found.profile.recovery_email else {
            return Ok(false);
        };
        if !self.may_get_link(&account) {
            return Ok(false);
        }
        self.send_links(&[(account, recovery.address)], actor)
            .await?;
        Ok(true)
    }

    /// An operator's "resend the activation link": like [`Activation::send_link`] (the new
    /// link replaces any older one), but says why no mail went. No daily budget: the
    /// budget protects the public page from being used to flood a mailbox, and an operator
    /// is audited. Returns where the link went.
    ///
    /// # Errors
    /// [`OperatorLinkError`] naming why nothing was sent.
    pub async fn resend_link(
        &self,
        login: &LoginName,
        actor: &str,
    ) -> Result<Email, OperatorLinkError> {
        let unavailable = |e: &dyn std::fmt::Display| OperatorLinkError::Unavailable(e.to_string());
        let account = crate::error::operator_link_account(
            self.parts.accounts_repo.as_ref(),
            login,
            AccountState::Provisioned,
        )
        .await?;
        if !self
            .parts
            .policy
            .allows(account.affiliation, ActivationPath::EmailLink)
        {
            return Err(OperatorLinkError::PathNotAllowed(
                account.affiliation.as_str(),
            ));
        }
        let address = self
            .parts
            .profiles
            .find_with_profile(account.id)
            .await
            .map_err(|e| unavailable(&e))?
            .and_then(|found| found.profile.recovery_email)
            .map(|c| c.address)
            .ok_or(OperatorLinkError::NoRecoveryAddress)?;
        match self.send_link(account.id, actor).await {
            Ok(true) => Ok(address),
            // Changed between the checks and the sending (a concurrent activation).
            Ok(false) => Err(OperatorLinkError::WrongState {
                state: "changed",
                needed: AccountState::Provisioned.as_str(),
            }),
            Err(e) => Err(unavailable(&e)),
        }
    }

    /// After an import: mails an activation link to each person it created, or brought back
    /// from `disabled` to `provisioned`, who has a recovery address and may activate by link.
    /// Returns how many mails were queued, and who could have had one but has no address.
    ///
    /// A year group means tens of thousands of links; one at a time, with its reads, that was
    /// minutes of round trips. So the people are read back in bulk, and their links are
    /// queued [`IMPORT_LINKS_PER_WRITE`] at a time (secrets, mails and audit events, each in
    /// one write), `parallelism` of these at once.
    ///
    /// # Errors
    /// [`ActivationError::Unavailable`] (the mails queued before the failure stay queued).
    pub async fn after_import(
        &self,
        report: &ImportReport,
        actor: &str,
        parallelism: usize,
    ) -> Result<ImportMails, ActivationError> {
        let logins: Vec<String> = report
            .outcomes
            .iter()
            .filter_map(|outcome| match outcome {
                Outcome::Created { login, .. }
                | Outcome::Updated {
                    login,
                    reprovisioned: true,
                    ..
                } => Some(login.as_str().to_owned()),
                _ => None,
            })
            .collect();
        let parallelism = parallelism.max(1);
        let read: Vec<Result<Vec<AccountWithProfile>, RepoError>> =
            futures::stream::iter(logins.chunks(IMPORT_LINKS_PER_WRITE))
                .map(|chunk| self.parts.profiles.find_many_by_login(chunk))
                .buffer_unordered(parallelism)
                .collect()
                .await;
        let mut people: HashMap<String, AccountWithProfile> = HashMap::with_capacity(logins.len());
        for found in read {
            for person in found? {
                people.insert(person.account.login.as_str().to_owned(), person);
            }
        }
        let mut mails = ImportMails::default();
        let mut due: Vec<(Account, Email)> = Vec::new();
        // In file order, for the list of people without an address.
        for login in &logins {
            let Some(found) = people.remove(login) else {
                continue;
            };
            let account = found.account;
            if !self.may_get_link(&account) {
                continue;
            }
            match found.profile.recovery_email {
                Some(recovery) => due.push((account, recovery.address)),
                None => mails.no_address.push(account.login),
            }
        }
        // Every write is tried even after a failure, so that each link either went or is
        // reported.
        let queued: Vec<Result<usize, ActivationError>> =
            futures::stream::iter(due.chunks(IMPORT_LINKS_PER_WRITE))
                .map(|people| self.send_links(people, actor))
                .buffer_unordered(parallelism)
                .collect()
                .await;
        for queued in queued {
            mails.sent += queued?;
        }
        Ok(mails)
    }

    /// Queues the activation links of `people` (each [`Activation::may_get_link`], with their
    /// recovery address): their secrets (each voiding the account's older links), mails and
    /// audit events, each in one write. Returns how many were queued.
    async fn send_links(
        &self,
        people: &[(Account, Email)],
        actor: &str,
    ) -> Result<usize, ActivationError> {
        let now = self.now();
        let expires_at = self.link_deadline(now);
        let mut tokens = Vec::with_capacity(people.len());
        let mut messages = Vec::with_capacity(people.len());
        let mut events = Vec::with_capacity(people.len());
        for (account, address) in people {
            let token = random::token();
            tokens.push(NewToken {
                token_hash: token_hash(&token),
                account_id: account.id,
                kind: TokenKind::Link,
                created_at: now,
                expires_at,
                detail: Some(address.as_str().to_owned()),
            });
            messages.push(self.link_message(account, address.clone(), &token, expires_at));
            events.push(
                AuditEvent::new(AuditKind::ActivationLinkSent, now, actor)
                    .login(account.login.as_str())
                    .account(account.id),
            );
        }
        self.parts.tokens.insert_tokens(tokens, true).await?;
        self.parts.mailer.send_many(messages).await?;
        self.parts.audit.record_many(events).await?;
        Ok(people.len())
    }

    /// Whether `account` is one an activation link is for: provisioned, of an affiliation
    /// that may activate by link.
    fn may_get_link(&self, account: &Account) -> bool {
        account.state == AccountState::Provisioned
            && self
                .parts
                .policy
                .allows(account.affiliation, ActivationPath::EmailLink)
    }

    /// The mail that carries an activation link.
    fn link_message(
        &self,
        account: &Account,
        to: Email,
        token: &str,
        expires_at: OffsetDateTime,
    ) -> MailMessage {
        MailMessage::new(MailKind::ActivationLink, to, Lang::Fr)
            .account(account.id)
            .value("login", account.login.as_str())
            .value("given_name", account.given_name.as_str())
            .value(
                "link",
                format!("{}/activation/link?token={token}", self.parts.public_url),
            )
            .time("expires_at", expires_at)
    }

    /// The "first login" page: sends a new link when `address` is the institutional address
    /// (or login) of a provisioned account that may use links, within a daily budget. The
    /// caller answers the same whatever happened.
    ///
    /// # Errors
    /// [`ActivationError::Unavailable`].
    pub async fn request_link(&self, address: &str) -> Result<(), ActivationError> {
        let Some(found) = self.parts.accounts_repo.find_credential(address).await? else {
            return Ok(());
        };
        let account = found.account;
        if account.state != AccountState::Provisioned {
            return Ok(());
        }
        let budget_key = format!("act:linkmail:{}", account.id);
        let now = self.now();
        let r = self
            .parts
            .store
            .reserve_attempt(&budget_key, now, Duration::from_secs(86_400))
            .await?;
        if r.locked_until.is_some() || r.attempt > self.parts.policy.max_links_per_day {
            tracing::info!(user.id = %account.id, "activation link not sent: daily budget spent");
            return Ok(());
        }
        self.send_link(account.id, "self").await?;
        Ok(())
    }

    /// Starts an activation from a mailed link: the link is consumed atomically.
    ///
    /// # Errors
    /// [`ActivationError::InvalidLink`], [`ActivationError::AlreadyActive`],
    /// [`ActivationError::Unavailable`].
    pub async fn start_with_link(
        &self,
        token: &str,
        ip: Option<std::net::IpAddr>,
    ) -> Result<String, ActivationError> {
        if token.is_empty() || token.len() > 128 {
            return Err(ActivationError::InvalidLink);
        }
        let outcome = self
            .parts
            .tokens
            .consume_token(TokenKind::Link, &token_hash(token), self.now())
            .await?;
        let (account_id, proven) = match outcome {
            Consumption::Consumed { account_id, detail } => (account_id, detail),
            Consumption::AlreadyUsed { account_id } => {
                if let Some(a) = self.parts.accounts_repo.find_by_id(account_id).await? {
                    if a.state == AccountState::Active {
                        return Err(ActivationError::AlreadyActive {
                            login: a.login.as_str().to_owned(),
                        });
                    }
                }
                return Err(self.link_failed(ip).await);
            }
            Consumption::Invalid => return Err(self.link_failed(ip).await),
        };
        let Some(account) = self.parts.accounts_repo.find_by_id(account_id).await? else {
            return Err(self.link_failed(ip).await);
        };
        match account.state {
            AccountState::Provisioned => {
                self.start_flow(
                    &account,
                    ActivationPath::EmailLink,
                    proven.clone(),
                    proven,
                    ip,
                    None,
                )
                .await
            }
            AccountState::Active => Err(ActivationError::AlreadyActive {
                login: account.login.as_str().to_owned(),
            }),
            AccountState::Blocked | AccountState::Disabled => Err(self.link_failed(ip).await),
        }
    }

    async fn link_failed(&self, ip: Option<std::net::IpAddr>) -> ActivationError {
        let event = AuditEvent::new(AuditKind::ActivationFailed, self.now(), "self")
            .ip(ip)
            .detail(serde_json::json!({ "path": "email_link" }));
        match self.audit(event).await {
            Ok(()) => ActivationError::InvalidLink,
            Err(e) => e,
        }
    }

    // --- the steps ------------------------------------------------------------------

    async fn start_flow(
        &self,
        account: &Account,
        path: ActivationPath,
        recovery_email: Option<String>,
        proven_email: Option<String>,
        ip: Option<std::net::IpAddr>,
        code_hash: Option<String>,
    ) -> Result<String, ActivationError> {
        let profile = self
            .parts
            .profiles
            .find_with_profile(account.id)
            .await?
            .map(|p| p.profile)
            .unwrap_or_default();
        let mut flow = FlowState {
            account_id: account.id,
            login: account.login.as_str().to_owned(),
            affiliation: account.affiliation,
            path,
            step: Step::Directory,
            has_mailbox: account.email.is_some(),
            charter_version: None,
            directory_opt_in: profile.directory_opt_in,
            recovery_email: recovery_email.or_else(|| {
                profile
                    .recovery_email
                    .map(|c| c.address.as_str().to_owned())
            }),
            proven_email,
            mobile: profile.mobile.map(|m| m.address.as_str().to_owned()),
            proven_mobile: None,
            email_check: None,
            mobile_check: None,
            mail_redirect: None,
            keep_copy: true,
            code_hash,
        };
        flow.step = flow.first_step(self.charter_in_force());
        let flow_id = self.store_flow(&flow).await?;
        self.audit(
            AuditEvent::new(AuditKind::ActivationStarted, self.now(), "self")
                .login(account.login.as_str())
                .account(account.id)
                .ip(ip)
                .detail(serde_json::json!({ "path": path_name(path) })),
        )
        .await?;
        Ok(flow_id)
    }

    fn charter_in_force(&self) -> bool {
        !self.parts.charter.version.is_empty()
    }

    async fn store_flow(&self, flow: &FlowState) -> Result<String, ActivationError> {
        let flow_id = random::token();
        let json =
            serde_json::to_string(flow).map_err(|e| ActivationError::Unavailable(e.to_string()))?;
        self.parts
            .store
            .put(
                &flow_key(&flow_id),
                &json,
                Duration::from_secs(self.parts.policy.flow_ttl_secs),
            )
            .await?;
        Ok(flow_id)
    }

    /// The flow behind `flow_id`, to render its current step (reading does not consume it).
    ///
    /// # Errors
    /// [`ActivationError::FlowExpired`], [`ActivationError::Unavailable`].
    pub async fn flow(&self, flow_id: &str) -> Result<FlowState, ActivationError> {
        if flow_id.is_empty() || flow_id.len() > 128 {
            return Err(ActivationError::FlowExpired);
        }
        let stored = self
            .parts
            .store
            .get(&flow_key(flow_id))
            .await?
            .ok_or(ActivationError::FlowExpired)?;
        serde_json::from_str(&stored).map_err(|e| ActivationError::Unavailable(e.to_string()))
    }

    /// Submits one step. The flow is taken from the store (so the same flow id never works
    /// twice), the input checked against the current step, and the flow stored again under a
    /// new id, or, after the password, the account activated.
    ///
    /// # Errors
    /// [`ActivationError::FlowExpired`] (unknown, used or expired flow id),
    /// [`ActivationError::WrongStep`] (the flow is left as it was),
    /// [`ActivationError::AlreadyActive`], [`ActivationError::Unavailable`].
    #[tracing::instrument(skip_all, fields(step = input.step().as_str()))]
    pub async fn advance(
        &self,
        flow_id: &str,
        input: StepInput,
        ip: Option<std::net::IpAddr>,
    ) -> Result<Advance, ActivationError> {
        if flow_id.is_empty() || flow_id.len() > 128 {
            return Err(ActivationError::FlowExpired);
        }
        let key = flow_key(flow_id);
        let stored = self
            .parts
            .store
            .take(&key)
            .await?
            .ok_or(ActivationError::FlowExpired)?;
        let mut flow: FlowState = serde_json::from_str(&stored)
            .map_err(|e| ActivationError::Unavailable(e.to_string()))?;
        if input.step() != flow.step {
            self.parts
                .store
                .put(
                    &key,
                    &stored,
                    Duration::from_secs(self.parts.policy.flow_ttl_secs),
                )
                .await?;
            return Err(ActivationError::WrongStep);
        }
        let step = flow.step;
        let problem = match input {
            StepInput::Charter { accepted } => {
                if accepted {
                    flow.charter_version = Some(self.parts.charter.version.clone());
                    None
                } else {
                    Some(StepProblem::CharterNotAccepted)
                }
            }
            StepInput::Directory { opt_in } => {
                flow.directory_opt_in = opt_in;
                None
            }
            StepInput::Contacts {
                recovery_email,
                mobile,
                lang,
            } => match (
                Email::parse(&recovery_email),
                mobile.trim().is_empty() || MobilePhone::parse(&mobile).is_ok(),
            ) {
                (Err(_), _) => Some(StepProblem::BadRecoveryEmail),
                (Ok(_), false) => Some(StepProblem::BadMobile),
                (Ok(email), true) => {
                    flow.recovery_email = Some(email.as_str().to_owned());
                    flow.mobile = MobilePhone::parse(&mobile)
                        .ok()
                        .map(|m| m.as_str().to_owned());
                    // Codes go out now for what is not proven yet; the next step asks for them.
                    self.send_proofs(&mut flow, lang).await?
                }
            },
            StepInput::Verify { action, lang } => match action {
                VerifyAction::Confirm {
                    email_code,
                    mobile_code,
                } => {
                    self.check_proofs(&mut flow, &email_code, &mobile_code)
                        .await?
                }
                VerifyAction::Resend => {
                    let problem = self.send_proofs(&mut flow, lang).await?;
                    let flow_id = self.store_flow(&flow).await?;
                    return Ok(match problem {
                        Some(problem) => Advance::Rejected { flow_id, problem },
                        None => Advance::Resent { flow_id },
                    });
                }
                VerifyAction::Change => {
                    flow.step = Step::Contacts;
                    flow.email_check = None;
                    flow.mobile_check = None;
                    let flow_id = self.store_flow(&flow).await?;
                    return Ok(Advance::Next { flow_id });
                }
            },
            StepInput::Redirect {
                forward,
                address,
                keep_copy,
            } => {
                if !forward || address.trim().is_empty() {
                    flow.mail_redirect = None;
                    flow.keep_copy = true;
                    None
                } else {
                    match Email::parse(&address) {
                        Ok(email) => {
                            flow.mail_redirect = Some(email.as_str().to_owned());
                            flow.keep_copy = keep_copy;
                            None
                        }
                        Err(_) => Some(StepProblem::BadRedirect),
                    }
                }
            }
            StepInput::Password { password, confirm } => {
                return self.finish(flow, &password, &confirm, ip).await;
            }
        };
        if let Some(problem) = problem {
            let flow_id = self.store_flow(&flow).await?;
            return Ok(Advance::Rejected { flow_id, problem });
        }
        self.audit(
            AuditEvent::new(AuditKind::ActivationStepCompleted, self.now(), "self")
                .login(&flow.login)
                .account(flow.account_id)
                .ip(ip)
                .detail(serde_json::json!({ "step": step.as_str() })),
        )
        .await?;
        if step == Step::Charter {
            self.audit(
                AuditEvent::new(AuditKind::CharterAccepted, self.now(), "self")
                    .login(&flow.login)
                    .account(flow.account_id)
                    .detail(serde_json::json!({ "version": self.parts.charter.version, "at": "activation" })),
            )
            .await?;
        }
        flow.step = flow
            .step_after(step, self.charter_in_force())
            .unwrap_or(Step::Password);
        let flow_id = self.store_flow(&flow).await?;
        Ok(Advance::Next { flow_id })
    }

    /// The password step: checks, then writes the choices, sets the password and activates.
    async fn finish(
        &self,
        flow: FlowState,
        password: &sesame_core::credentials::Password,
        confirm: &sesame_core::credentials::Password,
        ip: Option<std::net::IpAddr>,
    ) -> Result<Advance, ActivationError> {
        let account = self
            .parts
            .accounts_repo
            .find_by_id(flow.account_id)
            .await?
            .ok_or(ActivationError::FlowExpired)?;
        let problem = if password != confirm {
            Some(StepProblem::PasswordsDiffer)
        } else {
            match self.parts.accounts.check_policy(&account, password) {
                Ok(()) => None,
                Err(sesame_core::error::AccountError::Policy(v)) => Some(StepProblem::Policy(v)),
                Err(e) => return Err(e.into()),
            }
        };
        if let Some(problem) = problem {
            let flow_id = self.store_flow(&flow).await?;
            return Ok(Advance::Rejected { flow_id, problem });
        }
        // One activation of an account at a time, whatever path each flow came by.
        let guard = format!("act:commit:{}", account.id);
        if !self
            .parts
            .store
            .put_new(&guard, "1", COMMIT_GUARD_TTL)
            .await?
        {
            return Err(ActivationError::FlowExpired);
        }
        let result = self.commit(&flow, account, password, ip).await;
        if let Err(e) = self.parts.store.delete(&guard).await {
            tracing::warn!(error = %e, "could not release the activation guard");
        }
        result
    }

    async fn commit(
        &self,
        flow: &FlowState,
        account: Account,
        password: &sesame_core::credentials::Password,
        ip: Option<std::net::IpAddr>,
    ) -> Result<Advance, ActivationError> {
        // Read again under the guard: another flow may have finished meanwhile.
        let account = self
            .parts
            .accounts_repo
            .find_by_id(account.id)
            .await?
            .unwrap_or(account);
        match account.state {
            AccountState::Provisioned => {}
            AccountState::Active => {
                return Err(ActivationError::AlreadyActive {
                    login: account.login.as_str().to_owned(),
                })
            }
            AccountState::Blocked | AccountState::Disabled => {
                return Err(ActivationError::FlowExpired)
            }
        }
        let now = self.now();
        // The school's code is used up here, when the activation completes, and only if it
        // still works: the school may have replaced it, or it may have expired, since the
        // flow started.
        if let Some(hash) = &flow.code_hash {
            match self
                .parts
                .tokens
                .consume_token(TokenKind::Code, hash, now)
                .await?
            {
                Consumption::Consumed { account_id, .. } if account_id == account.id => {}
                _ => return Err(ActivationError::InvalidCode),
            }
        }
        // A contact is verified when the person proved it in this flow: the activation link
        // was mailed to that address, or they typed the code sent to it.
        let recovery = flow
            .recovery_email
            .as_deref()
            .and_then(|e| Email::parse(e).ok())
            .map(|address| {
                let proven = flow.proven_email.as_deref() == Some(address.as_str());
                Contact {
                    address,
                    verified: proven,
                }
            });
        let mobile = flow
            .mobile
            .as_deref()
            .and_then(|m| MobilePhone::parse(m).ok())
            .map(|number| {
                let proven = flow.proven_mobile.as_deref() == Some(number.as_str());
                Contact {
                    address: number,
                    verified: proven,
                }
            });
        let redirect = flow
            .mail_redirect
            .as_deref()
            .and_then(|e| Email::parse(e).ok())
            .map(|address| {
                let verified = recovery
                    .as_ref()
                    .is_some_and(|r| r.verified && r.address == address);
                MailRedirect {
                    address,
                    verified,
                    keep_copy: flow.keep_copy,
                }
            });
        let changes = AccountChanges {
            charter: flow
                .charter_version
                .clone()
                .map(|version| CharterAcceptance {
                    version,
                    accepted_at: now,
                }),
            directory_opt_in: Some(flow.directory_opt_in),
            recovery_email: recovery.clone().map(Some),
            mobile: mobile.clone().map(Some),
            mail_redirect: Some(redirect.clone()),
            ..AccountChanges::default()
        };
        self.parts
            .profiles
            .update_account(account.id, &changes, now)
            .await?;
        self.audit(
            AuditEvent::new(AuditKind::AccountUpdated, now, "self")
                .login(account.login.as_str())
                .account(account.id)
                .detail(
                    serde_json::json!({ "source": "activation", "fields": changes.field_names() }),
                ),
        )
        .await?;
        for (field, verified) in [
            (
                "recovery_email",
                recovery.as_ref().is_some_and(|c| c.verified),
            ),
            ("mobile", mobile.as_ref().is_some_and(|c| c.verified)),
        ] {
            if verified {
                self.audit(
                    AuditEvent::new(AuditKind::ContactVerified, now, "self")
                        .login(account.login.as_str())
                        .account(account.id)
                        .detail(serde_json::json!({ "field": field, "at": "activation" })),
                )
                .await?;
            }
        }
        let account = self
            .parts
            .accounts
            .set_password(&account.login, password.clone(), "self")
            .await?;
        if let Some(redirect) = redirect.as_ref().filter(|r| !r.verified) {
            self.send_redirect_proof(&account, &redirect.address)
                .await?;
        }
        self.audit(
            AuditEvent::new(AuditKind::ActivationCompleted, self.now(), "self")
                .login(account.login.as_str())
                .account(account.id)
                .ip(ip)
                .detail(serde_json::json!({ "path": path_name(flow.path) })),
        )
        .await?;
        Ok(Advance::Done(Box::new(Activated {
            account,
            mail_redirect: redirect,
        })))
    }

    /// Sends a code to each contact of the flow not proven yet (the SMS first: a number that
    /// cannot get one today is refused before any mail goes), and keeps their requests in
    /// the flow. `Some(problem)` when a code could not be sent.
    async fn send_proofs(
        &self,
        flow: &mut FlowState,
        lang: Lang,
    ) -> Result<Option<StepProblem>, ActivationError> {
        let login = LoginName::parse(&flow.login).map_err(|_| ActivationError::FlowExpired)?;
        if let Some(number) = flow.mobile_unproven().map(str::to_owned) {
            let number = MobilePhone::parse(&number).map_err(|_| ActivationError::FlowExpired)?;
            let minutes = self.parts.recovery.sms_code_ttl.as_secs().div_ceil(60);
            let text = mobile_sms_text(lang, &self.parts.institution, minutes);
            let (request_id, sent) = self
                .codes
                .start(
                    CodePurpose::MobileVerification,
                    Some((flow.account_id, &number)),
                    &text,
                )
                .await?;
            if !sent {
                flow.mobile_check = None;
                return Ok(Some(StepProblem::CodesNotSent));
            }
            flow.mobile_check = Some(request_id);
        }
        if let Some(address) = flow.email_unproven().map(str::to_owned) {
            let address = Email::parse(&address).map_err(|_| ActivationError::FlowExpired)?;
            // The public pages may not be used to flood a mailbox: a daily budget per
            // account, as for the links of the first-login page.
            let budget = self
                .parts
                .store
                .reserve_attempt(
                    &format!("act:codemail:{}", flow.account_id),
                    self.now(),
                    Duration::from_secs(86_400),
                )
                .await?;
            if budget.locked_until.is_some() || budget.attempt > self.parts.policy.max_links_per_day
            {
                tracing::info!(user.id = %flow.account_id, "activation code mail not sent: daily budget spent");
                flow.email_check = None;
                return Ok(Some(StepProblem::CodesNotSent));
            }
            let (request_id, code, expires_at) = self
                .codes
                .start_mailed(
                    CodePurpose::EmailVerification,
                    flow.account_id,
                    &address,
                    self.parts.recovery.link_ttl,
                )
                .await?;
            self.parts
                .mailer
                .send(MailMessage::verification_code(
                    address,
                    lang,
                    flow.account_id,
                    &login,
                    &code,
                    expires_at,
                ))
                .await?;
            flow.email_check = Some(request_id);
        }
        Ok(None)
    }

    /// Checks the codes typed at the verify step; each right one proves its contact (and is
    /// used up). `Some(problem)` names the codes not accepted.
    async fn check_proofs(
        &self,
        flow: &mut FlowState,
        email_code: &str,
        mobile_code: &str,
    ) -> Result<Option<StepProblem>, ActivationError> {
        let email = match flow.email_unproven().map(str::to_owned) {
            None => None,
            Some(address) => {
                let outcome = self
                    .check_code(
                        CodePurpose::EmailVerification,
                        flow.email_check.as_deref(),
                        email_code,
                        flow.account_id,
                        &address,
                    )
                    .await?;
                match outcome {
                    Ok(()) => {
                        flow.proven_email = Some(address);
                        flow.email_check = None;
                        None
                    }
                    Err(problem) => {
                        if problem == CodeProblem::Expired {
                            flow.email_check = None;
                        }
                        Some(problem)
                    }
                }
            }
        };
        let mobile = match flow.mobile_unproven().map(str::to_owned) {
            None => None,
            Some(number) => {
                let outcome = self
                    .check_code(
                        CodePurpose::MobileVerification,
                        flow.mobile_check.as_deref(),
                        mobile_code,
                        flow.account_id,
                        &number,
                    )
                    .await?;
                match outcome {
                    Ok(()) => {
                        flow.proven_mobile = Some(number);
                        flow.mobile_check = None;
                        None
                    }
                    Err(problem) => {
                        if problem == CodeProblem::Expired {
                            flow.mobile_check = None;
                        }
                        Some(problem)
                    }
                }
            }
        };
        Ok((email.is_some() || mobile.is_some()).then_some(StepProblem::Codes { email, mobile }))
    }

    /// Checks one code against the request the flow keeps for `target`.
    async fn check_code(
        &self,
        purpose: CodePurpose,
        request_id: Option<&str>,
        typed: &str,
        account_id: AccountId,
        target: &str,
    ) -> Result<Result<(), CodeProblem>, ActivationError> {
        let Some(request_id) = request_id else {
            return Ok(Err(CodeProblem::Expired));
        };
        if typed.trim().is_empty() {
            return Ok(Err(CodeProblem::Missing));
        }
        Ok(match self.codes.verify(purpose, request_id, typed).await? {
            // A code proves what it was sent to, for the account it was sent for.
            Ok(record) if record.account_id == Some(account_id) && record.number == target => {
                Ok(())
            }
            Ok(_) => Err(CodeProblem::Expired),
            Err(Refusal::WrongCode) => Err(CodeProblem::Wrong),
            Err(_) => Err(CodeProblem::Expired),
        })
    }

    async fn send_redirect_proof(
        &self,
        account: &Account,
        address: &Email,
    ) -> Result<(), ActivationError> {
        let token = random::token();
        let now = self.now();
        let expires_at = now + REDIRECT_LINK_TTL;
        self.parts
            .tokens
            .insert_token(
                NewToken {
                    token_hash: token_hash(&token),
                    account_id: account.id,
                    kind: TokenKind::Redirect,
                    created_at: now,
                    expires_at,
                    detail: Some(address.as_str().to_owned()),
                },
                true,
            )
            .await?;
        let message = MailMessage::new(
            MailKind::MailRedirectVerification,
            address.clone(),
            Lang::Fr,
        )
        .account(account.id)
        .value("login", account.login.as_str())
        .value(
            "link",
            format!(
                "{}/activation/redirect?token={token}",
                self.parts.public_url
            ),
        )
        .time("expires_at", expires_at);
        self.parts.mailer.send(message).await?;
        Ok(())
    }

    /// Follows a mail-redirect proof link: marks the redirect verified if it still points to
    /// the address the link was sent to. Returns the login.
    ///
    /// # Errors
    /// [`ActivationError::InvalidLink`], [`ActivationError::Unavailable`].
    pub async fn verify_redirect(&self, token: &str) -> Result<String, ActivationError> {
        if token.is_empty() || token.len() > 128 {
            return Err(ActivationError::InvalidLink);
        }
        let Consumption::Consumed { account_id, detail } = self
            .parts
            .tokens
            .consume_token(TokenKind::Redirect, &token_hash(token), self.now())
            .await?
        else {
            return Err(ActivationError::InvalidLink);
        };
        let found = self
            .parts
            .profiles
            .find_with_profile(account_id)
            .await?
            .ok_or(ActivationError::InvalidLink)?;
        let Some(current) = found.profile.mail_redirect else {
            return Err(ActivationError::InvalidLink);
        };
        if detail.as_deref() != Some(current.address.as_str()) {
            return Err(ActivationError::InvalidLink);
        }
        let now = self.now();
        let changes = AccountChanges {
            mail_redirect: Some(Some(MailRedirect {
                verified: true,
                ..current
            })),
            ..AccountChanges::default()
        };
        self.parts
            .profiles
            .update_account(account_id, &changes, now)
            .await?;
        self.audit(
            AuditEvent::new(AuditKind::MailRedirectVerified, now, "self")
                .login(found.account.login.as_str())
                .account(account_id),
        )
        .await?;
        Ok(found.account.login.as_str().to_owned())
    }

    // --- charter after login --------------------------------------------------------

    /// Whether the account must accept the charter in force before going on.
    ///
    /// # Errors
    /// [`ActivationError::Unavailable`].
    pub async fn charter_pending(&self, account_id: AccountId) -> Result<bool, ActivationError> {
        if !self.charter_in_force() {
            return Ok(false);
        }
        let profile = self
            .parts
            .profiles
            .find_with_profile(account_id)
            .await?
            .map(|p| p.profile)
            .unwrap_or_default();
        Ok(self
            .parts
            .charter
            .is_pending(profile.charter.as_ref().map(|c| c.version.as_str())))
    }

    /// Records that the account accepted the charter in force.
    ///
    /// # Errors
    /// [`ActivationError::Unavailable`].
    pub async fn accept_charter(
        &self,
        account_id: AccountId,
        login: &str,
        ip: Option<std::net::IpAddr>,
    ) -> Result<(), ActivationError> {
        let now = self.now();
        let changes = AccountChanges {
            charter: Some(CharterAcceptance {
                version: self.parts.charter.version.clone(),
                accepted_at: now,
            }),
            ..AccountChanges::default()
        };
        self.parts
            .profiles
            .update_account(account_id, &changes, now)
            .await?;
        self.audit(
            AuditEvent::new(AuditKind::CharterAccepted, now, "self")
                .login(login)
                .account(account_id)
                .ip(ip)
                .detail(
                    serde_json::json!({ "version": self.parts.charter.version, "at": "login" }),
                ),
        )
        .await
    }
}

fn path_name(path: ActivationPath) -> &'static str {
    match path {
        ActivationPath::Identity => "identity",
        ActivationPath::Code => "code",
        ActivationPath::EmailLink => "email_link",
    }
}

fn purpose_name(purpose: IdentityPurpose) -> &'static str {
    match purpose {
        IdentityPurpose::Activation => "activation",
        IdentityPurpose::ForgotLogin => "forgot_login",
        IdentityPurpose::ResetPassword => "reset_password",
    }
}

/// [`PendingActivationCodes`] over the activation codes: the login procedure's question "is
/// this password the unused code of this provisioned account?".
#[derive(Debug)]
struct PendingCodes {
    tokens: Arc<dyn ActivationTokenRepo>,
}

#[async_trait::async_trait]
impl PendingActivationCodes for PendingCodes {
    async fn is_pending_code(
        &self,
        account: Option<AccountId>,
        typed: &sesame_core::credentials::Password,
        now: OffsetDateTime,
    ) -> Result<bool, RepoError> {
        // Without an account the same lookup runs, for an id no account has: a provisioned
        // account's wrong password must cost what any wrong password costs.
        let looked_up = account.unwrap_or(AccountId::new_random());
        let state = self
            .tokens
            .token_state(TokenKind::Code, &code_hash(looked_up, typed.expose()), now)
            .await?;
        Ok(match (account, state) {
            (Some(expected), TokenState::Usable { account_id }) => account_id == expected,
            _ => false,
        })
    }
}
