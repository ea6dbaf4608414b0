//! `AccountRepo` and `AuditLog` on `Database`: the same bodies on SQLite and PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use sesame_core::account::{AccountState, NewAccount};
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::error::RepoError;
use sesame_core::ids::{AccountId, Affiliation, Email, LoginName};
use sesame_core::ports::{AccountRepo, AuditLog};
use sesame_lifecycle::activation::ports::{ActivationTokenRepo, Consumption, NewToken, TokenKind};
use sesame_store::testing::{
    fresh_postgres, fresh_sqlite, skip_or_fail, test_database_url, PgSchemaGuard, SqliteFileGuard,
};
use sesame_store::{Database, DatabaseBackend, StoreSetupError};
use time::macros::datetime;
use time::OffsetDateTime;

/// The first migration, which every fresh database must get.
const FOUNDATION: &str = "2026-11-22-000001_foundation";

/// A fixed point in time; tests move from it explicitly.
const T0: OffsetDateTime = datetime!(2026-11-22 10:00:00 UTC);

fn at(secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(secs)
}

/// Migrates a fresh database, checking that the first migration was applied.
async fn migrated(db: Database) -> Database {
    let applied = db.run_migrations().await.unwrap();
    assert_eq!(applied.first().map(String::as_str), Some(FOUNDATION));
    db
}

/// A migrated database in a fresh SQLite file.
async fn sqlite_db() -> (Database, SqliteFileGuard) {
    let (url, guard) = fresh_sqlite();
    let db = Database::connect(&url, 4).await.unwrap();
    assert_eq!(db.backend(), DatabaseBackend::Sqlite);
    (migrated(db).await, guard)
}

/// A migrated database in a fresh PostgreSQL schema, or `None` (test skipped) if PostgreSQL
/// does not answer.
async fn postgres_db() -> Option<(Database, PgSchemaGuard)> {
    let (url, guard) = match fresh_postgres(&test_database_url()).await {
        Ok(fresh) => fresh,
        Err(e) => {
            skip_or_fail("PostgreSQL", &e);
            return None;
        }
    };
    let db = Database::connect(&url, 4).await.unwrap();
    assert_eq!(db.backend(), DatabaseBackend::Postgresql);
    Some((migrated(db).await, guard))
}

/// Generates, for each body `name(db: Database)`, the tests `sqlite::name` and `postgres::name`.
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
    an_account_is_found_by_login_and_by_email_with_one_query,
    a_login_that_is_another_accounts_email_is_refused,
    a_taken_login_or_email_is_a_conflict,
    accounts_without_email_do_not_conflict,
    a_password_hash_is_stored_and_replaced,
    concurrent_password_changes_of_one_account_all_succeed,
    the_state_of_an_account_changes,
    changing_an_unknown_account_is_not_found,
    a_login_lock_is_recorded_read_and_lifted,
    concurrent_locks_of_one_login_all_succeed,
    ended_login_locks_are_purged,
    audit_events_are_listed_newest_first_and_by_login,
    audit_events_recorded_together_keep_their_order,
    activation_secrets_stored_together_replace_each_accounts_older_one,
    the_database_answers_ping,
    migrations_run_twice_apply_nothing_the_second_time,
);

fn new_account(login: &str, email: Option<&str>) -> NewAccount {
    NewAccount {
        login: LoginName::parse(login).unwrap(),
        email: email.map(|e| Email::parse(e).unwrap()),
        given_name: "Alice".to_owned(),
        family_name: "Martin".to_owned(),
        affiliation: Affiliation::Staff,
        state: AccountState::Provisioned,
    }
}

