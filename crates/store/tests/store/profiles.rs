//! `ProfileRepo` on `Database`: the same bodies on SQLite and PostgreSQL.

use sesame_core::account::{
    AccountChanges, AccountProfile, AccountState, CharterAcceptance, Contact, MailRedirect,
    NewAccount,
};
use sesame_core::error::RepoError;
use sesame_core::ids::{
    AccountId, Affiliation, Email, HrId, IdentifierKind, LoginName, MobilePhone,
};
use sesame_core::national_id::{NationalId, NationalIdKey};
use sesame_core::ports::{AccountRepo, ProfileRepo};
use sesame_store::testing::{
    fresh_postgres, fresh_sqlite, skip_or_fail, test_database_url, PgSchemaGuard, SqliteFileGuard,
};
use sesame_store::{Database, DatabaseBackend};
use time::macros::{date, datetime};
use time::OffsetDateTime;

/// A fixed point in time; tests move from it explicitly.
const T0: OffsetDateTime = datetime!(2026-11-27 10:00:00 UTC);

/// The migration that adds the table under test.
const PROFILE: &str = "2026-11-27-000002_account_profile";

fn at(secs: i64) -> OffsetDateTime {
    T0 + time::Duration::seconds(secs)
}

async fn migrated(db: Database) -> Database {
    let applied = db.run_migrations().await.unwrap();
    assert!(applied.iter().any(|m| m == PROFILE), "{applied:?}");
    db
}

async fn sqlite_db() -> (Database, SqliteFileGuard) {
    let (url, guard) = fresh_sqlite();
    let db = Database::connect(&url, 4).await.unwrap();
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
    an_account_is_created_with_its_whole_profile_and_read_back,
    an_account_made_without_a_profile_has_an_empty_one_until_changed,
    changes_write_only_the_fields_they_set,
    an_hr_id_belongs_to_one_account,
    accounts_are_found_and_listed_by_hr_id,
    logins_and_emails_share_one_namespace,
    many_accounts_are_created_at_once_or_none,
    holders_of_many_identifiers_are_found_in_one_call,
    changing_an_unknown_account_is_not_found,
);

fn new_account(login: &str, email: Option<&str>) -> NewAccount {
    NewAccount {
        login: LoginName::parse(login).unwrap(),
        email: email.map(|e| Email::parse(e).unwrap()),
        given_name: "Jean-Éric".to_owned(),
        family_name: "O'Brien".to_owned(),
        affiliation: Affiliation::Faculty,
        state: AccountState::Provisioned,
    }
}

fn hr(id: &str) -> HrId {
    HrId::parse(id).unwrap()
}

fn full_profile() -> AccountProfile {
    let key = NationalIdKey::new("a-store-test-key-of-32-bytes!!!!").unwrap();
    AccountProfile {
        hr_id: Some(hr("SOM-1001")),
        birth_date: Some(date!(1970 - 10 - 20)),
        national_id: Some(key.hash(&NationalId::parse("BE123456").unwrap())),
        recovery_email: Some(Contact::unverified(
            Email::parse("jeo@example.com").unwrap(),
        )),
        mobile: Some(Contact::verified(
            MobilePhone::parse("06 12 34 56 78").unwrap(),
        )),
        charter: Some(CharterAcceptance {
            version: "2026-09".to_owned(),
            accepted_at: at(5),
        }),
        directory_opt_in: true,
        mail_redirect: Some(MailRedirect {
            address: Email::parse("jeo@example.net").unwrap(),
            verified: false,
            keep_copy: true,
        }),
    }
}

async fn an_account_is_created_with_its_whole_profile_and_read_back(db: Database) {
    let created = db
        .create_with_profile(
            new_account(
                "jean-eric.obrien",
                Some("jean-eric.obrien@univ.example.org"),
            ),
            full_profile(),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(created.profile, full_profile());
    assert_eq!(created.account.state, AccountState::Provisioned);
    assert_eq!(created.account.given_name, "Jean-Éric");
    let read = db
        .find_with_profile(created.account.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, created);
    // The login path sees the account as any other.
    let found = db
        .find_credential("jean-eric.obrien")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.account, created.account);
}

