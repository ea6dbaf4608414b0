//! Rows of `accounts` and `credentials`.

use std::str::FromStr;

use diesel::{AsChangeset, Insertable, Queryable, Selectable};
use sesame_core::account::{
    Account, AccountChanges, AccountProfile, AccountState, CharterAcceptance, Contact,
    MailRedirect, NewAccount,
};
use sesame_core::error::RepoError;
use sesame_core::ids::{AccountId, Affiliation, Email, HrId, LoginName, MobilePhone};
use sesame_core::national_id::NationalIdHash;
use time::Date;

use super::{from_unix, to_unix};
use crate::schema::{account_profiles, accounts, credentials};

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

/// How a birth date is stored: ISO 8601, `YYYY-MM-DD` (sorts and compares as text).
const DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// A stored date.
fn date_to_text(date: Date) -> String {
    // This description formats every valid date; the fallback is never used.
    date.format(DATE_FORMAT)
        .unwrap_or_else(|_| date.to_string())
}

/// A row of `accounts` as an import writes it in bulk: with its folded names, which
/// [`refresh_search_name`](crate::sql::profiles) would otherwise write in a second statement.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = accounts)]
pub(crate) struct NewAccountRow {
    #[diesel(embed)]
    pub(crate) account: AccountRow,
    pub(crate) search_name: String,
}

/// A whole row of `account_profiles`, written at once for a new account.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = account_profiles)]
pub(crate) struct NewFullProfileRow {
    pub(crate) account_id: String,
    #[diesel(embed)]
    pub(crate) profile: ProfileRow,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

/// A row of `account_profiles` (without its key and times).
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = account_profiles)]
pub(crate) struct ProfileRow {
    pub(crate) hr_id: Option<String>,
    pub(crate) birth_date: Option<String>,
    pub(crate) national_id_hash: Option<String>,
    pub(crate) recovery_email: Option<String>,
    pub(crate) recovery_email_verified: bool,
    pub(crate) mobile: Option<String>,
    pub(crate) mobile_verified: bool,
    pub(crate) charter_version: Option<String>,
    pub(crate) charter_accepted_at: Option<i64>,
    pub(crate) directory_opt_in: bool,
    pub(crate) mail_redirect: Option<String>,
    pub(crate) mail_redirect_verified: bool,
    pub(crate) mail_keep_copy: bool,
}

impl ProfileRow {
    /// The row that stores `profile` (the reverse of [`ProfileRow::into_profile`]): the
    /// columns of the changes that store it on a new account, so that each column is encoded
    /// in one place ([`ProfileChangeset::from_changes`]).
    pub(crate) fn from_profile(profile: AccountProfile) -> Self {
        let c = ProfileChangeset::from_changes(&profile_as_changes(profile), 0);
        Self {
            hr_id: c.hr_id,
            birth_date: c.birth_date,
            national_id_hash: c.national_id_hash,
            recovery_email: c.recovery_email.flatten(),
            recovery_email_verified: c.recovery_email_verified.unwrap_or(false),
            mobile: c.mobile.flatten(),
            mobile_verified: c.mobile_verified.unwrap_or(false),
            charter_version: c.charter_version,
            charter_accepted_at: c.charter_accepted_at,
            directory_opt_in: c.directory_opt_in.unwrap_or(false),
            mail_redirect: c.mail_redirect.flatten(),
            mail_redirect_verified: c.mail_redirect_verified.unwrap_or(false),
            mail_keep_copy: c.mail_keep_copy.unwrap_or(false),
        }
    }

    /// The profile this row stores (`None`: an account without a row has an empty profile).
    ///
    /// # Errors
    /// [`RepoError::Corrupt`] naming the first column that does not parse.
    pub(crate) fn into_profile(row: Option<Self>) -> Result<AccountProfile, RepoError> {
        fn corrupt(column: &str, e: &dyn std::fmt::Display) -> RepoError {
            RepoError::Corrupt(format!("account_profiles.{column}: {e}"))
        }
        let Some(row) = row else {
            return Ok(AccountProfile::default());
        };
        let email = |column: &str, v: Option<String>| {
            v.as_deref()
                .map(Email::parse)
                .transpose()
                .map_err(|e| corrupt(column, &e))
        };
        let recovery_email = email("recovery_email", row.recovery_email)?;
        let mail_redirect = email("mail_redirect", row.mail_redirect)?;
        Ok(AccountProfile {
            hr_id: row
                .hr_id
                .as_deref()
                .map(HrId::parse)
                .transpose()
                .map_err(|e| corrupt("hr_id", &e))?,
            birth_date: row
                .birth_date
                .as_deref()
                .map(|d| Date::parse(d, DATE_FORMAT))
                .transpose()
                .map_err(|e| corrupt("birth_date", &e))?,
            national_id: row
                .national_id_hash
                .as_deref()
                .map(NationalIdHash::from_stored)
                .transpose()
                .map_err(|e| corrupt("national_id_hash", &e))?,
            recovery_email: recovery_email.map(|address| Contact {
                address,
                verified: row.recovery_email_verified,
            }),
            mobile: row
                .mobile
                .as_deref()
                .map(MobilePhone::parse)
                .transpose()
                .map_err(|e| corrupt("mobile", &e))?
                .map(|address| Contact {
                    address,
                    verified: row.mobile_verified,
                }),
            charter: match (row.charter_version, row.charter_accepted_at) {
                (Some(version), Some(at)) => Some(CharterAcceptance {
                    version,
                    accepted_at: from_unix("account_profiles.charter_accepted_at", at)?,
                }),
                (None, None) => None,
                _ => {
                    return Err(corrupt(
                        "charter_version",
                        &"set without charter_accepted_at, or the reverse",
                    ))
                }
            },
            directory_opt_in: row.directory_opt_in,
            mail_redirect: mail_redirect.map(|address| MailRedirect {
                address,
                verified: row.mail_redirect_verified,
                keep_copy: row.mail_keep_copy,
            }),
        })
    }
}

