//! The person's own account ("Mon compte"): change the password, the recovery e-mail, the
//! mobile, the directory choice and the mail redirect, and end their own sessions.
//!
//! Every change of a way to recover or take over the account (password, recovery e-mail,
//! mobile) asks for the current password first, checked by the login procedure itself, so a
//! wrong one counts toward the lockout like a failed login (A52, A53). A new address or
//! number takes effect only once proven by the link or code sent to it.

use std::net::IpAddr;
use std::sync::Arc;

use sesame_core::account::{AccountChanges, AccountWithProfile, Contact, MailRedirect};
use sesame_core::accounts::AccountService;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::authn::{Authenticator, LoginAttempt};
use sesame_core::clock::Clock;
use sesame_core::credentials::Password;
use sesame_core::i18n::Lang;
use sesame_core::ids::{AccountId, Email, MobilePhone};
use sesame_core::mail::MailMessage;
use sesame_core::ports::{AuditLog, EphemeralStore, Mailer, ProfileRepo};
use sesame_core::session::{EndedSession, SessionManager, SsoSession};
use sesame_core::sms::SmsSender;

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
        if new.expose() != confirmation.expose() {
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
            if self
                .parts
                .sessions
                .close_handle(account.id, &handle)
                .await?
                .is_some()
            {
                let attached = self.parts.sessions.take_attached(&handle).await?;
                ended.push(EndedSession {
                    handle,
                    account_id: account.id,
                    attached,
                });
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
            session,
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
        session: &SsoSession,
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
                session.account_id,
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
                session.account_id,
                &session.login,
                kind,
                &link,
                expires_at,
            ))
            .await?;
        Ok(())
    }

    /// Follows a verification link (`kind` is `recovery` or `redirect`): writes the proven
    /// address, and for a recovery e-mail tells the former address.
    ///
    /// # Errors
    /// [`RecoveryError::Refused`] for an invalid link; storage failures.
    pub async fn confirm_address(
        &self,
        kind: &str,
        token: &str,
        lang: Lang,
    ) -> Result<Verified, RecoveryError> {
        let purpose = match kind {
            "redirect" => LinkPurpose::MailRedirect,
            _ => LinkPurpose::RecoveryEmail,
        };
        let record = self
            .links
            .consume(purpose, token)
            .await?
            .map_err(RecoveryError::Refused)?;
        let address = Email::parse(&record.payload).map_err(|_| RecoveryError::InvalidAddress)?;
        let before = self.profile(record.account_id).await?;
        let now = self.parts.clock.now();
        let (changes, verified, field) = match purpose {
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
            ),
            _ => (
                AccountChanges {
                    recovery_email: Some(Some(Contact::verified(address.clone()))),
                    ..AccountChanges::default()
                },
                Verified::RecoveryEmail(address.clone()),
                "recovery_email",
            ),
        };
        self.parts
            .profiles
            .update_account(record.account_id, &changes, now)
            .await?;
        self.record_verified(&before, field).await?;
        if purpose == LinkPurpose::RecoveryEmail {
            if let Some(old) = before
                .profile
                .recovery_email
                .as_ref()
                .map(|c| c.address.clone())
                .filter(|old| *old != address)
            {
                self.parts
                    .mailer
                    .send(MailMessage::recovery_email_changed(
                        old,
                        lang,
                        before.account.id,
                        &before.account.login,
                        &address,
                        now,
                    ))
                    .await?;
            }
        }
        Ok(verified)
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

    /// Sets or removes the mail redirect. An empty address removes it. The verified recovery
    /// address is taken at once; another address gets a verification link and changes
    /// nothing until it is followed (only keep-a-copy changes for the current address).
    /// Returns whether a link was sent.
    ///
    /// # Errors
    /// [`RecoveryError::InvalidAddress`]; storage failures.
    pub async fn set_mail_redirect(
        &self,
        session: &SsoSession,
        address: &str,
        keep_copy: bool,
        verify_url: &str,
        lang: Lang,
    ) -> Result<bool, RecoveryError> {
        if address.trim().is_empty() {
            self.update(
                session,
                AccountChanges {
                    mail_redirect: Some(None),
                    ..AccountChanges::default()
                },
            )
            .await?;
            return Ok(false);
        }
        let address = Email::parse(address).map_err(|_| RecoveryError::InvalidAddress)?;
        let current = self.profile(session.account_id).await?.profile;
        let proven = current
            .recovery_email
            .as_ref()
            .is_some_and(|c| c.verified && c.address == address)
            || current
                .mail_redirect
                .as_ref()
                .is_some_and(|r| r.verified && r.address == address);
        if proven {
            self.update(
                session,
                AccountChanges {
                    mail_redirect: Some(Some(MailRedirect {
                        address,
                        verified: true,
                        keep_copy,
                    })),
                    ..AccountChanges::default()
                },
            )
            .await?;
            return Ok(false);
        }
        self.send_verification(
            session,
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
        let Some(closed) = self
            .parts
            .sessions
            .close_handle(session.account_id, handle)
            .await?
        else {
            return Ok(None);
        };
        let attached = self.parts.sessions.take_attached(handle).await?;
        self.parts
            .audit
            .record(
                AuditEvent::new(AuditKind::SessionRevoked, self.parts.clock.now(), "self")
                    .login(session.login.as_str())
                    .account(session.account_id)
                    .ip(ip),
            )
            .await?;
        Ok(Some(EndedSession {
            handle: handle.to_owned(),
            account_id: closed.account_id,
            attached,
        }))
    }
}
