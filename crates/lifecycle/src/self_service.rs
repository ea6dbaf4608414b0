//! The person's own account ("Mon compte"): change the password, the recovery e-mail, the
//! mobile, the directory choice and the mail redirect, and end their own sessions.
//!
//! Every change of a way to recover or take over the account (password, recovery e-mail,
//! mobile, mail redirect) asks for the current password first, checked by the login
//! procedure itself, so a wrong one counts toward the lockout like a failed login (A52, A53;
//! ASVS 5.0 7.5.1): a session left open on a lab computer is not enough to send the
//! institutional mail, reset links included, elsewhere. A new address or number takes effect
//! only once proven by the link or code sent to it; a link is followed by a button that
//! posts, never by the GET of the link itself. Every change that takes effect is told to the
//! institutional address and the (former) recovery address, with a link to reset the
//! password and to help (ASVS 5.0 6.3.7). The directory choice is none of these: it
//! changes neither where mail goes nor who can recover the account.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sesame_core::account::{AccountChanges, AccountWithProfile, Contact, MailRedirect};
use sesame_core::accounts::AccountService;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::authn::{Authenticator, LoginAttempt, LoginChannel};
use sesame_core::clock::Clock;
use sesame_core::credentials::Password;
use sesame_core::i18n::Lang;
use sesame_core::ids::{AccountId, Email, LoginName, MobilePhone};
use sesame_core::mail::{ContactChange, MailMessage};
use sesame_core::ports::{AuditLog, EphemeralStore, Mailer, ProfileRepo};
use sesame_core::session::{EndedSession, SessionManager, SsoSession};
use sesame_core::sms::{mask_phone, SmsSender};

use crate::recovery::codes::{CodePurpose, SmsCodes};
use crate::recovery::links::{LinkPurpose, OneTimeLinks};
use crate::recovery::reset::notice_address;
use crate::recovery::{RecoveryError, RecoveryPolicy, Refusal};

/// Everything the account page needs.
#[derive(Debug, Clone)]
pub struct SelfServiceParts {
    /// Profiles.
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
    /// Checks the current password under the lockout rules.
    pub authenticator: Authenticator,
    /// SSO sessions.
    pub sessions: SessionManager,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Lifetimes and budgets.
    pub policy: RecoveryPolicy,
}

/// What a proven link changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The recovery e-mail is now this address.
    RecoveryEmail(Email),
    /// Mail is now redirected to this address.
    MailRedirect(Email),
}

/// A mail redirect as typed on the account page.
#[derive(Debug)]
pub struct RedirectChoice<'a> {
    /// The current password.
    pub current: Password,
    /// Where to send the mail; empty: no redirect.
    pub address: &'a str,
    /// Keep a copy in the institutional mailbox.
    pub keep_copy: bool,
}

/// What an address-verification link would prove, shown before it is followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAddress {
    /// The recovery e-mail or the mail redirect.
    pub verified: Verified,
    /// The account's login.
    pub login: LoginName,
}

/// Verification mails of a contact already on file one account may be sent per day (from
/// the account page's "verify" button and the helpdesk console): the address is the
/// person's, but a session left open, or an agent, must not be able to flood it.
pub const MAX_VERIFICATION_MAILS_PER_DAY: u32 = 5;

/// What came of asking to (re)send the proof of a contact already on file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerificationRequest {
    /// A link (or code) went to this address (or number).
    Sent(String),
    /// There is nothing to verify: no such contact, or it is verified already.
    NothingToVerify,
    /// The day's budget of the account (or, for an SMS, of the number) is spent.
    DailyLimit,
}

/// A password change as typed: the current password and the new one twice.
#[derive(Debug)]
pub struct PasswordChange {
    /// The current password.
    pub current: Password,
    /// The new password.
    pub new: Password,
    /// The new password again.
    pub confirmation: Password,
}

/// The account page's operations.
#[derive(Debug, Clone)]
pub struct SelfService {
    parts: SelfServiceParts,
    links: OneTimeLinks,
    codes: SmsCodes,
}

