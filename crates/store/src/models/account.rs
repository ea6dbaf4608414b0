//! Rows of `accounts` and `credentials`.

use std::str::FromStr;

use diesel::{Insertable, Queryable, Selectable};
use sesame_core::account::{Account, AccountState, NewAccount};
use sesame_core::error::RepoError;
use sesame_core::ids::{AccountId, Affiliation, Email, LoginName};

use super::from_unix;
use crate::schema::{accounts, credentials};

/// A row of `accounts`.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = accounts)]
pub(crate) struct AccountRow {
    pub(crate) id: String,
    pub(crate) login: String,
    pub(crate) email: Option<String>,
    pub(crate) given_name: String,
    pub(crate) family_name: String,
    pub(crate) affiliation: String,
    pub(crate) state: String,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

impl AccountRow {
    /// The row for a new account.
    pub(crate) fn new(id: AccountId, account: NewAccount, now: i64) -> Self {
        Self {
            id: id.to_string(),
            login: account.login.as_str().to_owned(),
            email: account.email.map(String::from),
            given_name: account.given_name,
            family_name: account.family_name,
            affiliation: account.affiliation.as_str().to_owned(),
            state: account.state.as_str().to_owned(),
            created_at: now,
            updated_at: now,
        }
    }

    /// The account this row stores.
    ///
    /// # Errors
    /// [`RepoError::Corrupt`] naming the first column that does not parse.
    pub(crate) fn into_account(self) -> Result<Account, RepoError> {
        let corrupt = |column: &str, e: &dyn std::fmt::Display| {
            RepoError::Corrupt(format!("accounts.{column}: {e}"))
        };
        Ok(Account {
            id: AccountId::from_str(&self.id).map_err(|e| corrupt("id", &e))?,
            login: LoginName::parse(&self.login).map_err(|e| corrupt("login", &e))?,
            email: self
                .email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| corrupt("email", &e))?,
            given_name: self.given_name,
            family_name: self.family_name,
            affiliation: Affiliation::from_str(&self.affiliation)
                .map_err(|e| corrupt("affiliation", &e))?,
            state: AccountState::from_str(&self.state).map_err(|e| corrupt("state", &e))?,
            created_at: from_unix("accounts.created_at", self.created_at)?,
            updated_at: from_unix("accounts.updated_at", self.updated_at)?,
        })
    }
}

/// A row of `credentials`.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = credentials)]
pub(crate) struct CredentialRow<'a> {
    pub(crate) account_id: &'a str,
    pub(crate) password_hash: &'a str,
    pub(crate) updated_at: i64,
}