async fn an_account_is_found_by_login_and_by_email_with_one_query(db: Database) {
    // Sub-second parts are not stored: what `create` returns is what a read gives back.
    let created = db
        .create(
            new_account("alice.martin", Some("Alice.Martin@Univ.example")),
            T0 + time::Duration::milliseconds(700),
        )
        .await
        .unwrap();
    assert_eq!(created.login.as_str(), "alice.martin");
    assert_eq!(
        created.email.as_ref().map(Email::as_str),
        Some("alice.martin@univ.example")
    );
    assert_eq!(created.state, AccountState::Provisioned);
    assert_eq!(created.affiliation, Affiliation::Staff);
    assert_eq!((created.created_at, created.updated_at), (T0, T0));

    for identifier in ["alice.martin", "alice.martin@univ.example"] {
        let found = db.find_credential(identifier).await.unwrap().unwrap();
        assert_eq!(found.account, created, "{identifier}");
        assert_eq!(found.password_hash, None, "no password set yet");
    }
    assert!(db.find_credential("bob").await.unwrap().is_none());
    assert!(db.find_credential("").await.unwrap().is_none());

    let by_login = db.find_by_login(&created.login).await.unwrap();
    assert_eq!(by_login, Some(created));
    let nobody = LoginName::parse("nobody").unwrap();
    assert_eq!(db.find_by_login(&nobody).await.unwrap(), None);
}

async fn a_login_that_is_another_accounts_email_is_refused(db: Database) {
    // Logins may contain '@', and the login page takes a login or an e-mail in one field:
    // one account's login can never be another's e-mail (whichever is written second).
    let bobby = db
        .create(new_account("bobby", Some("bob@x.example")), T0)
        .await
        .unwrap();
    let bob = db.create(new_account("BOB@x.example", None), T0).await;
    assert!(
        matches!(&bob, Err(RepoError::Conflict(what)) if what == "login"),
        "{bob:?}"
    );
    let carol = db
        .create(new_account("carol@x.example", None), T0)
        .await
        .unwrap();
    let caroline = db
        .create(new_account("caroline", Some("carol@x.example")), T0)
        .await;
    assert!(
        matches!(&caroline, Err(RepoError::Conflict(what)) if what == "email"),
        "{caroline:?}"
    );
    let found = db.find_credential("bob@x.example").await.unwrap().unwrap();
    assert_eq!(found.account.id, bobby.id);
    let found = db
        .find_credential("carol@x.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account.id, carol.id);
    assert!(db.find_credential("caroline").await.unwrap().is_none());
}

async fn a_taken_login_or_email_is_a_conflict(db: Database) {
    db.create(new_account("alice", Some("alice@x.example")), T0)
        .await
        .unwrap();
    let same_login = db
        .create(new_account("ALICE", Some("other@x.example")), T0)
        .await;
    assert!(
        matches!(&same_login, Err(RepoError::Conflict(what)) if what == "login"),
        "{same_login:?}"
    );
    let same_email = db
        .create(new_account("alice2", Some("Alice@X.example")), T0)
        .await;
    assert!(
        matches!(&same_email, Err(RepoError::Conflict(what)) if what == "email"),
        "{same_email:?}"
    );
    // Nothing of the refused accounts was stored.
    assert!(db.find_credential("alice2").await.unwrap().is_none());
}

async fn accounts_without_email_do_not_conflict(db: Database) {
    db.create(new_account("pupil.one", None), T0).await.unwrap();
    db.create(new_account("pupil.two", None), T0).await.unwrap();
    let found = db.find_credential("pupil.two").await.unwrap().unwrap();
    assert_eq!(found.account.email, None);
}

async fn a_password_hash_is_stored_and_replaced(db: Database) {
    let account = db
        .create(new_account("carol", Some("carol@x.example")), T0)
        .await
        .unwrap();
    db.set_password_hash(account.id, "$argon2id$v=19$first", at(60))
        .await
        .unwrap();
    let found = db.find_credential("carol").await.unwrap().unwrap();
    assert_eq!(found.password_hash.as_deref(), Some("$argon2id$v=19$first"));
    assert_eq!(found.account.updated_at, at(60));
    assert_eq!(found.account.created_at, T0);

    db.set_password_hash(account.id, "$argon2id$v=19$second", at(120))
        .await
        .unwrap();
    let found = db
        .find_credential("carol@x.example")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        found.password_hash.as_deref(),
        Some("$argon2id$v=19$second")
    );
    assert_eq!(found.account.updated_at, at(120));
}

async fn concurrent_password_changes_of_one_account_all_succeed(db: Database) {
    let account = db.create(new_account("dave", None), T0).await.unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.set_password_hash(account.id, &format!("hash-{i}"), at(i))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let hash = db
        .find_credential("dave")
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert!(hash.starts_with("hash-"), "{hash}");
}

