//! [`AccountRepo`] on the SQL database: `accounts`, `credentials` and `login_locks`.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use sesame_core::account::{Account, AccountCredential, AccountState, NewAccount};
use sesame_core::error::RepoError;
use sesame_core::ids::{AccountId, Email, IdentifierKind, LoginName};
use sesame_core::ports::AccountRepo;
use time::OffsetDateTime;

use super::Database;
use crate::conn::DbConnection;
use crate::error::repo_error;
use crate::models::account::{AccountRow, CredentialRow};
use crate::models::{from_unix, to_unix, to_unix_ceil};
use crate::schema::{account_identifiers, accounts, credentials, login_locks};

#[async_trait]
impl AccountRepo for Database {
    async fn create(&self, account: NewAccount, now: OffsetDateTime) -> Result<Account, RepoError> {
        let row = AccountRow::new(AccountId::new_random(), account, to_unix(now));
        self.run(move |conn| {
            conn.write_transaction::<_, IdentifierWriteError, _>(|conn| {
                diesel::insert_into(accounts::table)
                    .values(&row)
                    .execute(conn)?;
                claim_identifiers(conn, &row.id, &row.login, row.email.as_deref())?;
                super::profiles::refresh_search_name(conn, &row.id)?;
                Ok(())
            })
            .map_err(IdentifierWriteError::into_repo)?;
            // What a later read returns (times at whole seconds).
            row.into_account()
        })
        .await
    }

    async fn find_credential(
        &self,
        identifier: &str,
    ) -> Result<Option<AccountCredential>, RepoError> {
        let identifier = identifier.to_owned();
        self.run(move |conn| {
            let found = accounts::table
                .left_join(credentials::table)
                .filter(
                    accounts::login
                        .eq(&identifier)
                        .or(accounts::email.eq(&identifier)),
                )
                // A login equal to the identifier wins over another account's e-mail.
                .order(accounts::login.eq(&identifier).desc())
                .select((
                    AccountRow::as_select(),
                    credentials::password_hash.nullable(),
                ))
                .first::<(AccountRow, Option<String>)>(conn)
                .optional()
                .map_err(repo_error)?;
            found
                .map(|(row, password_hash)| {
                    Ok(AccountCredential {
                        account: row.into_account()?,
                        password_hash,
                    })
                })
                .transpose()
        })
        .await
    }

    async fn find_by_login(&self, login: &LoginName) -> Result<Option<Account>, RepoError> {
        let login = login.as_str().to_owned();
        self.run(move |conn| {
            accounts::table
                .filter(accounts::login.eq(&login))
                .select(AccountRow::as_select())
                .first(conn)
                .optional()
                .map_err(repo_error)?
                .map(AccountRow::into_account)
                .transpose()
        })
        .await
    }

    async fn find_by_id(&self, id: AccountId) -> Result<Option<Account>, RepoError> {
        let id = id.to_string();
        self.run(move |conn| {
            accounts::table
                .find(&id)
                .select(AccountRow::as_select())
                .first(conn)
                .optional()
                .map_err(repo_error)?
                .map(AccountRow::into_account)
                .transpose()
        })
        .await
    }

    async fn set_state(
        &self,
        id: AccountId,
        state: AccountState,
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let account_id = id;
        let id = id.to_string();
        let now = to_unix(now);
        let written = self
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    let changed = diesel::update(accounts::table.find(&id))
                        .set((
                            accounts::state.eq(state.as_str()),
                            accounts::updated_at.eq(now),
                        ))
                        .execute(conn)?;
                    if changed == 0 {
                        return Err(DieselError::NotFound);
                    }
                    // Retention counts from the time an account was disabled.
                    super::helpdesk::track_disablement(conn, &id, state, now)
                })
                .map_err(repo_error)
            })
            .await;
        self.account_written(account_id, written).await
    }

    async fn set_password_hash(
        &self,
        id: AccountId,
        phc: &str,
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let account_id = id;
        let id = id.to_string();
        let phc = phc.to_owned();
        let now = to_unix(now);
        let written = self
            .run(move |conn| {
                conn.write_transaction(|conn| upsert_password_hash(conn, &id, &phc, now))
                    .map_err(repo_error)
            })
            .await;
        self.account_written(account_id, written).await
    }

    async fn login_locked_until(
        &self,
        login_key: &str,
    ) -> Result<Option<OffsetDateTime>, RepoError> {
        let login_key = login_key.to_owned();
        self.run(move |conn| {
            login_locks::table
                .find(&login_key)
                .select(login_locks::locked_until)
                .first::<i64>(conn)
                .optional()
                .map_err(repo_error)?
                .map(|secs| from_unix("login_locks.locked_until", secs))
                .transpose()
        })
        .await
    }

    async fn set_login_lock(
        &self,
        login_key: &str,
        until: Option<OffsetDateTime>,
    ) -> Result<(), RepoError> {
        let login_key = login_key.to_owned();
        self.run(move |conn| {
            match until {
                Some(until) => upsert_login_lock(conn, &login_key, to_unix_ceil(until)),
                None => diesel::delete(login_locks::table.find(&login_key))
                    .execute(conn)
                    .map(drop),
            }
            .map_err(repo_error)
        })
        .await
    }

    async fn quiesce(&self) {
        Database::quiesce(self).await;
    }

    async fn purge_expired_login_locks(&self, now: OffsetDateTime) -> Result<usize, RepoError> {
        Database::purge_expired_login_locks(self, now).await
    }

    async fn ping(&self) -> Result<(), RepoError> {
        self.run(|conn| {
            diesel::select(1_i64.into_sql::<diesel::sql_types::BigInt>())
                .get_result::<i64>(conn)
                .map(drop)
                .map_err(repo_error)
        })
        .await
    }

    async fn set_email(
        &self,
        id: AccountId,
        email: Option<&Email>,
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let account_id = id;
        let id = id.to_string();
        let email = email.map(|e| e.as_str().to_owned());
        let now = to_unix(now);
        let written = self
            .run(move |conn| {
                conn.write_transaction::<_, IdentifierWriteError, _>(|conn| {
                    // Also row-locks the account on PostgreSQL for the rest.
                    let changed = diesel::update(accounts::table.find(&id))
                        .set((accounts::email.eq(&email), accounts::updated_at.eq(now)))
                        .execute(conn)?;
                    if changed == 0 {
                        return Err(DieselError::NotFound.into());
                    }
                    let login: String = accounts::table
                        .find(&id)
                        .select(accounts::login)
                        .first(conn)?;
                    // The former e-mail leaves the namespace; the login stays.
                    diesel::delete(
                        account_identifiers::table
                            .filter(account_identifiers::account_id.eq(&id))
                            .filter(account_identifiers::identifier.ne(&login)),
                    )
                    .execute(conn)?;
                    match email.as_deref().filter(|e| *e != login) {
                        Some(email) => claim(conn, &id, email, IdentifierKind::Email),
                        None => Ok(()),
                    }
                })
                .map_err(IdentifierWriteError::into_repo)
            })
            .await;
        self.account_written(account_id, written).await
    }
}

