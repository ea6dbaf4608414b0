//! [`MailQueue`] on the SQL database: `mail_queue`.
//!
//! Claiming is safe with several workers: on PostgreSQL the due rows are selected
//! `FOR UPDATE SKIP LOCKED` and leased in the same transaction, so concurrent workers take
//! disjoint rows without waiting for each other; on SQLite (one instance) an immediate
//! transaction serialises claims. A lease that ends (a worker died mid-send) makes the mail
//! claimable again.

use std::time::Duration;

use async_trait::async_trait;
use diesel::prelude::*;
use sesame_core::error::RepoError;
use sesame_core::mail::{MailCounts, MailId, MailStatus, OutgoingMail, QueuedMail};
use sesame_core::ports::MailQueue;
use time::OffsetDateTime;

use super::Database;
use crate::conn::DbConnection;
use crate::error::repo_error;
use crate::models::mail::MailRow;
use crate::models::{to_unix, to_unix_ceil};
use crate::schema::mail_queue;

/// Most mails one [`MailQueue::list_mails`] call returns, whatever the limit asked.
const MAX_LIST: i64 = 10_000;
/// Most mails one claim takes, whatever the limit asked.
const MAX_CLAIM: i64 = 1_000;
/// Longest error text stored.
const MAX_ERROR_CHARS: usize = 500;

/// The ids of the pending mails due at `$now` (unix seconds) and not leased, oldest due
/// first, at most `$limit`. A macro because the PostgreSQL variant adds a locking clause
/// that the SQLite connection type does not accept.
macro_rules! due_ids {
    ($now:expr, $limit:expr) => {
        mail_queue::table
            .select(mail_queue::id)
            .filter(mail_queue::sent_at.is_null())
            .filter(mail_queue::failed_at.is_null())
            .filter(mail_queue::next_attempt_at.le($now))
            .filter(
                mail_queue::lease_until
                    .is_null()
                    .or(mail_queue::lease_until.le($now)),
            )
            .order((mail_queue::next_attempt_at.asc(), mail_queue::id.asc()))
            .limit($limit)
    };
}

/// Leases the mails `$ids` until `$until` and counts one attempt each, then reads them back.
macro_rules! lease_and_load {
    ($conn:expr, $ids:expr, $until:expr) => {{
        diesel::update(mail_queue::table.filter(mail_queue::id.eq_any($ids)))
            .set((
                mail_queue::attempts.eq(mail_queue::attempts + 1),
                mail_queue::lease_until.eq(Some($until)),
            ))
            .execute($conn)?;
        mail_queue::table
            .filter(mail_queue::id.eq_any($ids))
            .order((mail_queue::next_attempt_at.asc(), mail_queue::id.asc()))
            .select(MailRow::as_select())
            .load::<MailRow>($conn)
    }};
}

/// Cuts an error message to what is stored.
fn stored_error(error: &str) -> String {
    error
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_ERROR_CHARS)
        .collect()
}

/// Mails of one multi-row insert (a row has about a dozen columns: well under both
/// databases' parameter limits).
const MAILS_PER_STATEMENT: usize = 500;

#[async_trait]
impl MailQueue for Database {
    async fn enqueue(&self, mail: OutgoingMail, now: OffsetDateTime) -> Result<MailId, RepoError> {
        let id = MailId::new();
        let row = MailRow::new(id, mail, now);
        self.run(move |conn| {
            diesel::insert_into(mail_queue::table)
                .values(&row)
                .execute(conn)
                .map(drop)
                .map_err(repo_error)
        })
        .await?;
        Ok(id)
    }