async fn the_state_of_an_account_changes(db: Database) {
    let account = db.create(new_account("erin", None), T0).await.unwrap();
    for (i, state) in [
        AccountState::Active,
        AccountState::Blocked,
        AccountState::Disabled,
    ]
    .into_iter()
    .enumerate()
    {
        let when = at(i64::try_from(i).unwrap() + 1);
        db.set_state(account.id, state, when).await.unwrap();
        let found = db.find_by_login(&account.login).await.unwrap().unwrap();
        assert_eq!((found.state, found.updated_at), (state, when));
    }
}

async fn changing_an_unknown_account_is_not_found(db: Database) {
    let unknown = AccountId::new_random();
    assert!(matches!(
        db.set_state(unknown, AccountState::Active, T0).await,
        Err(RepoError::NotFound)
    ));
    assert!(matches!(
        db.set_password_hash(unknown, "$argon2id$x", T0).await,
        Err(RepoError::NotFound)
    ));
}

async fn a_login_lock_is_recorded_read_and_lifted(db: Database) {
    let key = "lockout:login:alice";
    assert_eq!(db.login_locked_until(key).await.unwrap(), None);
    db.set_login_lock(key, Some(at(900))).await.unwrap();
    assert_eq!(db.login_locked_until(key).await.unwrap(), Some(at(900)));
    // Locks are per login string.
    assert_eq!(
        db.login_locked_until("lockout:login:bob").await.unwrap(),
        None
    );
    // A new lock replaces the old one; a fraction of a second rounds up (never ends early).
    db.set_login_lock(key, Some(at(1800) - time::Duration::milliseconds(300)))
        .await
        .unwrap();
    assert_eq!(db.login_locked_until(key).await.unwrap(), Some(at(1800)));
    db.set_login_lock(key, None).await.unwrap();
    assert_eq!(db.login_locked_until(key).await.unwrap(), None);
    // Lifting a lock that is not there is fine.
    db.set_login_lock(key, None).await.unwrap();
}

async fn concurrent_locks_of_one_login_all_succeed(db: Database) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                db.set_login_lock("lockout:login:race", Some(at(900 + i)))
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let until = db
        .login_locked_until("lockout:login:race")
        .await
        .unwrap()
        .unwrap();
    assert!(until >= at(900) && until < at(920), "{until}");
}

async fn ended_login_locks_are_purged(db: Database) {
    db.set_login_lock("lockout:login:old", Some(at(10)))
        .await
        .unwrap();
    db.set_login_lock("lockout:login:ending", Some(at(20)))
        .await
        .unwrap();
    db.set_login_lock("lockout:login:current", Some(at(900)))
        .await
        .unwrap();
    assert_eq!(db.purge_expired_login_locks(at(20)).await.unwrap(), 2);
    assert_eq!(
        db.login_locked_until("lockout:login:old").await.unwrap(),
        None
    );
    assert_eq!(
        db.login_locked_until("lockout:login:current")
            .await
            .unwrap(),
        Some(at(900))
    );
}

