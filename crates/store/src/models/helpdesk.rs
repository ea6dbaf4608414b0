//! Rows of the helpdesk tables: `account_blocks`, `password_change_requirements`,
//! `account_disablements` and `assistance_requests`.

use std::str::FromStr;

use diesel::{Insertable, Queryable, Selectable};
use sesame_core::error::RepoError;
use sesame_core::helpdesk::{
    AssistanceClosure, AssistanceRequest, BlockReason, BlockRecord, RequesterKind,
};
use sesame_core::ids::AccountId;

use super::{from_unix, to_unix};
use crate::schema::{account_blocks, assistance_requests};

/// A row of `account_blocks`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = account_blocks)]
pub(crate) struct BlockRow {
    pub(crate) account_id: String,
    pub(crate) reason: String,
    pub(crate) note: Option<String>,
    pub(crate) blocked_by: String,
    pub(crate) blocked_at: i64,
}

impl BlockRow {
    /// The row recording `block` for `account_id`.
    pub(crate) fn new(account_id: AccountId, block: &BlockRecord) -> Self {
        Self {
            account_id: account_id.to_string(),
            reason: block.reason.as_str().to_owned(),
            note: block.note.clone(),
            blocked_by: block.blocked_by.clone(),
            blocked_at: to_unix(block.blocked_at),
        }
    }

    /// The record this row stores.
    pub(crate) fn into_record(self) -> Result<BlockRecord, RepoError> {
        Ok(BlockRecord {
            reason: BlockReason::from_str(&self.reason)
                .map_err(|e| RepoError::Corrupt(format!("account_blocks.reason: {e}")))?,
            note: self.note,
            blocked_by: self.blocked_by,
            blocked_at: from_unix("account_blocks.blocked_at", self.blocked_at)?,
        })
    }
}

/// A row of `assistance_requests`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = assistance_requests)]
pub(crate) struct AssistanceRow {
    pub(crate) reference: String,
    pub(crate) created_at: i64,
    pub(crate) institutional_email: String,
    pub(crate) personal_email: String,
    pub(crate) phone: String,
    pub(crate) identity_hint: String,
    pub(crate) description: String,
    pub(crate) lang: String,
    pub(crate) client_ip: Option<String>,
    pub(crate) account_id: Option<String>,
    pub(crate) closed_at: Option<i64>,
    pub(crate) closed_by: Option<String>,
    pub(crate) close_note: Option<String>,
    pub(crate) requester_kind: String,
    pub(crate) requester_name: String,
    pub(crate) requester_details: String,
}

impl AssistanceRow {
    /// The row storing `r`.
    pub(crate) fn new(r: &AssistanceRequest) -> Self {
        Self {
            reference: r.reference.clone(),
            created_at: to_unix(r.created_at),
            institutional_email: r.login_or_email.clone(),
            personal_email: r.personal_email.clone(),
            phone: r.phone.clone(),
            identity_hint: r.number.clone(),
            description: r.description.clone(),
            lang: r.lang.clone(),
            client_ip: r.client_ip.clone(),
            account_id: r.account_id.map(|id| id.to_string()),
            closed_at: r.closure.as_ref().map(|c| to_unix(c.closed_at)),
            closed_by: r.closure.as_ref().map(|c| c.closed_by.clone()),
            close_note: r.closure.as_ref().and_then(|c| c.note.clone()),
            requester_kind: r.kind.as_str().to_owned(),
            requester_name: r.name.clone(),
            // The fields that fit only some requesters, as one JSON object.
            requester_details: serde_json::json!({
                "school": r.school,
                "child_name": r.child_name,
            })
            .to_string(),
        }
    }

    /// The request this row stores.
    pub(crate) fn into_request(self) -> Result<AssistanceRequest, RepoError> {
        let account_id = self
            .account_id
            .as_deref()
            .map(AccountId::from_str)
            .transpose()
            .map_err(|e| RepoError::Corrupt(format!("assistance_requests.account_id: {e}")))?;
        let closure = match self.closed_at {
            Some(at) => Some(AssistanceClosure {
                closed_at: from_unix("assistance_requests.closed_at", at)?,
                closed_by: self.closed_by.unwrap_or_default(),
                note: self.close_note,
            }),
            None => None,
        };
        let kind = RequesterKind::from_str(&self.requester_kind)
            .map_err(|e| RepoError::Corrupt(format!("assistance_requests.requester_kind: {e}")))?;
        let details: serde_json::Value =
            serde_json::from_str(&self.requester_details).map_err(|e| {
                RepoError::Corrupt(format!("assistance_requests.requester_details: {e}"))
            })?;
        let detail = |name: &str| {
            details
                .get(name)
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Ok(AssistanceRequest {
            reference: self.reference,
            created_at: from_unix("assistance_requests.created_at", self.created_at)?,
            kind,
            name: self.requester_name,
            login_or_email: self.institutional_email,
            personal_email: self.personal_email,
            phone: self.phone,
            number: self.identity_hint,
            school: detail("school"),
            child_name: detail("child_name"),
            description: self.description,
            lang: self.lang,
            client_ip: self.client_ip,
            account_id,
            closure,
        })
    }
}
