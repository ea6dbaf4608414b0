//! Outgoing mail: what a flow asks to send ([`MailMessage`]), the rendered mail that is queued
//! ([`OutgoingMail`]), the queued record ([`QueuedMail`]) and when a failed delivery is tried
//! again ([`RetryPolicy`]).
//!
//! A flow never talks to a mail server: it hands a [`MailMessage`] to the
//! [`Mailer`](crate::ports::Mailer) port, which renders it and stores it in the durable
//! [`MailQueue`](crate::ports::MailQueue). A worker delivers queued mails later, so an SMTP
//! outage delays mail but loses none, and the person's request never waits for SMTP.
//!
//! Mail bodies carry one-time links: they are never logged, and `Debug` leaves them out.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::i18n::Lang;
use crate::ids::{AccountId, Email, LoginName};

/// What a mail is about; names its templates (`mail/<kind>/…`).
///
/// Add a variant with its templates in `sesame-mail` (a test checks that every kind renders in
/// both languages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// A notice that the account's password was changed (or reset).
    PasswordChanged,
    /// A test mail sent by an operator (`sesame mail test`) to check the settings.
    Test,
    /// The login and activation link of a provisioned account.
    ActivationLink,
    /// The link that proves a mail-redirect address chosen at activation.
    MailRedirectVerification,
    /// A password reset link, to the verified recovery address.
    PasswordReset,
    /// A link proving that the person receives at a new address (recovery e-mail or mail
    /// redirect), to that address.
    AddressVerification,
    /// A notice that a way to reach or recover the account changed (recovery e-mail, mobile,
    /// mail redirect), to the institutional address and the former recovery address.
    ContactChanged,
    /// A six-digit code proving that the person receives at an address (the recovery
    /// address typed during an activation), to that address.
    VerificationCode,
    // --- helpdesk ---
    /// An assistance request from the public form, for the helpdesk.
    AssistanceRequest,
    /// The acknowledgement of an assistance request, to the sender's personal address.
    AssistanceReceived,
    /// The notice that the helpdesk closed an assistance request, to the sender's personal
    /// address.
    AssistanceClosed,
    /// The notice that the helpdesk unblocked the account, to its institutional and
    /// verified recovery addresses.
    AccountUnblocked,
    /// A notice that the account's second factors changed (an application added or removed,
    /// new recovery codes) or that a recovery code was used, to the institutional and
    /// verified recovery addresses.
    SecondFactorChanged,
}

impl MailKind {
    /// Every kind.
    pub const ALL: &'static [MailKind] = &[
        Self::PasswordChanged,
        Self::Test,
        Self::ActivationLink,
        Self::MailRedirectVerification,
        Self::PasswordReset,
        Self::AddressVerification,
        Self::ContactChanged,
        Self::VerificationCode,
        Self::AssistanceRequest,
        Self::AssistanceReceived,
        Self::AssistanceClosed,
        Self::AccountUnblocked,
        Self::SecondFactorChanged,
    ];

    /// Stable name, as stored, logged and used for template names.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordChanged => "password_changed",
            Self::Test => "test",
            Self::ActivationLink => "activation_link",
            Self::MailRedirectVerification => "mail_redirect_verification",
            Self::PasswordReset => "password_reset",
            Self::AddressVerification => "address_verification",
            Self::ContactChanged => "contact_changed",
            Self::VerificationCode => "verification_code",
            Self::AssistanceRequest => "assistance_request",
            Self::AssistanceReceived => "assistance_received",
            Self::AssistanceClosed => "assistance_closed",
            Self::AccountUnblocked => "account_unblocked",
            Self::SecondFactorChanged => "second_factor_changed",
        }
    }
}

impl fmt::Display for MailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mail a flow wants sent, before rendering: its kind, recipient, language and the values
/// its templates use.
#[derive(Clone, PartialEq)]
pub struct MailMessage {
    /// What it is about.
    pub kind: MailKind,
    /// The recipient.
    pub to: Email,
    /// The language to write it in.
    pub lang: Lang,
    /// The account it concerns, if any.
    pub account_id: Option<AccountId>,
    /// Values for the templates (`{{ login }}`, `{{ link }}`…). Times are RFC 3339 strings,
    /// shown in the institution's time zone by the `datetime` filter.
    pub values: Map<String, Value>,
}

impl fmt::Debug for MailMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailMessage")
            .field("kind", &self.kind)
            .field("to_domain", &email_domain(self.to.as_str()))
            .field("lang", &self.lang)
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

impl MailMessage {
    /// A message of `kind` to `to` in `lang`, with no values yet.
    pub fn new(kind: MailKind, to: Email, lang: Lang) -> Self {
        Self {
            kind,
            to,
            lang,
            account_id: None,
            values: Map::new(),
        }
    }