async fn audit_events_are_listed_newest_first_and_by_login(db: Database) {
    let alice = db.create(new_account("alice", None), T0).await.unwrap();
    let ip = Some("192.0.2.7".parse().unwrap());
    let events = [
        AuditEvent::new(AuditKind::LoginFailed, at(0), "self")
            .login("alice")
            .ip(ip),
        // Two events in the same second keep the order they were recorded in.
        AuditEvent::new(AuditKind::LoginFailed, at(1), "self").login("alice"),
        AuditEvent::new(AuditKind::LoginSucceeded, at(1), "self")
            .login("alice")
            .account(alice.id)
            .detail(serde_json::json!({ "service": "https://app.example/", "n": [1, 2] })),
        AuditEvent::new(AuditKind::LoginFailed, at(2), "self").login("bob"),
        AuditEvent::new(AuditKind::AccountCreated, at(3), "cli"),
    ];
    for event in &events {
        db.record(event.clone()).await.unwrap();
    }

    let all = db.recent(None, 100).await.unwrap();
    let expected: Vec<_> = events.iter().rev().cloned().collect();
    assert_eq!(all, expected);

    let for_alice = db.recent(Some("alice"), 100).await.unwrap();
    assert_eq!(
        for_alice,
        vec![events[2].clone(), events[1].clone(), events[0].clone()]
    );
    assert_eq!(for_alice[0].account_id, Some(alice.id));
    assert_eq!(for_alice[2].ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(for_alice[0].detail["n"][1], 2);

    assert_eq!(
        db.recent(Some("alice"), 2).await.unwrap(),
        vec![events[2].clone(), events[1].clone()]
    );
    assert!(db.recent(Some("nobody"), 10).await.unwrap().is_empty());
    assert!(db.recent(None, 0).await.unwrap().is_empty());
    assert!(db.recent(None, -5).await.unwrap().is_empty());
}

async fn audit_events_recorded_together_keep_their_order(db: Database) {
    db.record(AuditEvent::new(AuditKind::ImportCompleted, at(0), "cli"))
        .await
        .unwrap();
    // More than one multi-row statement's worth, all in the same second.
    let together: Vec<AuditEvent> = (0..1_203)
        .map(|n| {
            AuditEvent::new(AuditKind::AccountCreated, at(1), "cli")
                .login(format!("person{n}").as_str())
                .detail(serde_json::json!({ "n": n }))
        })
        .collect();
    db.record_many(together.clone()).await.unwrap();
    db.record_many(Vec::new()).await.unwrap();

    let listed = db.recent(None, 10_000).await.unwrap();
    assert_eq!(listed.len(), 1_204);
    let expected: Vec<_> = together.iter().rev().cloned().collect();
    assert_eq!(listed[..1_203], expected[..]);
    assert_eq!(listed[1_203].kind, "import.completed");
}

async fn activation_secrets_stored_together_replace_each_accounts_older_one(db: Database) {
    let alice = db.create(new_account("alice", None), T0).await.unwrap();
    let bob = db.create(new_account("bob", None), T0).await.unwrap();
    let token = |hash: &str, account: AccountId, secs: i64| NewToken {
        token_hash: hash.to_owned(),
        account_id: account,
        kind: TokenKind::Link,
        created_at: at(secs),
        expires_at: at(secs + 3_600),
        detail: Some("someone@example.org".to_owned()),
    };
    db.insert_token(token("old-alice", alice.id, 0), true)
        .await
        .unwrap();
    db.insert_tokens(
        vec![
            token("new-alice", alice.id, 10),
            token("new-bob", bob.id, 10),
        ],
        true,
    )
    .await
    .unwrap();
    assert_eq!(
        db.live_token(alice.id, TokenKind::Link, at(20))
            .await
            .unwrap(),
        Some("new-alice".to_owned())
    );
    assert_eq!(
        db.live_token(bob.id, TokenKind::Link, at(20))
            .await
            .unwrap(),
        Some("new-bob".to_owned())
    );
    assert!(!matches!(
        db.consume_token(TokenKind::Link, "old-alice", at(20))
            .await
            .unwrap(),
        Consumption::Consumed { .. }
    ));
    // A hash already there: nothing of the batch is stored.
    let clash = db
        .insert_tokens(
            vec![
                token("newest-bob", bob.id, 30),
                token("new-alice", alice.id, 30),
            ],
            true,
        )
        .await;
    assert!(matches!(clash, Err(RepoError::Conflict(_))), "{clash:?}");
    assert_eq!(
        db.live_token(bob.id, TokenKind::Link, at(40))
            .await
            .unwrap(),
        Some("new-bob".to_owned())
    );
    db.insert_tokens(Vec::new(), true).await.unwrap();
}

async fn the_database_answers_ping(db: Database) {
    db.ping().await.unwrap();
}

async fn migrations_run_twice_apply_nothing_the_second_time(db: Database) {
    // The fixture applied them once already.
    assert_eq!(db.run_migrations().await.unwrap(), Vec::<String>::new());
    assert_eq!(db.run_migrations().await.unwrap(), Vec::<String>::new());
    db.ping().await.unwrap();
}

// --- Backend-specific behaviour ---

#[tokio::test]
async fn unsupported_database_urls_are_refused() {
    for url in ["mysql://localhost/x", "sqlite://", "data/sesame.db", ""] {
        let result = Database::connect(url, 1).await;
        assert!(
            matches!(result, Err(StoreSetupError::UnsupportedUrl)),
            "{url}: {result:?}"
        );
    }
}

#[tokio::test]
async fn the_sqlite_file_and_its_directory_are_created_and_data_persists() {
    let (url, _guard) = fresh_sqlite();
    let path = url.strip_prefix("sqlite://").unwrap().to_owned();
    assert!(!std::path::Path::new(&path).exists());
    let db = migrated(Database::connect(&url, 2).await.unwrap()).await;
    db.create(new_account("frank", None), T0).await.unwrap();
    drop(db);
    assert!(std::path::Path::new(&path).exists());

    let reopened = Database::connect(&url, 2).await.unwrap();
    assert!(reopened.run_migrations().await.unwrap().is_empty());
    assert!(reopened.find_credential("frank").await.unwrap().is_some());
}

#[tokio::test]
async fn a_database_that_never_answers_fails_fast() {
    // Accepts TCP connections and never says a word.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let holder = Arc::clone(&held);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            holder.lock().unwrap().push(stream);
        }
    });
    let started = Instant::now();
    let result = Database::connect(&format!("postgres://postgres@127.0.0.1:{port}/x"), 2).await;
    assert!(
        matches!(result, Err(StoreSetupError::Connect(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[derive(QueryableByName)]
struct CurrentSchema {
    #[diesel(sql_type = diesel::sql_types::Text)]
    schema: String,
}

#[tokio::test]
async fn a_fresh_postgres_url_selects_its_own_schema_which_is_dropped_afterwards() {
    let base = test_database_url();
    let (url, guard) = match fresh_postgres(&base).await {
        Ok(fresh) => fresh,
        Err(e) => return skip_or_fail("PostgreSQL", &e),
    };
    let schema = guard.schema().to_owned();
    let (url2, schema2) = (url.clone(), schema.clone());
    tokio::task::spawn_blocking(move || {
        let mut conn = diesel::PgConnection::establish(&url2).unwrap();
        let current: CurrentSchema = diesel::sql_query("SELECT current_schema() AS schema")
            .get_result(&mut conn)
            .unwrap();
        assert_eq!(current.schema, schema2);
    })
    .await
    .unwrap();

    drop(guard);
    let exists = tokio::task::spawn_blocking(move || {
        let mut conn = diesel::PgConnection::establish(&base).unwrap();
        diesel::sql_query("SELECT nspname AS schema FROM pg_namespace WHERE nspname = $1")
            .bind::<diesel::sql_types::Text, _>(&schema)
            .load::<CurrentSchema>(&mut conn)
            .unwrap()
    })
    .await
    .unwrap();
    assert!(exists.is_empty(), "schema still there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_pool_recovers_when_its_connections_are_killed() {
    let base = test_database_url();
    let (url, guard) = match fresh_postgres(&base).await {
        Ok(fresh) => fresh,
        Err(e) => return skip_or_fail("PostgreSQL", &e),
    };
    // A name of our own, so only this test's connections are killed.
    let name = format!("sesame-{}", &guard.schema()[2..]);
    let db = Database::connect(&format!("{url}&application_name={name}"), 3)
        .await
        .unwrap();
    let db = migrated(db).await;
    // Open several pooled connections.
    let pings: Vec<_> = (0..6)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { db.ping().await })
        })
        .collect();
    for ping in pings {
        ping.await.unwrap().unwrap();
    }

    let killer_name = name.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = diesel::PgConnection::establish(&base).unwrap();
        conn.batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{killer_name}'"
        ))
        .unwrap();
    })
    .await
    .unwrap();

    // Each checkout tests the connection and replaces a dead one: no request sees the outage.
    let mut seen = HashSet::new();
    for i in 0..6 {
        seen.insert(db.ping().await.map_err(|e| e.to_string()));
        db.set_login_lock("lockout:login:x", Some(at(i)))
            .await
            .unwrap();
    }
    assert_eq!(seen, HashSet::from([Ok(())]));
}