async fn an_account_made_without_a_profile_has_an_empty_one_until_changed(db: Database) {
    let account = db.create(new_account("alice", None), T0).await.unwrap();
    let read = db.find_with_profile(account.id).await.unwrap().unwrap();
    assert_eq!(read.profile, AccountProfile::default());
    assert_eq!(db.accounts_with_hr_id().await.unwrap(), vec![]);
    let changes = AccountChanges {
        directory_opt_in: Some(true),
        hr_id: Some(hr("42")),
        ..AccountChanges::default()
    };
    db.update_account(account.id, &changes, at(10))
        .await
        .unwrap();
    let read = db.find_with_profile(account.id).await.unwrap().unwrap();
    assert!(read.profile.directory_opt_in);
    assert_eq!(read.profile.hr_id, Some(hr("42")));
    assert_eq!(read.account.updated_at, at(10));
    assert_eq!(db.accounts_with_hr_id().await.unwrap().len(), 1);
}

async fn changes_write_only_the_fields_they_set(db: Database) {
    let created = db
        .create_with_profile(new_account("jeo", None), full_profile(), T0)
        .await
        .unwrap();
    let changes = AccountChanges {
        family_name: Some("O'Brien-Martin".to_owned()),
        affiliation: Some(Affiliation::Staff),
        birth_date: Some(date!(1971 - 01 - 02)),
        mobile: Some(None),
        mail_redirect: Some(None),
        ..AccountChanges::default()
    };
    db.update_account(created.account.id, &changes, at(60))
        .await
        .unwrap();
    let read = db
        .find_with_profile(created.account.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.account.family_name, "O'Brien-Martin");
    assert_eq!(read.account.given_name, "Jean-Éric");
    assert_eq!(read.account.affiliation, Affiliation::Staff);
    assert_eq!(read.account.updated_at, at(60));
    let expected = AccountProfile {
        birth_date: Some(date!(1971 - 01 - 02)),
        mobile: None,
        mail_redirect: None,
        ..full_profile()
    };
    assert_eq!(read.profile, expected);
    // A change of contacts only, with verification.
    let changes = AccountChanges {
        recovery_email: Some(Some(Contact::verified(
            Email::parse("new@example.com").unwrap(),
        ))),
        ..AccountChanges::default()
    };
    db.update_account(created.account.id, &changes, at(70))
        .await
        .unwrap();
    let read = db
        .find_with_profile(created.account.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.profile.recovery_email,
        Some(Contact::verified(Email::parse("new@example.com").unwrap()))
    );
    assert_eq!(read.profile.national_id, full_profile().national_id);
}

async fn an_hr_id_belongs_to_one_account(db: Database) {
    db.create_with_profile(new_account("one", None), full_profile(), T0)
        .await
        .unwrap();
    let second = db
        .create_with_profile(new_account("two", None), full_profile(), T0)
        .await;
    assert!(
        matches!(&second, Err(RepoError::Conflict(what)) if what == "hr_id"),
        "{second:?}"
    );
    // Nothing of the refused account was stored.
    assert!(db.find_credential("two").await.unwrap().is_none());
    let other = db
        .create_with_profile(new_account("three", None), AccountProfile::default(), T0)
        .await
        .unwrap();
    let steal = AccountChanges {
        hr_id: Some(hr("som-1001")),
        ..AccountChanges::default()
    };
    let stolen = db.update_account(other.account.id, &steal, at(1)).await;
    assert!(
        matches!(&stolen, Err(RepoError::Conflict(what)) if what == "hr_id"),
        "{stolen:?}"
    );
    // Accounts without an HR identifier never collide.
    db.create_with_profile(new_account("four", None), AccountProfile::default(), T0)
        .await
        .unwrap();
}

async fn accounts_are_found_and_listed_by_hr_id(db: Database) {
    for (login, id) in [("b.person", "B2"), ("a.person", "A1")] {
        db.create_with_profile(
            new_account(login, None),
            AccountProfile {
                hr_id: Some(hr(id)),
                ..AccountProfile::default()
            },
            T0,
        )
        .await
        .unwrap();
    }
    db.create(new_account("no.hr", None), T0).await.unwrap();
    let found = db.find_by_hr_id(&hr("b2")).await.unwrap().unwrap();
    assert_eq!(found.account.login.as_str(), "b.person");
    assert!(db.find_by_hr_id(&hr("C3")).await.unwrap().is_none());
    let listed: Vec<String> = db
        .accounts_with_hr_id()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.account.login.to_string())
        .collect();
    assert_eq!(listed, ["a.person", "b.person"]);
}

