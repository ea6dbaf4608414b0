//! `SigningKeyRepo` and `ConsentRepo` on `Database`: the same bodies on SQLite and PostgreSQL.

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use sesame_core::account::{AccountState, NewAccount};
use sesame_core::error::RepoError;
use sesame_core::ids::{AccountId, Affiliation, LoginName};
use sesame_core::ports::{AccountRepo, Consent, ConsentRepo, SigningKeyRecord, SigningKeyRepo};
use sesame_store::testing::{
    fresh_postgres, fresh_sqlite, skip_or_fail, test_database_url, PgSchemaGuard, SqliteFileGuard,
};
use sesame_store::{Database, DatabaseBackend};
use time::macros::datetime;
use time::OffsetDateTime;

/// A fixed point in time; tests move from it explicitly.
const T0: OffsetDateTime = datetime!(2026-11-27 10:00:00 UTC);

/// The migration that adds the tables under test.
const OIDC: &str = "2026-11-27-000001_oidc";

fn at(secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(secs)
}

/// Migrates a fresh database, checking that this migration was applied.
async fn migrated(db: Database) -> Database {
    let applied = db.run_migrations().await.unwrap();
    assert!(applied.iter().any(|m| m == OIDC), "{applied:?}");
    db
}

/// A migrated database in a fresh SQLite file, and its URL.
async fn sqlite_db() -> (Database, String, SqliteFileGuard) {
    let (url, guard) = fresh_sqlite();
    let db = Database::connect(&url, 4).await.unwrap();
    assert_eq!(db.backend(), DatabaseBackend::Sqlite);
    (migrated(db).await, url, guard)
}

/// A migrated database in a fresh PostgreSQL schema, and its URL, or `None` (test skipped, or
/// failed under `CI=true`, as every store test) if PostgreSQL does not answer.
async fn postgres_db() -> Option<(Database, String, PgSchemaGuard)> {
    let (url, guard) = match fresh_postgres(&test_database_url()).await {
        Ok(fresh) => fresh,
        Err(e) => {
            skip_or_fail("PostgreSQL", &e);
            return None;
        }
    };
    let db = Database::connect(&url, 4).await.unwrap();
    assert_eq!(db.backend(), DatabaseBackend::Postgresql);
    Some((migrated(db).await, url, guard))
}

/// Generates, for each body `name(db: Database, url: String)`, the tests `sqlite::name` and
/// `postgres::name`.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (db, url, _guard) = super::sqlite_db().await;
                    super::$name(db, url).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((db, url, _guard)) = super::postgres_db().await else {
                        return;
                    };
                    super::$name(db, url).await;
                }
            )*
        }
    };
}

on_both_databases!(
    signing_keys_are_listed_newest_first_by_creation_then_kid,
    a_private_key_round_trips_byte_for_byte,
    a_duplicate_kid_is_a_conflict,
    retiring_touches_only_unretired_keys_of_the_alg_except_the_new_one,
    keys_are_purged_once_their_publication_ended,
    a_consent_is_saved_found_and_replaced,
    consents_of_an_account_are_listed_by_client_id,
    a_revoked_consent_is_gone,
    a_consent_for_an_unknown_account_is_not_found,
    scopes_that_cannot_be_stored_faithfully_are_refused,
    deleting_an_account_deletes_its_consents,
);

fn key(kid: &str, alg: &str, created: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg: alg.to_owned(),
        private_pkcs8_der: format!("der of {kid}").into_bytes(),
        public_jwk: format!(r#"{{"kty":"RSA","kid":"{kid}","alg":"{alg}","use":"sig"}}"#),
        created_at: at(created),
        active_from: at(created + 60),
        retired_at: None,
        publish_until: None,
    }
}

fn kids(keys: &[SigningKeyRecord]) -> Vec<&str> {
    keys.iter().map(|k| k.kid.as_str()).collect()
}

async fn find_key(db: &Database, kid: &str) -> SigningKeyRecord {
    db.signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == kid)
        .unwrap()
}

async fn signing_keys_are_listed_newest_first_by_creation_then_kid(db: Database, _url: String) {
    assert!(db.signing_keys().await.unwrap().is_empty());
    let mut retired = key("k-retired", "ES256", 20);
    retired.retired_at = Some(at(500));
    retired.publish_until = Some(at(900));
    // Inserted out of order; two share a creation second.
    let inserted = [
        key("k-b", "RS256", 10),
        retired,
        key("k-old", "EdDSA", 0),
        key("k-c", "RS256", 10),
        key("k-a", "ES256", 10),
    ];
    for k in &inserted {
        db.insert_signing_key(k.clone()).await.unwrap();
    }
    let listed = db.signing_keys().await.unwrap();
    assert_eq!(kids(&listed), ["k-retired", "k-c", "k-b", "k-a", "k-old"]);
    // Every field reads back as written.
    for k in &inserted {
        assert_eq!(listed.iter().find(|l| l.kid == k.kid), Some(k));
    }
}

