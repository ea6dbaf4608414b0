//! The assistance form (seed 004: "Déposer une demande d'assistance"; seed 002: the help form
//! for parents): a person who cannot log in, typically because their account is blocked or
//! they cannot activate it, asks the helpdesk for help without logging in. Every kind of
//! person can (staff, students, pupils, parents), each asked the identity fields that fit
//! them ([`fields_for`]) and a personal address or a phone to be answered at. The request is stored with a reference, mailed to the helpdesk, and
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
use sesame_core::helpdesk::{AssistanceClosure, AssistanceRequest, RequestFilter, RequesterKind};
use sesame_core::i18n::Lang;
use sesame_core::ids::{Email, LoginName, MobilePhone};
use sesame_core::mail::{MailKind, MailMessage};
use sesame_core::ports::{AccountRepo, AuditLog, EphemeralStore, HelpdeskRepo, Mailer};
use sesame_core::random;

use super::{checked_note, HelpdeskError};

/// Longest description kept.
pub const MAX_DESCRIPTION_CHARS: usize = 4000;
/// Longest staff or student number.
pub const MAX_NUMBER_CHARS: usize = 64;
/// Longest phone number as typed.
pub const MAX_PHONE_CHARS: usize = 32;
/// Longest name, child's name, school and class.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest login or address.
pub const MAX_ACCOUNT_CHARS: usize = 254;

/// What the form sent, as typed.
#[derive(Debug, Clone, Default)]
pub struct AssistanceForm {
    /// Who the person says they are.
    pub kind: RequesterKind,
    /// Their name.
    pub name: String,
    /// Their login or institutional address (the blocked one, say).
    pub account: String,
    /// Staff or student number.
    pub number: String,
    /// A pupil's school and class, a parent's child's.
    pub school: String,
    /// A parent's child's name.
    pub child_name: String,
    /// Another, personal address to answer to.
    pub personal_email: String,
    /// A phone number.
    pub phone: String,
    /// The problem.
    pub description: String,
}

/// A field of the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `name`
    Name,
    /// `account`: login or institutional address.
    Account,
    /// `number`: staff or student number.
    Number,
    /// `child_name`
    ChildName,
    /// `school`: school and class.
    School,
    /// `personal_email`
    PersonalEmail,
    /// `phone`
    Phone,
    /// `description`
    Description,
}

impl Field {
    /// The form field's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Account => "account",
            Self::Number => "number",
            Self::ChildName => "child_name",
            Self::School => "school",
            Self::PersonalEmail => "personal_email",
            Self::Phone => "phone",
            Self::Description => "description",
        }
    }

    /// Longest value, in characters.
    pub fn max_chars(self) -> usize {
        match self {
            Self::Name | Self::ChildName | Self::School => MAX_NAME_CHARS,
            Self::Account | Self::PersonalEmail => MAX_ACCOUNT_CHARS,
            Self::Number => MAX_NUMBER_CHARS,
            Self::Phone => MAX_PHONE_CHARS,
            Self::Description => MAX_DESCRIPTION_CHARS,
        }
    }
}

/// Whether the form asks a field of a kind of person, and whether it must be filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Must be filled.
    Required,
    /// Asked, may be left empty.
    Optional,
    /// At least one of the personal address and the phone must be filled.
    OneContact,
}

/// The fields the form asks `kind`, in order: the identity fields that fit them (a parent has
/// no institutional address but a child at a school; a student has a student number), then a
/// way to be reached and the problem.
pub fn fields_for(kind: RequesterKind) -> Vec<(Field, Need)> {
    use Need::{OneContact, Optional, Required};
    let mut fields = vec![(Field::Name, Required)];
    fields.extend(match kind {
        RequesterKind::Staff => vec![(Field::Account, Required), (Field::Number, Optional)],
        RequesterKind::Student => vec![(Field::Account, Required), (Field::Number, Required)],
        RequesterKind::Pupil => vec![(Field::Account, Optional), (Field::School, Required)],
        RequesterKind::Parent => vec![
            (Field::ChildName, Required),
            (Field::School, Required),
            (Field::Account, Optional),
        ],
    });
    fields.extend([
        (Field::PersonalEmail, OneContact),
        (Field::Phone, OneContact),
        (Field::Description, Required),
    ]);
    fields
}

