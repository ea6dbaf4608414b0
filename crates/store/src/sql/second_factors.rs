//! [`SecondFactorRepo`] on the SQL database: `second_factors`, `recovery_codes` and `passkeys`
//! (issue 15). Secrets arrive sealed and recovery codes as SHA-256: nothing here can read
//! either; a key's row holds its public key only.

use std::str::FromStr;

use async_trait::async_trait;
use diesel::prelude::*;
use sesame_core::error::RepoError;
use sesame_core::ids::AccountId;
use sesame_mfa::factors::{FactorKind, SecondFactorRecord, SecondFactorRepo};
use sesame_mfa::passkeys::StoredPasskey;
use time::OffsetDateTime;

use super::Database;
use crate::error::repo_error;
use crate::models::{from_unix, to_unix};
use crate::schema::{mfa_grace, passkeys, recovery_codes, second_factors};

type FactorRow = (String, String, String, String, String, i64, Option<i64>);
type PasskeyRow = (String, String, String, String, String);

fn into_passkey(
    (credential_id, factor_id, account_id, public_key, state): PasskeyRow,
) -> Result<StoredPasskey, RepoError> {
    Ok(StoredPasskey {
        credential_id,
        factor_id,
        account_id: AccountId::from_str(&account_id)
            .map_err(|e| RepoError::Corrupt(format!("passkeys.account_id: {e}")))?,
        public_key,
        state,
    })
}

fn insert_factor(
    conn: &mut crate::conn::DbConnection,
    f: &SecondFactorRecord,
) -> QueryResult<usize> {
    diesel::insert_into(second_factors::table)
        .values((
            second_factors::id.eq(&f.id),
            second_factors::account_id.eq(f.account_id.to_string()),
            second_factors::kind.eq(f.kind.as_str()),
            second_factors::label.eq(&f.label),
            second_factors::sealed_secret.eq(&f.sealed_secret),
            second_factors::created_at.eq(to_unix(f.created_at)),
            second_factors::last_used_at.eq(f.last_used_at.map(to_unix)),
        ))
        .execute(conn)
}

fn into_factor(
    (id, account_id, kind, label, sealed_secret, created_at, last_used_at): FactorRow,
) -> Result<SecondFactorRecord, RepoError> {
    Ok(SecondFactorRecord {
        id,
        account_id: AccountId::from_str(&account_id)
            .map_err(|e| RepoError::Corrupt(format!("second_factors.account_id: {e}")))?,
        kind: FactorKind::parse(&kind)
            .ok_or_else(|| RepoError::Corrupt(format!("second_factors.kind: {kind}")))?,
        label,
        sealed_secret,
        created_at: from_unix("second_factors.created_at", created_at)?,
        last_used_at: last_used_at
            .map(|secs| from_unix("second_factors.last_used_at", secs))
            .transpose()?,
    })
}

fn insert_codes(
    conn: &mut crate::conn::DbConnection,
    account: &str,
    hashes: &[String],
    at: i64,
) -> QueryResult<()> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::account_id.eq(account)))
        .execute(conn)?;
    for hash in hashes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::account_id.eq(account),
                recovery_codes::code_hash.eq(hash),
                recovery_codes::created_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

#[async_trait]
impl SecondFactorRepo for Database {
    async fn factors(&self, account: AccountId) -> Result<Vec<SecondFactorRecord>, RepoError> {
        let account = account.to_string();
        self.run(move |conn| {
            second_factors::table
                .filter(second_factors::account_id.eq(&account))
                .order((second_factors::created_at.asc(), second_factors::id.asc()))
                .select((
                    second_factors::id,
                    second_factors::account_id,
                    second_factors::kind,
                    second_factors::label,
                    second_factors::sealed_secret,
                    second_factors::created_at,
                    second_factors::last_used_at,
                ))
                .load::<FactorRow>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(into_factor)
                .collect()
        })
        .await
    }

