//! The account page ("Mon compte"): profile, password change (A52), recovery e-mail change
//! (A53), mobile verification, sessions and their revocation, CSRF.

use sesame_tests::{browser, unique_login, TestApp, GOOD_PASSWORD};

use crate::recovery::{
    field, give_recovery_email, is_logged_in, nth_sms_code, spawn_app, with_sms_outbox,
    NEW_PASSWORD,
};

async fn account_page(app: &TestApp, client: &reqwest::Client) -> (reqwest::StatusCode, String) {
    let res = client
        .get(format!("{}/account", app.address))
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// Posts a form of the account page with its CSRF token.
async fn post_form(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    fields: &[(&str, &str)],
) -> (reqwest::StatusCode, String) {
    let (_, page) = account_page(app, client).await;
    let csrf = field(&page, "csrf");
    let mut form: Vec<(&str, &str)> = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let res = client
        .post(format!("{}{path}", app.address))
        .form(&form)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// Follows an address-verification link as a person would, from a browser without a
/// session: its page (which changes nothing), then its button. Returns the status of the
/// page and of the post, and the post's page.
pub(crate) async fn follow_verify_link(
    link: &str,
) -> (reqwest::StatusCode, reqwest::StatusCode, String) {
    let client = browser();
    let res = client.get(link).send().await.unwrap();
    let shown = res.status();
    let page = res.text().await.unwrap();
    if shown != 200 {
        return (shown, shown, page);
    }
    assert!(page.contains("id=\"verify-form\""), "{page}");
    let action = link.split('?').next().unwrap();
    let res = client
        .post(action)
        .form(&[
            ("kind", field(&page, "kind").as_str()),
            ("token", field(&page, "token").as_str()),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    (shown, status, res.text().await.unwrap())
}

async fn logged_in_user(
    app: &TestApp,
    stem: &str,
) -> (String, sesame_core::account::Account, reqwest::Client) {
    let login = unique_login(stem);
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    let res = app.login_with(&client, &login, GOOD_PASSWORD, false).await;
    assert_eq!(res.status(), 303);
    (login, account, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_needs_a_session() {
    let app = spawn_app().await;
    let res = browser()
        .get(format!("{}/account", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("{}/cas/login?next=/account", app.address)
    );
    let res = browser()
        .post(format!("{}/account/password", app.address))
        .form(&[
            ("current", GOOD_PASSWORD),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_shows_the_profile_sessions_and_recent_sign_ins() {
    let app = spawn_app().await;
    let (login, _, client) = logged_in_user(&app, "profile").await;
    let (status, page) = account_page(&app, &client).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("<dd id=\"login\">{login}</dd>")),
        "{page}"
    );
    assert!(page.contains(&format!("{login}@univ.example.org")));
    assert!(page.contains("id=\"family-name\">Person<"));
    assert!(page.contains("Connexion"), "the sign-in is listed");
    assert_eq!(page.matches("name=\"handle\"").count(), 1, "one session");
    assert!(page.contains("/account/applications"));
    assert!(!page.to_lowercase().contains("national"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_csrf_token_are_refused() {
    let app = spawn_app().await;
    let (login, _, client) = logged_in_user(&app, "csrf").await;
    let res = client
        .post(format!("{}/account/password", app.address))
        .form(&[
            ("current", GOOD_PASSWORD),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (status, _) = post_form(&app, &client, "/account/directory", &[("opt_in", "true")]).await;
    assert_eq!(status, 200);
    let res = app
        .login_with(&browser(), &login, NEW_PASSWORD, false)
        .await;
    assert_eq!(res.status(), 401, "the forged form changed nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a52_a_password_change_without_or_with_a_wrong_current_password_is_refused_and_counts_toward_lockout(
) {
    let app = with_sms_outbox(TestApp::builder())
        .with(|s| s.lockout.threshold = 3)
        .spawn()
        .await;
    let (login, _, client) = logged_in_user(&app, "wrongcurrent").await;
    let (status, body) = post_form(
        &app,
        &client,
        "/account/password",
        &[("password", NEW_PASSWORD), ("confirm", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(status, 401, "no current password");
    assert!(body.contains("id=\"account-error\""));
    for _ in 0..2 {
        let (status, _) = post_form(
            &app,
            &client,
            "/account/password",
            &[
                ("current", "not my password at all"),
                ("password", NEW_PASSWORD),
                ("confirm", NEW_PASSWORD),
            ],
        )
        .await;
        assert_eq!(status, 401);
    }
    let kinds = app.audit_kinds(&login).await;
    assert!(
        kinds.iter().filter(|k| *k == "login.failed").count() >= 3,
        "{kinds:?}"
    );
    // Three failures reached the threshold: even the right password is refused now.
    let (status, body) = post_form(
        &app,
        &client,
        "/account/password",
        &[
            ("current", GOOD_PASSWORD),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        401
    );
    app.clock.advance(time::Duration::hours(2));
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303,
        "the password never changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a52_a_password_change_takes_effect_at_once_and_ends_the_other_sessions() {
    let app = spawn_app().await;
    let (login, account, client) = logged_in_user(&app, "change").await;
    let recovery = give_recovery_email(&app, &account).await;
    let other = browser();
    app.login_with(&other, &login, GOOD_PASSWORD, true).await;
    assert!(is_logged_in(&app, &other).await);

    let (status, body) = post_form(
        &app,
        &client,
        "/account/password",
        &[
            ("current", GOOD_PASSWORD),
            ("password", NEW_PASSWORD),
            ("confirm", "a different confirmation"),
        ],
    )
    .await;
    assert_eq!(status, 400, "the two new passwords must match");
    assert!(body.contains("id=\"account-error\""));
    let (status, body) = post_form(
        &app,
        &client,
        "/account/password",
        &[
            ("current", GOOD_PASSWORD),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"account-notice\""));

    assert!(!is_logged_in(&app, &other).await, "the other session ended");
    assert!(is_logged_in(&app, &client).await, "this one goes on");
    assert_eq!(
        app.login_with(&browser(), &login, NEW_PASSWORD, false)
            .await
            .status(),
        303
    );
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        401
    );
    let notices = app.mails_to(&recovery).await;
    assert_eq!(notices.len(), 1);
    assert!(notices[0].subject.contains("a été modifié"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a53_a_recovery_email_change_needs_the_current_password_waits_for_the_new_address_and_is_told_to_the_old_ones(
) {
    let app = spawn_app().await;
    let (login, account, client) = logged_in_user(&app, "newmail").await;
    let old = give_recovery_email(&app, &account).await;
    let institutional = format!("{login}@univ.example.org");
    let new = format!("{login}@nouveau.example.net");

    let (status, _) = post_form(
        &app,
        &client,
        "/account/recovery-email",
        &[("email", new.as_str())],
    )
    .await;
    assert_eq!(status, 401, "without re-authentication");
    let (status, _) = post_form(
        &app,
        &client,
        "/account/recovery-email",
        &[("email", new.as_str()), ("current", "wrong password here")],
    )
    .await;
    assert_eq!(status, 401);
    assert!(app.mails_to(&new).await.is_empty());

    let (status, body) = post_form(
        &app,
        &client,
        "/account/recovery-email",
        &[("email", new.as_str()), ("current", GOOD_PASSWORD)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let recovery_now = || async {
        app.services
            .profiles
            .find_with_profile(account.id)
            .await
            .unwrap()
            .unwrap()
            .profile
            .recovery_email
            .unwrap()
    };
    assert_eq!(
        recovery_now().await.address.as_str(),
        old,
        "pending: nothing changed yet"
    );

    let mails = app.mails_to(&new).await;
    assert_eq!(mails.len(), 1);
    let link = mails[0].link_to(&format!("{}/account/verify", app.address));
    // Opening the link shows a button and changes nothing (a mail scanner follows links).
    let page = browser().get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(recovery_now().await.address.as_str(), old);
    let (_, status, body) = follow_verify_link(&link).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"address-verified\""), "{body}");
    let recovery = recovery_now().await;
    assert_eq!(recovery.address.as_str(), new);
    assert!(recovery.verified);
    // The former recovery address and the institutional one are told, with a way out.
    for told in [&old, &institutional] {
        let notices = app.mails_to(told).await;
        assert_eq!(notices.len(), 1, "{told}");
        assert!(notices[0].subject.contains("adresse de secours"), "{told}");
        assert!(
            notices[0]
                .text
                .contains(&format!("{}/password/forgot", app.address)),
            "{}",
            notices[0].text
        );
        assert!(
            notices[0].text.contains("/assistance"),
            "{}",
            notices[0].text
        );
    }
    let (shown, _, _) = follow_verify_link(&link).await;
    assert_eq!(shown, 400, "the link works once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_and_one_can_be_revoked() {
    let app = spawn_app().await;
    let (login, _, client) = logged_in_user(&app, "sessions").await;
    let other = browser();
    app.login_with(&other, &login, GOOD_PASSWORD, false).await;
    let (_, page) = account_page(&app, &client).await;
    assert_eq!(page.matches("name=\"handle\"").count(), 2);
    // The other session's handle: the one not marked as this session.
    let items: Vec<&str> = page.split("<li class=\"session").skip(1).collect();
    let other_item = items.iter().find(|i| !i.starts_with(" current")).unwrap();
    let handle = field(other_item, "handle");

    let (status, body) = post_form(
        &app,
        &client,
        "/account/sessions/revoke",
        &[("handle", handle.as_str())],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("id=\"account-notice\""));
    assert!(!is_logged_in(&app, &other).await);
    assert!(is_logged_in(&app, &client).await);
    assert_eq!(body.matches("name=\"handle\"").count(), 1);
    assert!(app
        .audit_kinds(&login)
        .await
        .contains(&"account.session_revoked".to_owned()));

    // Someone else's session cannot be ended from here.
    let (stranger_login, _, stranger) = logged_in_user(&app, "stranger").await;
    let (_, stranger_page) = account_page(&app, &stranger).await;
    let stranger_handle = field(&stranger_page, "handle");
    post_form(
        &app,
        &client,
        "/account/sessions/revoke",
        &[("handle", stranger_handle.as_str())],
    )
    .await;
    assert!(
        is_logged_in(&app, &stranger).await,
        "{stranger_login} still logged in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mobile_is_verified_by_an_sms_code_and_the_change_is_told_to_the_institutional_address() {
    let app = spawn_app().await;
    let (login, account, client) = logged_in_user(&app, "mobile").await;
    let number = format!("+336{}", sesame_core::random::digits(8));
    let (status, _) = post_form(
        &app,
        &client,
        "/account/mobile",
        &[
            ("mobile", number.as_str()),
            ("current", "wrong password here"),
        ],
    )
    .await;
    assert_eq!(status, 401);
    let (status, page) = post_form(
        &app,
        &client,
        "/account/mobile",
        &[("mobile", number.as_str()), ("current", GOOD_PASSWORD)],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let request_id = field(&page, "request_id");
    let csrf = field(&page, "csrf");
    let code = nth_sms_code(&app, &number, 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let post = |code: String| {
        let client = client.clone();
        let url = format!("{}/account/mobile/verify", app.address);
        let form = vec![
            ("csrf", csrf.clone()),
            ("request_id", request_id.clone()),
            ("code", code),
        ];
        async move { client.post(url).form(&form).send().await.unwrap().status() }
    };
    assert_eq!(post(wrong.to_owned()).await, 400);
    assert_eq!(post(code.clone()).await, 200);
    let mobile = app
        .services
        .profiles
        .find_with_profile(account.id)
        .await
        .unwrap()
        .unwrap()
        .profile
        .mobile
        .unwrap();
    assert_eq!(mobile.address.as_str(), number);
    assert!(mobile.verified);
    assert_eq!(post(code).await, 400, "a code works once");
    let notices = app.mails_to(&format!("{login}@univ.example.org")).await;
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0].subject.contains("mobile"),
        "{}",
        notices[0].subject
    );
    assert!(
        notices[0].text.contains(&number[..3]) && !notices[0].text.contains(&number),
        "masked: {}",
        notices[0].text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a53_a_mail_redirect_needs_the_current_password_a_posted_confirmation_and_is_told_to_the_institutional_and_recovery_addresses(
) {
    let app = spawn_app().await;
    let (login, account, client) = logged_in_user(&app, "redirect").await;
    let recovery = give_recovery_email(&app, &account).await;
    let institutional = format!("{login}@univ.example.org");
    let elsewhere = format!("{login}@ailleurs.example.net");
    let redirect_now = || async {
        app.services
            .profiles
            .find_with_profile(account.id)
            .await
            .unwrap()
            .unwrap()
            .profile
            .mail_redirect
    };

    // An open session alone (a lab computer) is not enough; a wrong password is a failed
    // login.
    for current in [None, Some("not my password at all")] {
        let mut fields = vec![("address", elsewhere.as_str()), ("keep_copy", "true")];
        if let Some(c) = current {
            fields.push(("current", c));
        }
        let (status, body) = post_form(&app, &client, "/account/redirect", &fields).await;
        assert_eq!(status, 401, "{body}");
        assert!(body.contains("id=\"account-error\""));
    }
    assert!(app.mails_to(&elsewhere).await.is_empty(), "no link sent");
    assert!(redirect_now().await.is_none());
    assert!(
        app.audit_kinds(&login)
            .await
            .iter()
            .filter(|k| *k == "login.failed")
            .count()
            >= 2
    );

    let (status, _) = post_form(
        &app,
        &client,
        "/account/redirect",
        &[
            ("address", elsewhere.as_str()),
            ("keep_copy", "true"),
            ("current", GOOD_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(redirect_now().await.is_none(), "pending");
    let link =
        app.mails_to(&elsewhere).await[0].link_to(&format!("{}/account/verify", app.address));

    // A plain GET of the link, from any browser, changes nothing.
    let res = browser().get(&link).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains(&elsewhere), "the page says what it confirms");
    assert!(redirect_now().await.is_none(), "a GET commits nothing");
    // Its button posted from a foreign page: refused.
    let res = browser()
        .post(format!("{}/account/verify", app.address))
        .header("Origin", "https://evil.example")
        .form(&[
            ("kind", field(&page, "kind").as_str()),
            ("token", field(&page, "token").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(redirect_now().await.is_none());
    assert!(
        app.mails_to(&institutional).await.is_empty(),
        "nothing to tell yet"
    );

    let (_, status, body) = follow_verify_link(&link).await;
    assert_eq!(status, 200, "{body}");
    let redirect = redirect_now().await.unwrap();
    assert_eq!(redirect.address.as_str(), elsewhere);
    assert!(redirect.verified && redirect.keep_copy);
    // Told to the institutional mailbox and the recovery address, with a way out.
    let masked = format!("{}***@ailleurs.example.net", &login[..1]);
    for told in [&institutional, &recovery] {
        let notices = app.mails_to(told).await;
        assert_eq!(notices.len(), 1, "{told}");
        assert!(notices[0].subject.contains("redirection"), "{told}");
        assert!(notices[0].text.contains(&masked), "{}", notices[0].text);
        assert!(notices[0]
            .text
            .contains(&format!("{}/password/forgot", app.address)));
    }

    // The verified recovery address needs no link, but the password, and is told.
    let (status, _) = post_form(
        &app,
        &client,
        "/account/redirect",
        &[("address", recovery.as_str()), ("current", GOOD_PASSWORD)],
    )
    .await;
    assert_eq!(status, 200);
    let redirect = redirect_now().await.unwrap();
    assert_eq!(redirect.address.as_str(), recovery);
    assert!(redirect.verified && !redirect.keep_copy);
    assert_eq!(app.mails_to(&institutional).await.len(), 2);
    // Removing it too.
    let (status, _) = post_form(
        &app,
        &client,
        "/account/redirect",
        &[("address", ""), ("current", GOOD_PASSWORD)],
    )
    .await;
    assert_eq!(status, 200);
    assert!(redirect_now().await.is_none());
    let notices = app.mails_to(&institutional).await;
    assert_eq!(notices.len(), 3);
    assert!(notices[2].text.contains("supprimée"), "{}", notices[2].text);

    // The directory choice is no way to reach or recover the account: no password, no notice.
    let (status, _) = post_form(&app, &client, "/account/directory", &[("opt_in", "true")]).await;
    assert_eq!(status, 200);
    assert!(
        app.services
            .profiles
            .find_with_profile(account.id)
            .await
            .unwrap()
            .unwrap()
            .profile
            .directory_opt_in
    );
    assert_eq!(app.mails_to(&institutional).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_page_sends_the_person_back_to_the_account_page_and_nowhere_else() {
    let app = spawn_app().await;
    let login = unique_login("back");
    app.create_user(&login, GOOD_PASSWORD).await;
    let first = browser();
    for (i, (next, expected)) in [
        ("/account", format!("{}/account", app.address)),
        (
            "https://evil.example/account",
            format!("{}/cas/login", app.address),
        ),
        (
            "//evil.example/account",
            format!("{}/cas/login", app.address),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let client = if i == 0 { first.clone() } else { browser() };
        let url = format!("{}/cas/login?next={next}", app.address);
        let page = client.get(&url).send().await.unwrap().text().await.unwrap();
        let lt = sesame_tests::extract_lt(&page).unwrap();
        let res = client
            .post(&url)
            .form(&[
                ("lt", lt.as_str()),
                ("username", login.as_str()),
                ("password", GOOD_PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(
            res.headers()["location"].to_str().unwrap(),
            expected,
            "{next}"
        );
    }
    let (status, _) = account_page(&app, &first).await;
    assert_eq!(status, 200);
    // Already logged in: straight back.
    let res = first
        .get(format!("{}/cas/login?next=/account", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("{}/account", app.address)
    );
}