/// Why writing an account and its identifiers failed: a database error, or one of its
/// identifiers already in the namespace (see [`claim_identifiers`]).
#[derive(Debug)]
pub(crate) enum IdentifierWriteError {
    /// The login or e-mail is another account's login or e-mail.
    Taken(IdentifierKind),
    /// Anything else.
    Database(DieselError),
}

impl From<DieselError> for IdentifierWriteError {
    fn from(e: DieselError) -> Self {
        Self::Database(e)
    }
}

impl IdentifierWriteError {
    /// The repository error: a clash names the field (`login` or `email`) as a unique key
    /// of `accounts` would.
    pub(crate) fn into_repo(self) -> RepoError {
        match self {
            Self::Taken(kind) => RepoError::Conflict(kind.as_str().to_owned()),
            Self::Database(e) => repo_error(e),
        }
    }
}

/// Puts account `id`'s `login`, and its `email` when it differs, into the one namespace of
/// logins and e-mails (inside the caller's transaction, after the account's row is written).
/// The login page takes either in one field, so a string already there (another account's
/// login or e-mail) refuses the whole write, even when two instances race (security rule of
/// issue 13: one namespace).
pub(crate) fn claim_identifiers(
    conn: &mut DbConnection,
    id: &str,
    login: &str,
    email: Option<&str>,
) -> Result<(), IdentifierWriteError> {
    claim(conn, id, login, IdentifierKind::Login)?;
    match email.filter(|e| *e != login) {
        Some(email) => claim(conn, id, email, IdentifierKind::Email),
        None => Ok(()),
    }
}

fn claim(
    conn: &mut DbConnection,
    id: &str,
    identifier: &str,
    kind: IdentifierKind,
) -> Result<(), IdentifierWriteError> {
    match diesel::insert_into(account_identifiers::table)
        .values((
            account_identifiers::identifier.eq(identifier),
            account_identifiers::account_id.eq(id),
        ))
        .execute(conn)
    {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(IdentifierWriteError::Taken(kind))
        }
        other => other.map(drop).map_err(IdentifierWriteError::Database),
    }
}

/// Stores the hash of account `id` (inside a transaction).
///
/// The account row is updated first: that checks it exists and, on PostgreSQL, row-locks it,
/// so concurrent changes of one account's password queue up instead of racing on the insert.
/// (The backends share no upsert syntax through diesel's multi-backend connection.)
fn upsert_password_hash(conn: &mut DbConnection, id: &str, phc: &str, now: i64) -> QueryResult<()> {
    let found = diesel::update(accounts::table.find(id))
        .set(accounts::updated_at.eq(now))
        .execute(conn)?;
    if found == 0 {
        return Err(DieselError::NotFound);
    }
    let updated = diesel::update(credentials::table.find(id))
        .set((
            credentials::password_hash.eq(phc),
            credentials::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(credentials::table)
            .values(CredentialRow {
                account_id: id,
                password_hash: phc,
                updated_at: now,
            })
            .execute(conn)?;
    }
    Ok(())
}

/// Records a lock end: update, else insert; if a concurrent writer inserted first, update again.
fn upsert_login_lock(conn: &mut DbConnection, login_key: &str, until: i64) -> QueryResult<()> {
    let update = |conn: &mut DbConnection| {
        diesel::update(login_locks::table.find(login_key))
            .set(login_locks::locked_until.eq(until))
            .execute(conn)
    };
    if update(conn)? > 0 {
        return Ok(());
    }
    match diesel::insert_into(login_locks::table)
        .values((
            login_locks::login_key.eq(login_key),
            login_locks::locked_until.eq(until),
        ))
        .execute(conn)
    {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            update(conn).map(drop)
        }
        other => other.map(drop),
    }
}
