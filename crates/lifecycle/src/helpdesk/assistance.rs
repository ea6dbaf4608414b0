//! The assistance form (seed 004: "Déposer une demande d'assistance"): a person who cannot
//! log in, typically because their account is blocked, asks the helpdesk for help without
//! logging in. The request is stored with a reference, mailed to the helpdesk, and
//! acknowledged to the personal address given.
//!
//! The form works without an account, so it must not tell anything about accounts: every
//! well-formed request gets the same answer, whether the institutional address exists, is
//! blocked or not. It is limited per client address, and acknowledgements per recipient, so
//! it cannot be used to flood the helpdesk or someone's mailbox.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::clock::Clock;
use sesame_core::error::RepoError;
use sesame_core::helpdesk::{AssistanceClosure, AssistanceRequest, RequestFilter};
use sesame_core::i18n::Lang;
use sesame_core::ids::{Email, MobilePhone};
use sesame_core::mail::{MailKind, MailMessage};
use sesame_core::ports::{AccountRepo, AuditLog, EphemeralStore, HelpdeskRepo, Mailer};
use sesame_core::random;

use super::{checked_note, HelpdeskError};

/// Longest description kept.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
/// Longest student number or birth date.
pub const MAX_IDENTITY_HINT_CHARS: usize = 64;
/// Longest phone number as typed.
pub const MAX_PHONE_CHARS: usize = 32;

/// What the form sent, as typed.
#[derive(Debug, Clone, Default)]
pub struct AssistanceForm {
    /// The institutional address (the blocked one).
    pub institutional_email: String,
    /// Another, personal address to answer to.
    pub personal_email: String,
    /// A phone number.
    pub phone: String,
    /// Student number (INE) or birth date.
    pub identity_hint: String,
    /// The problem.
    pub description: String,
}

/// A field of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `institutional_email`
    InstitutionalEmail,
    /// `personal_email`
    PersonalEmail,
    /// `phone`
    Phone,
    /// `identity_hint`
    IdentityHint,
    /// `description`
    Description,
}

impl Field {
    /// The form field's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::InstitutionalEmail => "institutional_email",
            Self::PersonalEmail => "personal_email",
            Self::Phone => "phone",
            Self::IdentityHint => "identity_hint",
            Self::Description => "description",
        }
    }
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Left empty.
    Missing,
    /// Longer than allowed.
    TooLong,
    /// Not an address / a phone number, or holds control characters.
    Invalid,
    /// The personal address is the institutional one (the point is to reach the person
    /// elsewhere).
    SameAddress,
}

/// A well-formed request, ready to store.
#[derive(Debug, Clone)]
pub struct CheckedForm {
    institutional_email: Email,
    personal_email: Email,
    phone: MobilePhone,
    identity_hint: String,
    description: String,
}

/// Checks every field; returns each problem found (the form shows them all at once).
///
/// # Errors
/// The list of `(field, problem)`.
pub fn check(form: &AssistanceForm) -> Result<CheckedForm, Vec<(Field, Problem)>> {
    let mut problems = Vec::new();
    let mut email = |field: Field, raw: &str| {
        let raw = raw.trim();
        if raw.is_empty() {
            problems.push((field, Problem::Missing));
            None
        } else {
            match Email::parse(raw) {
                Ok(e) => Some(e),
                Err(_) => {
                    problems.push((field, Problem::Invalid));
                    None
                }
            }
        }
    };
    let institutional = email(Field::InstitutionalEmail, &form.institutional_email);
    let personal = email(Field::PersonalEmail, &form.personal_email);
    if let (Some(a), Some(b)) = (&institutional, &personal) {
        if a == b {
            problems.push((Field::PersonalEmail, Problem::SameAddress));
        }
    }
    let phone = match form.phone.trim() {
        "" => {
            problems.push((Field::Phone, Problem::Missing));
            None
        }
        p if p.chars().count() > MAX_PHONE_CHARS => {
            problems.push((Field::Phone, Problem::TooLong));
            None
        }
        p => match MobilePhone::parse(p) {
            Ok(p) => Some(p),
            Err(_) => {
                problems.push((Field::Phone, Problem::Invalid));
                None
            }
        },
    };
    let text = |problems: &mut Vec<(Field, Problem)>,
                field: Field,
                raw: &str,
                max: usize,
                multiline: bool| {
        let value = raw.trim();
        if value.is_empty() {
            problems.push((field, Problem::Missing));
        } else if value.chars().count() > max {
            problems.push((field, Problem::TooLong));
        } else if value
            .chars()
            .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
        {
            problems.push((field, Problem::Invalid));
        }
        value.to_owned()
    };
    let identity_hint = text(
        &mut problems,
        Field::IdentityHint,
        &form.identity_hint,
        MAX_IDENTITY_HINT_CHARS,
        false,
    );
    let description = text(
        &mut problems,
        Field::Description,
        &form.description,
        MAX_DESCRIPTION_CHARS,
        true,
    );
    match (institutional, personal, phone) {
        (Some(institutional_email), Some(personal_email), Some(phone)) if problems.is_empty() => {
            Ok(CheckedForm {
                institutional_email,
                personal_email,
                phone,
                identity_hint,
                description,
            })
        }
        _ => Err(problems),
    }
}

