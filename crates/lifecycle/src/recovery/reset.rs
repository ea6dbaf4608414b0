//! The password reset flow: request (by mail or SMS, or a code from the helpdesk), the
//! verified token, the new password.

use std::net::IpAddr;
use std::sync::Arc;

use sesame_core::account::{Account, AccountState, AccountWithProfile};
use sesame_core::accounts::AccountService;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::clock::Clock;
use sesame_core::credentials::Password;
use sesame_core::i18n::Lang;
use sesame_core::ids::{fold_identifier, AccountId, Email, LoginName};
use sesame_core::mail::MailMessage;
use sesame_core::ports::{
    AccountRepo, AuditLog, EphemeralStore, HelpdeskRepo, Mailer, ProfileRepo,
};
use sesame_core::session::{EndedSession, SessionManager};
use sesame_core::sms::SmsSender;

use super::codes::{CodePurpose, SmsCodes};
use super::helpdesk_codes::HelpdeskCodes;
use super::links::{LinkPurpose, OneTimeLinks};
use super::{RecoveryError, RecoveryPolicy, Refusal};
use crate::activation::ports::ActivationTokenRepo;
use crate::error::OperatorLinkError;

/// How the person wants to receive the means to reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetChannel {
    /// A link to the verified recovery e-mail.
    Mail,
    /// A code by SMS to the verified mobile.
    Sms,
}

/// A reset request as typed.
#[derive(Debug, Clone)]
pub struct ResetRequest {
    /// Login or institutional address.
    pub identifier: String,
    /// Mail or SMS.
    pub channel: ResetChannel,
    /// The language of the mail or SMS.
    pub lang: Lang,
    /// The client address.
    pub ip: Option<IpAddr>,
}

/// A completed reset: the account and the sessions it ended (for single logout).
#[derive(Debug)]
pub struct ResetDone {
    /// The account, with its new password.
    pub account: Account,
    /// The SSO sessions that were ended.
    pub ended: Vec<EndedSession>,
}

/// Everything the reset flow needs.
#[derive(Debug, Clone)]
pub struct RecoveryParts {
    /// Accounts (lookup by login or institutional address).
    pub accounts_repo: Arc<dyn AccountRepo>,
    /// Profiles (recovery contacts).
    pub profiles: Arc<dyn ProfileRepo>,
    /// Audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Tokens and codes.
    pub store: Arc<dyn EphemeralStore>,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Outgoing SMS.
    pub sms: Arc<dyn SmsSender>,
    /// Password policy and hashing.
    pub accounts: AccountService,
    /// SSO sessions.
    pub sessions: SessionManager,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Lifetimes and budgets.
    pub policy: RecoveryPolicy,
    /// The database's one-time secrets (the helpdesk's reset codes).
    pub tokens: Arc<dyn ActivationTokenRepo>,
    /// The helpdesk's records (a reset lifts the password change an unblock requires).
    pub helpdesk: Arc<dyn HelpdeskRepo>,
}

/// The forgotten-password flow.
#[derive(Debug, Clone)]
pub struct PasswordRecovery {
    parts: RecoveryParts,
    links: OneTimeLinks,
    codes: SmsCodes,
    helpdesk_codes: HelpdeskCodes,
}

/// A helpdesk reset code just issued: shown once to the agent, never stored in clear.
#[derive(Debug, Clone)]
pub struct IssuedCode {
    /// The account it is for.
    pub account: Account,
    /// The code to read out (`ABCDE-FGHJK`).
    pub code: String,
    /// When it stops working.
    pub expires_at: time::OffsetDateTime,
}

/// The SMS text of a reset code, per language (`{code}` is replaced when it is sent).
pub fn reset_sms_text(lang: Lang, institution: &str, minutes: u64) -> String {
    match lang {
        Lang::Fr => format!("{institution} : votre code de réinitialisation du mot de passe est {{code}}. Il est valable {minutes} minutes. Ne le communiquez à personne."),
        Lang::En => format!("{institution}: your password reset code is {{code}}. It is valid for {minutes} minutes. Never share it."),
    }
}