async fn logins_and_emails_share_one_namespace(db: Database) {
    let jean = db
        .create(new_account("jean.dupont", Some("jd@univ.example.org")), T0)
        .await
        .unwrap();
    let holder = |s: &'static str| {
        let db = db.clone();
        async move { db.identifier_holder(s).await.unwrap() }
    };
    assert_eq!(
        holder("jean.dupont").await,
        Some((jean.id, IdentifierKind::Login))
    );
    assert_eq!(
        holder("jd@univ.example.org").await,
        Some((jean.id, IdentifierKind::Email))
    );
    assert_eq!(holder("jean.dupont2").await, None);

    // Jean's e-mail as another account's login, Jean's login as another's e-mail: refused
    // by the store itself, whatever checked before (the second of two racing writes).
    let as_login = db
        .create(new_account("jd@univ.example.org", None), T0)
        .await;
    assert!(
        matches!(&as_login, Err(RepoError::Conflict(f)) if f == "login"),
        "{as_login:?}"
    );
    let as_email = db
        .create_with_profile(
            new_account("squatter", Some("jean.dupont@univ.example.org")),
            AccountProfile::default(),
            T0,
        )
        .await;
    assert!(as_email.is_ok(), "another address is fine: {as_email:?}");
    let squatter = as_email.unwrap().account;
    let stolen = db
        .set_email(
            squatter.id,
            Some(&Email::parse("jd@univ.example.org").unwrap()),
            T0,
        )
        .await;
    assert!(
        matches!(&stolen, Err(RepoError::Conflict(f)) if f == "email"),
        "{stolen:?}"
    );
    assert_eq!(
        db.find_by_id(squatter.id).await.unwrap().unwrap().email,
        Some(Email::parse("jean.dupont@univ.example.org").unwrap()),
        "a refused change changes nothing"
    );

    // An account's own login as its e-mail is fine; a changed e-mail frees the old one.
    let own = db
        .create(
            new_account(
                "marie.curie@univ.example.org",
                Some("marie.curie@univ.example.org"),
            ),
            T0,
        )
        .await
        .unwrap();
    db.set_email(
        jean.id,
        Some(&Email::parse("jean.d@univ.example.org").unwrap()),
        T0,
    )
    .await
    .unwrap();
    assert_eq!(holder("jd@univ.example.org").await, None);
    db.create(new_account("jd@univ.example.org", None), T0)
        .await
        .unwrap();
    db.set_email(own.id, None, T0).await.unwrap();
    assert_eq!(
        holder("marie.curie@univ.example.org").await,
        Some((own.id, IdentifierKind::Login))
    );
}

async fn changing_an_unknown_account_is_not_found(db: Database) {
    let changes = AccountChanges {
        directory_opt_in: Some(true),
        ..AccountChanges::default()
    };
    let result = db
        .update_account(AccountId::new_random(), &changes, T0)
        .await;
    assert!(matches!(result, Err(RepoError::NotFound)), "{result:?}");
    assert!(db
        .find_with_profile(AccountId::new_random())
        .await
        .unwrap()
        .is_none());
}