/// Limits that keep the form from being used to flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssistanceLimits {
    /// Requests accepted per client address per hour.
    pub per_ip_per_hour: u32,
    /// Acknowledgements sent to one personal address per day (the request is stored and
    /// mailed to the helpdesk either way).
    pub acks_per_address_per_day: u32,
}

/// Why a request was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Too many requests from this client address.
    #[error("too many assistance requests from this address")]
    TooMany,
    /// Storage failed.
    #[error(transparent)]
    Helpdesk(#[from] HelpdeskError),
}

/// Wiring for [`AssistanceDesk::new`].
#[derive(Debug, Clone)]
pub struct AssistanceDeskParts {
    /// The helpdesk's records.
    pub repo: Arc<dyn HelpdeskRepo>,
    /// Accounts (to link a request to the account of its institutional address).
    pub accounts: Arc<dyn AccountRepo>,
    /// Audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Counters for the limits.
    pub store: Arc<dyn EphemeralStore>,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Where requests are mailed; `None`: stored only (the CLI lists them).
    pub helpdesk_address: Option<Email>,
    /// Language of the mails to the helpdesk.
    pub helpdesk_lang: Lang,
    /// Flood limits.
    pub limits: AssistanceLimits,
}

/// Takes, lists and closes assistance requests.
#[derive(Debug, Clone)]
pub struct AssistanceDesk {
    parts: AssistanceDeskParts,
}

/// A short reference people can read out on the phone: `AS-` and 8 characters without the
/// look-alikes 0/O and 1/I.
fn new_reference() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let chars: String = random::alphanumeric(64)
        .bytes()
        .map(|b| b.to_ascii_uppercase())
        .filter(|b| ALPHABET.contains(b))
        .take(8)
        .map(char::from)
        .collect();
    format!("AS-{chars}")
}

impl AssistanceDesk {
    /// The desk over these parts.
    pub fn new(parts: AssistanceDeskParts) -> Self {
        Self { parts }
    }

