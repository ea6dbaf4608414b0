//! `MailQueue` on `Database`: the same bodies on SQLite and PostgreSQL.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use sesame_core::error::RepoError;
use sesame_core::ids::Email;
use sesame_core::mail::{MailCounts, MailId, MailStatus, OutgoingMail};
use sesame_core::ports::MailQueue;
use sesame_store::testing::{
    fresh_postgres, fresh_sqlite, skip_or_fail, test_database_url, PgSchemaGuard, SqliteFileGuard,
};
use sesame_store::{Database, DatabaseBackend};
use time::macros::datetime;
use time::OffsetDateTime;

/// A fixed point in time; tests move from it explicitly.
const T0: OffsetDateTime = datetime!(2026-11-27 10:00:00 UTC);

/// The migration that adds the table under test.
const MAIL_QUEUE: &str = "2026-11-27-000003_mail_queue";

/// A lease long enough that it never ends by accident within a test.
const LEASE: Duration = Duration::from_secs(600);

fn at(secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(secs)
}

async fn migrated(db: Database) -> Database {
    let applied = db.run_migrations().await.unwrap();
    assert!(applied.iter().any(|m| m == MAIL_QUEUE), "{applied:?}");
    db
}

async fn sqlite_db() -> (Database, SqliteFileGuard) {
    let (url, guard) = fresh_sqlite();
    let db = Database::connect(&url, 8).await.unwrap();
    assert_eq!(db.backend(), DatabaseBackend::Sqlite);
    (migrated(db).await, guard)
}

async fn postgres_db() -> Option<(Database, PgSchemaGuard)> {
    let (url, guard) = match fresh_postgres(&test_database_url()).await {
        Ok(fresh) => fresh,
        Err(e) => {
            skip_or_fail("PostgreSQL", &e);
            return None;
        }
    };
    let db = Database::connect(&url, 8).await.unwrap();
    assert_eq!(db.backend(), DatabaseBackend::Postgresql);
    Some((migrated(db).await, guard))
}

/// Generates, for each body `name(db: Database)`, the tests `sqlite::name` and `postgres::name`.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (db, _guard) = super::sqlite_db().await;
                    super::$name(db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
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
    a_queued_mail_is_claimed_once_until_its_lease_ends,
    a_sent_mail_loses_its_bodies_and_is_never_claimed_again,
    a_retried_mail_waits_until_its_next_attempt,
    a_failed_mail_is_kept_and_can_be_requeued,
    due_mails_are_claimed_oldest_first_within_the_limit,
    mails_are_listed_newest_first_and_by_status,
    concurrent_claims_never_hand_out_the_same_mail,
    mails_queued_together_are_each_a_mail_of_the_queue,
);

fn mail(n: usize) -> OutgoingMail {
    OutgoingMail {
        to: Email::parse(&format!("person{n}@univ.example")).unwrap(),
        subject: format!("Sujet {n} : accentué"),
        text_body: format!("https://sso.univ.example/reset?token=T{n}\n"),
        html_body: Some(format!("<p>{n}</p>")),
        kind: "password_changed".to_owned(),
        account_id: None,
    }
}

async fn a_queued_mail_is_claimed_once_until_its_lease_ends(db: Database) {
    let id = db.enqueue(mail(1), T0).await.unwrap();
    let queued = db.find_mail(id).await.unwrap().unwrap();
    assert_eq!(queued.status(), MailStatus::Pending);
    assert_eq!(queued.attempts, 0);
    assert_eq!(queued.created_at, T0);
    assert_eq!(queued.mail, mail(1));

    let claimed = db.claim_due(T0, 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, id);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].mail, mail(1));
    // Leased: nobody else gets it, not even the same worker, until the lease ends.
    assert!(db.claim_due(at(599), 10, LEASE).await.unwrap().is_empty());
    let again = db.claim_due(at(600), 10, LEASE).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        db.mail_counts().await.unwrap(),
        MailCounts {
            pending: 1,
            sent: 0,
            failed: 0
        }
    );
}

