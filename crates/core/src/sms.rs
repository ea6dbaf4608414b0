//! Outgoing SMS: what a flow asks to send ([`SmsMessage`]) and the port it hands it to
//! ([`SmsSender`]). The gateways (HTTP provider, log, file outbox) live in `sesame-sms`.
//!
//! As with mail, a flow never waits for the gateway: [`SmsSender::queue`] returns once the
//! message is handed over, so the answer to a reset request is the same and as fast whether
//! or not the account exists and whether or not the gateway is up (security spec A48, F16).
//! SMS texts carry one-time codes: `Debug` leaves them out and nothing logs them.

use std::fmt;

use crate::ids::MobilePhone;

/// One SMS to send.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsMessage {
    /// The recipient.
    pub to: MobilePhone,
    /// The text (holds a one-time code: never logged).
    pub text: String,
}

impl fmt::Debug for SmsMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsMessage")
            .field("to", &mask_phone(self.to.as_str()))
            .finish_non_exhaustive()
    }
}

/// A number with all but its first three and last two digits hidden (`+33…78`), as logs
/// and pages show it.
pub fn mask_phone(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() <= 5 {
        return "…".to_owned();
    }
    let head: String = chars.iter().take(3).collect();
    let tail: String = chars.iter().skip(chars.len() - 2).collect();
    format!("{head}…{tail}")
}

/// Why an SMS could not be handed over.
#[derive(Debug, thiserror::Error)]
#[error("the SMS could not be queued: {0}")]
pub struct SmsQueueError(pub String);

/// Hands SMS to a gateway in the background.
pub trait SmsSender: Send + Sync + fmt::Debug {
    /// Queues `message` for sending; returns at once.
    ///
    /// # Errors
    /// [`SmsQueueError`] if it cannot even be queued (the sender is shut down).
    fn queue(&self, message: SmsMessage) -> Result<(), SmsQueueError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_masked_but_for_their_ends() {
        assert_eq!(mask_phone("+33612345678"), "+33…78");
        assert_eq!(mask_phone("0612"), "…");
    }

    #[test]
    fn debug_never_shows_the_text() {
        let m = SmsMessage {
            to: MobilePhone::parse("+33612345678").unwrap(),
            text: "code 123456".to_owned(),
        };
        let shown = format!("{m:?}");
        assert!(!shown.contains("123456"), "{shown}");
        assert!(!shown.contains("612345678"), "{shown}");
    }
}
