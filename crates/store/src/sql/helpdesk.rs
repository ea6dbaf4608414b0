//! [`HelpdeskRepo`] on the SQL database: `account_blocks`, `password_change_requirements`,
//! `account_disablements`, `assistance_requests`, and the deletion of accounts past retention.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use sesame_core::account::AccountState;
use sesame_core::error::RepoError;
use sesame_core::helpdesk::{
    AssistanceClosure, AssistanceRequest, BlockRecord, DisabledAccount, RequestFilter,
};
use sesame_core::ids::AccountId;
use sesame_core::ports::HelpdeskRepo;
use time::OffsetDateTime;

use super::Database;
use crate::conn::DbConnection;
use crate::error::repo_error;
use crate::models::account::AccountRow;
use crate::models::helpdesk::{AssistanceRow, BlockRow};
use crate::models::{from_unix, to_unix};
use crate::schema::{
    account_blocks, account_disablements, accounts, assistance_requests, login_locks,
    password_change_requirements,
};

/// Most requests one list returns, whatever the limit asked.
const MAX_LIST: i64 = 10_000;

/// Fails with [`DieselError::NotFound`] unless account `id` exists (inside a transaction).
fn account_exists(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    let found = accounts::table
        .find(id)
        .select(accounts::id)
        .first::<String>(conn)
        .optional()?;
    found.map(drop).ok_or(DieselError::NotFound)
}

/// Keeps `account_disablements` in step with a state change of account `id` (called by
/// [`AccountRepo::set_state`](sesame_core::ports::AccountRepo::set_state) inside its
/// transaction): entering the disabled state records when, staying in it keeps the first
/// time, leaving it forgets.
pub(crate) fn track_disablement(
    conn: &mut DbConnection,
    id: &str,
    state: AccountState,
    now: i64,
) -> QueryResult<()> {
    if state == AccountState::Disabled {
        let already = account_disablements::table
            .find(id)
            .select(account_disablements::disabled_at)
            .first::<i64>(conn)
            .optional()?;
        if already.is_none() {
            diesel::insert_into(account_disablements::table)
                .values((
                    account_disablements::account_id.eq(id),
                    account_disablements::disabled_at.eq(now),
                ))
                .execute(conn)?;
        }
    } else {
        diesel::delete(account_disablements::table.find(id)).execute(conn)?;
    }
    Ok(())
}

