//! Audit events: every authentication decision and every account change leaves one.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::AccountId;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuditKind {
    /// Correct credentials; an SSO session was opened.
    LoginSucceeded,
    /// Wrong or unknown credentials.
    LoginFailed,
    /// Refused because the login is temporarily locked.
    LoginRefusedLocked,
    /// Refused because the client address sent too many failures.
    LoginRefusedThrottled,
    /// Correct password on an account that cannot log in (blocked, disabled, not activated).
    LoginRefusedState,
    /// The login crossed the failure threshold and is now locked.
    LoginLocked,
    /// An operator lifted a temporary lock, or a completed password reset lifted the locks.
    LoginUnlocked,
    /// The password typed was the unused activation code of an account waiting for its
    /// activation: not a failure; the person was sent on to the activation.
    LoginActivationCode,
    /// The SSO session was ended by its owner.
    Logout,
    /// Account created.
    AccountCreated,
    /// Password set or changed.
    PasswordChanged,
    /// Password rehashed with the current parameters at login.
    PasswordRehashed,
    /// Account state changed (block, unblock, activate, disable).
    AccountStateChanged,
    /// A person allowed an OpenID Connect client to receive some scopes.
    ConsentGranted,
    /// A person refused an OpenID Connect client.
    ConsentRefused,
    /// A person withdrew a consent.
    ConsentRevoked,
    /// An authorization code or refresh token was presented twice: its grant was revoked.
    TokenReuseDetected,
    /// A new signing key was made current.
    SigningKeyRotated,
    /// Names, affiliation or profile changed (the details list the fields, never values).
    AccountUpdated,
    /// A provisioning file was imported (the details hold the counts).
    ImportCompleted,
    /// An admin API key was made (the details name it and its scopes, never the key).
    ApiKeyCreated,
    /// An admin API key was revoked.
    ApiKeyRevoked,
    /// An operator ended every SSO session of an account.
    SessionsEnded,
    // --- activation ---
    /// An identity check, code or link opened an activation (the details name the path).
    ActivationStarted,
    /// An identity check, code or link was refused (the details say which path, never why).
    ActivationFailed,
    /// One step of an activation was completed (the details name it).
    ActivationStepCompleted,
    /// An activation ended: the account is active.
    ActivationCompleted,
    /// An activation link was mailed.
    ActivationLinkSent,
    /// Activation codes were generated for an account.
    ActivationCodeIssued,
    /// A version of the IT charter was accepted.
    CharterAccepted,
    /// The forgotten-login page showed a login after an identity check.
    LoginReminded,
    /// A mail-redirect address was proven by its link.
    MailRedirectVerified,
    /// A password reset was asked for (by mail or SMS); recorded whether or not the account
    /// exists, under the string typed.
    PasswordResetRequested,
    /// A password was reset with a recovery link or SMS code.
    PasswordReset,
    /// A reset link or SMS code was refused (unknown, used, expired, superseded, wrong).
    PasswordResetRefused,
    /// A helpdesk agent issued a one-time reset code (shown once to the agent).
    HelpdeskCodeIssued,
    /// The person ended one of their own SSO sessions from the account page.
    SessionRevoked,
    /// A recovery e-mail, mobile or mail redirect was proven by its link or code.
    ContactVerified,
    /// A link or code to prove a contact already on file was sent (the details name the
    /// field, never the address).
    ContactVerificationSent,
    // --- helpdesk ---
    /// An operator blocked an account (the details hold the reason, never the note).
    AccountBlocked,
    /// An operator unblocked an account; its former password opens nothing until a new one
    /// is set through a verified channel.
    AccountUnblocked,
    /// A helpdesk agent compared what a caller said with the account's record (the details
    /// name the field and whether it matched, never the values).
    IdentityCompared,
    /// Someone sent the public assistance form (the details hold the reference).
    AssistanceRequested,
    /// An operator closed an assistance request.
    AssistanceClosed,
    /// A disabled account was deleted at the end of its retention period.
    AccountDeleted,
    // --- second factors ---
    /// A second factor was enrolled (the details hold its kind and id, never its secret).
    MfaEnrolled,
    /// A second factor was removed (by the person, or every factor by the helpdesk).
    MfaRemoved,
    /// A login passed its second factor (the details say whether a recovery code was used).
    MfaSucceeded,
    /// A wrong second-factor answer after a correct password (the details hold the attempts
    /// left, or the lock).
    MfaFailed,
    /// New recovery codes replaced the old ones.
    RecoveryCodesRegenerated,
    // --- LDAP ---
    /// An LDAP service account's bind was refused: unknown name or wrong secret (the details
    /// hold the name given, never the secret).
    LdapServiceBindRefused,
}