/// The SMS text of a mobile verification (`{code}` is replaced when it is sent).
pub fn mobile_sms_text(lang: Lang, institution: &str, minutes: u64) -> String {
    match lang {
        Lang::Fr => format!("{institution} : votre code de vérification du numéro de mobile est {{code}}. Il est valable {minutes} minutes."),
        Lang::En => format!("{institution}: your mobile number verification code is {{code}}. It is valid for {minutes} minutes."),
    }
}

impl SelfService {
    /// The operations over their parts.
    pub fn new(parts: SelfServiceParts) -> Self {
        let links = OneTimeLinks::new(Arc::clone(&parts.store), Arc::clone(&parts.clock));
        let codes = SmsCodes::new(
            Arc::clone(&parts.store),
            Arc::clone(&parts.clock),
            Arc::clone(&parts.sms),
            parts.policy,
        );
        Self {
            parts,
            links,
            codes,
        }
    }

    /// The account and its profile.
    ///
    /// # Errors
    /// Database failures; [`RecoveryError::Refused`] if the account is gone.
    pub async fn profile(
        &self,
        account_id: AccountId,
    ) -> Result<AccountWithProfile, RecoveryError> {
        self.parts
            .profiles
            .find_with_profile(account_id)
            .await?
            .ok_or(RecoveryError::Refused(Refusal::Unknown))
    }

    /// Checks the current password of `session`'s account before a sensitive change made
    /// elsewhere (a second factor added or removed): as [`Self::change_password`] does, a
    /// wrong one is a failed login (audited, counted toward the lockout).
    ///
    /// # Errors
    /// [`RecoveryError::WrongPassword`], [`RecoveryError::Locked`], storage failures.
    pub async fn confirm_password(
        &self,
        session: &SsoSession,
        current: Password,
        ip: Option<IpAddr>,
    ) -> Result<(), RecoveryError> {
        self.reauthenticate(session, current, ip).await
    }

    /// Checks the current password with the login procedure: a wrong one is a failed login
    /// (audited, counted toward the lockout).
    async fn reauthenticate(
        &self,
        session: &SsoSession,
        current: Password,
        ip: Option<IpAddr>,
    ) -> Result<(), RecoveryError> {
        self.parts
            .authenticator
            .login(LoginAttempt {
                login: session.login.as_str().to_owned(),
                password: current,
                client_ip: ip,
                // Counted on the login's counter: a wrong current password locks unknown
                // devices (A52), never the person's known browsers.
                device: None,
                channel: LoginChannel::Web,
            })
            .await?;
        Ok(())
    }

