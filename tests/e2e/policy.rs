//! Password policy through the account service, per affiliation, and rehashing at login.

use sesame_core::credentials::hasher::{Argon2Params, PasswordHasher};
use sesame_core::credentials::policy::{CharClass, PasswordPolicy};
use sesame_core::credentials::Password;
use sesame_core::error::AccountError;
use sesame_core::i18n::Lang;
use sesame_core::ids::{Affiliation, LoginName};
use sesame_tests::{browser, unique_login, TestApp, GOOD_PASSWORD};

fn messages(err: AccountError) -> Vec<String> {
    match err {
        AccountError::Policy(v) => v.iter().map(|v| v.message(Lang::Fr)).collect(),
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn each_affiliation_gets_its_own_policy() {
    let app = TestApp::builder()
        .with(|s| {
            s.password_policy.by_affiliation.insert(
                Affiliation::Pupil,
                PasswordPolicy {
                    min_length: 8,
                    required_classes: vec![CharClass::Letter, CharClass::Digit],
                    use_blocklist: false,
                    ..PasswordPolicy::default()
                },
            );
        })
        .spawn()
        .await;
    let pupil = unique_login("pupil");
    let staff = unique_login("staff");
    app.create_user_with(&pupil, "tramway9violet", Affiliation::Pupil)
        .await;
    app.create_user_with(&staff, GOOD_PASSWORD, Affiliation::Staff)
        .await;
    let accounts = &app.services.accounts;
    let pupil_login = LoginName::parse(&pupil).unwrap();
    let staff_login = LoginName::parse(&staff).unwrap();

    // The ENT 77 rule for pupils: 8+ characters with a letter and a digit.
    accounts
        .set_password(&pupil_login, Password::new("velo2roues"), "test")
        .await
        .unwrap();
    let err = accounts
        .set_password(&pupil_login, Password::new("bicyclette"), "test")
        .await
        .unwrap_err();
    assert_eq!(
        messages(err),
        vec!["Le mot de passe doit contenir au moins un chiffre.".to_owned()]
    );
    // Staff keep the default (NIST) policy.
    let err = accounts
        .set_password(&staff_login, Password::new("velo2roues"), "test")
        .await
        .unwrap_err();
    assert!(messages(err)
        .iter()
        .any(|m| m.contains("au moins 15 caractères")));
    // A refused password changes nothing: the old one still works.
    assert_eq!(
        app.login_with(&browser(), &staff, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
    assert_eq!(
        app.login_with(&browser(), &pupil, "velo2roues", false)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn a06_the_default_policy_refuses_common_and_personal_passwords_and_takes_long_ones() {
    let app = TestApp::spawn().await;
    let login = unique_login("policy");
    app.create_user(&login, GOOD_PASSWORD).await;
    let name = LoginName::parse(&login).unwrap();
    let accounts = &app.services.accounts;
    for (password, expected) in [
        ("short", "au moins 15 caractères"),
        ("Password1234567", "trop courant"),
        (&*format!("{login}2025!!!"), "identifiant"),
        ("sesame-is-my-password-here", "identifiant"),
    ] {
        let err = accounts
            .set_password(&name, Password::new(password), "test")
            .await
            .unwrap_err();
        let msgs = messages(err);
        assert!(
            msgs.iter().any(|m| m.contains(expected)),
            "{password:?}: {msgs:?}"
        );
    }
    accounts
        .set_password(&name, Password::new("correct horse battery staple"), "test")
        .await
        .unwrap();
    let sixty_four = "a quiet river crossing the old town at dawn, with seven bridges!";
    assert_eq!(sixty_four.chars().count(), 64);
    accounts
        .set_password(&name, Password::new(sixty_four), "test")
        .await
        .unwrap();
    assert_eq!(
        app.login_with(&browser(), &login, sixty_four, false)
            .await
            .status(),
        303
    );
    assert_eq!(
        app.login_with(&browser(), &login, &sixty_four[..63], false)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn a_hash_made_under_old_parameters_is_replaced_at_the_next_login() {
    let app = TestApp::spawn().await;
    let login = unique_login("rehash");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let old = PasswordHasher::new(Argon2Params {
        memory_kib: 128,
        iterations: 2,
        parallelism: 1,
    })
    .unwrap();
    let old_hash = old.hash(&Password::new(GOOD_PASSWORD)).unwrap();
    let repo = &app.services.accounts_repo;
    repo.set_password_hash(
        account.id,
        &old_hash,
        sesame_core::clock::Clock::now(app.clock.as_ref()),
    )
    .await
    .unwrap();

    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
    let stored = repo
        .find_credential(&login)
        .await
        .unwrap()
        .unwrap()
        .password_hash
        .unwrap();
    assert_ne!(stored, old_hash);
    assert!(
        stored.starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
        "{stored}"
    );
    assert!(app
        .audit_kinds(&login)
        .await
        .iter()
        .any(|k| k == "account.password_rehashed"));
    // And it still verifies.
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
}

/// Changes the password on the account page; returns the status and the page.
async fn change_on_account_page(
    app: &TestApp,
    client: &reqwest::Client,
    current: &str,
    new: &str,
) -> (reqwest::StatusCode, String) {
    let page = client
        .get(format!("{}/account", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::recovery::field(&page, "csrf");
    let res = client
        .post(format!("{}/account/password", app.address))
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", current),
            ("password", new),
            ("confirm", new),
        ])
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test]
async fn a06_a_context_word_is_refused_as_a_word_and_named_but_not_inside_argent_or_parent() {
    let app = TestApp::builder()
        .with(|s| s.ui.context_words = vec!["ENT".to_owned()])
        .spawn()
        .await;
    let login = unique_login("contexte");
    app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    assert_eq!(
        app.login_with(&client, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );

    // "ENT" as a word of its own: refused, and the message says which word.
    let refused = "mon ENT 2025 est le meilleur";
    let (status, page) = change_on_account_page(&app, &client, GOOD_PASSWORD, refused).await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("contient « ent »"), "{page}");
    // Nor the family name ("Person" for the harness's accounts), as a word.
    let (status, page) =
        change_on_account_page(&app, &client, GOOD_PASSWORD, "la PERSON2025 du dessus").await;
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("contient « person »"), "{page}");

    // Inside "argent", "parent", "moment": an ordinary password.
    let accepted = "de l'argent pour les parents en un moment";
    let (status, page) = change_on_account_page(&app, &client, GOOD_PASSWORD, accepted).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        app.login_with(&browser(), &login, accepted, false)
            .await
            .status(),
        303
    );
}