#[async_trait]
impl HelpdeskRepo for Database {
    async fn save_block(
        &self,
        account_id: AccountId,
        block: &BlockRecord,
    ) -> Result<(), RepoError> {
        let row = BlockRow::new(account_id, block);
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                account_exists(conn, &row.account_id)?;
                diesel::delete(account_blocks::table.find(&row.account_id)).execute(conn)?;
                diesel::insert_into(account_blocks::table)
                    .values(&row)
                    .execute(conn)
                    .map(drop)
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn find_block(&self, account_id: AccountId) -> Result<Option<BlockRecord>, RepoError> {
        let id = account_id.to_string();
        self.run(move |conn| {
            account_blocks::table
                .find(&id)
                .select(BlockRow::as_select())
                .first(conn)
                .optional()
                .map_err(repo_error)?
                .map(BlockRow::into_record)
                .transpose()
        })
        .await
    }

    async fn clear_block(&self, account_id: AccountId) -> Result<(), RepoError> {
        let id = account_id.to_string();
        self.run(move |conn| {
            diesel::delete(account_blocks::table.find(&id))
                .execute(conn)
                .map(drop)
                .map_err(repo_error)
        })
        .await
    }

    async fn require_password_change(
        &self,
        account_id: AccountId,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let id = account_id.to_string();
        let by = by.to_owned();
        let now = to_unix(now);
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                account_exists(conn, &id)?;
                let already = password_change_requirements::table
                    .find(&id)
                    .select(password_change_requirements::required_since)
                    .first::<i64>(conn)
                    .optional()?;
                if already.is_none() {
                    diesel::insert_into(password_change_requirements::table)
                        .values((
                            password_change_requirements::account_id.eq(&id),
                            password_change_requirements::required_since.eq(now),
                            password_change_requirements::required_by.eq(&by),
                        ))
                        .execute(conn)?;
                }
                Ok(())
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn password_change_required(
        &self,
        account_id: AccountId,
    ) -> Result<Option<OffsetDateTime>, RepoError> {
        let id = account_id.to_string();
        self.run(move |conn| {
            password_change_requirements::table
                .find(&id)
                .select(password_change_requirements::required_since)
                .first::<i64>(conn)
                .optional()
                .map_err(repo_error)?
                .map(|secs| from_unix("password_change_requirements.required_since", secs))
                .transpose()
        })
        .await
    }

    async fn clear_password_change(&self, account_id: AccountId) -> Result<bool, RepoError> {
        let id = account_id.to_string();
        self.run(move |conn| {
            diesel::delete(password_change_requirements::table.find(&id))
                .execute(conn)
                .map(|n| n > 0)
                .map_err(repo_error)
        })
        .await
    }

    async fn insert_assistance_request(
        &self,
        request: &AssistanceRequest,
    ) -> Result<(), RepoError> {
        let row = AssistanceRow::new(request);
        self.run(move |conn| {
            diesel::insert_into(assistance_requests::table)
                .values(&row)
                .execute(conn)
                .map(drop)
                .map_err(|e| match repo_error(e) {
                    RepoError::Conflict(_) => RepoError::Conflict("reference".to_owned()),
                    other => other,
                })
        })
        .await
    }

    async fn find_assistance_request(
        &self,
        reference: &str,
    ) -> Result<Option<AssistanceRequest>, RepoError> {
        let reference = reference.to_owned();
        self.run(move |conn| {
            assistance_requests::table
                .find(&reference)
                .select(AssistanceRow::as_select())
                .first(conn)
                .optional()
                .map_err(repo_error)?
                .map(AssistanceRow::into_request)
                .transpose()
        })
        .await
    }

    async fn list_assistance_requests(
        &self,
        filter: RequestFilter,
        limit: i64,
    ) -> Result<Vec<AssistanceRequest>, RepoError> {
        let limit = limit.clamp(0, MAX_LIST);
        self.run(move |conn| {
            let mut query = assistance_requests::table
                .select(AssistanceRow::as_select())
                .order((
                    assistance_requests::created_at.desc(),
                    assistance_requests::reference.desc(),
                ))
                .limit(limit)
                .into_boxed();
            match filter {
                RequestFilter::Open => {
                    query = query.filter(assistance_requests::closed_at.is_null());
                }
                RequestFilter::Closed => {
                    query = query.filter(assistance_requests::closed_at.is_not_null());
                }
                RequestFilter::All => {}
            }
            query
                .load::<AssistanceRow>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(AssistanceRow::into_request)
                .collect()
        })
        .await
    }

    async fn close_assistance_request(
        &self,
        reference: &str,
        closure: &AssistanceClosure,
    ) -> Result<bool, RepoError> {
        let reference = reference.to_owned();
        let closure = closure.clone();
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                let exists = assistance_requests::table
                    .find(&reference)
                    .select(assistance_requests::reference)
                    .first::<String>(conn)
                    .optional()?;
                if exists.is_none() {
                    return Err(DieselError::NotFound);
                }
                // Only an open request is closed: a second close keeps the first one's note.
                let changed = diesel::update(
                    assistance_requests::table
                        .find(&reference)
                        .filter(assistance_requests::closed_at.is_null()),
                )
                .set((
                    assistance_requests::closed_at.eq(to_unix(closure.closed_at)),
                    assistance_requests::closed_by.eq(&closure.closed_by),
                    assistance_requests::close_note.eq(&closure.note),
                ))
                .execute(conn)?;
                Ok(changed > 0)
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn disabled_before(
        &self,
        cutoff: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<DisabledAccount>, RepoError> {
        let cutoff = to_unix(cutoff);
        let limit = limit.clamp(0, MAX_LIST);
        self.run(move |conn| {
            accounts::table
                .inner_join(account_disablements::table)
                .filter(accounts::state.eq(AccountState::Disabled.as_str()))
                .filter(account_disablements::disabled_at.le(cutoff))
                .order((account_disablements::disabled_at.asc(), accounts::id.asc()))
                .limit(limit)
                .select((AccountRow::as_select(), account_disablements::disabled_at))
                .load::<(AccountRow, i64)>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(|(row, at)| {
                    Ok(DisabledAccount {
                        account: row.into_account()?,
                        disabled_at: from_unix("account_disablements.disabled_at", at)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn delete_disabled_account(
        &self,
        account_id: AccountId,
        cutoff: OffsetDateTime,
    ) -> Result<bool, RepoError> {
        let id = account_id.to_string();
        let cutoff = to_unix(cutoff);
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                // Checked again inside the transaction: an account re-enabled (say by an
                // import) since it was listed is not deleted.
                let still = accounts::table
                    .inner_join(account_disablements::table)
                    .filter(accounts::id.eq(&id))
                    .filter(accounts::state.eq(AccountState::Disabled.as_str()))
                    .filter(account_disablements::disabled_at.le(cutoff))
                    .select(accounts::login)
                    .first::<String>(conn)
                    .optional()?;
                let Some(login) = still else {
                    return Ok(false);
                };
                // Credentials, profile, consents and helpdesk records go with the account
                // (ON DELETE CASCADE); queued mail and assistance requests keep their rows
                // without it (ON DELETE SET NULL); audit events have no foreign key.
                diesel::delete(accounts::table.find(&id)).execute(conn)?;
                diesel::delete(
                    login_locks::table
                        .filter(login_locks::login_key.eq(sesame_core::lockout::login_key(&login))),
                )
                .execute(conn)?;
                Ok(true)
            })
            .map_err(repo_error)
        })
        .await
    }
}