/// What is wrong with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// Left empty.
    Missing,
    /// Longer than allowed.
    TooLong,
    /// Not an address / a phone number / a login, or holds control characters.
    Invalid,
    /// The personal address is the institutional one (the point is to reach the person
    /// elsewhere).
    SameAddress,
    /// Neither a personal address nor a phone: nobody could answer.
    NoContact,
}

/// A well-formed request, ready to store.
#[derive(Debug, Clone)]
pub struct CheckedForm {
    kind: RequesterKind,
    name: String,
    account: String,
    number: String,
    school: String,
    child_name: String,
    personal_email: Option<Email>,
    phone: Option<MobilePhone>,
    description: String,
}

/// Checks every field the form asks the form's kind of person (the others are ignored);
/// returns each problem found (the form shows them all at once).
///
/// # Errors
/// The list of `(field, problem)`.
pub fn check(form: &AssistanceForm) -> Result<CheckedForm, Vec<(Field, Problem)>> {
    let mut problems = Vec::new();
    let fields = fields_for(form.kind);
    let need = |field: Field| fields.iter().find(|(f, _)| *f == field).map(|(_, n)| *n);
    let raw = |field: Field| -> &str {
        match field {
            Field::Name => &form.name,
            Field::Account => &form.account,
            Field::Number => &form.number,
            Field::ChildName => &form.child_name,
            Field::School => &form.school,
            Field::PersonalEmail => &form.personal_email,
            Field::Phone => &form.phone,
            Field::Description => &form.description,
        }
    };
    // Each asked field, trimmed and bounded; empty when not asked.
    let mut value = |field: Field| -> String {
        let Some(need) = need(field) else {
            return String::new();
        };
        let v = raw(field).trim();
        let multiline = field == Field::Description;
        if v.is_empty() {
            if need == Need::Required {
                problems.push((field, Problem::Missing));
            }
        } else if v.chars().count() > field.max_chars() {
            problems.push((field, Problem::TooLong));
        } else if v
            .chars()
            .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
        {
            problems.push((field, Problem::Invalid));
        }
        v.to_owned()
    };
    let name = value(Field::Name);
    let account = value(Field::Account);
    let number = value(Field::Number);
    let child_name = value(Field::ChildName);
    let school = value(Field::School);
    let personal_raw = value(Field::PersonalEmail);
    let phone_raw = value(Field::Phone);
    let description = value(Field::Description);
    let bad =
        |problems: &[(Field, Problem)], field: Field| problems.iter().any(|(f, _)| *f == field);
    // A login, or an institutional address.
    let account = if account.is_empty() || bad(&problems, Field::Account) {
        account
    } else if account.contains('@') {
        match Email::parse(&account) {
            Ok(e) => e.as_str().to_owned(),
            Err(_) => {
                problems.push((Field::Account, Problem::Invalid));
                account
            }
        }
    } else {
        match LoginName::parse(&account) {
            Ok(l) => l.as_str().to_owned(),
            Err(_) => {
                problems.push((Field::Account, Problem::Invalid));
                account
            }
        }
    };
    let personal_email = if personal_raw.is_empty() || bad(&problems, Field::PersonalEmail) {
        None
    } else {
        match Email::parse(&personal_raw) {
            Ok(e) if e.as_str() == account => {
                problems.push((Field::PersonalEmail, Problem::SameAddress));
                None
            }
            Ok(e) => Some(e),
            Err(_) => {
                problems.push((Field::PersonalEmail, Problem::Invalid));
                None
            }
        }
    };
    let phone = if phone_raw.is_empty() || bad(&problems, Field::Phone) {
        None
    } else {
        match MobilePhone::parse(&phone_raw) {
            Ok(p) => Some(p),
            Err(_) => {
                problems.push((Field::Phone, Problem::Invalid));
                None
            }
        }
    };
    if personal_raw.is_empty() && phone_raw.is_empty() {
        problems.push((Field::PersonalEmail, Problem::NoContact));
    }
    if !problems.is_empty() {
        // In the order of the form.
        problems.sort_by_key(|(f, _)| fields.iter().position(|(g, _)| g == f));
        return Err(problems);
    }
    Ok(CheckedForm {
        kind: form.kind,
        name,
        account,
        number,
        school,
        child_name,
        personal_email,
        phone,
        description,
    })
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
        // The account of the login or address given, if any (a parent's own, not the
        // child's): for the helpdesk only.
        let account = if form.account.is_empty() {
            None
        } else {
            p.accounts
                .find_credential(&form.account)
                .await
                .map_err(HelpdeskError::from)?
                .map(|c| c.account)
        };
        let mut request = AssistanceRequest {
            reference: new_reference(),
            created_at: now,
            kind: form.kind,
            name: form.name,
            login_or_email: form.account,
            personal_email: form
                .personal_email
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            phone: form
                .phone
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            number: form.number,
            school: form.school,
            child_name: form.child_name,
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
                    .value("requester", request.kind.as_str())
                    .value("name", request.name.as_str())
                    .value("login_or_email", request.login_or_email.as_str())
                    .value("personal_email", request.personal_email.as_str())
                    .value("phone", request.phone.as_str())
                    .value("number", request.number.as_str())
                    .value("school", request.school.as_str())
                    .value("child_name", request.child_name.as_str())
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
        if let Some(to) = &form.personal_email {
            self.acknowledge(&request, to, lang).await;
        }
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
            kind: RequesterKind::Staff,
            name: "Jean Dupont".to_owned(),
            account: "jean.dupont@univ.example.org".to_owned(),
            personal_email: "jean@gmail.example".to_owned(),
            phone: "06 12 34 56 78".to_owned(),
            description: "Mon compte est bloqué.\nMerci.".to_owned(),
            ..AssistanceForm::default()
        }
    }

    #[test]
    fn a_complete_form_passes() {
        assert!(check(&good()).is_ok());
    }

    #[test]
    fn every_problem_is_reported_at_once_in_the_order_of_the_form() {
        let form = AssistanceForm {
            kind: RequesterKind::Student,
            name: String::new(),
            account: "not an address@".to_owned(),
            number: "x".repeat(MAX_NUMBER_CHARS + 1),
            personal_email: "nope".to_owned(),
            phone: "call me".to_owned(),
            description: "bell\u{7}".to_owned(),
            ..AssistanceForm::default()
        };
        let problems = check(&form).unwrap_err();
        assert_eq!(
            problems,
            vec![
                (Field::Name, Problem::Missing),
                (Field::Account, Problem::Invalid),
                (Field::Number, Problem::TooLong),
                (Field::PersonalEmail, Problem::Invalid),
                (Field::Phone, Problem::Invalid),
                (Field::Description, Problem::Invalid),
            ]
        );
    }

    #[test]
    fn the_personal_address_must_be_another_one() {
        let mut form = good();
        form.personal_email = form.account.to_uppercase();
        assert_eq!(
            check(&form).unwrap_err(),
            vec![(Field::PersonalEmail, Problem::SameAddress)]
        );
    }

    #[test]
    fn a_parent_without_any_institutional_address_gives_the_child_and_one_way_to_answer() {
        let parent = AssistanceForm {
            kind: RequesterKind::Parent,
            name: "Nadia Benali".to_owned(),
            child_name: "Yanis Benali".to_owned(),
            school: "Collège Jean Moulin, 6e B".to_owned(),
            phone: "06 12 34 56 78".to_owned(),
            description: "Je n'arrive pas à activer mon compte.".to_owned(),
            // Not asked of a parent: ignored.
            number: "whatever".to_owned(),
            ..AssistanceForm::default()
        };
        assert!(check(&parent).is_ok());
        let nothing = AssistanceForm {
            phone: String::new(),
            child_name: String::new(),
            ..parent
        };
        assert_eq!(
            check(&nothing).unwrap_err(),
            vec![
                (Field::ChildName, Problem::Missing),
                (Field::PersonalEmail, Problem::NoContact),
            ]
        );
    }

    #[test]
    fn a_login_is_as_good_as_an_address() {
        let form = AssistanceForm {
            account: "Jean.Dupont".to_owned(),
            ..good()
        };
        assert!(check(&form).is_ok());
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
