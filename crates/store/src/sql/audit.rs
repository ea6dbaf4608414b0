//! [`AuditLog`] on the SQL database: `audit_events`.

use async_trait::async_trait;
use diesel::prelude::*;
use sesame_core::audit::AuditEvent;
use sesame_core::error::RepoError;
use sesame_core::ports::AuditLog;

use super::Database;
use crate::error::repo_error;
use crate::models::audit::AuditRow;
use crate::schema::audit_events;

/// Rows of one multi-row insert: 8 parameters each, well under both databases' limits
/// (SQLite 32,766, PostgreSQL 65,535).
const AUDIT_ROWS_PER_STATEMENT: usize = 1000;

/// Most events one [`AuditLog::recent`] call returns, whatever the limit asked.
const MAX_RECENT: i64 = 10_000;

#[async_trait]
impl AuditLog for Database {
    async fn record(&self, event: AuditEvent) -> Result<(), RepoError> {
        let row = AuditRow::new(event)?;
        self.run(move |conn| {
            diesel::insert_into(audit_events::table)
                .values(&row)
                .execute(conn)
                .map(drop)
                .map_err(repo_error)
        })
        .await
    }

    async fn record_many(&self, events: Vec<AuditEvent>) -> Result<(), RepoError> {
        let rows = events
            .into_iter()
            .map(AuditRow::new)
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            return Ok(());
        }
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                insert_rows!(conn, audit_events::table, rows, AUDIT_ROWS_PER_STATEMENT)
            })
            .map_err(repo_error)
        })
        .await
    }

    /// The most recent events, newest first (events of the same second in the order they were
    /// recorded, newest first), optionally for one login; `limit` is clamped to 0..=10 000.
    async fn recent(&self, login: Option<&str>, limit: i64) -> Result<Vec<AuditEvent>, RepoError> {
        let login = login.map(str::to_owned);
        let limit = limit.clamp(0, MAX_RECENT);
        self.run(move |conn| {
            let mut query = audit_events::table
                .select(AuditRow::as_select())
                .order((audit_events::at.desc(), audit_events::id.desc()))
                .limit(limit)
                .into_boxed();
            if let Some(login) = login {
                query = query.filter(audit_events::login.eq(login));
            }
            query
                .load::<AuditRow>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(AuditRow::into_event)
                .collect()
        })
        .await
    }
}