    /// Records the account the mail concerns.
    #[must_use]
    pub fn account(mut self, id: AccountId) -> Self {
        self.account_id = Some(id);
        self
    }

    /// Adds a template value.
    #[must_use]
    pub fn value(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.values.insert(name.to_owned(), value.into());
        self
    }

    /// Adds a time value (RFC 3339, for the `datetime` filter).
    #[must_use]
    pub fn time(self, name: &str, at: OffsetDateTime) -> Self {
        let text = at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| at.to_string());
        self.value(name, text)
    }

    /// The notice sent after a password change: the login, when, and from which address
    /// (if known), so a person who did not do it can react.
    pub fn password_changed(
        to: Email,
        lang: Lang,
        account_id: AccountId,
        login: &LoginName,
        changed_at: OffsetDateTime,
        ip: Option<&str>,
    ) -> Self {
        let message = Self::new(MailKind::PasswordChanged, to, lang)
            .account(account_id)
            .value("login", login.as_str())
            .time("changed_at", changed_at);
        match ip {
            Some(ip) => message.value("ip", ip),
            None => message,
        }
    }

    /// A password reset link (`link`), valid until `expires_at`, for `login`.
    pub fn password_reset(
        to: Email,
        lang: Lang,
        account_id: AccountId,
        login: &LoginName,
        link: &str,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self::new(MailKind::PasswordReset, to, lang)
            .account(account_id)
            .value("login", login.as_str())
            .value("link", link)
            .time("expires_at", expires_at)
    }

    /// A link proving the person receives at `to`; `purpose` is `recovery` (recovery
    /// e-mail) or `redirect` (mail redirect), for the wording.
    pub fn address_verification(
        to: Email,
        lang: Lang,
        account_id: AccountId,
        login: &LoginName,
        purpose: &str,
        link: &str,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self::new(MailKind::AddressVerification, to, lang)
            .account(account_id)
            .value("login", login.as_str())
            .value("purpose", purpose)
            .value("link", link)
            .time("expires_at", expires_at)
    }

    /// The notice to `to` that `change` was made to the account `login` at `changed_at`
    /// (from `ip`, if known), so that a person who did not make it can react: the mail links
    /// to the forgotten-password page and to help.
    pub fn contact_changed(
        to: Email,
        lang: Lang,
        account_id: AccountId,
        login: &LoginName,
        change: &ContactChange,
        changed_at: OffsetDateTime,
        ip: Option<&str>,
    ) -> Self {
        let message = Self::new(MailKind::ContactChanged, to, lang)
            .account(account_id)
            .value("login", login.as_str())
            .value("what", change.what())
            .time("changed_at", changed_at);
        let message = match change {
            ContactChange::RecoveryEmail(new) => {
                message.value("new_value", mask_email(new.as_str()))
            }
            ContactChange::Mobile(masked) => message.value("new_value", masked.as_str()),
            ContactChange::MailRedirect { to, keep_copy } => message
                .value("new_value", mask_email(to.as_str()))
                .value("keep_copy", *keep_copy),
            ContactChange::MailRedirectRemoved => message,
        };
        match ip {
            Some(ip) => message.value("ip", ip),
            None => message,
        }
    }

    /// The second factors of `login` changed at `changed_at`: `what` is `added`, `removed`,
    /// `recovery_codes` (new ones) or `recovery_code_used` (with the codes `left`).
    #[expect(
        clippy::too_many_arguments,
        reason = "what the mail says: who, what, when, from where, how many are left"
    )]
    pub fn second_factor_changed(
        to: Email,
        lang: Lang,
        account_id: AccountId,
        login: &LoginName,
        what: &str,
        changed_at: OffsetDateTime,
        ip: Option<&str>,
        left: Option<usize>,
    ) -> Self {
        let message = Self::new(MailKind::SecondFactorChanged, to, lang)
            .account(account_id)
            .value("login", login.as_str())
            .value("what", what)
            .time("changed_at", changed_at);
        let message = match left {
            Some(n) => message.value("left", n),
            None => message,
        };
        match ip {
            Some(ip) => message.value("ip", ip),
            None => message,
        }
    }

    /// A six-digit `code` proving that the person receives at `to`, valid until
    /// `expires_at`, for `login`.
    pub fn verification_code(
        to: Email,
        lang: Lang,
        account_id: AccountId,
        login: &LoginName,
        code: &str,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self::new(MailKind::VerificationCode, to, lang)
            .account(account_id)
            .value("login", login.as_str())
            .value("code", code)
            .time("expires_at", expires_at)
    }

    /// The mail `sesame mail test` sends.
    pub fn test(to: Email, lang: Lang, sent_at: OffsetDateTime) -> Self {
        Self::new(MailKind::Test, to, lang).time("sent_at", sent_at)
    }
}

