//! [`RememberedBrowserRepo`] on the SQL database: `remembered_browsers` (issue 15). Tokens
//! arrive as SHA-256: nothing here can rebuild a cookie.

use std::str::FromStr;

use async_trait::async_trait;
use diesel::prelude::*;
use sesame_core::error::RepoError;
use sesame_core::ids::AccountId;
use sesame_mfa::remembered::{RememberedBrowser, RememberedBrowserRepo};
use time::OffsetDateTime;

use super::Database;
use crate::error::repo_error;
use crate::models::{from_unix, to_unix};
use crate::schema::remembered_browsers;

type Row = (String, String, String, String, i64, i64, Option<i64>);

fn into_browser(
    (id, account_id, token_hash, label, created_at, expires_at, last_used_at): Row,
) -> Result<RememberedBrowser, RepoError> {
    Ok(RememberedBrowser {
        id,
        account_id: AccountId::from_str(&account_id)
            .map_err(|e| RepoError::Corrupt(format!("remembered_browsers.account_id: {e}")))?,
        token_hash,
        label,
        created_at: from_unix("remembered_browsers.created_at", created_at)?,
        expires_at: from_unix("remembered_browsers.expires_at", expires_at)?,
        last_used_at: last_used_at
            .map(|secs| from_unix("remembered_browsers.last_used_at", secs))
            .transpose()?,
    })
}

const COLUMNS: (
    remembered_browsers::id,
    remembered_browsers::account_id,
    remembered_browsers::token_hash,
    remembered_browsers::label,
    remembered_browsers::created_at,
    remembered_browsers::expires_at,
    remembered_browsers::last_used_at,
) = (
    remembered_browsers::id,
    remembered_browsers::account_id,
    remembered_browsers::token_hash,
    remembered_browsers::label,
    remembered_browsers::created_at,
    remembered_browsers::expires_at,
    remembered_browsers::last_used_at,
);

#[async_trait]
impl RememberedBrowserRepo for Database {
    async fn remember_browser(&self, b: &RememberedBrowser) -> Result<(), RepoError> {
        let b = b.clone();
        self.run(move |conn| {
            diesel::insert_into(remembered_browsers::table)
                .values((
                    remembered_browsers::id.eq(&b.id),
                    remembered_browsers::account_id.eq(b.account_id.to_string()),
                    remembered_browsers::token_hash.eq(&b.token_hash),
                    remembered_browsers::label.eq(&b.label),
                    remembered_browsers::created_at.eq(to_unix(b.created_at)),
                    remembered_browsers::expires_at.eq(to_unix(b.expires_at)),
                    remembered_browsers::last_used_at.eq(b.last_used_at.map(to_unix)),
                ))
                .execute(conn)
                .map(drop)
                .map_err(repo_error)
        })
        .await
    }

    async fn remembered_browser(
        &self,
        token_hash: &str,
    ) -> Result<Option<RememberedBrowser>, RepoError> {
        let hash = token_hash.to_owned();
        self.run(move |conn| {
            remembered_browsers::table
                .filter(remembered_browsers::token_hash.eq(&hash))
                .select(COLUMNS)
                .first::<Row>(conn)
                .optional()
                .map_err(repo_error)?
                .map(into_browser)
                .transpose()
        })
        .await
    }

    async fn remembered_browsers(
        &self,
        account: AccountId,
    ) -> Result<Vec<RememberedBrowser>, RepoError> {
        let account = account.to_string();
        self.run(move |conn| {
            remembered_browsers::table
                .filter(remembered_browsers::account_id.eq(&account))
                .order((
                    remembered_browsers::created_at.desc(),
                    remembered_browsers::id.asc(),
                ))
                .select(COLUMNS)
                .load::<Row>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(into_browser)
                .collect()
        })
        .await
    }

    async fn touch_remembered_browser(
        &self,
        id: &str,
        at: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let id = id.to_owned();
        let at = to_unix(at);
        self.run(move |conn| {
            diesel::update(remembered_browsers::table.find(&id))
                .set(remembered_browsers::last_used_at.eq(Some(at)))
                .execute(conn)
                .map(drop)
                .map_err(repo_error)
        })
        .await
    }

    async fn forget_browser(&self, account: AccountId, id: &str) -> Result<bool, RepoError> {
        let account = account.to_string();
        let id = id.to_owned();
        self.run(move |conn| {
            diesel::delete(
                remembered_browsers::table
                    .filter(remembered_browsers::account_id.eq(&account))
                    .filter(remembered_browsers::id.eq(&id)),
            )
            .execute(conn)
            .map(|n| n > 0)
            .map_err(repo_error)
        })
        .await
    }

    async fn forget_browsers(&self, account: AccountId) -> Result<usize, RepoError> {
        let account = account.to_string();
        self.run(move |conn| {
            diesel::delete(
                remembered_browsers::table.filter(remembered_browsers::account_id.eq(&account)),
            )
            .execute(conn)
            .map_err(repo_error)
        })
        .await
    }
}
