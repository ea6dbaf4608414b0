//! `HelpdeskRepo` on `Database`: the same bodies on SQLite and PostgreSQL.

use sesame_core::account::{AccountState, NewAccount};
use sesame_core::error::RepoError;
use sesame_core::helpdesk::{
    AssistanceClosure, AssistanceRequest, BlockReason, BlockRecord, RequestFilter,
};
use sesame_core::ids::{AccountId, Affiliation, Email, LoginName};
use sesame_core::ports::{AccountRepo, AuditLog, ConsentRepo, HelpdeskRepo, ProfileRepo};
use sesame_store::testing::{
    fresh_postgres, fresh_sqlite, skip_or_fail, test_database_url, PgSchemaGuard, SqliteFileGuard,
};
use sesame_store::Database;
use time::macros::datetime;
use time::OffsetDateTime;

const T0: OffsetDateTime = datetime!(2026-11-28 10:00:00 UTC);

fn at(days: i64) -> OffsetDateTime {
    T0 + time::Duration::days(days)
}

async fn sqlite_db() -> (Database, SqliteFileGuard) {
    let (url, guard) = fresh_sqlite();
    let db = Database::connect(&url, 4).await.unwrap();
    db.run_migrations().await.unwrap();
    (db, guard)
}

async fn postgres_db() -> Option<(Database, PgSchemaGuard)> {
    let (url, guard) = match fresh_postgres(&test_database_url()).await {
        Ok(fresh) => fresh,
        Err(e) => {
            skip_or_fail("PostgreSQL", &e);
            return None;
        }
    };
    let db = Database::connect(&url, 4).await.unwrap();
    db.run_migrations().await.unwrap();
    Some((db, guard))
}

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
    a_block_record_is_saved_replaced_and_cleared,
    a_password_change_requirement_keeps_its_first_time,
    assistance_requests_are_listed_newest_first_and_closed_once,
    only_accounts_disabled_before_the_cutoff_are_deleted_with_what_hangs_on_them,
    the_helpdesk_search_needs_every_word_in_a_login_address_or_name,
);

async fn account(db: &Database, login: &str) -> sesame_core::account::Account {
    db.create(
        NewAccount {
            login: LoginName::parse(login).unwrap(),
            email: Some(Email::parse(&format!("{login}@univ.example.org")).unwrap()),
            given_name: "Test".to_owned(),
            family_name: "Person".to_owned(),
            affiliation: Affiliation::Staff,
            state: AccountState::Active,
        },
        T0,
    )
    .await
    .unwrap()
}

async fn a_block_record_is_saved_replaced_and_cleared(db: Database) {
    let a = account(&db, "jean.dupont").await;
    assert_eq!(db.find_block(a.id).await.unwrap(), None);
    let first = BlockRecord {
        reason: BlockReason::Phishing,
        note: Some("clicked a link".to_owned()),
        blocked_by: "cli".to_owned(),
        blocked_at: T0,
    };
    db.save_block(a.id, &first).await.unwrap();
    assert_eq!(db.find_block(a.id).await.unwrap(), Some(first));
    let second = BlockRecord {
        reason: BlockReason::Suspicious,
        note: None,
        blocked_by: "admin:marie".to_owned(),
        blocked_at: at(1),
    };
    db.save_block(a.id, &second).await.unwrap();
    assert_eq!(db.find_block(a.id).await.unwrap(), Some(second.clone()));
    db.clear_block(a.id).await.unwrap();
    assert_eq!(db.find_block(a.id).await.unwrap(), None);
    assert!(matches!(
        db.save_block(AccountId::new_random(), &second).await,
        Err(RepoError::NotFound)
    ));
}

async fn a_password_change_requirement_keeps_its_first_time(db: Database) {
    let a = account(&db, "jean.dupont").await;
    assert_eq!(db.password_change_required(a.id).await.unwrap(), None);
    db.require_password_change(a.id, "cli", T0).await.unwrap();
    db.require_password_change(a.id, "cli", at(2))
        .await
        .unwrap();
    assert_eq!(db.password_change_required(a.id).await.unwrap(), Some(T0));
    assert!(db.clear_password_change(a.id).await.unwrap());
    assert!(!db.clear_password_change(a.id).await.unwrap());
    assert_eq!(db.password_change_required(a.id).await.unwrap(), None);
    assert!(matches!(
        db.require_password_change(AccountId::new_random(), "cli", T0)
            .await,
        Err(RepoError::NotFound)
    ));
}