    /// Takes a checked request: counts it against the client address's limit, stores it,
    /// mails it to the helpdesk, acknowledges it to the personal address (within that
    /// address's budget), and records `assistance.requested`. The caller answers the same
    /// whatever the institutional address is.
    ///
    /// # Errors
    /// [`SubmitError::TooMany`] over the per-address limit; storage errors. A mail that
    /// cannot be queued is logged, not returned: the request is stored.
    pub async fn submit(
        &self,
        form: CheckedForm,
        lang: Lang,
        client_ip: Option<IpAddr>,
    ) -> Result<AssistanceRequest, SubmitError> {
        let p = &self.parts;
        let now = p.clock.now();
        if let Some(ip) = client_ip {
            let r = p
                .store
                .reserve_attempt(
                    &format!("assistance-ip:{ip}"),
                    now,
                    Duration::from_secs(3600),
                )
                .await
                .map_err(HelpdeskError::from)?;
            if r.attempt > p.limits.per_ip_per_hour {
                return Err(SubmitError::TooMany);
            }
        }
        let account = p
            .accounts
            .find_credential(form.institutional_email.as_str())
            .await
            .map_err(HelpdeskError::from)?
            .map(|c| c.account)
            .filter(|a| a.email.as_ref() == Some(&form.institutional_email));
        let mut request = AssistanceRequest {
            reference: new_reference(),
            created_at: now,
            institutional_email: form.institutional_email.to_string(),
            personal_email: form.personal_email.to_string(),
            phone: form.phone.to_string(),
            identity_hint: form.identity_hint,
            description: form.description,
            lang: lang.tag().to_owned(),
            client_ip: client_ip.map(|i| i.to_string()),
            account_id: account.as_ref().map(|a| a.id),
            closure: None,
        };
        // A reference is 40 bits of randomness: a collision is rare, and retried.
        let mut tries = 0;
        loop {
            match p.repo.insert_assistance_request(&request).await {
                Ok(()) => break,
                Err(RepoError::Conflict(_)) if tries < 3 => {
                    tries += 1;
                    request.reference = new_reference();
                }
                Err(e) => return Err(HelpdeskError::from(e).into()),
            }
        }
        let mut event = AuditEvent::new(AuditKind::AssistanceRequested, now, "self")
            .ip(client_ip)
            .detail(serde_json::json!({ "reference": request.reference }));
        if let Some(a) = &account {
            event = event.login(a.login.as_str()).account(a.id);
        }
        p.audit.record(event).await.map_err(HelpdeskError::from)?;
        if let Some(to) = &p.helpdesk_address {
            let mut message =
                MailMessage::new(MailKind::AssistanceRequest, to.clone(), p.helpdesk_lang)
                    .value("reference", request.reference.as_str())
                    .time("created_at", now)
                    .value("institutional_email", request.institutional_email.as_str())
                    .value("personal_email", request.personal_email.as_str())
                    .value("phone", request.phone.as_str())
                    .value("identity_hint", request.identity_hint.as_str())
                    .value("description", request.description.as_str())
                    .value("ip", request.client_ip.clone().unwrap_or_default());
            if let Some(a) = &account {
                message = message
                    .account(a.id)
                    .value("login", a.login.as_str())
                    .value("state", a.state.as_str());
            }
            if let Err(e) = p.mailer.send(message).await {
                tracing::error!(error = %e, "could not queue an assistance request for the helpdesk");
            }
        }
        self.acknowledge(&request, &form.personal_email, lang).await;
        Ok(request)
    }

    /// Acknowledges to the personal address, unless it already got its day's budget (the
    /// form is public: anyone can type anyone's address).
    async fn acknowledge(&self, request: &AssistanceRequest, to: &Email, lang: Lang) {
        let p = &self.parts;
        let key = format!("assistance-ack:{}", random::sha256_hex(to.as_str()));
        match p
            .store
            .reserve_attempt(&key, request.created_at, Duration::from_secs(86_400))
            .await
        {
            Ok(r) if r.attempt <= p.limits.acks_per_address_per_day => {}
            Ok(_) => {
                tracing::info!(
                    "assistance acknowledgement skipped: the address's daily budget is spent"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "assistance acknowledgement skipped: store unavailable");
                return;
            }
        }
        let message = MailMessage::new(MailKind::AssistanceReceived, to.clone(), lang)
            .value("reference", request.reference.as_str())
            .time("created_at", request.created_at);
        if let Err(e) = p.mailer.send(message).await {
            tracing::error!(error = %e, "could not queue an assistance acknowledgement");
        }
    }

