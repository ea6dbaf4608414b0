//! From a queued mail to an RFC 5322 message: the headers every transport writes.

use std::time::{Duration, SystemTime};

use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::Message;
use sesame_core::mail::QueuedMail;

use crate::error::{MailSetupError, TransportError};

/// The sender of every mail (`mail.from`), e.g. `Université Exemple <no-reply@univ.example>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender(Mailbox);

impl Sender {
    /// Parses `Name <address>` or a bare address.
    ///
    /// # Errors
    /// [`MailSetupError::From`] if it is not a mailbox.
    pub fn parse(raw: &str) -> Result<Self, MailSetupError> {
        raw.trim()
            .parse::<Mailbox>()
            .map(Self)
            .map_err(|e| MailSetupError::From(format!("{raw:?} is not a mail address: {e}")))
    }

    /// The domain of the address (right part of every `Message-ID`).
    pub fn domain(&self) -> &str {
        self.0.email.domain()
    }

    pub(crate) fn mailbox(&self) -> &Mailbox {
        &self.0
    }
}

/// `Auto-Submitted: auto-generated` (RFC 3834): out-of-office robots do not answer.
#[derive(Debug, Clone, Copy)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// The message for `mail`: `From`, `To`, `Subject`, `Date` (when it was queued, so every
/// attempt writes the same message), `Message-ID` (`<id@sender domain>`, the same on every
/// attempt, so a receiving server can drop a duplicate), `Auto-Submitted`, and a text body
/// with an HTML alternative when there is one.
///
/// # Errors
/// [`TransportError::Permanent`] if the recipient cannot be written as an address.
pub fn build_message(mail: &QueuedMail, from: &Sender) -> Result<Message, TransportError> {
    let to: Mailbox = mail
        .mail
        .to
        .as_str()
        .parse()
        .map_err(|e| TransportError::Permanent(format!("recipient is not an address: {e}")))?;
    let date = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(mail.created_at.unix_timestamp()).unwrap_or(0));
    let builder = Message::builder()
        .from(from.mailbox().clone())
        .to(to)
        .subject(mail.mail.subject.as_str())
        .date(date)
        .message_id(Some(format!("<{}@{}>", mail.id, from.domain())))
        .header(AutoSubmitted);
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(mail.mail.text_body.clone());
    let built = match &mail.mail.html_body {
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
        ),
        None => builder.singlepart(text),
    };
    built.map_err(|e| TransportError::Permanent(format!("cannot build the message: {e}")))
}

#[cfg(test)]
mod tests {
    use sesame_core::ids::Email;
    use sesame_core::mail::{MailId, OutgoingMail};
    use time::macros::datetime;

    use super::*;

    #[test]
    fn senders_parse_with_or_without_a_name() {
        let s = Sender::parse("Université Exemple <no-reply@univ.example>").unwrap();
        assert_eq!(s.domain(), "univ.example");
        assert_eq!(
            Sender::parse("sesame@localhost").unwrap().domain(),
            "localhost"
        );
        assert!(Sender::parse("not an address").is_err());
    }

    #[test]
    fn a_message_has_stable_headers_and_both_bodies() {
        let id = MailId::new();
        let mail = QueuedMail {
            id,
            mail: OutgoingMail {
                to: Email::parse("alice@univ.example").unwrap(),
                subject: "Mot de passe modifié".to_owned(),
                text_body: "Bonjour,\n".to_owned(),
                html_body: Some("<p>Bonjour,</p>".to_owned()),
                kind: "password_changed".to_owned(),
                account_id: None,
            },
            created_at: datetime!(2026-11-27 13:05 UTC),
            attempts: 1,
            next_attempt_at: datetime!(2026-11-27 13:05 UTC),
            sent_at: None,
            failed_at: None,
            last_error: None,
        };
        let from = Sender::parse("Sesame <sesame@univ.example>").unwrap();
        let raw = build_message(&mail, &from).unwrap().formatted();
        let again = build_message(&mail, &from).unwrap().formatted();
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.contains(&format!("Message-ID: <{id}@univ.example>")),
            "{text}"
        );
        assert!(
            text.contains("Date: Fri, 27 Nov 2026 13:05:00 +0000"),
            "{text}"
        );
        assert!(text.contains("Auto-Submitted: auto-generated"));
        assert!(text.contains("multipart/alternative"));
        // Only the MIME boundary differs from one attempt to the next.
        let headers = |raw: &[u8]| {
            String::from_utf8_lossy(raw)
                .lines()
                .take_while(|l| !l.is_empty())
                .filter(|l| !l.contains("boundary"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(headers(&raw), headers(&again));
    }
}