async fn many_accounts_are_created_at_once_or_none(db: Database) {
    let mut people: Vec<(NewAccount, AccountProfile)> = (0..1_100)
        .map(|n| {
            let login = format!("pupil{n}");
            let profile = AccountProfile {
                hr_id: Some(hr(&format!("ETU-{n}"))),
                ..AccountProfile::default()
            };
            (
                new_account(&login, Some(&format!("{login}@etu.example.org"))),
                profile,
            )
        })
        .collect();
    // One with every profile field, one whose e-mail is its login (one identifier).
    people[7].1 = full_profile();
    people[8].0 = new_account("same@etu.example.org", Some("same@etu.example.org"));
    let ids = db
        .create_many_with_profiles(people.clone(), at(9))
        .await
        .unwrap();
    assert_eq!(ids.len(), 1_100);

    let seventh = db.find_with_profile(ids[7]).await.unwrap().unwrap();
    assert_eq!(seventh.account.login.as_str(), "pupil7");
    assert_eq!(seventh.account.state, AccountState::Provisioned);
    assert_eq!(seventh.account.given_name, "Jean-Éric");
    assert_eq!(seventh.profile, full_profile(), "every field read back");
    let last = db.find_by_hr_id(&hr("ETU-1099")).await.unwrap().unwrap();
    assert_eq!(last.account.id, ids[1_099]);
    assert_eq!(
        last.account.email.as_ref().map(Email::as_str),
        Some("pupil1099@etu.example.org")
    );
    assert_eq!(
        db.identifier_holder("same@etu.example.org").await.unwrap(),
        Some((ids[8], IdentifierKind::Login))
    );
    // Read back in bulk by login; unknown logins are left out.
    let mut asked: Vec<String> = (0..600).map(|n| format!("pupil{n}")).collect();
    asked.push("nobody".to_owned());
    let read = db.find_many_by_login(&asked).await.unwrap();
    assert_eq!(read.len(), 599, "pupil8 was made under another login");
    let read_seventh = read
        .iter()
        .find(|p| p.account.id == ids[7])
        .expect("pupil7 read back");
    assert_eq!(read_seventh.profile, full_profile());
    // The folded names are written with the rows: the helpdesk finds them.
    let found = db.search_accounts(&["eric".to_owned()], 200).await.unwrap();
    assert_eq!(found.len(), 200);

    // A batch with one clash (a login that is another account's e-mail) writes nobody.
    let batch = vec![
        (new_account("newcomer", None), AccountProfile::default()),
        (
            new_account("pupil3@etu.example.org", None),
            AccountProfile::default(),
        ),
    ];
    let refused = db.create_many_with_profiles(batch, at(10)).await;
    assert!(
        matches!(refused, Err(RepoError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(db.identifier_holder("newcomer").await.unwrap(), None);
    // So does one whose hr_id is taken, or that names one login twice.
    let taken_hr = vec![(
        new_account("newcomer", None),
        AccountProfile {
            hr_id: Some(hr("ETU-5")),
            ..AccountProfile::default()
        },
    )];
    let refused = db.create_many_with_profiles(taken_hr, at(10)).await;
    assert!(
        matches!(&refused, Err(RepoError::Conflict(f)) if f == "hr_id"),
        "{refused:?}"
    );
    let twice = vec![
        (new_account("twin", None), AccountProfile::default()),
        (new_account("twin", None), AccountProfile::default()),
    ];
    assert!(matches!(
        db.create_many_with_profiles(twice, at(10)).await,
        Err(RepoError::Conflict(_))
    ));
    assert_eq!(db.identifier_holder("newcomer").await.unwrap(), None);
    assert_eq!(db.identifier_holder("twin").await.unwrap(), None);
    assert!(db
        .create_many_with_profiles(Vec::new(), at(10))
        .await
        .unwrap()
        .is_empty());
}

async fn holders_of_many_identifiers_are_found_in_one_call(db: Database) {
    let jean = db
        .create(new_account("jean.dupont", Some("jd@univ.example.org")), T0)
        .await
        .unwrap();
    let old = db.create(new_account("old.one", None), T0).await.unwrap();
    let mut asked: Vec<String> = ["jean.dupont", "jd@univ.example.org", "nobody", "old.one"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    // More than one `IN` list's worth.
    asked.extend((0..700).map(|n| format!("free{n}")));
    let mut held = db.identifier_holders(&asked).await.unwrap();
    held.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        held,
        vec![
            (
                "jd@univ.example.org".to_owned(),
                jean.id,
                IdentifierKind::Email
            ),
            ("jean.dupont".to_owned(), jean.id, IdentifierKind::Login),
            ("old.one".to_owned(), old.id, IdentifierKind::Login),
        ]
    );
    assert!(db.identifier_holders(&[]).await.unwrap().is_empty());
}
