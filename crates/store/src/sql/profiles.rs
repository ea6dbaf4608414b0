//! [`ProfileRepo`] on the SQL database: `account_profiles`, beside `accounts`.
//!
//! An account without a profile row has an empty profile: reads use a left join, and the first
//! change of a profile inserts its row.

use std::str::FromStr;

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::result::Error as DieselError;
use sesame_core::account::{
    Account, AccountChanges, AccountProfile, AccountState, AccountWithProfile, NewAccount,
};
use sesame_core::error::RepoError;
use sesame_core::ids::{fold_for_search, AccountId, Affiliation, HrId, IdentifierKind};
use sesame_core::ports::ProfileRepo;
use time::OffsetDateTime;

use super::accounts::{claim_identifiers, IdentifierWriteError};
use super::Database;
use crate::conn::DbConnection;
use crate::error::repo_error;
use crate::models::account::{
    profile_as_changes, AccountChangeset, AccountRow, NewAccountRow, NewFullProfileRow,
    NewProfileRow, ProfileChangeset, ProfileRow,
};
use crate::models::to_unix;
use crate::schema::{account_identifiers, account_profiles, accounts};

/// Rows of one multi-row insert (and identifiers of one `IN` list): at most 16 parameters
/// a row, well under both databases' limits (SQLite 32,766, PostgreSQL 65,535).
const ROWS_PER_STATEMENT: usize = 500;

/// Most accounts a search returns.
const MAX_SEARCH: i64 = 200;

/// Most accounts a page of the directory holds.
const MAX_DIRECTORY_PAGE: i64 = 1000;

