//! Rows of `mail_queue`.

use std::str::FromStr;

use diesel::{Insertable, Queryable, Selectable};
use sesame_core::error::RepoError;
use sesame_core::ids::{AccountId, Email};
use sesame_core::mail::{MailId, OutgoingMail, QueuedMail};
use time::OffsetDateTime;

use super::{from_unix, to_unix};
use crate::schema::mail_queue;

/// A row of `mail_queue`. Its bodies may hold one-time links: never printed (no `Debug`).
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mail_queue)]
pub(crate) struct MailRow {
    pub(crate) id: String,
    pub(crate) created_at: i64,
    pub(crate) kind: String,
    pub(crate) account_id: Option<String>,
    pub(crate) recipient: String,
    pub(crate) subject: String,
    pub(crate) text_body: String,
    pub(crate) html_body: Option<String>,
    pub(crate) attempts: i32,
    pub(crate) next_attempt_at: i64,
    pub(crate) lease_until: Option<i64>,
    pub(crate) sent_at: Option<i64>,
    pub(crate) failed_at: Option<i64>,
    pub(crate) last_error: Option<String>,
}

impl MailRow {
    /// The row for a newly queued mail, due at `now`.
    pub(crate) fn new(id: MailId, mail: OutgoingMail, now: OffsetDateTime) -> Self {
        Self {
            id: id.to_string(),
            created_at: to_unix(now),
            kind: mail.kind,
            account_id: mail.account_id.map(|a| a.to_string()),
            recipient: mail.to.as_str().to_owned(),
            subject: mail.subject,
            text_body: mail.text_body,
            html_body: mail.html_body,
            attempts: 0,
            next_attempt_at: to_unix(now),
            lease_until: None,
            sent_at: None,
            failed_at: None,
            last_error: None,
        }
    }

    /// The queued mail this row stores.
    ///
    /// # Errors
    /// [`RepoError::Corrupt`] if a column does not parse.
    pub(crate) fn into_queued(self) -> Result<QueuedMail, RepoError> {
        let corrupt = |column: &str, e: &dyn std::fmt::Display| {
            RepoError::Corrupt(format!("mail_queue.{column}: {e}"))
        };
        Ok(QueuedMail {
            id: MailId::from_str(&self.id).map_err(|e| corrupt("id", &e))?,
            mail: OutgoingMail {
                to: Email::parse(&self.recipient).map_err(|e| corrupt("recipient", &e))?,
                subject: self.subject,
                text_body: self.text_body,
                html_body: self.html_body,
                kind: self.kind,
                account_id: self
                    .account_id
                    .as_deref()
                    .map(AccountId::from_str)
                    .transpose()
                    .map_err(|e| corrupt("account_id", &e))?,
            },
            created_at: from_unix("mail_queue.created_at", self.created_at)?,
            attempts: u32::try_from(self.attempts).map_err(|e| corrupt("attempts", &e))?,
            next_attempt_at: from_unix("mail_queue.next_attempt_at", self.next_attempt_at)?,
            sent_at: self
                .sent_at
                .map(|t| from_unix("mail_queue.sent_at", t))
                .transpose()?,
            failed_at: self
                .failed_at
                .map(|t| from_unix("mail_queue.failed_at", t))
                .transpose()?,
            last_error: self.last_error,
        })
    }
}
