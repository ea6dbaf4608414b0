//! `ApiKeyRepo` and `AccountRepo::set_email` on `Database`: the same bodies on SQLite and
//! PostgreSQL.

use sesame_core::account::{AccountState, NewAccount};
use sesame_core::api_keys::{ApiKeyRecord, ApiScope};
use sesame_core::error::RepoError;
use sesame_core::ids::{AccountId, Affiliation, Email, LoginName};
use sesame_core::ports::{AccountRepo, ApiKeyRepo};
use sesame_store::testing::{
    fresh_postgres, fresh_sqlite, skip_or_fail, test_database_url, PgSchemaGuard, SqliteFileGuard,
};
use sesame_store::Database;
use time::macros::datetime;
use time::OffsetDateTime;

const T0: OffsetDateTime = datetime!(2026-11-28 10:00:00 UTC);

/// The migration that adds the table under test.
const API_KEYS: &str = "2026-11-28-000004_api_keys";

async fn migrated(db: Database) -> Database {
    let applied = db.run_migrations().await.unwrap();
    assert!(applied.iter().any(|m| m == API_KEYS), "{applied:?}");
    db
}

async fn sqlite_db() -> (Database, SqliteFileGuard) {
    let (url, guard) = fresh_sqlite();
    (
        migrated(Database::connect(&url, 4).await.unwrap()).await,
        guard,
    )
}

async fn postgres_db() -> Option<(Database, PgSchemaGuard)> {
    let (url, guard) = match fresh_postgres(&test_database_url()).await {
        Ok(fresh) => fresh,
        Err(e) => {
            skip_or_fail("PostgreSQL", &e);
            return None;
        }
    };
    Some((
        migrated(Database::connect(&url, 4).await.unwrap()).await,
        guard,
    ))
}

/// Generates, for each body `name(db: Database)`, the tests `sqlite::name` and
/// `postgres::name`.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (db, _guard) = super::sqlite_db().await;
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((db, _guard)) = super::postgres_db().await else {
                        return;
                    };
                    super::$name(db).await;
                }
            )*
        }
    };
}

on_both_databases!(
    a_key_round_trips_and_keys_are_listed_newest_first,
    revoking_keeps_the_first_revocation_time_and_an_unknown_key_is_not_found,
    a_key_use_is_recorded,
    a_duplicate_id_is_a_conflict,
    an_email_is_set_removed_and_a_taken_one_is_a_conflict,
);

fn record(id: &str, created: i64) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.to_owned(),
        name: format!("system {id}"),
        key_sha256: "ab".repeat(32),
        scopes: vec![ApiScope::AccountsRead, ApiScope::Imports],
        created_at: T0 + time::Duration::seconds(created),
        expires_at: Some(T0 + time::Duration::days(30)),
        revoked_at: None,
        last_used_at: None,
    }
}

async fn a_key_round_trips_and_keys_are_listed_newest_first(db: Database) {
    db.insert_api_key(record("older", 0)).await.unwrap();
    db.insert_api_key(record("newer", 5)).await.unwrap();
    assert_eq!(
        db.find_api_key("older").await.unwrap(),
        Some(record("older", 0))
    );
    assert_eq!(db.find_api_key("absent").await.unwrap(), None);
    let ids: Vec<String> = db
        .api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids, ["newer", "older"]);
}

async fn revoking_keeps_the_first_revocation_time_and_an_unknown_key_is_not_found(db: Database) {
    db.insert_api_key(record("k1", 0)).await.unwrap();
    db.revoke_api_key("k1", T0 + time::Duration::hours(1))
        .await
        .unwrap();
    db.revoke_api_key("k1", T0 + time::Duration::hours(2))
        .await
        .unwrap();
    let found = db.find_api_key("k1").await.unwrap().unwrap();
    assert_eq!(found.revoked_at, Some(T0 + time::Duration::hours(1)));
    assert!(matches!(
        db.revoke_api_key("nope", T0).await,
        Err(RepoError::NotFound)
    ));
}

async fn a_key_use_is_recorded(db: Database) {
    db.insert_api_key(record("k1", 0)).await.unwrap();
    db.touch_api_key("k1", T0 + time::Duration::minutes(3))
        .await
        .unwrap();
    let found = db.find_api_key("k1").await.unwrap().unwrap();
    assert_eq!(found.last_used_at, Some(T0 + time::Duration::minutes(3)));
}

async fn a_duplicate_id_is_a_conflict(db: Database) {
    db.insert_api_key(record("k1", 0)).await.unwrap();
    assert!(matches!(
        db.insert_api_key(record("k1", 1)).await,
        Err(RepoError::Conflict(what)) if what == "id"
    ));
}

async fn an_email_is_set_removed_and_a_taken_one_is_a_conflict(db: Database) {
    let new = |login: &str| NewAccount {
        login: LoginName::parse(login).unwrap(),
        email: Some(Email::parse(&format!("{login}@univ.example.org")).unwrap()),
        given_name: "Anne".to_owned(),
        family_name: "Martin".to_owned(),
        affiliation: Affiliation::Staff,
        state: AccountState::Active,
    };
    let anne = db.create(new("anne"), T0).await.unwrap();
    let paul = db.create(new("paul"), T0).await.unwrap();
    let later = T0 + time::Duration::minutes(1);
    let address = Email::parse("anne.martin@univ.example.org").unwrap();
    db.set_email(anne.id, Some(&address), later).await.unwrap();
    let read = db.find_by_id(anne.id).await.unwrap().unwrap();
    assert_eq!(read.email, Some(address));
    assert_eq!(read.updated_at, later);
    db.set_email(anne.id, None, later).await.unwrap();
    assert_eq!(db.find_by_id(anne.id).await.unwrap().unwrap().email, None);
    assert!(matches!(
        db.set_email(anne.id, paul.email.as_ref(), later).await,
        Err(RepoError::Conflict(what)) if what == "email"
    ));
    assert!(matches!(
        db.set_email(AccountId::new_random(), None, later).await,
        Err(RepoError::NotFound)
    ));
}