async fn a_private_key_round_trips_byte_for_byte(db: Database, _url: String) {
    // Every byte value (NUL, invalid UTF-8), at the size of an RSA-4096 PKCS#8 key.
    let der: Vec<u8> = (0..2374_u32).map(|i| (i % 256) as u8).rev().collect();
    let mut k = key("k-bytes", "RS256", 0);
    k.private_pkcs8_der.clone_from(&der);
    db.insert_signing_key(k.clone()).await.unwrap();
    let read = find_key(&db, "k-bytes").await;
    assert_eq!(read.private_pkcs8_der, der);
    assert_eq!(read, k);
    // Debug never shows the private key.
    assert!(!format!("{read:?}").contains("private"), "{read:?}");
}

async fn a_duplicate_kid_is_a_conflict(db: Database, _url: String) {
    db.insert_signing_key(key("k1", "RS256", 0)).await.unwrap();
    let again = db.insert_signing_key(key("k1", "ES256", 30)).await;
    assert!(
        matches!(&again, Err(RepoError::Conflict(what)) if what == "kid"),
        "{again:?}"
    );
    let listed = db.signing_keys().await.unwrap();
    assert_eq!(listed, vec![key("k1", "RS256", 0)]);
}

async fn retiring_touches_only_unretired_keys_of_the_alg_except_the_new_one(
    db: Database,
    _url: String,
) {
    let mut earlier = key("rs-earlier", "RS256", 0);
    earlier.retired_at = Some(at(5));
    earlier.publish_until = Some(at(100));
    let keys = [
        earlier,
        key("rs-current", "RS256", 10),
        key("rs-other", "RS256", 15),
        key("rs-new", "RS256", 20),
        key("es-current", "ES256", 10),
    ];
    for k in &keys {
        db.insert_signing_key(k.clone()).await.unwrap();
    }

    let retired = db
        .retire_signing_keys("RS256", "rs-new", at(80), at(3680))
        .await
        .unwrap();
    assert_eq!(retired, 2);
    for kid in ["rs-current", "rs-other"] {
        let k = find_key(&db, kid).await;
        assert_eq!(
            (k.retired_at, k.publish_until),
            (Some(at(80)), Some(at(3680)))
        );
    }
    // The already retired key, the new key and the other algorithm's key are untouched.
    for k in [&keys[0], &keys[3], &keys[4]] {
        assert_eq!(&find_key(&db, &k.kid).await, k);
    }

    // Nothing left to retire.
    let again = db
        .retire_signing_keys("RS256", "rs-new", at(90), at(9999))
        .await
        .unwrap();
    assert_eq!(again, 0);
    assert_eq!(find_key(&db, "rs-current").await.retired_at, Some(at(80)));
    // An algorithm without keys.
    assert_eq!(
        db.retire_signing_keys("EdDSA", "x", at(90), at(99))
            .await
            .unwrap(),
        0
    );
}

async fn keys_are_purged_once_their_publication_ended(db: Database, _url: String) {
    for (kid, until) in [
        ("ended", Some(at(10))),
        ("ending", Some(at(20))),
        // A fraction of a second rounds up: never unpublished early.
        ("later", Some(at(21) - time::Duration::milliseconds(300))),
        ("active", None),
    ] {
        let mut k = key(kid, "RS256", 0);
        k.retired_at = until.map(|_| at(1));
        k.publish_until = until;
        db.insert_signing_key(k).await.unwrap();
    }
    assert_eq!(find_key(&db, "later").await.publish_until, Some(at(21)));
    assert_eq!(
        db.purge_unpublished_signing_keys(at(20) + time::Duration::milliseconds(999))
            .await
            .unwrap(),
        2
    );
    let mut left = kids(&db.signing_keys().await.unwrap())
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    left.sort();
    assert_eq!(left, ["active", "later"]);
    assert_eq!(db.purge_unpublished_signing_keys(at(20)).await.unwrap(), 0);
    assert_eq!(db.purge_unpublished_signing_keys(at(21)).await.unwrap(), 1);
    assert_eq!(kids(&db.signing_keys().await.unwrap()), ["active"]);
}

fn new_account(login: &str) -> NewAccount {
    NewAccount {
        login: LoginName::parse(login).unwrap(),
        email: None,
        given_name: "Alice".to_owned(),
        family_name: "Martin".to_owned(),
        affiliation: Affiliation::Staff,
        state: AccountState::Active,
    }
}

fn consent(account_id: AccountId, client_id: &str, scopes: &[&str], granted: i64) -> Consent {
    Consent {
        account_id,
        client_id: client_id.to_owned(),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        granted_at: at(granted),
    }
}

