//! Rows of `audit_events`.

use std::str::FromStr;

use diesel::{Insertable, Queryable, Selectable};
use sesame_core::audit::AuditEvent;
use sesame_core::error::RepoError;
use sesame_core::ids::AccountId;
use uuid::Uuid;

use super::{from_unix, to_unix};
use crate::schema::audit_events;

/// A row of `audit_events`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub(crate) struct AuditRow {
    pub(crate) id: String,
    pub(crate) at: i64,
    pub(crate) kind: String,
    pub(crate) login: Option<String>,
    pub(crate) account_id: Option<String>,
    pub(crate) ip: Option<String>,
    pub(crate) actor: String,
    pub(crate) detail: String,
}

impl AuditRow {
    /// The row for a new event. Its id is a UUIDv7, so events of the same second still sort
    /// in the order they were recorded (by this process).
    pub(crate) fn new(event: AuditEvent) -> Result<Self, RepoError> {
        Ok(Self {
            id: Uuid::now_v7().to_string(),
            at: to_unix(event.at),
            kind: event.kind,
            login: event.login,
            account_id: event.account_id.map(|id| id.to_string()),
            ip: event.ip,
            actor: event.actor,
            detail: serde_json::to_string(&event.detail)
                .map_err(|e| RepoError::Corrupt(format!("audit detail: {e}")))?,
        })
    }

    /// The event this row stores.
    ///
    /// # Errors
    /// [`RepoError::Corrupt`] if a column does not parse.
    pub(crate) fn into_event(self) -> Result<AuditEvent, RepoError> {
        Ok(AuditEvent {
            at: from_unix("audit_events.at", self.at)?,
            kind: self.kind,
            login: self.login,
            account_id: self
                .account_id
                .as_deref()
                .map(AccountId::from_str)
                .transpose()
                .map_err(|e| RepoError::Corrupt(format!("audit_events.account_id: {e}")))?,
            ip: self.ip,
            actor: self.actor,
            detail: serde_json::from_str(&self.detail)
                .map_err(|e| RepoError::Corrupt(format!("audit_events.detail: {e}")))?,
        })
    }
}