/// A change of the ways to reach or recover an account, as a notice tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactChange {
    /// A new recovery e-mail.
    RecoveryEmail(Email),
    /// A new mobile, already masked (`+33…78`).
    Mobile(String),
    /// Mail redirected to `to` (new, or keep-a-copy changed).
    MailRedirect {
        /// Where mail goes.
        to: Email,
        /// A copy stays in the institutional mailbox.
        keep_copy: bool,
    },
    /// The mail redirect removed.
    MailRedirectRemoved,
}

impl ContactChange {
    /// The name the templates test (`{% if what == "mobile" %}`).
    pub fn what(&self) -> &'static str {
        match self {
            Self::RecoveryEmail(_) => "recovery_email",
            Self::Mobile(_) => "mobile",
            Self::MailRedirect { .. } => "mail_redirect",
            Self::MailRedirectRemoved => "mail_redirect_removed",
        }
    }
}

/// A rendered mail, ready to queue.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// The recipient.
    pub to: Email,
    /// One line.
    pub subject: String,
    /// The plain-text body (always present).
    pub text_body: String,
    /// An HTML alternative, if the kind has one.
    pub html_body: Option<String>,
    /// What it is about ([`MailKind::as_str`]); kept as text so a mail queued by a newer
    /// version can still be delivered by an older one.
    pub kind: String,
    /// The account it concerns, if any.
    pub account_id: Option<AccountId>,
}

impl fmt::Debug for OutgoingMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingMail")
            .field("kind", &self.kind)
            .field("to_domain", &email_domain(self.to.as_str()))
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

/// The identifier of a queued mail (a UUIDv7, so ids sort by creation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailId(pub Uuid);

impl MailId {
    /// A fresh identifier, ordered after those made before it by this process.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for MailId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MailId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MailId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim()).map(Self)
    }
}

/// Where a queued mail stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// Accepted by the transport (the mail server or the outbox).
    Sent,
    /// Given up: refused for good, or every retry failed. Kept for the operator.
    Failed,
}

impl MailStatus {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for MailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MailStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(Self::Pending),
            "sent" => Ok(Self::Sent),
            "failed" => Ok(Self::Failed),
            other => Err(format!(
                "unknown mail status {other:?}: pending, sent or failed"
            )),
        }
    }
}

/// A mail as the queue keeps it.
#[derive(Clone, PartialEq, Eq)]
pub struct QueuedMail {
    /// Its identifier (also the `Message-ID`'s left part).
    pub id: MailId,
    /// The mail. Once sent, its bodies are erased (they may hold one-time links).
    pub mail: OutgoingMail,
    /// When it was queued (also its `Date` header).
    pub created_at: OffsetDateTime,
    /// Delivery attempts started so far (a claim counts as one).
    pub attempts: u32,
    /// When it is due (next attempt).
    pub next_attempt_at: OffsetDateTime,
    /// When the transport accepted it.
    pub sent_at: Option<OffsetDateTime>,
    /// When it was given up.
    pub failed_at: Option<OffsetDateTime>,
    /// Why the last attempt failed (never a secret nor a body).
    pub last_error: Option<String>,
}

impl QueuedMail {
    /// Where it stands.
    pub fn status(&self) -> MailStatus {
        if self.sent_at.is_some() {
            MailStatus::Sent
        } else if self.failed_at.is_some() {
            MailStatus::Failed
        } else {
            MailStatus::Pending
        }
    }
}

impl fmt::Debug for QueuedMail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueuedMail")
            .field("id", &self.id)
            .field("mail", &self.mail)
            .field("created_at", &self.created_at)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("sent_at", &self.sent_at)
            .field("failed_at", &self.failed_at)
            .field("last_error", &self.last_error)
            .finish()
    }
}

/// How many mails the queue holds in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailCounts {
    /// Waiting.
    pub pending: u64,
    /// Delivered.
    pub sent: u64,
    /// Given up.
    pub failed: u64,
}

/// When a failed delivery is tried again: after the first failed attempt wait `delays[0]`,
/// after the second `delays[1]`, and so on; once every delay is used, the next failure gives
/// the mail up (it is kept, marked failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The waits between attempts.
    pub delays: Vec<Duration>,
}

impl Default for RetryPolicy {
    /// 1 min, 5 min, 15 min, 1 h, 4 h, 12 h: seven attempts over about 17 hours.
    fn default() -> Self {
        Self {
            delays: [60, 300, 900, 3600, 14_400, 43_200]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        }
    }
}

