//! [`KnownDeviceRepo`] on the SQL database: `known_devices` (security spec decision 1,
//! ADR 0012). A device is named by the SHA-256 of its cookie's token, never by the token.

use std::str::FromStr;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sesame_core::error::RepoError;
use sesame_core::ids::AccountId;
use sesame_core::ports::{KnownDevice, KnownDeviceRepo};
use time::OffsetDateTime;

use super::Database;
use crate::conn::DbConnection;
use crate::error::repo_error;
use crate::models::{from_unix, to_unix, to_unix_ceil};
use crate::schema::known_devices;

/// Rows a device token can be known for, at most, as read at login: a browser shared by a
/// whole computer room stays bounded (the accounts past it count it as an unknown device).
const MAX_ACCOUNTS_PER_DEVICE: i64 = 256;

type DeviceRow = (String, i64, i64, Option<i64>);

fn into_device(
    (account_id, first_seen, last_seen, locked_until): DeviceRow,
) -> Result<KnownDevice, RepoError> {
    Ok(KnownDevice {
        account_id: AccountId::from_str(&account_id)
            .map_err(|e| RepoError::Corrupt(format!("known_devices.account_id: {e}")))?,
        first_seen: from_unix("known_devices.first_seen", first_seen)?,
        last_seen: from_unix("known_devices.last_seen", last_seen)?,
        locked_until: locked_until
            .map(|secs| from_unix("known_devices.locked_until", secs))
            .transpose()?,
    })
}

#[async_trait]
impl KnownDeviceRepo for Database {
    async fn devices_by_token(&self, token_hash: &str) -> Result<Vec<KnownDevice>, RepoError> {
        let hash = token_hash.to_owned();
        self.run(move |conn| {
            known_devices::table
                .filter(known_devices::token_hash.eq(&hash))
                .order(known_devices::last_seen.desc())
                .limit(MAX_ACCOUNTS_PER_DEVICE)
                .select((
                    known_devices::account_id,
                    known_devices::first_seen,
                    known_devices::last_seen,
                    known_devices::locked_until,
                ))
                .load::<DeviceRow>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(into_device)
                .collect()
        })
        .await
    }

    async fn remember_device(
        &self,
        token_hash: &str,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let hash = token_hash.to_owned();
        let account = account_id.to_string();
        let now = to_unix(now);
        self.run(move |conn| upsert_device(conn, &hash, &account, now).map_err(repo_error))
            .await
    }

    async fn set_device_lock(
        &self,
        token_hash: &str,
        account_id: AccountId,
        until: Option<OffsetDateTime>,
    ) -> Result<(), RepoError> {
        let hash = token_hash.to_owned();
        let account = account_id.to_string();
        let until = until.map(to_unix_ceil);
        self.run(move |conn| {
            diesel::update(known_devices::table.find((&hash, &account)))
                .set(known_devices::locked_until.eq(until))
                .execute(conn)
                .map(drop)
                .map_err(repo_error)
        })
        .await
    }

    async fn clear_device_locks(&self, account_id: AccountId) -> Result<Vec<String>, RepoError> {
        let account = account_id.to_string();
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                diesel::update(
                    known_devices::table
                        .filter(known_devices::account_id.eq(&account))
                        .filter(known_devices::locked_until.is_not_null()),
                )
                .set(known_devices::locked_until.eq(None::<i64>))
                .execute(conn)?;
                known_devices::table
                    .filter(known_devices::account_id.eq(&account))
                    .select(known_devices::token_hash)
                    .load::<String>(conn)
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn purge_devices(&self, unseen_since: OffsetDateTime) -> Result<usize, RepoError> {
        let before = to_unix(unseen_since);
        self.run(move |conn| {
            diesel::delete(known_devices::table.filter(known_devices::last_seen.lt(before)))
                .execute(conn)
                .map_err(repo_error)
        })
        .await
    }
}

/// Records a login of a device: `last_seen` moved on, else a new row; if a concurrent login
/// inserted first, update again.
fn upsert_device(conn: &mut DbConnection, hash: &str, account: &str, now: i64) -> QueryResult<()> {
    let touch = |conn: &mut DbConnection| {
        diesel::update(known_devices::table.find((hash, account)))
            .set(known_devices::last_seen.eq(now))
            .execute(conn)
    };
    if touch(conn)? > 0 {
        return Ok(());
    }
    match diesel::insert_into(known_devices::table)
        .values((
            known_devices::token_hash.eq(hash),
            known_devices::account_id.eq(account),
            known_devices::first_seen.eq(now),
            known_devices::last_seen.eq(now),
            known_devices::locked_until.eq(None::<i64>),
        ))
        .execute(conn)
    {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            touch(conn).map(drop)
        }
        other => other.map(drop),
    }
}