/// An empty row of `account_profiles`, written before the first change of an account's
/// profile.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = account_profiles)]
pub(crate) struct NewProfileRow<'a> {
    pub(crate) account_id: &'a str,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

/// The `accounts` columns an [`AccountChanges`] writes (`None` fields are left out).
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = accounts)]
pub(crate) struct AccountChangeset {
    pub(crate) given_name: Option<String>,
    pub(crate) family_name: Option<String>,
    pub(crate) affiliation: Option<String>,
    pub(crate) updated_at: i64,
}

impl AccountChangeset {
    /// The columns `changes` writes, with `updated_at = now`.
    pub(crate) fn from_changes(changes: &AccountChanges, now: i64) -> Self {
        Self {
            given_name: changes.given_name.clone(),
            family_name: changes.family_name.clone(),
            affiliation: changes.affiliation.map(|a| a.as_str().to_owned()),
            updated_at: now,
        }
    }
}

/// The `account_profiles` columns an [`AccountChanges`] writes: `None` fields are left out of
/// the `UPDATE`, `Some(None)` sets NULL.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = account_profiles)]
pub(crate) struct ProfileChangeset {
    pub(crate) hr_id: Option<String>,
    pub(crate) birth_date: Option<String>,
    pub(crate) national_id_hash: Option<String>,
    pub(crate) recovery_email: Option<Option<String>>,
    pub(crate) recovery_email_verified: Option<bool>,
    pub(crate) mobile: Option<Option<String>>,
    pub(crate) mobile_verified: Option<bool>,
    pub(crate) charter_version: Option<String>,
    pub(crate) charter_accepted_at: Option<i64>,
    pub(crate) directory_opt_in: Option<bool>,
    pub(crate) mail_redirect: Option<Option<String>>,
    pub(crate) mail_redirect_verified: Option<bool>,
    pub(crate) mail_keep_copy: Option<bool>,
    pub(crate) updated_at: i64,
}

impl ProfileChangeset {
    /// The columns `changes` writes, with `updated_at = now`.
    pub(crate) fn from_changes(changes: &AccountChanges, now: i64) -> Self {
        let (recovery_email, recovery_email_verified) =
            split_contact(&changes.recovery_email, Email::as_str);
        let (mobile, mobile_verified) = split_contact(&changes.mobile, MobilePhone::as_str);
        let (mail_redirect, mail_redirect_verified, mail_keep_copy) = match &changes.mail_redirect {
            None => (None, None, None),
            Some(None) => (Some(None), Some(false), Some(false)),
            Some(Some(r)) => (
                Some(Some(r.address.as_str().to_owned())),
                Some(r.verified),
                Some(r.keep_copy),
            ),
        };
        Self {
            hr_id: changes.hr_id.as_ref().map(|h| h.as_str().to_owned()),
            birth_date: changes.birth_date.map(date_to_text),
            national_id_hash: changes.national_id.as_ref().map(|h| h.as_stored()),
            recovery_email,
            recovery_email_verified,
            mobile,
            mobile_verified,
            charter_version: changes.charter.as_ref().map(|c| c.version.clone()),
            charter_accepted_at: changes.charter.as_ref().map(|c| to_unix(c.accepted_at)),
            directory_opt_in: changes.directory_opt_in,
            mail_redirect,
            mail_redirect_verified,
            mail_keep_copy,
            updated_at: now,
        }
    }

    /// Whether it writes nothing but `updated_at`.
    pub(crate) fn is_empty(&self) -> bool {
        self.hr_id.is_none()
            && self.birth_date.is_none()
            && self.national_id_hash.is_none()
            && self.recovery_email.is_none()
            && self.mobile.is_none()
            && self.charter_version.is_none()
            && self.directory_opt_in.is_none()
            && self.mail_redirect.is_none()
    }
}

/// The changes that store `profile` on a new account.
pub(crate) fn profile_as_changes(profile: AccountProfile) -> AccountChanges {
    AccountChanges {
        hr_id: profile.hr_id,
        birth_date: profile.birth_date,
        national_id: profile.national_id,
        recovery_email: Some(profile.recovery_email),
        mobile: Some(profile.mobile),
        charter: profile.charter,
        directory_opt_in: Some(profile.directory_opt_in),
        mail_redirect: Some(profile.mail_redirect),
        ..AccountChanges::default()
    }
}

/// A contact change as (address column, verified column).
fn split_contact<T>(
    change: &Option<Option<Contact<T>>>,
    text: fn(&T) -> &str,
) -> (Option<Option<String>>, Option<bool>) {
    match change {
        None => (None, None),
        Some(None) => (Some(None), Some(false)),
        Some(Some(c)) => (Some(Some(text(&c.address).to_owned())), Some(c.verified)),
    }
}
