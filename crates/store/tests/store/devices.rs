//! `KnownDeviceRepo` on `Database` (known devices, security spec decision 1): the same bodies
//! on SQLite and PostgreSQL.

use sesame_core::account::{AccountState, NewAccount};
use sesame_core::ids::{AccountId, Affiliation, LoginName};
use sesame_core::ports::{AccountRepo, KnownDeviceRepo};
use sesame_store::testing::{
    fresh_postgres, fresh_sqlite, skip_or_fail, test_database_url, PgSchemaGuard, SqliteFileGuard,
};
use sesame_store::Database;
use time::macros::datetime;
use time::OffsetDateTime;

const T0: OffsetDateTime = datetime!(2026-12-01 10:00:00 UTC);

/// The migration that adds the table under test.
const KNOWN_DEVICES: &str = "2026-12-01-001301_known_devices";

fn at(secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(secs)
}

async fn migrated(db: Database) -> Database {
    let applied = db.run_migrations().await.unwrap();
    assert!(applied.iter().any(|m| m == KNOWN_DEVICES), "{applied:?}");
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
    a_device_is_found_by_its_token_for_every_account_it_logged_in_to,
    a_device_lock_is_set_read_and_lifted_with_the_accounts_other_locks,
    devices_unseen_for_their_lifetime_are_purged,
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

fn ids(devices: &[sesame_core::ports::KnownDevice]) -> Vec<AccountId> {
    let mut ids: Vec<_> = devices.iter().map(|d| d.account_id).collect();
    ids.sort_by_key(ToString::to_string);
    ids
}

async fn a_device_is_found_by_its_token_for_every_account_it_logged_in_to(db: Database) {
    let parent = account(&db, "parent.one").await;
    let child = account(&db, "child.one").await;
    let family = "a".repeat(64);
    assert!(db.devices_by_token(&family).await.unwrap().is_empty());
    db.remember_device(&family, parent, at(0)).await.unwrap();
    db.remember_device(&family, child, at(5)).await.unwrap();
    // A second login moves last_seen on, keeps first_seen.
    db.remember_device(&family, parent, at(60)).await.unwrap();
    let found = db.devices_by_token(&family).await.unwrap();
    let mut expected = vec![parent, child];
    expected.sort_by_key(ToString::to_string);
    assert_eq!(ids(&found), expected);
    let record = found.iter().find(|d| d.account_id == parent).unwrap();
    assert_eq!((record.first_seen, record.last_seen), (at(0), at(60)));
    assert_eq!(record.locked_until, None);
    // Another token is another device.
    assert!(db
        .devices_by_token(&"b".repeat(64))
        .await
        .unwrap()
        .is_empty());
    // Concurrent first logins of one device record it once.
    let laptop = "c".repeat(64);
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let db = db.clone();
            let laptop = laptop.clone();
            tokio::spawn(async move { db.remember_device(&laptop, parent, at(i)).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(db.devices_by_token(&laptop).await.unwrap().len(), 1);
}

async fn a_device_lock_is_set_read_and_lifted_with_the_accounts_other_locks(db: Database) {
    let parent = account(&db, "parent.two").await;
    let other = account(&db, "other.two").await;
    let (laptop, phone) = ("d".repeat(64), "e".repeat(64));
    for (device, owner) in [(&laptop, parent), (&phone, parent), (&laptop, other)] {
        db.remember_device(device, owner, T0).await.unwrap();
    }
    // A fraction of a second rounds up: a lock never ends early.
    db.set_device_lock(
        &laptop,
        parent,
        Some(at(900) - time::Duration::milliseconds(200)),
    )
    .await
    .unwrap();
    db.set_device_lock(&laptop, other, Some(at(900)))
        .await
        .unwrap();
    let lock_of = |devices: Vec<sesame_core::ports::KnownDevice>, who: AccountId| {
        devices
            .into_iter()
            .find(|d| d.account_id == who)
            .and_then(|d| d.locked_until)
    };
    assert_eq!(
        lock_of(db.devices_by_token(&laptop).await.unwrap(), parent),
        Some(at(900))
    );
    // Lifting the account's locks returns all its devices, and leaves other accounts alone.
    let mut hashes = db.clear_device_locks(parent).await.unwrap();
    hashes.sort();
    assert_eq!(hashes, [laptop.clone(), phone.clone()]);
    assert_eq!(
        lock_of(db.devices_by_token(&laptop).await.unwrap(), parent),
        None
    );
    assert_eq!(
        lock_of(db.devices_by_token(&laptop).await.unwrap(), other),
        Some(at(900))
    );
    db.set_device_lock(&laptop, other, None).await.unwrap();
    assert_eq!(
        lock_of(db.devices_by_token(&laptop).await.unwrap(), other),
        None
    );
}

async fn devices_unseen_for_their_lifetime_are_purged(db: Database) {
    let parent = account(&db, "parent.three").await;
    let (old, recent) = ("f".repeat(64), "0".repeat(64));
    db.remember_device(&old, parent, at(0)).await.unwrap();
    db.remember_device(&recent, parent, at(100)).await.unwrap();
    assert_eq!(db.purge_devices(at(50)).await.unwrap(), 1);
    assert!(db.devices_by_token(&old).await.unwrap().is_empty());
    assert_eq!(db.devices_by_token(&recent).await.unwrap().len(), 1);
}