    async fn enqueue_many(
        &self,
        mails: Vec<OutgoingMail>,
        now: OffsetDateTime,
    ) -> Result<Vec<MailId>, RepoError> {
        let ids: Vec<MailId> = mails.iter().map(|_| MailId::new()).collect();
        let rows: Vec<MailRow> = ids
            .iter()
            .zip(mails)
            .map(|(id, mail)| MailRow::new(*id, mail, now))
            .collect();
        if rows.is_empty() {
            return Ok(ids);
        }
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                insert_rows!(conn, mail_queue::table, rows, MAILS_PER_STATEMENT)
            })
            .map_err(repo_error)
        })
        .await?;
        Ok(ids)
    }

    async fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<QueuedMail>, RepoError> {
        let limit = i64::try_from(limit)
            .unwrap_or(MAX_CLAIM)
            .clamp(0, MAX_CLAIM);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = to_unix_ceil(now + lease);
        let now = to_unix(now);
        let rows = self
            .run(move |conn| {
                let rows = match conn {
                    DbConnection::Postgresql(pg) => pg.transaction(|pg| {
                        let ids: Vec<String> =
                            due_ids!(now, limit).for_update().skip_locked().load(pg)?;
                        if ids.is_empty() {
                            return Ok(Vec::new());
                        }
                        lease_and_load!(pg, &ids, until)
                    }),
                    DbConnection::Sqlite(lite) => lite.immediate_transaction(|lite| {
                        let ids: Vec<String> = due_ids!(now, limit).load(lite)?;
                        if ids.is_empty() {
                            return Ok(Vec::new());
                        }
                        lease_and_load!(lite, &ids, until)
                    }),
                };
                rows.map_err(repo_error)
            })
            .await?;
        rows.into_iter().map(MailRow::into_queued).collect()
    }

    async fn mark_sent(&self, id: MailId, now: OffsetDateTime) -> Result<(), RepoError> {
        let id = id.to_string();
        let now = to_unix(now);
        self.run(move |conn| {
            diesel::update(
                mail_queue::table
                    .filter(mail_queue::id.eq(&id))
                    .filter(mail_queue::sent_at.is_null()),
            )
            .set((
                mail_queue::sent_at.eq(Some(now)),
                mail_queue::failed_at.eq(None::<i64>),
                mail_queue::lease_until.eq(None::<i64>),
                mail_queue::text_body.eq(""),
                mail_queue::html_body.eq(None::<String>),
            ))
            .execute(conn)
            .map(drop)
            .map_err(repo_error)
        })
        .await
    }

    async fn schedule_retry(
        &self,
        id: MailId,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), RepoError> {
        let id = id.to_string();
        let next = to_unix_ceil(next_attempt_at);
        let error = stored_error(error);
        self.run(move |conn| {
            diesel::update(
                mail_queue::table
                    .filter(mail_queue::id.eq(&id))
                    .filter(mail_queue::sent_at.is_null())
                    .filter(mail_queue::failed_at.is_null()),
            )
            .set((
                mail_queue::next_attempt_at.eq(next),
                mail_queue::lease_until.eq(None::<i64>),
                mail_queue::last_error.eq(Some(error)),
            ))
            .execute(conn)
            .map(drop)
            .map_err(repo_error)
        })
        .await
    }

    async fn mark_failed(
        &self,
        id: MailId,
        now: OffsetDateTime,
        error: &str,
    ) -> Result<(), RepoError> {
        let id = id.to_string();
        let now = to_unix(now);
        let error = stored_error(error);
        self.run(move |conn| {
            diesel::update(
                mail_queue::table
                    .filter(mail_queue::id.eq(&id))
                    .filter(mail_queue::sent_at.is_null()),
            )
            .set((
                mail_queue::failed_at.eq(Some(now)),
                mail_queue::lease_until.eq(None::<i64>),
                mail_queue::last_error.eq(Some(error)),
            ))
            .execute(conn)
            .map(drop)
            .map_err(repo_error)
        })
        .await
    }

    async fn requeue(&self, id: MailId, now: OffsetDateTime) -> Result<(), RepoError> {
        let id = id.to_string();
        let now = to_unix(now);
        let changed = self
            .run(move |conn| {
                diesel::update(
                    mail_queue::table
                        .filter(mail_queue::id.eq(&id))
                        .filter(mail_queue::sent_at.is_null())
                        .filter(mail_queue::failed_at.is_not_null()),
                )
                .set((
                    mail_queue::failed_at.eq(None::<i64>),
                    mail_queue::attempts.eq(0),
                    mail_queue::next_attempt_at.eq(now),
                    mail_queue::lease_until.eq(None::<i64>),
                ))
                .execute(conn)
                .map_err(repo_error)
            })
            .await?;
        if changed == 0 {
            return Err(RepoError::NotFound);
        }
        Ok(())
    }

    async fn find_mail(&self, id: MailId) -> Result<Option<QueuedMail>, RepoError> {
        let id = id.to_string();
        let row = self
            .run(move |conn| {
                mail_queue::table
                    .filter(mail_queue::id.eq(&id))
                    .select(MailRow::as_select())
                    .first::<MailRow>(conn)
                    .optional()
                    .map_err(repo_error)
            })
            .await?;
        row.map(MailRow::into_queued).transpose()
    }

    async fn list_mails(
        &self,
        status: Option<MailStatus>,
        limit: i64,
    ) -> Result<Vec<QueuedMail>, RepoError> {
        let limit = limit.clamp(0, MAX_LIST);
        let rows = self
            .run(move |conn| {
                let mut query = mail_queue::table
                    .select(MailRow::as_select())
                    .order((mail_queue::created_at.desc(), mail_queue::id.desc()))
                    .limit(limit)
                    .into_boxed();
                query = match status {
                    None => query,
                    Some(MailStatus::Sent) => query.filter(mail_queue::sent_at.is_not_null()),
                    Some(MailStatus::Failed) => query
                        .filter(mail_queue::sent_at.is_null())
                        .filter(mail_queue::failed_at.is_not_null()),
                    Some(MailStatus::Pending) => query
                        .filter(mail_queue::sent_at.is_null())
                        .filter(mail_queue::failed_at.is_null()),
                };
                query.load::<MailRow>(conn).map_err(repo_error)
            })
            .await?;
        rows.into_iter().map(MailRow::into_queued).collect()
    }

    async fn oldest_pending(&self) -> Result<Option<OffsetDateTime>, RepoError> {
        let oldest: Option<i64> = self
            .run(|conn| {
                mail_queue::table
                    .filter(mail_queue::sent_at.is_null())
                    .filter(mail_queue::failed_at.is_null())
                    .select(diesel::dsl::min(mail_queue::created_at))
                    .first::<Option<i64>>(conn)
                    .map_err(repo_error)
            })
            .await?;
        oldest
            .map(|secs| crate::models::from_unix("mail_queue.created_at", secs))
            .transpose()
    }

    async fn mail_counts(&self) -> Result<MailCounts, RepoError> {
        self.run(|conn| {
            let count = |n: i64| u64::try_from(n).unwrap_or_default();
            let sent: i64 = mail_queue::table
                .filter(mail_queue::sent_at.is_not_null())
                .count()
                .get_result(conn)
                .map_err(repo_error)?;
            let failed: i64 = mail_queue::table
                .filter(mail_queue::sent_at.is_null())
                .filter(mail_queue::failed_at.is_not_null())
                .count()
                .get_result(conn)
                .map_err(repo_error)?;
            let pending: i64 = mail_queue::table
                .filter(mail_queue::sent_at.is_null())
                .filter(mail_queue::failed_at.is_null())
                .count()
                .get_result(conn)
                .map_err(repo_error)?;
            Ok(MailCounts {
                pending: count(pending),
                sent: count(sent),
                failed: count(failed),
            })
        })
        .await
    }
}