async fn a_sent_mail_loses_its_bodies_and_is_never_claimed_again(db: Database) {
    let id = db.enqueue(mail(1), T0).await.unwrap();
    db.claim_due(T0, 10, LEASE).await.unwrap();
    db.mark_sent(id, at(2)).await.unwrap();
    let sent = db.find_mail(id).await.unwrap().unwrap();
    assert_eq!(sent.status(), MailStatus::Sent);
    assert_eq!(sent.sent_at, Some(at(2)));
    assert_eq!(sent.mail.text_body, "", "the one-time link is gone");
    assert_eq!(sent.mail.html_body, None);
    assert_eq!(sent.mail.subject, mail(1).subject);
    assert_eq!(sent.attempts, 1);
    assert!(db
        .claim_due(at(100_000), 10, LEASE)
        .await
        .unwrap()
        .is_empty());
    // A late retry or failure from a worker whose lease ended changes nothing.
    db.schedule_retry(id, at(3), "late").await.unwrap();
    db.mark_failed(id, at(3), "late").await.unwrap();
    let still = db.find_mail(id).await.unwrap().unwrap();
    assert_eq!(still.status(), MailStatus::Sent);
    assert_eq!(still.last_error, None);
}

async fn a_retried_mail_waits_until_its_next_attempt(db: Database) {
    let id = db.enqueue(mail(1), T0).await.unwrap();
    db.claim_due(T0, 10, LEASE).await.unwrap();
    db.schedule_retry(id, at(60), "mail transport unavailable: connection refused")
        .await
        .unwrap();
    let waiting = db.find_mail(id).await.unwrap().unwrap();
    assert_eq!(waiting.status(), MailStatus::Pending);
    assert_eq!(waiting.attempts, 1);
    assert_eq!(waiting.next_attempt_at, at(60));
    assert_eq!(
        waiting.last_error.as_deref(),
        Some("mail transport unavailable: connection refused")
    );
    // The retry clears the lease: due at 60 s, not when the lease would have ended.
    assert!(db.claim_due(at(59), 10, LEASE).await.unwrap().is_empty());
    let claimed = db.claim_due(at(60), 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 2);
    // Sub-second retry times round up: never early.
    db.schedule_retry(id, at(120) + time::Duration::milliseconds(300), "again")
        .await
        .unwrap();
    assert!(db.claim_due(at(120), 10, LEASE).await.unwrap().is_empty());
    assert_eq!(db.claim_due(at(121), 10, LEASE).await.unwrap().len(), 1);
}

