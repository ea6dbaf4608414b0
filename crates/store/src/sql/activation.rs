//! [`ActivationTokenRepo`] on the SQL database: `activation_tokens`.
//!
//! Consuming is one conditional `UPDATE … WHERE used_at IS NULL AND expires_at > now`: the
//! database serialises concurrent updates of a row, so of any number of requests presenting
//! the same secret exactly one sees a changed row (security spec C07).

use std::str::FromStr;

use async_trait::async_trait;
use diesel::prelude::*;
use sesame_core::error::RepoError;
use sesame_core::ids::AccountId;
use sesame_lifecycle::activation::ports::{
    ActivationTokenRepo, Consumption, NewToken, TokenKind, TokenState,
};
use time::OffsetDateTime;

use super::Database;
use crate::error::repo_error;
use crate::models::{to_unix, to_unix_ceil};
use crate::schema::activation_tokens;

/// Secrets of one multi-row statement (six parameters each).
const TOKENS_PER_STATEMENT: usize = 500;

fn account_id(raw: &str) -> Result<AccountId, RepoError> {
    AccountId::from_str(raw)
        .map_err(|e| RepoError::Corrupt(format!("activation_tokens.account_id: {e}")))
}

#[async_trait]
impl ActivationTokenRepo for Database {
    async fn insert_token(&self, token: NewToken, replace_older: bool) -> Result<(), RepoError> {
        let account = token.account_id.to_string();
        let kind = token.kind.as_str();
        let created_at = to_unix(token.created_at);
        let expires_at = to_unix_ceil(token.expires_at);
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                if replace_older {
                    diesel::update(
                        activation_tokens::table
                            .filter(activation_tokens::account_id.eq(&account))
                            .filter(activation_tokens::kind.eq(kind))
                            .filter(activation_tokens::used_at.is_null()),
                    )
                    .set(activation_tokens::used_at.eq(Some(created_at)))
                    .execute(conn)?;
                }
                diesel::insert_into(activation_tokens::table)
                    .values((
                        activation_tokens::token_hash.eq(&token.token_hash),
                        activation_tokens::account_id.eq(&account),
                        activation_tokens::kind.eq(kind),
                        activation_tokens::created_at.eq(created_at),
                        activation_tokens::expires_at.eq(expires_at),
                        activation_tokens::detail.eq(&token.detail),
                    ))
                    .execute(conn)
                    .map(drop)
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn insert_tokens(
        &self,
        tokens: Vec<NewToken>,
        replace_older: bool,
    ) -> Result<(), RepoError> {
        if tokens.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = tokens
            .iter()
            .map(|t| {
                (
                    activation_tokens::token_hash.eq(t.token_hash.clone()),
                    activation_tokens::account_id.eq(t.account_id.to_string()),
                    activation_tokens::kind.eq(t.kind.as_str()),
                    activation_tokens::created_at.eq(to_unix(t.created_at)),
                    activation_tokens::expires_at.eq(to_unix_ceil(t.expires_at)),
                    activation_tokens::detail.eq(t.detail.clone()),
                )
            })
            .collect();
        // Accounts by kind, with the time their older secrets stop: when each new one starts.
        let mut older: Vec<(&'static str, i64, Vec<String>)> = Vec::new();
        if replace_older {
            for t in &tokens {
                let (kind, at) = (t.kind.as_str(), to_unix(t.created_at));
                match older.iter_mut().find(|(k, a, _)| *k == kind && *a == at) {
                    Some((_, _, accounts)) => accounts.push(t.account_id.to_string()),
                    None => older.push((kind, at, vec![t.account_id.to_string()])),
                }
            }
        }
        self.run(move |conn| {
            conn.write_transaction(|conn| {
                for (kind, at, accounts) in &older {
                    for chunk in accounts.chunks(TOKENS_PER_STATEMENT) {
                        diesel::update(
                            activation_tokens::table
                                .filter(activation_tokens::account_id.eq_any(chunk))
                                .filter(activation_tokens::kind.eq(*kind))
                                .filter(activation_tokens::used_at.is_null()),
                        )
                        .set(activation_tokens::used_at.eq(Some(*at)))
                        .execute(conn)?;
                    }
                }
                insert_rows!(conn, activation_tokens::table, rows, TOKENS_PER_STATEMENT)
            })
            .map_err(repo_error)
        })
        .await
    }

    async fn consume_token(
        &self,
        kind: TokenKind,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<Consumption, RepoError> {
        let hash = token_hash.to_owned();
        let kind = kind.as_str();
        let now = to_unix(now);
        let found = self
            .run(move |conn| {
                let changed = diesel::update(
                    activation_tokens::table
                        .filter(activation_tokens::token_hash.eq(&hash))
                        .filter(activation_tokens::kind.eq(kind))
                        .filter(activation_tokens::used_at.is_null())
                        .filter(activation_tokens::expires_at.gt(now)),
                )
                .set(activation_tokens::used_at.eq(Some(now)))
                .execute(conn)
                .map_err(repo_error)?;
                let row = activation_tokens::table
                    .filter(activation_tokens::token_hash.eq(&hash))
                    .filter(activation_tokens::kind.eq(kind))
                    .select((
                        activation_tokens::account_id,
                        activation_tokens::detail,
                        activation_tokens::expires_at,
                    ))
                    .first::<(String, Option<String>, i64)>(conn)
                    .optional()
                    .map_err(repo_error)?;
                Ok((changed, row))
            })
            .await?;
        Ok(match found {
            (1, Some((account, detail, _))) => Consumption::Consumed {
                account_id: account_id(&account)?,
                detail,
            },
            // Used (or replaced) before its expiry: the caller may say "already active".
            (_, Some((account, _, expires_at))) if expires_at > now => Consumption::AlreadyUsed {
                account_id: account_id(&account)?,
            },
            _ => Consumption::Invalid,
        })
    }

    async fn live_token(
        &self,
        account_id: AccountId,
        kind: TokenKind,
        now: OffsetDateTime,
    ) -> Result<Option<String>, RepoError> {
        let account = account_id.to_string();
        let kind = kind.as_str();
        let now = to_unix(now);
        self.run(move |conn| {
            activation_tokens::table
                .filter(activation_tokens::account_id.eq(&account))
                .filter(activation_tokens::kind.eq(kind))
                .filter(activation_tokens::used_at.is_null())
                .filter(activation_tokens::expires_at.gt(now))
                .order(activation_tokens::created_at.desc())
                .select(activation_tokens::token_hash)
                .first::<String>(conn)
                .optional()
                .map_err(repo_error)
        })
        .await
    }

    async fn token_state(
        &self,
        kind: TokenKind,
        token_hash: &str,
        now: OffsetDateTime,
    ) -> Result<TokenState, RepoError> {
        let hash = token_hash.to_owned();
        let kind = kind.as_str();
        let now = to_unix(now);
        let row = self
            .run(move |conn| {
                activation_tokens::table
                    .filter(activation_tokens::token_hash.eq(&hash))
                    .filter(activation_tokens::kind.eq(kind))
                    .select((
                        activation_tokens::account_id,
                        activation_tokens::used_at,
                        activation_tokens::expires_at,
                    ))
                    .first::<(String, Option<i64>, i64)>(conn)
                    .optional()
                    .map_err(repo_error)
            })
            .await?;
        Ok(match row {
            Some((account, None, expires_at)) if expires_at > now => TokenState::Usable {
                account_id: account_id(&account)?,
            },
            Some((account, Some(_), expires_at)) if expires_at > now => TokenState::Used {
                account_id: account_id(&account)?,
            },
            _ => TokenState::Invalid,
        })
    }
}
