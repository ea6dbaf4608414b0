//! [`SigningKeyRepo`] and [`ConsentRepo`] on the SQL database: `signing_keys` and
//! `oauth_consents`.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sesame_core::error::RepoError;
use sesame_core::ids::AccountId;
use sesame_core::ports::{Consent, ConsentRepo, SigningKeyRecord, SigningKeyRepo};
use time::OffsetDateTime;

use super::Database;
use crate::conn::DbConnection;
use crate::error::repo_error;
use crate::models::oidc::{ConsentRow, SigningKeyRow};
use crate::models::{to_unix, to_unix_ceil};
use crate::schema::{oauth_consents, signing_keys};

#[async_trait]
impl SigningKeyRepo for Database {
    /// Inserts a key. Times are stored in whole seconds, rounded down, except `publish_until`,
    /// rounded up (never unpublished early).
    ///
    /// # Errors
    /// [`RepoError::Conflict`]`("kid")` if the `kid` exists.
    async fn insert_signing_key(&self, key: SigningKeyRecord) -> Result<(), RepoError> {
        let row = SigningKeyRow::new(key);
        self.run(move |conn| {
            match diesel::insert_into(signing_keys::table)
                .values(&row)
                .execute(conn)
            {
                Ok(_) => Ok(()),
                // The only unique key is the primary key; name it the same on both backends.
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                    Err(RepoError::Conflict("kid".to_owned()))
                }
                Err(e) => Err(repo_error(e)),
            }
        })
        .await
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, RepoError> {
        self.run(|conn| {
            signing_keys::table
                .select(SigningKeyRow::as_select())
                .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
                .load::<SigningKeyRow>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(SigningKeyRow::into_record)
                .collect()
        })
        .await
    }

    /// Retires the other keys of `alg` in one statement; `publish_until` is rounded up to a
    /// whole second (never unpublished early), `retired_at` down.
    async fn retire_signing_keys(
        &self,
        alg: &str,
        except_kid: &str,
        retired_at: OffsetDateTime,
        publish_until: OffsetDateTime,
    ) -> Result<usize, RepoError> {
        let alg = alg.to_owned();
        let except_kid = except_kid.to_owned();
        let retired_at = to_unix(retired_at);
        let publish_until = to_unix_ceil(publish_until);
        self.run(move |conn| {
            diesel::update(
                signing_keys::table
                    .filter(signing_keys::alg.eq(&alg))
                    .filter(signing_keys::kid.ne(&except_kid))
                    .filter(signing_keys::retired_at.is_null()),
            )
            .set((
                signing_keys::retired_at.eq(retired_at),
                signing_keys::publish_until.eq(publish_until),
            ))
            .execute(conn)
            .map_err(repo_error)
        })
        .await
    }

    async fn purge_unpublished_signing_keys(
        &self,
        now: OffsetDateTime,
    ) -> Result<usize, RepoError> {
        let now = to_unix(now);
        self.run(move |conn| {
            diesel::delete(signing_keys::table.filter(signing_keys::publish_until.le(now)))
                .execute(conn)
                .map_err(repo_error)
        })
        .await
    }
}

#[async_trait]
impl ConsentRepo for Database {
    async fn find_consent(
        &self,
        account_id: AccountId,
        client_id: &str,
    ) -> Result<Option<Consent>, RepoError> {
        let account_id = account_id.to_string();
        let client_id = client_id.to_owned();
        self.run(move |conn| {
            oauth_consents::table
                .find((&account_id, &client_id))
                .select(ConsentRow::as_select())
                .first::<ConsentRow>(conn)
                .optional()
                .map_err(repo_error)?
                .map(ConsentRow::into_consent)
                .transpose()
        })
        .await
    }

    /// Records a consent (scopes sorted and deduplicated, `granted_at` in whole seconds),
    /// replacing any earlier one for the same account and client.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] if the account does not exist; [`RepoError::Corrupt`] if a
    /// scope is empty or contains whitespace (it could not be stored faithfully).
    async fn save_consent(&self, consent: Consent) -> Result<(), RepoError> {
        let row = ConsentRow::new(consent)?;
        self.run(move |conn| {
            upsert_consent(conn, &row).map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                    RepoError::NotFound
                }
                other => repo_error(other),
            })
        })
        .await
    }

    async fn consents_of(&self, account_id: AccountId) -> Result<Vec<Consent>, RepoError> {
        let account_id = account_id.to_string();
        self.run(move |conn| {
            oauth_consents::table
                .filter(oauth_consents::account_id.eq(&account_id))
                .select(ConsentRow::as_select())
                .order(oauth_consents::client_id.asc())
                .load::<ConsentRow>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(ConsentRow::into_consent)
                .collect()
        })
        .await
    }

    async fn revoke_consent(
        &self,
        account_id: AccountId,
        client_id: &str,
    ) -> Result<bool, RepoError> {
        let account_id = account_id.to_string();
        let client_id = client_id.to_owned();
        self.run(move |conn| {
            diesel::delete(oauth_consents::table.find((&account_id, &client_id)))
                .execute(conn)
                .map(|deleted| deleted > 0)
                .map_err(repo_error)
        })
        .await
    }
}

/// Stores a consent: update, else insert; if a concurrent writer inserted first, update again
/// (the multi-backend connection has no `ON CONFLICT`, see `accounts.rs`).
fn upsert_consent(conn: &mut DbConnection, row: &ConsentRow) -> QueryResult<()> {
    let update = |conn: &mut DbConnection| {
        diesel::update(oauth_consents::table.find((&row.account_id, &row.client_id)))
            .set((
                oauth_consents::scopes.eq(&row.scopes),
                oauth_consents::granted_at.eq(row.granted_at),
            ))
            .execute(conn)
    };
    if update(conn)? > 0 {
        return Ok(());
    }
    match diesel::insert_into(oauth_consents::table)
        .values(row)
        .execute(conn)
    {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            update(conn).map(drop)
        }
        other => other.map(drop),
    }
}