fn request(
    reference: &str,
    created_at: OffsetDateTime,
    account_id: Option<AccountId>,
) -> AssistanceRequest {
    AssistanceRequest {
        reference: reference.to_owned(),
        created_at,
        // A parent's request: every field a kind of person may fill comes back as written.
        kind: sesame_core::helpdesk::RequesterKind::Parent,
        name: "Jean Dupont".to_owned(),
        login_or_email: "jean.dupont".to_owned(),
        personal_email: "jean@gmail.example".to_owned(),
        phone: "0612345678".to_owned(),
        number: String::new(),
        school: "Collège Jean Moulin, 6e B".to_owned(),
        child_name: "Léa \"Lili\" Dupont".to_owned(),
        description: "Bloqué.\nMerci.".to_owned(),
        lang: "fr".to_owned(),
        client_ip: Some("192.0.2.7".to_owned()),
        account_id,
        closure: None,
    }
}

async fn assistance_requests_are_listed_newest_first_and_closed_once(db: Database) {
    let a = account(&db, "jean.dupont").await;
    let older = request("AS-AAAAAAAA", T0, Some(a.id));
    let newer = request("AS-BBBBBBBB", at(1), None);
    db.insert_assistance_request(&older).await.unwrap();
    db.insert_assistance_request(&newer).await.unwrap();
    assert!(matches!(
        db.insert_assistance_request(&older).await,
        Err(RepoError::Conflict(ref what)) if what == "reference"
    ));
    assert_eq!(
        db.find_assistance_request("AS-AAAAAAAA").await.unwrap(),
        Some(older.clone())
    );
    let open = db
        .list_assistance_requests(RequestFilter::Open, 10)
        .await
        .unwrap();
    assert_eq!(open, vec![newer.clone(), older.clone()]);

    let closure = AssistanceClosure {
        closed_at: at(2),
        closed_by: "cli".to_owned(),
        note: Some("called back".to_owned()),
    };
    assert!(db
        .close_assistance_request("AS-AAAAAAAA", &closure)
        .await
        .unwrap());
    let again = AssistanceClosure {
        note: Some("second".to_owned()),
        ..closure.clone()
    };
    assert!(!db
        .close_assistance_request("AS-AAAAAAAA", &again)
        .await
        .unwrap());
    assert!(matches!(
        db.close_assistance_request("AS-CCCCCCCC", &closure).await,
        Err(RepoError::NotFound)
    ));
    let open = db
        .list_assistance_requests(RequestFilter::Open, 10)
        .await
        .unwrap();
    assert_eq!(open, vec![newer.clone()]);
    let all = db
        .list_assistance_requests(RequestFilter::All, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].closure, Some(closure.clone()));
    let closed = db
        .list_assistance_requests(RequestFilter::Closed, 10)
        .await
        .unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].reference, "AS-AAAAAAAA");
    assert_eq!(closed[0].closure, Some(closure));
}