    async fn add_factor(
        &self,
        factor: &SecondFactorRecord,
        recovery_hashes: Option<&[String]>,
    ) -> Result<(), RepoError> {
        let f = factor.clone();
        let hashes = recovery_hashes.map(<[String]>::to_vec);
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                let account = f.account_id.to_string();
                let created = to_unix(f.created_at);
                insert_factor(conn, &f)?;
                if let Some(hashes) = &hashes {
                    insert_codes(conn, &account, hashes, created)?;
                }
                Ok(())
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn touch_factor(&self, id: &str, at: OffsetDateTime) -> Result<(), RepoError> {
        let id = id.to_owned();
        let at = to_unix(at);
        self.run(move |conn| {
            diesel::update(second_factors::table.find(&id))
                .set(second_factors::last_used_at.eq(Some(at)))
                .execute(conn)
                .map(drop)
                .map_err(repo_error)
        })
        .await
    }

    async fn remove_factor(&self, account: AccountId, id: &str) -> Result<bool, RepoError> {
        let account = account.to_string();
        let id = id.to_owned();
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                let removed = diesel::delete(
                    second_factors::table
                        .filter(second_factors::account_id.eq(&account))
                        .filter(second_factors::id.eq(&id)),
                )
                .execute(conn)?;
                let left: i64 = second_factors::table
                    .filter(second_factors::account_id.eq(&account))
                    .count()
                    .get_result(conn)?;
                // Recovery codes stand in for a factor: without any factor they would be a
                // way in that nothing else backs.
                if left == 0 {
                    diesel::delete(
                        recovery_codes::table.filter(recovery_codes::account_id.eq(&account)),
                    )
                    .execute(conn)?;
                }
                Ok(removed > 0)
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn remove_all_factors(&self, account: AccountId) -> Result<usize, RepoError> {
        let account = account.to_string();
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                diesel::delete(
                    recovery_codes::table.filter(recovery_codes::account_id.eq(&account)),
                )
                .execute(conn)?;
                diesel::delete(
                    second_factors::table.filter(second_factors::account_id.eq(&account)),
                )
                .execute(conn)
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn recovery_codes(&self, account: AccountId) -> Result<Vec<String>, RepoError> {
        let account = account.to_string();
        self.run(move |conn| {
            recovery_codes::table
                .filter(recovery_codes::account_id.eq(&account))
                .order(recovery_codes::code_hash.asc())
                .select(recovery_codes::code_hash)
                .load::<String>(conn)
                .map_err(repo_error)
        })
        .await
    }

    async fn replace_recovery_codes(
        &self,
        account: AccountId,
        hashes: &[String],
        at: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let account = account.to_string();
        let hashes = hashes.to_vec();
        let at = to_unix(at);
        self.run(move |conn| {
            conn.write_transaction(|conn| insert_codes(conn, &account, &hashes, at))
                .map_err(repo_error)
        })
        .await
    }

    async fn use_recovery_code(&self, account: AccountId, hash: &str) -> Result<bool, RepoError> {
        let account = account.to_string();
        let hash = hash.to_owned();
        self.run(move |conn| {
            diesel::delete(recovery_codes::table.find((&account, &hash)))
                .execute(conn)
                .map(|n| n > 0)
                .map_err(repo_error)
        })
        .await
    }

    async fn add_passkey(
        &self,
        factor: &SecondFactorRecord,
        key: &StoredPasskey,
    ) -> Result<(), RepoError> {
        let f = factor.clone();
        let k = key.clone();
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                insert_factor(conn, &f)?;
                diesel::insert_into(passkeys::table)
                    .values((
                        passkeys::credential_id.eq(&k.credential_id),
                        passkeys::factor_id.eq(&k.factor_id),
                        passkeys::account_id.eq(k.account_id.to_string()),
                        passkeys::public_key.eq(&k.public_key),
                        passkeys::state.eq(&k.state),
                    ))
                    .execute(conn)
                    .map(drop)
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn passkeys(&self, account: AccountId) -> Result<Vec<StoredPasskey>, RepoError> {
        let account = account.to_string();
        self.run(move |conn| {
            passkeys::table
                .filter(passkeys::account_id.eq(&account))
                .order(passkeys::credential_id.asc())
                .select((
                    passkeys::credential_id,
                    passkeys::factor_id,
                    passkeys::account_id,
                    passkeys::public_key,
                    passkeys::state,
                ))
                .load::<PasskeyRow>(conn)
                .map_err(repo_error)?
                .into_iter()
                .map(into_passkey)
                .collect()
        })
        .await
    }

    async fn passkey(&self, credential_id: &str) -> Result<Option<StoredPasskey>, RepoError> {
        let id = credential_id.to_owned();
        self.run(move |conn| {
            passkeys::table
                .find(&id)
                .select((
                    passkeys::credential_id,
                    passkeys::factor_id,
                    passkeys::account_id,
                    passkeys::public_key,
                    passkeys::state,
                ))
                .first::<PasskeyRow>(conn)
                .optional()
                .map_err(repo_error)?
                .map(into_passkey)
                .transpose()
        })
        .await
    }

    async fn update_passkey(
        &self,
        credential_id: &str,
        state: &str,
        at: OffsetDateTime,
    ) -> Result<(), RepoError> {
        let id = credential_id.to_owned();
        let state = state.to_owned();
        let at = to_unix(at);
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                let factor: Option<String> = passkeys::table
                    .find(&id)
                    .select(passkeys::factor_id)
                    .first(conn)
                    .optional()?;
                diesel::update(passkeys::table.find(&id))
                    .set(passkeys::state.eq(&state))
                    .execute(conn)?;
                if let Some(factor) = factor {
                    diesel::update(second_factors::table.find(&factor))
                        .set(second_factors::last_used_at.eq(Some(at)))
                        .execute(conn)?;
                }
                Ok(())
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn grace_logins(&self, account: AccountId) -> Result<u32, RepoError> {
        let account = account.to_string();
        self.run(move |conn| {
            let n: Option<i64> = mfa_grace::table
                .find(&account)
                .select(mfa_grace::logins_without_factor)
                .first(conn)
                .optional()
                .map_err(repo_error)?;
            Ok(n.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)))
        })
        .await
    }

    async fn count_grace_login(
        &self,
        account: AccountId,
        at: OffsetDateTime,
    ) -> Result<u32, RepoError> {
        let account = account.to_string();
        let at = to_unix(at);
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                let updated = diesel::update(mfa_grace::table.find(&account))
                    .set((
                        mfa_grace::logins_without_factor.eq(mfa_grace::logins_without_factor + 1),
                        mfa_grace::updated_at.eq(at),
                    ))
                    .execute(conn)?;
                if updated == 0 {
                    diesel::insert_into(mfa_grace::table)
                        .values((
                            mfa_grace::account_id.eq(&account),
                            mfa_grace::logins_without_factor.eq(1_i64),
                            mfa_grace::updated_at.eq(at),
                        ))
                        .execute(conn)?;
                }
                mfa_grace::table
                    .find(&account)
                    .select(mfa_grace::logins_without_factor)
                    .first::<i64>(conn)
            })
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .map_err(repo_error)
        })
        .await
    }
}