impl AuditKind {
    /// Stable dotted name, as stored and logged.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginSucceeded => "login.succeeded",
            Self::LoginFailed => "login.failed",
            Self::LoginRefusedLocked => "login.refused_locked",
            Self::LoginRefusedThrottled => "login.refused_throttled",
            Self::LoginRefusedState => "login.refused_state",
            Self::LoginLocked => "login.locked",
            Self::LoginUnlocked => "login.unlocked",
            Self::LoginActivationCode => "login.activation_code",
            Self::Logout => "logout",
            Self::AccountCreated => "account.created",
            Self::PasswordChanged => "account.password_changed",
            Self::PasswordRehashed => "account.password_rehashed",
            Self::AccountStateChanged => "account.state_changed",
            Self::ConsentGranted => "oidc.consent_granted",
            Self::ConsentRefused => "oidc.consent_refused",
            Self::ConsentRevoked => "oidc.consent_revoked",
            Self::TokenReuseDetected => "oidc.token_reuse_detected",
            Self::SigningKeyRotated => "oidc.signing_key_rotated",
            Self::AccountUpdated => "account.updated",
            Self::ImportCompleted => "import.completed",
            Self::ApiKeyCreated => "api_key.created",
            Self::ApiKeyRevoked => "api_key.revoked",
            Self::SessionsEnded => "account.sessions_ended",
            Self::ActivationStarted => "activation.started",
            Self::ActivationFailed => "activation.failed",
            Self::ActivationStepCompleted => "activation.step_completed",
            Self::ActivationCompleted => "activation.completed",
            Self::ActivationLinkSent => "activation.link_sent",
            Self::ActivationCodeIssued => "activation.code_issued",
            Self::CharterAccepted => "account.charter_accepted",
            Self::LoginReminded => "account.login_reminded",
            Self::MailRedirectVerified => "account.mail_redirect_verified",
            Self::PasswordResetRequested => "recovery.reset_requested",
            Self::PasswordReset => "recovery.password_reset",
            Self::PasswordResetRefused => "recovery.reset_refused",
            Self::HelpdeskCodeIssued => "recovery.helpdesk_code_issued",
            Self::SessionRevoked => "account.session_revoked",
            Self::ContactVerified => "account.contact_verified",
            Self::ContactVerificationSent => "account.contact_verification_sent",
            Self::AccountBlocked => "account.blocked",
            Self::AccountUnblocked => "account.unblocked",
            Self::IdentityCompared => "helpdesk.identity_compared",
            Self::AssistanceRequested => "assistance.requested",
            Self::AssistanceClosed => "assistance.closed",
            Self::LdapServiceBindRefused => "ldap.service_bind_refused",
            Self::AccountDeleted => "account.deleted",
            Self::MfaEnrolled => "mfa.enrolled",
            Self::MfaRemoved => "mfa.removed",
            Self::MfaSucceeded => "mfa.succeeded",
            Self::MfaFailed => "mfa.failed",
            Self::RecoveryCodesRegenerated => "mfa.recovery_codes_regenerated",
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What (dotted name from [`AuditKind::as_str`]).
    pub kind: String,
    /// The login string concerned (folded), which may name no account.
    pub login: Option<String>,
    /// The account concerned, when there is one.
    pub account_id: Option<AccountId>,
    /// Client address, as decided by the trusted-proxy rules.
    pub ip: Option<String>,
    /// Who acted: `self`, `cli`, `api:<key name>`.
    pub actor: String,
    /// Free-form JSON details; never secrets.
    pub detail: serde_json::Value,
}

impl AuditEvent {
    /// A new event of `kind` at `at`, by `actor`, with empty details.
    pub fn new(kind: AuditKind, at: OffsetDateTime, actor: &str) -> Self {
        Self {
            at,
            kind: kind.as_str().to_owned(),
            login: None,
            account_id: None,
            ip: None,
            actor: actor.to_owned(),
            detail: serde_json::Value::Null,
        }
    }

    /// Sets the login.
    #[must_use]
    pub fn login(mut self, login: &str) -> Self {
        // Whatever was typed is kept, but bounded: a 1 MiB "login" must not become a 1 MiB row.
        self.login = Some(login.chars().take(256).collect());
        self
    }

    /// Sets the account.
    #[must_use]
    pub fn account(mut self, id: AccountId) -> Self {
        self.account_id = Some(id);
        self
    }

    /// Sets the client address.
    #[must_use]
    pub fn ip(mut self, ip: Option<std::net::IpAddr>) -> Self {
        self.ip = ip.map(|i| i.to_string());
        self
    }

    /// Sets the details.
    #[must_use]
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }
}