    /// The requests, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        filter: RequestFilter,
        limit: i64,
    ) -> Result<Vec<AssistanceRequest>, HelpdeskError> {
        Ok(self
            .parts
            .repo
            .list_assistance_requests(filter, limit)
            .await?)
    }

    /// One request.
    ///
    /// # Errors
    /// [`HelpdeskError::NoSuchRequest`]; storage errors.
    pub async fn show(&self, reference: &str) -> Result<AssistanceRequest, HelpdeskError> {
        let reference = normalize_reference(reference);
        self.parts
            .repo
            .find_assistance_request(&reference)
            .await?
            .ok_or(HelpdeskError::NoSuchRequest(reference))
    }

    /// Closes a request with an optional note; `false` if it was already closed.
    ///
    /// # Errors
    /// [`HelpdeskError::NoSuchRequest`], [`HelpdeskError::BadNote`]; storage errors.
    pub async fn close(
        &self,
        reference: &str,
        note: Option<&str>,
        actor: &str,
    ) -> Result<bool, HelpdeskError> {
        let reference = normalize_reference(reference);
        let note = checked_note(note)?;
        let now = self.parts.clock.now();
        let closure = AssistanceClosure {
            closed_at: now,
            closed_by: actor.to_owned(),
            note,
        };
        let closed = match self
            .parts
            .repo
            .close_assistance_request(&reference, &closure)
            .await
        {
            Ok(closed) => closed,
            Err(RepoError::NotFound) => return Err(HelpdeskError::NoSuchRequest(reference)),
            Err(e) => return Err(e.into()),
        };
        if closed {
            self.parts
                .audit
                .record(
                    AuditEvent::new(AuditKind::AssistanceClosed, now, actor)
                        .detail(serde_json::json!({ "reference": reference })),
                )
                .await?;
            self.notify_closed(&reference, now).await;
        }
        Ok(closed)
    }

    /// Tells the sender that their request is closed, at the personal address they asked to
    /// be answered at (where the acknowledgement went), in the language of the form. The
    /// mail names the reference only: neither the account nor the agent's note. A failure is
    /// logged, not returned: the request is closed either way.
    async fn notify_closed(&self, reference: &str, closed_at: time::OffsetDateTime) {
        let request = match self.parts.repo.find_assistance_request(reference).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not read a closed request for its notice");
                return;
            }
        };
        let Ok(to) = Email::parse(&request.personal_email) else {
            return;
        };
        let lang = Lang::from_tag(&request.lang).unwrap_or_default();
        let mut message = MailMessage::new(MailKind::AssistanceClosed, to, lang)
            .value("reference", request.reference.as_str())
            .time("created_at", request.created_at)
            .time("closed_at", closed_at);
        if let Some(id) = request.account_id {
            message = message.account(id);
        }
        if let Err(e) = self.parts.mailer.send(message).await {
            tracing::error!(error = %e, "could not queue the notice of a closed request");
        }
    }
}

/// A reference as typed by an operator: trimmed, upper case.
fn normalize_reference(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> AssistanceForm {
        AssistanceForm {
            institutional_email: "jean.dupont@univ.example.org".to_owned(),
            personal_email: "jean@gmail.example".to_owned(),
            phone: "06 12 34 56 78".to_owned(),
            identity_hint: "12/03/1990".to_owned(),
            description: "Mon compte est bloqué.\nMerci.".to_owned(),
        }
    }

    #[test]
    fn a_complete_form_passes() {
        assert!(check(&good()).is_ok());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let form = AssistanceForm {
            institutional_email: "not an address".to_owned(),
            personal_email: String::new(),
            phone: "call me".to_owned(),
            identity_hint: "x".repeat(MAX_IDENTITY_HINT_CHARS + 1),
            description: "bell\u{7}".to_owned(),
        };
        let problems = check(&form).unwrap_err();
        assert_eq!(
            problems,
            vec![
                (Field::InstitutionalEmail, Problem::Invalid),
                (Field::PersonalEmail, Problem::Missing),
                (Field::Phone, Problem::Invalid),
                (Field::IdentityHint, Problem::TooLong),
                (Field::Description, Problem::Invalid),
            ]
        );
    }

    #[test]
    fn the_personal_address_must_be_another_one() {
        let mut form = good();
        form.personal_email = form.institutional_email.to_uppercase();
        assert_eq!(
            check(&form).unwrap_err(),
            vec![(Field::PersonalEmail, Problem::SameAddress)]
        );
    }

    #[test]
    fn references_are_readable_and_distinct() {
        let a = new_reference();
        let b = new_reference();
        assert_ne!(a, b);
        assert_eq!(a.len(), 11);
        assert!(a.starts_with("AS-"));
        assert!(a[3..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert!(!a[3..].contains(['0', 'O', '1', 'I']));
    }
}
