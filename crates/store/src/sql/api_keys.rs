//! [`ApiKeyRepo`] on the SQL database: `api_keys`.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sesame_core::api_keys::ApiKeyRecord;
use sesame_core::error::RepoError;
use sesame_core::ports::ApiKeyRepo;
use time::OffsetDateTime;

use super::Database;
use crate::error::repo_error;
use crate::models::api_key::ApiKeyRow;
use crate::models::to_unix;
use crate::schema::api_keys;

#[async_trait]
impl ApiKeyRepo for Database {
    async fn insert_api_key(&self, key: ApiKeyRecord) -> Result<(), RepoError> {
        let row = ApiKeyRow::new(key);
        self.run(move |conn| {
            match diesel::insert_into(api_keys::table)
                .values(&row)
                .execute(conn)
            {
                Ok(_) => Ok(()),
                // The only unique key is the primary key; name it the same on both backends.
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                    Err(RepoError::Conflict("id".to_owned()))
                }
                Err(e) => Err(repo_error(e)),
            }
        })
        .await
    }

    async fn find_api_key(&self, id: &str) -> Result<Option<ApiKeyRecord>, RepoError> {
        let id = id.to_owned();
        self.run(move |conn| {
            api_keys::table
                .find(&id)
                .select(ApiKeyRow::as_select())
                .first::<ApiKeyRow>(conn)
                .optional()
                .map_err(repo_error)?
                .map(ApiKeyRow::into_record)
                .transpose()
        })
        .await
    }

    async fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, RepoError> {
        self.run(|conn| {
            api_keys::table
                .select(ApiKeyRow::as_select())
                .order((api_keys::created_at.desc(), api_keys::id.desc()))
                .load::<ApiKeyRow>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(ApiKeyRow::into_record)
                .collect()
        })
        .await
    }

    async fn revoke_api_key(&self, id: &str, now: OffsetDateTime) -> Result<(), RepoError> {
        let id = id.to_owned();
        let now = to_unix(now);
        self.run(move |conn| {
            let revoked = diesel::update(
                api_keys::table
                    .find(&id)
                    .filter(api_keys::revoked_at.is_null()),
            )
            .set(api_keys::revoked_at.eq(now))
            .execute(conn)
            .map_err(repo_error)?;
            if revoked > 0 {
                return Ok(());
            }
            // Nothing changed: already revoked (fine), or no such key.
            let exists = api_keys::table
                .find(&id)
                .count()
                .get_result::<i64>(conn)
                .map_err(repo_error)?;
            if exists == 0 {
                return Err(RepoError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn touch_api_key(&self, id: &str, now: OffsetDateTime) -> Result<(), RepoError> {
        let id = id.to_owned();
        let now = to_unix(now);
        self.run(move |conn| {
            diesel::update(api_keys::table.find(&id))
                .set(api_keys::last_used_at.eq(now))
                .execute(conn)
                .map(drop)
                .map_err(repo_error)
        })
        .await
    }
}