    /// Changes the password: current password, then the new one twice. Takes effect at once;
    /// every other session of the account ends (returned, for single logout); a notice is
    /// queued.
    ///
    /// # Errors
    /// [`RecoveryError::WrongPassword`], [`RecoveryError::Locked`],
    /// [`RecoveryError::Mismatch`], [`RecoveryError::Policy`], storage failures.
    pub async fn change_password(
        &self,
        session: &SsoSession,
        session_handle: &str,
        change: PasswordChange,
        lang: Lang,
        ip: Option<IpAddr>,
    ) -> Result<Vec<EndedSession>, RecoveryError> {
        let PasswordChange {
            current,
            new,
            confirmation,
        } = change;
        self.reauthenticate(session, current, ip).await?;
        if new != confirmation {
            return Err(RecoveryError::Mismatch);
        }
        let account = self.parts.accounts.get(&session.login).await?;
        self.parts.accounts.check_policy(&account, &new)?;
        let account = self
            .parts
            .accounts
            .set_password(&account.login, new, "self")
            .await?;
        let mut ended = Vec::new();
        for (handle, _) in self.parts.sessions.sessions_of(account.id).await? {
            if handle == session_handle {
                continue;
            }
            if let Some(one) = self.parts.sessions.end_handle(account.id, &handle).await? {
                ended.push(one);
            }
        }
        if let Some(to) = notice_address(&self.parts.profiles, &account).await? {
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
        Ok(ended)
    }

    /// Asks to change the recovery e-mail: after the current password, a link goes to the new
    /// address; nothing changes until it is followed (A53).
    ///
    /// # Errors
    /// [`RecoveryError::WrongPassword`], [`RecoveryError::Locked`],
    /// [`RecoveryError::InvalidAddress`], storage failures.
    pub async fn request_recovery_email(
        &self,
        session: &SsoSession,
        current: Password,
        address: &str,
        verify_url: &str,
        lang: Lang,
        ip: Option<IpAddr>,
    ) -> Result<Email, RecoveryError> {
        self.reauthenticate(session, current, ip).await?;
        let address = Email::parse(address).map_err(|_| RecoveryError::InvalidAddress)?;
        self.send_verification(
            (session.account_id, &session.login),
            LinkPurpose::RecoveryEmail,
            &address,
            false,
            verify_url,
            lang,
        )
        .await?;
        Ok(address)
    }

    async fn send_verification(
        &self,
        (account_id, login): (AccountId, &LoginName),
        purpose: LinkPurpose,
        address: &Email,
        flag: bool,
        verify_url: &str,
        lang: Lang,
    ) -> Result<(), RecoveryError> {
        let (token, expires_at) = self
            .links
            .issue(
                purpose,
                account_id,
                address.as_str(),
                flag,
                self.parts.policy.link_ttl,
            )
            .await?;
        let kind = match purpose {
            LinkPurpose::MailRedirect => "redirect",
            _ => "recovery",
        };
        let link = format!("{verify_url}?kind={kind}&token={token}");
        self.parts
            .mailer
            .send(MailMessage::address_verification(
                address.clone(),
                lang,
                account_id,
                login,
                kind,
                &link,
                expires_at,
            ))
            .await?;
        Ok(())
    }

    /// Mails a verification link to the account's recovery address when it is not verified
    /// (it was given by an import, or typed before activation proved contacts): following
    /// it marks that same address verified. For the account page's "verify" button and the
    /// helpdesk console (`actor`); no password is asked, since the link only proves the
    /// address already on file, at that address.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn send_recovery_verification(
        &self,
        account_id: AccountId,
        verify_url: &str,
        lang: Lang,
        actor: &str,
    ) -> Result<VerificationRequest, RecoveryError> {
        let who = self.profile(account_id).await?;
        let Some(address) = who
            .profile
            .recovery_email
            .as_ref()
            .filter(|c| !c.verified)
            .map(|c| c.address.clone())
        else {
            return Ok(VerificationRequest::NothingToVerify);
        };
        let now = self.parts.clock.now();
        let budget = self
            .parts
            .store
            .reserve_attempt(
                &format!("verify-mail:{account_id}"),
                now,
                Duration::from_secs(86_400),
            )
            .await?;
        if budget.locked_until.is_some() || budget.attempt > MAX_VERIFICATION_MAILS_PER_DAY {
            return Ok(VerificationRequest::DailyLimit);
        }
        self.send_verification(
            (account_id, &who.account.login),
            LinkPurpose::RecoveryEmail,
            &address,
            false,
            verify_url,
            lang,
        )
        .await?;
        self.record_sent(&who, "recovery_email", actor).await?;
        Ok(VerificationRequest::Sent(address.as_str().to_owned()))
    }