async fn a_failed_mail_is_kept_and_can_be_requeued(db: Database) {
    let id = db.enqueue(mail(1), T0).await.unwrap();
    db.claim_due(T0, 10, LEASE).await.unwrap();
    let long_error = format!("mail refused: 550 {}\r\nsecond line", "x".repeat(600));
    db.mark_failed(id, at(5), &long_error).await.unwrap();
    let failed = db.find_mail(id).await.unwrap().unwrap();
    assert_eq!(failed.status(), MailStatus::Failed);
    assert_eq!(failed.failed_at, Some(at(5)));
    assert_eq!(failed.mail, mail(1), "kept whole for the operator");
    let stored = failed.last_error.unwrap();
    assert_eq!(stored.chars().count(), 500);
    assert!(!stored.contains('\r'));
    assert!(db
        .claim_due(at(100_000), 10, LEASE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        db.mail_counts().await.unwrap(),
        MailCounts {
            pending: 0,
            sent: 0,
            failed: 1
        }
    );

    db.requeue(id, at(10)).await.unwrap();
    let pending = db.find_mail(id).await.unwrap().unwrap();
    assert_eq!(pending.status(), MailStatus::Pending);
    assert_eq!(pending.attempts, 0);
    assert_eq!(pending.next_attempt_at, at(10));
    assert_eq!(db.claim_due(at(10), 10, LEASE).await.unwrap().len(), 1);
    // Only a failed mail can be requeued.
    assert!(matches!(
        db.requeue(id, at(11)).await,
        Err(RepoError::NotFound)
    ));
    assert!(matches!(
        db.requeue(MailId::new(), at(11)).await,
        Err(RepoError::NotFound)
    ));
    assert_eq!(db.find_mail(MailId::new()).await.unwrap(), None);
}

async fn due_mails_are_claimed_oldest_first_within_the_limit(db: Database) {
    let first = db.enqueue(mail(1), at(0)).await.unwrap();
    let second = db.enqueue(mail(2), at(1)).await.unwrap();
    let third = db.enqueue(mail(3), at(2)).await.unwrap();
    let later = db.enqueue(mail(4), at(50)).await.unwrap();
    // The first one failed once and waits until 30 s: the others come first.
    db.claim_due(at(0), 1, LEASE).await.unwrap();
    db.schedule_retry(first, at(30), "busy").await.unwrap();

    let ids = |mails: Vec<sesame_core::mail::QueuedMail>| {
        mails.into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(db.claim_due(at(40), 2, LEASE).await.unwrap()),
        [second, third]
    );
    assert_eq!(ids(db.claim_due(at(40), 2, LEASE).await.unwrap()), [first]);
    assert_eq!(ids(db.claim_due(at(50), 2, LEASE).await.unwrap()), [later]);
    assert!(db.claim_due(at(50), 0, LEASE).await.unwrap().is_empty());
}

async fn mails_are_listed_newest_first_and_by_status(db: Database) {
    let a = db.enqueue(mail(1), at(0)).await.unwrap();
    let b = db.enqueue(mail(2), at(1)).await.unwrap();
    let c = db.enqueue(mail(3), at(1)).await.unwrap();
    db.claim_due(at(2), 10, LEASE).await.unwrap();
    db.mark_sent(a, at(3)).await.unwrap();
    db.mark_failed(b, at(3), "refused").await.unwrap();
    db.schedule_retry(c, at(60), "busy").await.unwrap();

    let ids = |mails: Vec<sesame_core::mail::QueuedMail>| {
        mails.into_iter().map(|m| m.id).collect::<Vec<_>>()
    };
    assert_eq!(ids(db.list_mails(None, 10).await.unwrap()), [c, b, a]);
    assert_eq!(ids(db.list_mails(None, 2).await.unwrap()), [c, b]);
    assert_eq!(
        ids(db.list_mails(Some(MailStatus::Sent), 10).await.unwrap()),
        [a]
    );
    assert_eq!(
        ids(db.list_mails(Some(MailStatus::Failed), 10).await.unwrap()),
        [b]
    );
    assert_eq!(
        ids(db.list_mails(Some(MailStatus::Pending), 10).await.unwrap()),
        [c]
    );
    assert_eq!(
        db.mail_counts().await.unwrap(),
        MailCounts {
            pending: 1,
            sent: 1,
            failed: 1
        }
    );
}

/// Eight workers claim small batches at once until nothing is due: every mail is handed out
/// exactly once (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: immediate transactions).
async fn concurrent_claims_never_hand_out_the_same_mail(db: Database) {
    const MAILS: usize = 200;
    let mut queued = HashSet::new();
    for n in 0..MAILS {
        queued.insert(db.enqueue(mail(n), T0).await.unwrap());
    }
    let db = Arc::new(db);
    let mut workers = Vec::new();
    for _ in 0..8 {
        let db = Arc::clone(&db);
        workers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = db.claim_due(at(1), 7, LEASE).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                for m in batch {
                    assert_eq!(m.attempts, 1, "a mail was claimed twice");
                    got.push(m.id);
                }
            }
            got
        }));
    }
    let mut claimed = Vec::new();
    for w in workers {
        claimed.extend(w.await.unwrap());
    }
    let unique: HashSet<_> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), MAILS, "each mail handed out once");
    assert_eq!(unique, queued);
}

async fn mails_queued_together_are_each_a_mail_of_the_queue(db: Database) {
    let ids = db
        .enqueue_many((0..1_203).map(mail).collect(), T0)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1_203);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1_203);
    let last = db.find_mail(ids[1_202]).await.unwrap().unwrap();
    assert_eq!(last.mail, mail(1_202));
    assert_eq!(last.status(), MailStatus::Pending);
    assert_eq!(
        db.mail_counts().await.unwrap(),
        MailCounts {
            pending: 1_203,
            sent: 0,
            failed: 0
        }
    );
    let claimed = db.claim_due(T0, 10, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 10);
    assert!(db.enqueue_many(Vec::new(), T0).await.unwrap().is_empty());
}
