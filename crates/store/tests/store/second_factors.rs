//! `SecondFactorRepo` on `Database` (second factors and recovery codes, issue 15): the same
//! bodies on SQLite and PostgreSQL.

use sesame_core::account::{AccountState, NewAccount};
use sesame_core::ids::{AccountId, Affiliation, LoginName};
use sesame_core::ports::AccountRepo;
use sesame_mfa::factors::{FactorKind, SecondFactorRecord, SecondFactorRepo};
use sesame_store::testing::{
    fresh_postgres, fresh_sqlite, skip_or_fail, test_database_url, PgSchemaGuard, SqliteFileGuard,
};
use sesame_store::Database;
use time::macros::datetime;
use time::OffsetDateTime;

const T0: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

/// The migration that adds the tables under test.
const SECOND_FACTORS: &str = "2026-12-06-000002_mfa_grace";

fn at(secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(secs)
}

async fn migrated(db: Database) -> Database {
    let applied = db.run_migrations().await.unwrap();
    assert!(applied.iter().any(|m| m == SECOND_FACTORS), "{applied:?}");
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
    logins_without_a_required_factor_are_counted_per_account,
    factors_and_recovery_codes_are_kept_listed_used_once_and_removed,
    removing_the_last_factor_takes_the_recovery_codes_and_other_accounts_keep_theirs,
);

async fn account(db: &Database, login: &str) -> AccountId {
    db.create(
        NewAccount {
            login: LoginName::parse(login).unwrap(),
            email: None,
            given_name: "Test".to_owned(),
            family_name: "Person".to_owned(),
            affiliation: Affiliation::Parent,
            state: AccountState::Active,
        },
        T0,
    )
    .await
    .unwrap()
    .id
}

fn factor(id: &str, account: AccountId, secs: i64) -> SecondFactorRecord {
    SecondFactorRecord {
        id: id.to_owned(),
        account_id: account,
        kind: FactorKind::Totp,
        label: format!("Téléphone {id}"),
        sealed_secret: format!("k1:sealed-{id}"),
        created_at: at(secs),
        last_used_at: None,
    }
}

fn hashes(prefix: char) -> Vec<String> {
    (0..10).map(|i| format!("{prefix}{i}").repeat(32)).collect()
}

async fn factors_and_recovery_codes_are_kept_listed_used_once_and_removed(db: Database) {
    let person = account(&db, "mfa.one").await;
    assert!(db.factors(person).await.unwrap().is_empty());
    db.add_factor(&factor("f1", person, 0), Some(&hashes('a')))
        .await
        .unwrap();
    db.add_factor(&factor("f2", person, 10), None)
        .await
        .unwrap();
    let listed = db.factors(person).await.unwrap();
    assert_eq!(
        listed,
        vec![factor("f1", person, 0), factor("f2", person, 10)]
    );
    assert_eq!(db.recovery_codes(person).await.unwrap().len(), 10);
    db.touch_factor("f2", at(99)).await.unwrap();
    assert_eq!(
        db.factors(person).await.unwrap()[1].last_used_at,
        Some(at(99))
    );
    // A recovery code is used once, even by two at a time.
    let code = hashes('a')[4].clone();
    let (one, two) = tokio::join!(
        db.use_recovery_code(person, &code),
        db.use_recovery_code(person, &code)
    );
    assert!(one.unwrap() ^ two.unwrap(), "exactly one use");
    assert_eq!(db.recovery_codes(person).await.unwrap().len(), 9);
    // New codes replace the old ones.
    db.replace_recovery_codes(person, &hashes('b'), at(200))
        .await
        .unwrap();
    assert_eq!(db.recovery_codes(person).await.unwrap(), {
        let mut h = hashes('b');
        h.sort();
        h
    });
    assert!(!db.use_recovery_code(person, &hashes('a')[0]).await.unwrap());
    assert_eq!(db.remove_all_factors(person).await.unwrap(), 2);
    assert!(db.factors(person).await.unwrap().is_empty());
    assert!(db.recovery_codes(person).await.unwrap().is_empty());
}

async fn removing_the_last_factor_takes_the_recovery_codes_and_other_accounts_keep_theirs(
    db: Database,
) {
    let person = account(&db, "mfa.two").await;
    let other = account(&db, "mfa.three").await;
    db.add_factor(&factor("p1", person, 0), Some(&hashes('c')))
        .await
        .unwrap();
    db.add_factor(&factor("p2", person, 1), None).await.unwrap();
    db.add_factor(&factor("o1", other, 0), Some(&hashes('d')))
        .await
        .unwrap();
    // Another account's factor id removes nothing.
    assert!(!db.remove_factor(person, "o1").await.unwrap());
    assert!(db.remove_factor(person, "p1").await.unwrap());
    assert_eq!(db.recovery_codes(person).await.unwrap().len(), 10);
    assert!(db.remove_factor(person, "p2").await.unwrap());
    assert!(db.recovery_codes(person).await.unwrap().is_empty());
    assert_eq!(db.factors(other).await.unwrap().len(), 1);
    assert_eq!(db.recovery_codes(other).await.unwrap().len(), 10);
}

async fn logins_without_a_required_factor_are_counted_per_account(db: Database) {
    let person = account(&db, "grace.one").await;
    let other = account(&db, "grace.two").await;
    assert_eq!(db.grace_logins(person).await.unwrap(), 0);
    assert_eq!(db.count_grace_login(person, at(0)).await.unwrap(), 1);
    assert_eq!(db.count_grace_login(person, at(5)).await.unwrap(), 2);
    assert_eq!(db.grace_logins(person).await.unwrap(), 2);
    assert_eq!(db.grace_logins(other).await.unwrap(), 0);
}