impl PasswordRecovery {
    /// The flow over its parts.
    pub fn new(parts: RecoveryParts) -> Self {
        let links = OneTimeLinks::new(Arc::clone(&parts.store), Arc::clone(&parts.clock));
        let codes = SmsCodes::new(
            Arc::clone(&parts.store),
            Arc::clone(&parts.clock),
            Arc::clone(&parts.sms),
            parts.policy,
        );
        let helpdesk_codes = HelpdeskCodes::new(
            Arc::clone(&parts.tokens),
            Arc::clone(&parts.store),
            Arc::clone(&parts.clock),
            parts.policy,
        );
        Self {
            parts,
            links,
            codes,
            helpdesk_codes,
        }
    }

    /// The lifetimes and budgets in force.
    pub fn policy(&self) -> RecoveryPolicy {
        self.parts.policy
    }

    /// The account an identifier names, with its profile, if it is active.
    async fn active_account(
        &self,
        identifier: &str,
    ) -> Result<Option<AccountWithProfile>, RecoveryError> {
        let folded = fold_identifier(identifier);
        if folded.is_empty() || folded.len() > 1024 {
            return Ok(None);
        }
        let Some(found) = self.parts.accounts_repo.find_credential(&folded).await? else {
            return Ok(None);
        };
        // Only active accounts reset: a provisioned one activates, a blocked one goes to the
        // helpdesk, a disabled one is gone.
        if found.account.state != AccountState::Active {
            return Ok(None);
        }
        Ok(self
            .parts
            .profiles
            .find_with_profile(found.account.id)
            .await?)
    }

    /// Handles a request. By mail: when the account exists, is active and has a verified
    /// recovery address, a link to `reset_url` (`?token=` appended) is queued; returns
    /// `None`. By SMS: returns a request id in every case, and when the account has a
    /// verified mobile a code is queued. The answer never says which case happened (A48).
    ///
    /// # Errors
    /// Storage failures only.
    pub async fn request(
        &self,
        request: &ResetRequest,
        reset_url: &str,
        sms_text: &str,
    ) -> Result<Option<String>, RecoveryError> {
        let account = self.active_account(&request.identifier).await?;
        let now = self.parts.clock.now();
        let mut sent = false;
        let outcome = match request.channel {
            ResetChannel::Mail => {
                let target = account.as_ref().and_then(|a| {
                    a.profile
                        .recovery_email
                        .as_ref()
                        .filter(|c| c.verified)
                        .map(|c| (a, c.address.clone()))
                });
                match target {
                    Some((a, to)) => {
                        let (token, expires_at) = self
                            .links
                            .issue(
                                LinkPurpose::PasswordReset,
                                a.account.id,
                                "",
                                false,
                                self.parts.policy.link_ttl,
                            )
                            .await?;
                        let link = format!("{reset_url}?token={token}");
                        self.parts
                            .mailer
                            .send(MailMessage::password_reset(
                                to,
                                request.lang,
                                a.account.id,
                                &a.account.login,
                                &link,
                                expires_at,
                            ))
                            .await?;
                        sent = true;
                    }
                    None => self.links.decoy().await?,
                }
                None
            }
            ResetChannel::Sms => {
                let target = account.as_ref().and_then(|a| {
                    a.profile
                        .mobile
                        .as_ref()
                        .filter(|c| c.verified)
                        .map(|c| (a.account.id, c.address.clone()))
                });
                let (request_id, queued) = self
                    .codes
                    .start(
                        CodePurpose::PasswordReset,
                        target.as_ref().map(|(id, n)| (*id, n)),
                        sms_text,
                    )
                    .await?;
                sent = queued;
                Some(request_id)
            }
        };
        let channel = match request.channel {
            ResetChannel::Mail => "mail",
            ResetChannel::Sms => "sms",
        };
        let mut event = AuditEvent::new(AuditKind::PasswordResetRequested, now, "self")
            .login(&fold_identifier(&request.identifier))
            .ip(request.ip)
            .detail(serde_json::json!({ "channel": channel, "sent": sent }));
        if let Some(a) = &account {
            event = event.account(a.account.id);
        }
        self.parts.audit.record(event).await?;
        Ok(outcome)
    }