async fn a_consent_is_saved_found_and_replaced(db: Database, _url: String) {
    let alice = db.create(new_account("alice"), T0).await.unwrap();
    assert_eq!(db.find_consent(alice.id, "app").await.unwrap(), None);

    let first = consent(alice.id, "app", &["email", "openid"], 10);
    db.save_consent(first.clone()).await.unwrap();
    assert_eq!(db.find_consent(alice.id, "app").await.unwrap(), Some(first));
    assert_eq!(db.find_consent(alice.id, "other").await.unwrap(), None);

    // Saving again replaces scopes and time; scopes come back sorted, without duplicates,
    // and the time in whole seconds.
    let mut second = consent(
        alice.id,
        "app",
        &["profile", "openid", "email", "openid"],
        60,
    );
    second.granted_at += time::Duration::milliseconds(400);
    db.save_consent(second).await.unwrap();
    assert_eq!(
        db.find_consent(alice.id, "app").await.unwrap(),
        Some(consent(
            alice.id,
            "app",
            &["email", "openid", "profile"],
            60
        ))
    );

    // No scopes at all is a consent too.
    db.save_consent(consent(alice.id, "app", &[], 70))
        .await
        .unwrap();
    assert_eq!(
        db.find_consent(alice.id, "app").await.unwrap(),
        Some(consent(alice.id, "app", &[], 70))
    );
    assert_eq!(db.consents_of(alice.id).await.unwrap().len(), 1);
}

async fn consents_of_an_account_are_listed_by_client_id(db: Database, _url: String) {
    let alice = db.create(new_account("alice"), T0).await.unwrap();
    let bob = db.create(new_account("bob"), T0).await.unwrap();
    assert!(db.consents_of(alice.id).await.unwrap().is_empty());
    for client in ["wiki", "ent", "mail"] {
        db.save_consent(consent(alice.id, client, &["openid"], 1))
            .await
            .unwrap();
    }
    db.save_consent(consent(bob.id, "bank", &["openid"], 2))
        .await
        .unwrap();
    assert_eq!(
        db.consents_of(alice.id).await.unwrap(),
        vec![
            consent(alice.id, "ent", &["openid"], 1),
            consent(alice.id, "mail", &["openid"], 1),
            consent(alice.id, "wiki", &["openid"], 1),
        ]
    );
    assert_eq!(
        db.consents_of(bob.id).await.unwrap(),
        vec![consent(bob.id, "bank", &["openid"], 2)]
    );
    assert!(db
        .consents_of(AccountId::new_random())
        .await
        .unwrap()
        .is_empty());
}

async fn a_revoked_consent_is_gone(db: Database, _url: String) {
    let alice = db.create(new_account("alice"), T0).await.unwrap();
    db.save_consent(consent(alice.id, "app", &["openid"], 1))
        .await
        .unwrap();
    db.save_consent(consent(alice.id, "wiki", &["openid"], 1))
        .await
        .unwrap();
    assert!(db.revoke_consent(alice.id, "app").await.unwrap());
    assert_eq!(db.find_consent(alice.id, "app").await.unwrap(), None);
    assert!(!db.revoke_consent(alice.id, "app").await.unwrap());
    assert!(!db
        .revoke_consent(AccountId::new_random(), "wiki")
        .await
        .unwrap());
    // The other client's consent stays.
    assert_eq!(
        db.consents_of(alice.id).await.unwrap(),
        vec![consent(alice.id, "wiki", &["openid"], 1)]
    );
}

async fn a_consent_for_an_unknown_account_is_not_found(db: Database, _url: String) {
    let unknown = AccountId::new_random();
    let saved = db
        .save_consent(consent(unknown, "app", &["openid"], 1))
        .await;
    assert!(matches!(saved, Err(RepoError::NotFound)), "{saved:?}");
    assert!(db.consents_of(unknown).await.unwrap().is_empty());
}

async fn scopes_that_cannot_be_stored_faithfully_are_refused(db: Database, _url: String) {
    let alice = db.create(new_account("alice"), T0).await.unwrap();
    for scopes in [&["openid email"][..], &["openid", ""], &["openid\tx"]] {
        let saved = db.save_consent(consent(alice.id, "app", scopes, 1)).await;
        assert!(matches!(saved, Err(RepoError::Corrupt(_))), "{saved:?}");
    }
    assert_eq!(db.find_consent(alice.id, "app").await.unwrap(), None);
}

async fn deleting_an_account_deletes_its_consents(db: Database, url: String) {
    // `AccountRepo` deletes no account; an operator (or a later port) may, directly in SQL.
    let alice = db.create(new_account("alice"), T0).await.unwrap();
    let bob = db.create(new_account("bob"), T0).await.unwrap();
    for (account, client) in [(alice.id, "app"), (alice.id, "wiki"), (bob.id, "app")] {
        db.save_consent(consent(account, client, &["openid"], 1))
            .await
            .unwrap();
    }
    let delete = format!("DELETE FROM accounts WHERE id = '{}'", alice.id);
    let backend = db.backend();
    tokio::task::spawn_blocking(move || match backend {
        DatabaseBackend::Postgresql => PgConnection::establish(&url)
            .unwrap()
            .batch_execute(&delete)
            .unwrap(),
        DatabaseBackend::Sqlite => {
            let path = url.strip_prefix("sqlite://").unwrap();
            SqliteConnection::establish(path)
                .unwrap()
                .batch_execute(&format!("PRAGMA foreign_keys = ON; {delete}"))
                .unwrap();
        }
    })
    .await
    .unwrap();
    assert_eq!(db.find_by_login(&alice.login).await.unwrap(), None);
    assert!(db.consents_of(alice.id).await.unwrap().is_empty());
    assert_eq!(db.consents_of(bob.id).await.unwrap().len(), 1);
}