/// `word` as a literal inside a `LIKE` pattern whose escape character is `\`.
fn escape_like(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Writes the folded names the helpdesk's search matches (`accounts.search_name`) from the
/// names account `id` has now (inside the caller's transaction, after any change of them).
pub(crate) fn refresh_search_name(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    let (given, family) = accounts::table
        .find(id)
        .select((accounts::given_name, accounts::family_name))
        .first::<(String, String)>(conn)?;
    diesel::update(accounts::table.find(id))
        .set(accounts::search_name.eq(fold_for_search(&format!("{given} {family}"))))
        .execute(conn)
        .map(drop)
}

/// A row read back as an account with its profile.
fn into_pair(
    (account, profile): (AccountRow, Option<ProfileRow>),
) -> Result<AccountWithProfile, RepoError> {
    Ok(AccountWithProfile {
        account: account.into_account()?,
        profile: ProfileRow::into_profile(profile)?,
    })
}

/// Writes the profile columns of `changes` for account `id`, inserting its row first if it
/// has none (inside the caller's transaction).
fn write_profile(
    conn: &mut DbConnection,
    id: &str,
    changes: &AccountChanges,
    now: i64,
) -> QueryResult<()> {
    let changeset = ProfileChangeset::from_changes(changes, now);
    if changeset.is_empty() {
        return Ok(());
    }
    let update = |conn: &mut DbConnection| {
        diesel::update(account_profiles::table.find(id))
            .set(&changeset)
            .execute(conn)
    };
    if update(conn)? == 0 {
        diesel::insert_into(account_profiles::table)
            .values(NewProfileRow {
                account_id: id,
                created_at: now,
                updated_at: now,
            })
            .execute(conn)?;
        update(conn)?;
    }
    Ok(())
}

/// The account `id` with its profile.
fn load_pair(
    conn: &mut DbConnection,
    id: &str,
) -> QueryResult<Option<(AccountRow, Option<ProfileRow>)>> {
    accounts::table
        .left_join(account_profiles::table)
        .filter(accounts::id.eq(id))
        .select((AccountRow::as_select(), Option::<ProfileRow>::as_select()))
        .first::<(AccountRow, Option<ProfileRow>)>(conn)
        .optional()
}

#[async_trait]
impl ProfileRepo for Database {
    async fn create_with_profile(
        &self,
        account: NewAccount,
        profile: AccountProfile,
        now: OffsetDateTime,
    ) -> Result<AccountWithProfile, RepoError> {
        let now = to_unix(now);
        let row = AccountRow::new(AccountId::new_random(), account, now);
        let changes = profile_as_changes(profile);
        self.run(move |conn| {
            conn.write_transaction::<_, IdentifierWriteError, _>(|conn| {
                diesel::insert_into(accounts::table)
                    .values(&row)
                    .execute(conn)?;
                claim_identifiers(conn, &row.id, &row.login, row.email.as_deref())?;
                refresh_search_name(conn, &row.id)?;
                diesel::insert_into(account_profiles::table)
                    .values(NewProfileRow {
                        account_id: &row.id,
                        created_at: now,
                        updated_at: now,
                    })
                    .execute(conn)?;
                write_profile(conn, &row.id, &changes, now)?;
                Ok(load_pair(conn, &row.id)?.ok_or(DieselError::NotFound)?)
            })
            .map_err(IdentifierWriteError::into_repo)
            .and_then(into_pair)
        })
        .await
    }

    async fn create_many_with_profiles(
        &self,
        people: Vec<(NewAccount, AccountProfile)>,
        now: OffsetDateTime,
    ) -> Result<Vec<AccountId>, RepoError> {
        let now = to_unix(now);
        let mut ids = Vec::with_capacity(people.len());
        let mut accounts_rows = Vec::with_capacity(people.len());
        let mut profile_rows = Vec::with_capacity(people.len());
        let mut identifier_rows = Vec::with_capacity(people.len() * 2);
        for (account, profile) in people {
            let id = AccountId::new_random();
            let row = AccountRow::new(id, account, now);
            let identifiers =
                std::iter::once(&row.login).chain(row.email.as_ref().filter(|e| **e != row.login));
            for identifier in identifiers {
                identifier_rows.push((
                    account_identifiers::identifier.eq(identifier.clone()),
                    account_identifiers::account_id.eq(row.id.clone()),
                ));
            }
            profile_rows.push(NewFullProfileRow {
                account_id: row.id.clone(),
                profile: ProfileRow::from_profile(profile),
                created_at: now,
                updated_at: now,
            });
            accounts_rows.push(NewAccountRow {
                search_name: fold_for_search(&format!("{} {}", row.given_name, row.family_name)),
                account: row,
            });
            ids.push(id);
        }
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                insert_rows!(conn, accounts::table, accounts_rows, ROWS_PER_STATEMENT)?;
                // The one namespace of logins and e-mails (see `claim_identifiers`): a string
                // already there is a unique violation, and the whole batch is undone.
                insert_rows!(
                    conn,
                    account_identifiers::table,
                    identifier_rows,
                    ROWS_PER_STATEMENT
                )?;
                insert_rows!(
                    conn,
                    account_profiles::table,
                    profile_rows,
                    ROWS_PER_STATEMENT
                )
            })
            .map_err(repo_error)
        })
        .await?;
        Ok(ids)
    }

    async fn find_many_by_login(
        &self,
        logins: &[String],
    ) -> Result<Vec<AccountWithProfile>, RepoError> {
        let logins = logins.to_vec();
        self.run(move |conn| {
            let mut found = Vec::with_capacity(logins.len());
            for chunk in logins.chunks(ROWS_PER_STATEMENT) {
                let rows = accounts::table
                    .left_join(account_profiles::table)
                    .filter(accounts::login.eq_any(chunk))
                    .select((AccountRow::as_select(), Option::<ProfileRow>::as_select()))
                    .load::<(AccountRow, Option<ProfileRow>)>(conn)
                    .map_err(repo_error)?;
                for row in rows {
                    found.push(into_pair(row)?);
                }
            }
            Ok(found)
        })
        .await
    }

    async fn identifier_holders(
        &self,
        identifiers: &[String],
    ) -> Result<Vec<(String, AccountId, IdentifierKind)>, RepoError> {
        let identifiers = identifiers.to_vec();
        self.run(move |conn| {
            let mut held = Vec::new();
            for chunk in identifiers.chunks(ROWS_PER_STATEMENT) {
                let rows = accounts::table
                    .filter(
                        accounts::login
                            .eq_any(chunk)
                            .or(accounts::email.eq_any(chunk)),
                    )
                    .select((accounts::id, accounts::login, accounts::email))
                    .load::<(String, String, Option<String>)>(conn)
                    .map_err(repo_error)?;
                for identifier in chunk {
                    // As at the login page, a login wins over another account's e-mail.
                    let holder = rows
                        .iter()
                        .find(|(_, login, _)| login == identifier)
                        .map(|(id, _, _)| (id, IdentifierKind::Login))
                        .or_else(|| {
                            rows.iter()
                                .find(|(_, _, email)| email.as_ref() == Some(identifier))
                                .map(|(id, _, _)| (id, IdentifierKind::Email))
                        });
                    if let Some((id, kind)) = holder {
                        let id = AccountId::from_str(id)
                            .map_err(|e| RepoError::Corrupt(format!("accounts.id: {e}")))?;
                        held.push((identifier.clone(), id, kind));
                    }
                }
            }
            Ok(held)
        })
        .await
    }

    async fn find_with_profile(
        &self,
        id: AccountId,
    ) -> Result<Option<AccountWithProfile>, RepoError> {
        let id = id.to_string();
        self.run(move |conn| {
            load_pair(conn, &id)
                .map_err(repo_error)?
                .map(into_pair)
                .transpose()
        })
        .await
    }

    async fn find_by_hr_id(&self, hr_id: &HrId) -> Result<Option<AccountWithProfile>, RepoError> {
        let hr_id = hr_id.as_str().to_owned();
        self.run(move |conn| {
            accounts::table
                .inner_join(account_profiles::table)
                .filter(account_profiles::hr_id.eq(&hr_id))
                .select((AccountRow::as_select(), ProfileRow::as_select()))
                .first::<(AccountRow, ProfileRow)>(conn)
                .optional()
                .map_err(repo_error)?
                .map(|(a, p)| into_pair((a, Some(p))))
                .transpose()
        })
        .await
    }

    async fn accounts_with_hr_id(&self) -> Result<Vec<AccountWithProfile>, RepoError> {
        self.run(move |conn| {
            accounts::table
                .inner_join(account_profiles::table)
                .filter(account_profiles::hr_id.is_not_null())
                .order(account_profiles::hr_id.asc())
                .select((AccountRow::as_select(), ProfileRow::as_select()))
                .load::<(AccountRow, ProfileRow)>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(|(a, p)| into_pair((a, Some(p))))
                .collect()
        })
        .await
    }

    async fn search_accounts(
        &self,
        words: &[String],
        limit: i64,
    ) -> Result<Vec<Account>, RepoError> {
        let limit = limit.clamp(0, MAX_SEARCH);
        let patterns: Vec<String> = words
            .iter()
            .filter(|w| !w.is_empty())
            .map(|w| format!("%{}%", escape_like(w)))
            .collect();
        if patterns.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move |conn| {
            let mut query = accounts::table
                .select(AccountRow::as_select())
                .order(accounts::login.asc())
                .limit(limit)
                .into_boxed();
            for p in patterns {
                // Logins and e-mails are stored folded, and names also in `search_name`
                // (accents and case dropped), so the same words find the same accounts on
                // both databases.
                query = query.filter(
                    accounts::login
                        .like(p.clone())
                        .escape('\\')
                        .or(accounts::search_name.like(p.clone()).escape('\\'))
                        .or(accounts::email.assume_not_null().like(p).escape('\\')),
                );
            }
            query
                .load::<AccountRow>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(AccountRow::into_account)
                .collect()
        })
        .await
    }

    async fn directory_page(
        &self,
        after: Option<&str>,
        affiliation: Option<Affiliation>,
        limit: i64,
    ) -> Result<Vec<AccountWithProfile>, RepoError> {
        let limit = limit.clamp(0, MAX_DIRECTORY_PAGE);
        let after = after.map(str::to_owned);
        let affiliation = affiliation.map(|a| a.as_str());
        self.run(move |conn| {
            let mut query = accounts::table
                .left_join(account_profiles::table)
                .filter(
                    accounts::state
                        .eq(AccountState::Active.as_str())
                        .or(accounts::state.eq(AccountState::Blocked.as_str())),
                )
                .order(accounts::login.asc())
                .limit(limit)
                .select((AccountRow::as_select(), Option::<ProfileRow>::as_select()))
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(accounts::login.gt(after));
            }
            if let Some(affiliation) = affiliation {
                query = query.filter(accounts::affiliation.eq(affiliation));
            }
            query
                .load::<(AccountRow, Option<ProfileRow>)>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(into_pair)
                .collect()
        })
        .await
    }

    async fn directory_entry(
        &self,
        identifier: &str,
    ) -> Result<Option<AccountWithProfile>, RepoError> {
        let identifier = identifier.to_owned();
        self.run(move |conn| {
            accounts::table
                .left_join(account_profiles::table)
                .filter(
                    accounts::login
                        .eq(&identifier)
                        .or(accounts::email.eq(&identifier)),
                )
                .filter(
                    accounts::state
                        .eq(AccountState::Active.as_str())
                        .or(accounts::state.eq(AccountState::Blocked.as_str())),
                )
                .order(accounts::login.eq(&identifier).desc())
                .select((AccountRow::as_select(), Option::<ProfileRow>::as_select()))
                .first::<(AccountRow, Option<ProfileRow>)>(conn)
                .optional()
                .map_err(repo_error)?
                .map(into_pair)
                .transpose()
        })
        .await
    }

    async fn update_account(
        &self,
        id: AccountId,
        changes: &AccountChanges,
        now: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let account_id = id;
        let id = id.to_string();
        let changes = changes.clone();
        let now = to_unix(now);
        let written = self
            .run(move |conn| {
                conn.write_transaction(|conn| {
                    // Checks the account exists and, on PostgreSQL, row-locks it for the rest.
                    let found = diesel::update(accounts::table.find(&id))
                        .set(AccountChangeset::from_changes(&changes, now))
                        .execute(conn)?;
                    if found == 0 {
                        return Err(DieselError::NotFound);
                    }
                    if changes.given_name.is_some() || changes.family_name.is_some() {
                        refresh_search_name(conn, &id)?;
                    }
                    write_profile(conn, &id, &changes, now)
                })
                .map_err(repo_error)
            })
            .await;
        self.account_written(account_id, written).await
    }

    async fn identifier_holder(
        &self,
        identifier: &str,
    ) -> Result<Option<(AccountId, IdentifierKind)>, RepoError> {
        let identifier = identifier.to_owned();
        self.run(move |conn| {
            let found = accounts::table
                .filter(
                    accounts::login
                        .eq(&identifier)
                        .or(accounts::email.eq(&identifier)),
                )
                // As at the login page, a login wins over another account's e-mail.
                .order(accounts::login.eq(&identifier).desc())
                .select((accounts::id, accounts::login))
                .first::<(String, String)>(conn)
                .optional()
                .map_err(repo_error)?;
            found
                .map(|(id, login)| {
                    let id = AccountId::from_str(&id)
                        .map_err(|e| RepoError::Corrupt(format!("accounts.id: {e}")))?;
                    let kind = if login == identifier {
                        IdentifierKind::Login
                    } else {
                        IdentifierKind::Email
                    };
                    Ok((id, kind))
                })
                .transpose()
        })
        .await
    }
}