    /// An operator's "send a reset link": a link to `reset_url` (`?token=` appended) is
    /// queued to the account's verified recovery address, replacing the link the person may
    /// have asked for. Unlike [`PasswordRecovery::request`], the operator is told why
    /// nothing went, and the token is never returned: it reaches only the person. Recorded
    /// as `recovery.reset_requested` with the operator as actor. Returns where it went.
    ///
    /// # Errors
    /// [`OperatorLinkError`] naming why nothing was sent.
    pub async fn send_link_for(
        &self,
        login: &LoginName,
        reset_url: &str,
        lang: Lang,
        actor: &str,
    ) -> Result<Email, OperatorLinkError> {
        let unavailable = |e: &dyn std::fmt::Display| OperatorLinkError::Unavailable(e.to_string());
        // A provisioned account activates, a blocked one is unblocked first (which forces a
        // new password), a disabled one is gone: only an active account's token is honoured.
        let account = crate::error::operator_link_account(
            self.parts.accounts_repo.as_ref(),
            login,
            AccountState::Active,
        )
        .await?;
        let contact = self
            .parts
            .profiles
            .find_with_profile(account.id)
            .await
            .map_err(|e| unavailable(&e))?
            .and_then(|found| found.profile.recovery_email)
            .ok_or(OperatorLinkError::NoRecoveryAddress)?;
        if !contact.verified {
            return Err(OperatorLinkError::UnverifiedRecoveryAddress);
        }
        let (token, expires_at) = self
            .links
            .issue(
                LinkPurpose::PasswordReset,
                account.id,
                "",
                false,
                self.parts.policy.link_ttl,
            )
            .await
            .map_err(|e| unavailable(&e))?;
        self.parts
            .mailer
            .send(MailMessage::password_reset(
                contact.address.clone(),
                lang,
                account.id,
                &account.login,
                &format!("{reset_url}?token={token}"),
                expires_at,
            ))
            .await
            .map_err(|e| unavailable(&e))?;
        self.parts
            .audit
            .record(
                AuditEvent::new(
                    AuditKind::PasswordResetRequested,
                    self.parts.clock.now(),
                    actor,
                )
                .login(account.login.as_str())
                .account(account.id)
                .detail(serde_json::json!({ "channel": "mail", "sent": true, "by": "operator" })),
            )
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(contact.address)
    }