impl RetryPolicy {
    /// The most attempts a mail gets.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// When to try again after `attempts` failed attempts (the one that just failed
    /// included), counted from `now`; `None` to give up.
    pub fn next_attempt(&self, attempts: u32, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let index = usize::try_from(attempts.checked_sub(1)?).ok()?;
        let delay = self.delays.get(index)?;
        Some(now + *delay)
    }
}

/// An address with all but the first letter of its local part hidden (`j***@example.org`),
/// as shown to someone who may not be its owner.
pub fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// The domain of an address (what logs may show of a recipient).
pub fn email_domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, domain)| domain)
}

/// Removes the recipient's address (and its local part) from a transport's error message, so
/// that logs show the recipient's domain at most.
pub fn scrub_error(message: &str, to: &Email) -> String {
    let address = to.as_str();
    let redacted = format!("…@{}", email_domain(address));
    let mut out = message.to_owned();
    // Servers may echo the address with its original case.
    for _ in 0..8 {
        let lower = out.to_lowercase();
        let Some(start) = lower.find(address) else {
            break;
        };
        let end = start + address.len();
        if lower.len() != out.len() || !out.is_char_boundary(start) || !out.is_char_boundary(end) {
            out = out.replace(address, &redacted);
            break;
        }
        out.replace_range(start..end, &redacted);
    }
    out.chars().filter(|c| !c.is_control()).take(500).collect()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn retries_follow_the_delays_then_give_up() {
        let policy = RetryPolicy::default();
        let now = datetime!(2026-11-27 10:00 UTC);
        assert_eq!(policy.max_attempts(), 7);
        assert_eq!(
            policy.next_attempt(1, now),
            Some(datetime!(2026-11-27 10:01 UTC))
        );
        assert_eq!(
            policy.next_attempt(2, now),
            Some(datetime!(2026-11-27 10:05 UTC))
        );
        assert_eq!(
            policy.next_attempt(6, now),
            Some(datetime!(2026-11-27 22:00 UTC))
        );
        assert_eq!(policy.next_attempt(7, now), None);
        assert_eq!(policy.next_attempt(0, now), None);
        let none = RetryPolicy { delays: vec![] };
        assert_eq!(none.max_attempts(), 1);
        assert_eq!(none.next_attempt(1, now), None);
    }

    #[test]
    fn debug_output_shows_neither_bodies_nor_the_full_address() {
        let mail = OutgoingMail {
            to: Email::parse("alice.martin@univ.example").unwrap(),
            subject: "Réinitialisation".to_owned(),
            text_body: "https://sso/reset?token=SECRET".to_owned(),
            html_body: Some("<a href=\"https://sso/reset?token=SECRET\">".to_owned()),
            kind: "password_reset".to_owned(),
            account_id: None,
        };
        let debug = format!("{mail:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
        assert!(!debug.contains("alice.martin"), "{debug}");
        assert!(debug.contains("univ.example"), "{debug}");
        let message = MailMessage::new(MailKind::Test, mail.to.clone(), Lang::Fr)
            .value("link", "https://sso/reset?token=SECRET");
        assert!(!format!("{message:?}").contains("SECRET"));
    }

    #[test]
    fn errors_lose_the_recipient_address() {
        let to = Email::parse("alice.martin@univ.example").unwrap();
        assert_eq!(
            scrub_error(
                "permanent error (550): <Alice.Martin@univ.example>: unknown user",
                &to
            ),
            "permanent error (550): <…@univ.example>: unknown user"
        );
        assert_eq!(scrub_error("line\r\nbreak", &to), "linebreak");
    }

    #[test]
    fn the_password_changed_notice_carries_login_time_and_address() {
        let to = Email::parse("alice@univ.example").unwrap();
        let login = LoginName::parse("alice.martin").unwrap();
        let id = AccountId::new_random();
        let m = MailMessage::password_changed(
            to,
            Lang::En,
            id,
            &login,
            datetime!(2026-11-27 10:00 UTC),
            Some("192.0.2.1"),
        );
        assert_eq!(m.kind, MailKind::PasswordChanged);
        assert_eq!(m.account_id, Some(id));
        assert_eq!(m.values["login"], "alice.martin");
        assert_eq!(m.values["changed_at"], "2026-11-27T10:00:00Z");
        assert_eq!(m.values["ip"], "192.0.2.1");
    }

    #[test]
    fn statuses_round_trip() {
        for s in [MailStatus::Pending, MailStatus::Sent, MailStatus::Failed] {
            assert_eq!(s.as_str().parse::<MailStatus>(), Ok(s));
        }
        assert!("lost".parse::<MailStatus>().is_err());
    }
}