async fn only_accounts_disabled_before_the_cutoff_are_deleted_with_what_hangs_on_them(
    db: Database,
) {
    let leaver = account(&db, "leaver").await;
    let recent = account(&db, "recent").await;
    let blocked = account(&db, "blocked").await;
    let back = account(&db, "back").await;
    db.set_password_hash(
        leaver.id,
        "$argon2id$v=19$m=256,t=1,p=1$c29tZXNhbHQ$aGFzaA",
        T0,
    )
    .await
    .unwrap();
    db.save_consent(sesame_core::ports::Consent {
        account_id: leaver.id,
        client_id: "portal".to_owned(),
        scopes: vec!["openid".to_owned()],
        granted_at: T0,
    })
    .await
    .unwrap();
    db.insert_assistance_request(&request("AS-DDDDDDDD", T0, Some(leaver.id)))
        .await
        .unwrap();
    db.set_state(leaver.id, AccountState::Disabled, T0)
        .await
        .unwrap();
    // Disabled again later: the clock keeps the first time.
    db.set_state(leaver.id, AccountState::Disabled, at(5))
        .await
        .unwrap();
    db.set_state(recent.id, AccountState::Disabled, at(300))
        .await
        .unwrap();
    db.set_state(blocked.id, AccountState::Blocked, T0)
        .await
        .unwrap();
    // Disabled, then brought back: not a leaver any more.
    db.set_state(back.id, AccountState::Disabled, T0)
        .await
        .unwrap();
    db.set_state(back.id, AccountState::Provisioned, at(1))
        .await
        .unwrap();

    let cutoff = at(100);
    let due = db.disabled_before(cutoff, 100).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].account.id, leaver.id);
    assert_eq!(due[0].disabled_at, T0);

    db.record(
        sesame_core::audit::AuditEvent::new(
            sesame_core::audit::AuditKind::AccountStateChanged,
            T0,
            "test",
        )
        .login("leaver")
        .account(leaver.id),
    )
    .await
    .unwrap();
    assert!(!db.delete_disabled_account(recent.id, cutoff).await.unwrap());
    assert!(!db.delete_disabled_account(back.id, cutoff).await.unwrap());
    assert!(db.delete_disabled_account(leaver.id, cutoff).await.unwrap());
    assert!(!db.delete_disabled_account(leaver.id, cutoff).await.unwrap());
    assert_eq!(db.find_by_id(leaver.id).await.unwrap(), None);
    assert!(db.find_credential("leaver").await.unwrap().is_none());
    assert!(db.consents_of(leaver.id).await.unwrap().is_empty());
    // The request stays without its account; the audit stays whole.
    let kept = db
        .find_assistance_request("AS-DDDDDDDD")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.account_id, None);
    assert_eq!(db.recent(Some("leaver"), 10).await.unwrap().len(), 1);
    for other in [&recent, &blocked, &back] {
        assert!(db.find_by_id(other.id).await.unwrap().is_some());
    }
}

async fn the_helpdesk_search_needs_every_word_in_a_login_address_or_name(db: Database) {
    let named = |login: &str, given: &str, family: &str| NewAccount {
        login: LoginName::parse(login).unwrap(),
        email: Some(Email::parse(&format!("{login}@univ.example.org")).unwrap()),
        given_name: given.to_owned(),
        family_name: family.to_owned(),
        affiliation: Affiliation::Staff,
        state: AccountState::Active,
    };
    db.create(named("jdupont", "Jean", "Dupont"), T0)
        .await
        .unwrap();
    db.create(named("jdurand", "Jeanne", "Durand"), T0)
        .await
        .unwrap();
    db.create(named("x_100", "Paul", "Cent%"), T0)
        .await
        .unwrap();
    let elodie = db
        .create(named("emartin", "Élodie", "Martin-Lefèvre"), T0)
        .await
        .unwrap();
    let logins = |found: Vec<sesame_core::account::Account>| -> Vec<String> {
        found.into_iter().map(|a| a.login.to_string()).collect()
    };
    let search = |words: &[&str]| {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        let db = db.clone();
        async move { db.search_accounts(&words, 50).await.unwrap() }
    };
    assert_eq!(logins(search(&["jean"]).await), vec!["jdupont", "jdurand"]);
    assert_eq!(logins(search(&["jean", "dupont"]).await), vec!["jdupont"]);
    assert_eq!(logins(search(&["durand@univ"]).await), vec!["jdurand"]);
    assert_eq!(logins(search(&["paul"]).await), vec!["x_100"]);
    // `%` and `_` are literal, not wildcards.
    assert_eq!(logins(search(&["cent%"]).await), vec!["x_100"]);
    assert!(search(&["j_d"]).await.is_empty());
    assert!(search(&["%"])
        .await
        .iter()
        .all(|a| a.login.as_str() == "x_100"));
    // Names are matched without accents or case, on both databases (the words come folded).
    assert_eq!(logins(search(&["elodie"]).await), vec!["emartin"]);
    assert_eq!(logins(search(&["lefevre", "elo"]).await), vec!["emartin"]);
    // A change of name is searchable at once.
    db.update_account(
        elodie.id,
        &sesame_core::account::AccountChanges {
            family_name: Some("Œuvray".to_owned()),
            ..Default::default()
        },
        T0,
    )
    .await
    .unwrap();
    assert_eq!(logins(search(&["oeuvray"]).await), vec!["emartin"]);
    assert!(search(&["lefevre"]).await.is_empty());
    assert!(search(&["nobody"]).await.is_empty());
    assert!(search(&[]).await.is_empty());
    assert_eq!(
        db.search_accounts(&["jean".to_owned()], 1)
            .await
            .unwrap()
            .len(),
        1
    );
}