    /// Sends a code by SMS to the account's mobile when it is not verified; returns the
    /// request id the code form carries (the code is checked by
    /// [`SelfService::confirm_mobile`]). For the account page's "verify" button.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn send_mobile_verification(
        &self,
        session: &SsoSession,
        sms_text: &str,
    ) -> Result<(VerificationRequest, Option<String>), RecoveryError> {
        let who = self.profile(session.account_id).await?;
        let Some(number) = who
            .profile
            .mobile
            .as_ref()
            .filter(|c| !c.verified)
            .map(|c| c.address.clone())
        else {
            return Ok((VerificationRequest::NothingToVerify, None));
        };
        let (request_id, sent) = self
            .codes
            .start(
                CodePurpose::MobileVerification,
                Some((session.account_id, &number)),
                sms_text,
            )
            .await?;
        if !sent {
            return Ok((VerificationRequest::DailyLimit, None));
        }
        self.record_sent(&who, "mobile", "self").await?;
        Ok((
            VerificationRequest::Sent(number.as_str().to_owned()),
            Some(request_id),
        ))
    }

    async fn record_sent(
        &self,
        who: &AccountWithProfile,
        field: &str,
        actor: &str,
    ) -> Result<(), RecoveryError> {
        self.parts
            .audit
            .record(
                AuditEvent::new(
                    AuditKind::ContactVerificationSent,
                    self.parts.clock.now(),
                    actor,
                )
                .login(who.account.login.as_str())
                .account(who.account.id)
                .detail(serde_json::json!({ "field": field })),
            )
            .await?;
        Ok(())
    }

    fn link_purpose(kind: &str) -> LinkPurpose {
        match kind {
            "redirect" => LinkPurpose::MailRedirect,
            _ => LinkPurpose::RecoveryEmail,
        }
    }

    /// What a verification link (`kind` is `recovery` or `redirect`) would prove, without
    /// using it: the page the link opens shows it with a button that follows it.
    ///
    /// # Errors
    /// [`RecoveryError::Refused`] for an invalid link; storage failures.
    pub async fn check_address_link(
        &self,
        kind: &str,
        token: &str,
    ) -> Result<PendingAddress, RecoveryError> {
        let purpose = Self::link_purpose(kind);
        let record = self
            .links
            .check(purpose, token)
            .await?
            .map_err(RecoveryError::Refused)?;
        let address = Email::parse(&record.payload).map_err(|_| RecoveryError::InvalidAddress)?;
        let who = self.profile(record.account_id).await?;
        let verified = match purpose {
            LinkPurpose::MailRedirect => Verified::MailRedirect(address),
            _ => Verified::RecoveryEmail(address),
        };
        Ok(PendingAddress {
            verified,
            login: who.account.login,
        })
    }

    /// Follows a verification link (`kind` is `recovery` or `redirect`), by the button of
    /// its page: writes the proven address and tells the institutional and former recovery
    /// addresses ([`SelfService::check_address_link`] shows the page; `ip` is the
    /// confirmer's).
    ///
    /// # Errors
    /// [`RecoveryError::Refused`] for an invalid link; storage failures.
    pub async fn confirm_address(
        &self,
        kind: &str,
        token: &str,
        lang: Lang,
        ip: Option<IpAddr>,
    ) -> Result<Verified, RecoveryError> {
        let purpose = Self::link_purpose(kind);
        let record = self
            .links
            .consume(purpose, token)
            .await?
            .map_err(RecoveryError::Refused)?;
        let address = Email::parse(&record.payload).map_err(|_| RecoveryError::InvalidAddress)?;
        let before = self.profile(record.account_id).await?;
        let now = self.parts.clock.now();
        let (changes, verified, field, change) = match purpose {
            LinkPurpose::MailRedirect => (
                AccountChanges {
                    mail_redirect: Some(Some(MailRedirect {
                        address: address.clone(),
                        verified: true,
                        keep_copy: record.flag,
                    })),
                    ..AccountChanges::default()
                },
                Verified::MailRedirect(address.clone()),
                "mail_redirect",
                ContactChange::MailRedirect {
                    to: address.clone(),
                    keep_copy: record.flag,
                },
            ),
            _ => (
                AccountChanges {
                    recovery_email: Some(Some(Contact::verified(address.clone()))),
                    ..AccountChanges::default()
                },
                Verified::RecoveryEmail(address.clone()),
                "recovery_email",
                ContactChange::RecoveryEmail(address.clone()),
            ),
        };
        self.parts
            .profiles
            .update_account(record.account_id, &changes, now)
            .await?;
        self.record_verified(&before, field).await?;
        self.notify_change(&before, &change, lang, ip).await?;
        Ok(verified)
    }

    /// Tells the institutional address and the verified recovery address the account had
    /// before the change (each once) that `change` took effect.
    async fn notify_change(
        &self,
        before: &AccountWithProfile,
        change: &ContactChange,
        lang: Lang,
        ip: Option<IpAddr>,
    ) -> Result<(), RecoveryError> {
        let mut recipients: Vec<Email> = Vec::new();
        let former_recovery = before
            .profile
            .recovery_email
            .as_ref()
            .filter(|c| c.verified)
            .map(|c| c.address.clone());
        for address in before.account.email.iter().cloned().chain(former_recovery) {
            if !recipients.contains(&address) {
                recipients.push(address);
            }
        }
        let ip = ip.map(|i| i.to_string());
        let now = self.parts.clock.now();
        for to in recipients {
            self.parts
                .mailer
                .send(MailMessage::contact_changed(
                    to,
                    lang,
                    before.account.id,
                    &before.account.login,
                    change,
                    now,
                    ip.as_deref(),
                ))
                .await?;
        }
        Ok(())
    }

    async fn record_verified(
        &self,
        who: &AccountWithProfile,
        field: &str,
    ) -> Result<(), RecoveryError> {
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::ContactVerified, self.parts.clock.now(), "self")
                    .login(who.account.login.as_str())
                    .account(who.account.id)
                    .detail(serde_json::json!({ "field": field })),
            )
            .await?;
        Ok(())
    }

    /// Asks to change the mobile: after the current password, a code goes by SMS to the new
    /// number; returns the request id the code form carries.
    ///
    /// # Errors
    /// [`RecoveryError::WrongPassword`], [`RecoveryError::Locked`],
    /// [`RecoveryError::InvalidAddress`], storage failures.
    pub async fn request_mobile(
        &self,
        session: &SsoSession,
        current: Password,
        number: &str,
        sms_text: &str,
        ip: Option<IpAddr>,
    ) -> Result<String, RecoveryError> {
        self.reauthenticate(session, current, ip).await?;
        let number = MobilePhone::parse(number).map_err(|_| RecoveryError::InvalidAddress)?;
        let (request_id, _) = self
            .codes
            .start(
                CodePurpose::MobileVerification,
                Some((session.account_id, &number)),
                sms_text,
            )
            .await?;
        Ok(request_id)
    }

    /// Checks the code sent to the new mobile; a right one makes it the verified mobile.
    ///
    /// # Errors
    /// [`RecoveryError::Refused`]; storage failures.
    pub async fn confirm_mobile(
        &self,
        session: &SsoSession,
        request_id: &str,
        code: &str,
        lang: Lang,
        ip: Option<IpAddr>,
    ) -> Result<MobilePhone, RecoveryError> {
        let record = self
            .codes
            .verify(CodePurpose::MobileVerification, request_id, code)
            .await?
            .map_err(RecoveryError::Refused)?;
        // A code proves a number for the account that asked for it, never another.
        if record.account_id != Some(session.account_id) {
            return Err(RecoveryError::Refused(Refusal::Unknown));
        }
        let number =
            MobilePhone::parse(&record.number).map_err(|_| RecoveryError::InvalidAddress)?;
        let before = self.profile(session.account_id).await?;
        self.parts
            .profiles
            .update_account(
                session.account_id,
                &AccountChanges {
                    mobile: Some(Some(Contact::verified(number.clone()))),
                    ..AccountChanges::default()
                },
                self.parts.clock.now(),
            )
            .await?;
        self.record_verified(&before, "mobile").await?;
        let change = ContactChange::Mobile(mask_phone(number.as_str()));
        self.notify_change(&before, &change, lang, ip).await?;
        Ok(number)
    }

    /// Sets the directory choice.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn set_directory_opt_in(
        &self,
        session: &SsoSession,
        opt_in: bool,
    ) -> Result<(), RecoveryError> {
        self.update(
            session,
            AccountChanges {
                directory_opt_in: Some(opt_in),
                ..AccountChanges::default()
            },
        )
        .await
    }

    /// Sets or removes the mail redirect, after the current password (as every change of
    /// where the account's mail goes: A53, ASVS 5.0 7.5.1). An empty address removes it. The
    /// verified recovery address (or the current redirect) is taken at once; another address
    /// gets a verification link and changes nothing until it is followed (only keep-a-copy
    /// changes for the current address). A change that takes effect here is told to the
    /// institutional and recovery addresses. Returns whether a link was sent.
    ///
    /// # Errors
    /// [`RecoveryError::WrongPassword`], [`RecoveryError::Locked`],
    /// [`RecoveryError::InvalidAddress`]; storage failures.
    pub async fn set_mail_redirect(
        &self,
        session: &SsoSession,
        choice: RedirectChoice<'_>,
        verify_url: &str,
        lang: Lang,
        ip: Option<IpAddr>,
    ) -> Result<bool, RecoveryError> {
        let RedirectChoice {
            current,
            address,
            keep_copy,
        } = choice;
        self.reauthenticate(session, current, ip).await?;
        let before = self.profile(session.account_id).await?;
        if address.trim().is_empty() {
            if before.profile.mail_redirect.is_none() {
                return Ok(false);
            }
            self.update(
                session,
                AccountChanges {
                    mail_redirect: Some(None),
                    ..AccountChanges::default()
                },
            )
            .await?;
            self.notify_change(&before, &ContactChange::MailRedirectRemoved, lang, ip)
                .await?;
            return Ok(false);
        }
        let address = Email::parse(address).map_err(|_| RecoveryError::InvalidAddress)?;
        let current = &before.profile;
        let proven = current
            .recovery_email
            .as_ref()
            .is_some_and(|c| c.verified && c.address == address)
            || current
                .mail_redirect
                .as_ref()
                .is_some_and(|r| r.verified && r.address == address);
        if proven {
            let unchanged = current
                .mail_redirect
                .as_ref()
                .is_some_and(|r| r.verified && r.address == address && r.keep_copy == keep_copy);
            if unchanged {
                return Ok(false);
            }
            self.update(
                session,
                AccountChanges {
                    mail_redirect: Some(Some(MailRedirect {
                        address: address.clone(),
                        verified: true,
                        keep_copy,
                    })),
                    ..AccountChanges::default()
                },
            )
            .await?;
            let change = ContactChange::MailRedirect {
                to: address,
                keep_copy,
            };
            self.notify_change(&before, &change, lang, ip).await?;
            return Ok(false);
        }
        self.send_verification(
            (session.account_id, &session.login),
            LinkPurpose::MailRedirect,
            &address,
            keep_copy,
            verify_url,
            lang,
        )
        .await?;
        Ok(true)
    }

    async fn update(
        &self,
        session: &SsoSession,
        changes: AccountChanges,
    ) -> Result<(), RecoveryError> {
        let now = self.parts.clock.now();
        self.parts
            .profiles
            .update_account(session.account_id, &changes, now)
            .await?;
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::AccountUpdated, now, "self")
                    .login(session.login.as_str())
                    .account(session.account_id)
                    .detail(serde_json::json!({ "fields": changes.field_names() })),
            )
            .await?;
        Ok(())
    }

    /// Ends one of the person's own sessions; returns it for single logout, or `None` if it
    /// was not theirs or had ended.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn revoke_session(
        &self,
        session: &SsoSession,
        handle: &str,
        ip: Option<IpAddr>,
    ) -> Result<Option<EndedSession>, RecoveryError> {
        let Some(ended) = self
            .parts
            .sessions
            .end_handle(session.account_id, handle)
            .await?
        else {
            return Ok(None);
        };
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::SessionRevoked, self.parts.clock.now(), "self")
                    .login(session.login.as_str())
                    .account(session.account_id)
                    .ip(ip),
            )
            .await?;
        Ok(Some(ended))
    }
}