    /// A helpdesk agent's one-time reset code for an active account (after an unblock, or for
    /// a person without a verified address or mobile), to read out once the caller's identity
    /// is checked. It replaces the account's older code; recorded as
    /// `recovery.helpdesk_code_issued` with the agent as actor.
    ///
    /// # Errors
    /// [`OperatorLinkError::NoSuchAccount`], [`OperatorLinkError::WrongState`] for an account
    /// that is not active (a blocked one is unblocked first), or
    /// [`OperatorLinkError::Unavailable`].
    pub async fn issue_helpdesk_code(
        &self,
        login: &LoginName,
        actor: &str,
    ) -> Result<IssuedCode, OperatorLinkError> {
        let unavailable = |e: &dyn std::fmt::Display| OperatorLinkError::Unavailable(e.to_string());
        let account = crate::error::operator_link_account(
            self.parts.accounts_repo.as_ref(),
            login,
            AccountState::Active,
        )
        .await?;
        let (code, expires_at) = self
            .helpdesk_codes
            .issue(account.id)
            .await
            .map_err(|e| unavailable(&e))?;
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::HelpdeskCodeIssued, self.parts.clock.now(), actor)
                    .login(account.login.as_str())
                    .account(account.id),
            )
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(IssuedCode {
            account,
            code,
            expires_at,
        })
    }

    /// Exchanges a login (or institutional address) and the right helpdesk code for a reset
    /// token, the same kind the mailed link carries, so the new-password step has one way
    /// in. Every refusal is the same to the caller (the reason goes to the audit trail).
    ///
    /// # Errors
    /// [`RecoveryError::Refused`]; storage failures.
    pub async fn verify_helpdesk_code(
        &self,
        identifier: &str,
        code: &str,
        ip: Option<IpAddr>,
    ) -> Result<String, RecoveryError> {
        let account = self.active_account(identifier).await?.map(|a| a.account);
        match self
            .helpdesk_codes
            .verify(account.as_ref().map(|a| a.id), code)
            .await?
        {
            Ok(account_id) => {
                let (token, _) = self
                    .links
                    .issue(
                        LinkPurpose::PasswordReset,
                        account_id,
                        "",
                        false,
                        self.parts.policy.link_ttl,
                    )
                    .await?;
                Ok(token)
            }
            Err(refusal) => {
                self.refused(account.as_ref(), refusal, "helpdesk_code", ip)
                    .await?;
                Err(RecoveryError::Refused(refusal))
            }
        }
    }

    /// The reset token of an account whose owner just passed the identity check for a
    /// password reset (`Activation::check_identity` answered
    /// `IdentityOutcome::ResetAllowed`): the new-password step's way in, as a right SMS code
    /// gets. Nothing else may call it: the check is the proof.
    ///
    /// # Errors
    /// Store failures.
    pub async fn token_after_identity_check(
        &self,
        account_id: AccountId,
    ) -> Result<String, RecoveryError> {
        let (token, _) = self
            .links
            .issue(
                LinkPurpose::PasswordReset,
                account_id,
                "",
                false,
                self.parts.policy.link_ttl,
            )
            .await?;
        Ok(token)
    }

    /// Exchanges a right SMS code for a reset token (the same kind the mailed link carries),
    /// so the new-password step has one way in.
    ///
    /// # Errors
    /// [`RecoveryError::Refused`] for a wrong, expired, used or spent code.
    pub async fn verify_code(
        &self,
        request_id: &str,
        code: &str,
        ip: Option<IpAddr>,
    ) -> Result<String, RecoveryError> {
        match self
            .codes
            .verify(CodePurpose::PasswordReset, request_id, code)
            .await?
        {
            Ok(record) => {
                let account_id = record
                    .account_id
                    .ok_or(RecoveryError::Refused(Refusal::Unknown))?;
                let (token, _) = self
                    .links
                    .issue(
                        LinkPurpose::PasswordReset,
                        account_id,
                        "",
                        false,
                        self.parts.policy.sms_code_ttl,
                    )
                    .await?;
                Ok(token)
            }
            Err(refusal) => {
                self.refused(None, refusal, "sms", ip).await?;
                Err(RecoveryError::Refused(refusal))
            }
        }
    }

    /// The account a reset token is for, if the token is valid now (to show the form).
    ///
    /// # Errors
    /// [`RecoveryError::Refused`] for an invalid token.
    pub async fn check_token(&self, token: &str) -> Result<Account, RecoveryError> {
        match self.links.check(LinkPurpose::PasswordReset, token).await? {
            Ok(record) => self
                .parts
                .accounts_repo
                .find_by_id(record.account_id)
                .await?
                .filter(|a| a.state == AccountState::Active)
                .ok_or(RecoveryError::Refused(Refusal::Unknown)),
            Err(refusal) => Err(RecoveryError::Refused(refusal)),
        }
    }

    /// Sets the new password with a verified token: checks the policy (consuming nothing if
    /// it fails), consumes the token (one winner among parallel submissions, C07), stores the
    /// new hash, lifts the account's lockout locks, ends every SSO session of the account,
    /// queues the notice and records it. Every way of resetting by a verified channel ends
    /// here.
    ///
    /// # Errors
    /// [`RecoveryError::Refused`], [`RecoveryError::Mismatch`], [`RecoveryError::Policy`],
    /// [`RecoveryError::Busy`], storage failures.
    pub async fn reset(
        &self,
        token: &str,
        password: Password,
        confirmation: &Password,
        lang: Lang,
        ip: Option<IpAddr>,
    ) -> Result<ResetDone, RecoveryError> {
        let account = match self.check_token(token).await {
            Ok(a) => a,
            Err(RecoveryError::Refused(r)) => {
                self.refused(None, r, "link", ip).await?;
                return Err(RecoveryError::Refused(r));
            }
            Err(e) => return Err(e),
        };
        if &password != confirmation {
            return Err(RecoveryError::Mismatch);
        }
        self.parts.accounts.check_policy(&account, &password)?;
        let record = match self
            .links
            .consume(LinkPurpose::PasswordReset, token)
            .await?
        {
            Ok(r) if r.account_id == account.id => r,
            Ok(_) | Err(_) => {
                self.refused(Some(&account), Refusal::Unknown, "link", ip)
                    .await?;
                return Err(RecoveryError::Refused(Refusal::Unknown));
            }
        };
        let account = self
            .parts
            .accounts
            .set_password(&account.login, password, "self:reset")
            .await?;
        // A verified channel set this password: the one an unblock voided is gone.
        self.parts
            .helpdesk
            .clear_password_change(account.id)
            .await?;
        // A reset by a verified channel proves the person: it lifts every lock of the
        // account, the login's (unknown devices) and its known devices' (security spec
        // decision 1), so nobody stays locked out after recovering the account.
        self.parts
            .accounts
            .unlock(account.login.as_str(), "self:reset")
            .await?;
        let ended = self.end_sessions(record.account_id).await?;
        let now = self.parts.clock.now();
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::PasswordReset, now, "self")
                    .login(account.login.as_str())
                    .account(account.id)
                    .ip(ip)
                    .detail(serde_json::json!({ "sessions_ended": ended.len() })),
            )
            .await?;
        self.notify(&account, lang, ip).await?;
        Ok(ResetDone { account, ended })
    }

    /// Ends every SSO session of the account and collects what they gave out.
    async fn end_sessions(
        &self,
        account_id: AccountId,
    ) -> Result<Vec<EndedSession>, RecoveryError> {
        Ok(self.parts.sessions.end_all_for(account_id).await?)
    }

    /// The "your password was changed" notice, to the verified recovery address, else the
    /// institutional one.
    async fn notify(
        &self,
        account: &Account,
        lang: Lang,
        ip: Option<IpAddr>,
    ) -> Result<(), RecoveryError> {
        if let Some(to) = notice_address(&self.parts.profiles, account).await? {
            let ip = ip.map(|i| i.to_string());
            self.parts
                .mailer
                .send(MailMessage::password_changed(
                    to,
                    lang,
                    account.id,
                    &account.login,
                    self.parts.clock.now(),
                    ip.as_deref(),
                ))
                .await?;
        }
        Ok(())
    }

    async fn refused(
        &self,
        account: Option<&Account>,
        refusal: Refusal,
        via: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), RecoveryError> {
        let mut event = AuditEvent::new(
            AuditKind::PasswordResetRefused,
            self.parts.clock.now(),
            "self",
        )
        .ip(ip)
        .detail(serde_json::json!({ "reason": refusal.as_str(), "via": via }));
        if let Some(a) = account {
            event = event.login(a.login.as_str()).account(a.id);
        }
        self.parts.audit.record(event).await?;
        Ok(())
    }
}

/// Where notices about an account go: its verified recovery address, else its institutional
/// one.
///
/// # Errors
/// Database failures.
pub async fn notice_address(
    profiles: &Arc<dyn ProfileRepo>,
    account: &Account,
) -> Result<Option<Email>, RecoveryError> {
    let profile = profiles.find_with_profile(account.id).await?;
    let recovery = profile
        .and_then(|p| p.profile.recovery_email)
        .filter(|c| c.verified)
        .map(|c| c.address);
    Ok(recovery.or_else(|| account.email.clone()))
}
