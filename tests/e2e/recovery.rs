//! Forgotten password by mail and by SMS, through the running application: the mail read
//! from the outbox and its link followed, the SMS code read from the SMS outbox (rows A48,
//! A49, A50, A51, C07).

use std::time::Duration as StdDuration;

use sesame_core::account::{Account, AccountChanges, Contact};
use sesame_core::clock::Clock;
use sesame_core::ids::{Email, MobilePhone};
use sesame_server::config::recovery::SmsTransport;
use sesame_tests::{browser, unique_login, TestApp, TestAppBuilder, GOOD_PASSWORD};
use time::Duration;

/// A new password that passes the default policy.
pub const NEW_PASSWORD: &str = "copper lantern over quiet dunes";

/// An app whose SMS go to a per-test outbox directory (inside the per-test mail outbox, which
/// the harness removes when the app is dropped).
pub fn with_sms_outbox(builder: TestAppBuilder) -> TestAppBuilder {
    builder.with(|s| {
        s.sms.transport = SmsTransport::Outbox;
        s.sms.outbox_dir = std::path::Path::new(&s.mail.outbox_dir)
            .join("sms")
            .display()
            .to_string();
    })
}

/// Spawns an app with an SMS outbox.
pub async fn spawn_app() -> TestApp {
    with_sms_outbox(TestApp::builder()).spawn().await
}

/// Every SMS of the outbox sent to `number`: (to, text), oldest first.
pub fn sms_to(app: &TestApp, number: &str) -> Vec<String> {
    let dir = std::path::Path::new(&app.settings.sms.outbox_dir);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
            (v["to"] == number).then(|| v["text"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// Waits (up to 5 s: the SMS is sent on a background task) for the `n`-th SMS to `number`
/// and returns the 6-digit code it carries.
pub async fn nth_sms_code(app: &TestApp, number: &str, n: usize) -> String {
    for _ in 0..100 {
        let texts = sms_to(app, number);
        if texts.len() >= n {
            let text = &texts[n - 1];
            let digits: String = text
                .split(|c: char| !c.is_ascii_digit())
                .find(|w| w.len() == 6)
                .unwrap_or_default()
                .to_owned();
            assert_eq!(digits.len(), 6, "no code in {text:?}");
            return digits;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    panic!("no SMS number {n} to {number}");
}

/// The value of the hidden (or other) input `name` in a page.
pub fn field(html: &str, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle).map(|i| i + needle.len());
    let Some(start) = start else {
        panic!("no field {name} in {html}");
    };
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// Gives the account a verified recovery address and returns it.
pub async fn give_recovery_email(app: &TestApp, account: &Account) -> String {
    let address = format!("{}@perso.example.com", account.login.as_str());
    app.services
        .profiles
        .update_account(
            account.id,
            &AccountChanges {
                recovery_email: Some(Some(Contact::verified(Email::parse(&address).unwrap()))),
                ..AccountChanges::default()
            },
            app.clock.now(),
        )
        .await
        .unwrap();
    address
}

/// Gives the account a verified mobile and returns it.
pub async fn give_mobile(app: &TestApp, account: &Account) -> String {
    let digits = sesame_core::random::digits(8);
    let number = format!("+336{digits}");
    app.services
        .profiles
        .update_account(
            account.id,
            &AccountChanges {
                mobile: Some(Some(Contact::verified(
                    MobilePhone::parse(&number).unwrap(),
                ))),
                ..AccountChanges::default()
            },
            app.clock.now(),
        )
        .await
        .unwrap();
    number
}

/// Whether `client` has a live SSO session.
pub async fn is_logged_in(app: &TestApp, client: &reqwest::Client) -> bool {
    client
        .get(format!("{}/cas/login", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("id=\"current-user\"")
}

/// Submits the request form of `/password/forgot` with a fresh form ticket.
pub async fn ask_reset(
    app: &TestApp,
    client: &reqwest::Client,
    identifier: &str,
    channel: &str,
) -> (reqwest::StatusCode, String) {
    let page = client
        .get(format!("{}/password/forgot", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ft = field(&page, "ft");
    let res = client
        .post(format!("{}/password/forgot", app.address))
        .form(&[
            ("ft", ft.as_str()),
            ("identifier", identifier),
            ("channel", channel),
        ])
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// The reset links mailed to `address` so far, oldest first.
pub async fn reset_links(app: &TestApp, address: &str) -> Vec<String> {
    app.mails_to(address)
        .await
        .into_iter()
        .filter(|m| m.text.contains("/password/reset?token="))
        .map(|m| m.link_to(&format!("{}/password/reset", app.address)))
        .collect()
}

pub async fn post_reset(
    app: &TestApp,
    client: &reqwest::Client,
    token: &str,
    password: &str,
    confirm: &str,
) -> (reqwest::StatusCode, String) {
    let res = client
        .post(format!("{}/password/reset", app.address))
        .form(&[
            ("token", token),
            ("password", password),
            ("confirm", confirm),
        ])
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// Follows a mailed link: the form and its token.
pub async fn open_link(
    app: &TestApp,
    client: &reqwest::Client,
    link: &str,
) -> (reqwest::StatusCode, String) {
    let res = client.get(link).send().await.unwrap();
    assert!(link.starts_with(&app.address), "{link}");
    (res.status(), res.text().await.unwrap())
}

async fn can_log_in(app: &TestApp, login: &str, password: &str) -> bool {
    app.login_with(&browser(), login, password, false)
        .await
        .status()
        == reqwest::StatusCode::SEE_OTHER
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a49_forgot_by_mail_end_to_end_ends_the_old_session_and_the_new_password_logs_in() {
    let app = spawn_app().await;
    let login = unique_login("reset");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    // A session opened before the reset (maybe by whoever stole the password).
    let old_browser = browser();
    app.login_with(&old_browser, &login, GOOD_PASSWORD, true)
        .await;
    assert!(is_logged_in(&app, &old_browser).await);

    let person = browser();
    let (status, body) = ask_reset(&app, &person, &login, "mail").await;
    assert_eq!(status, 200);
    assert!(body.contains("id=\"reset-sent\""), "{body}");
    let links = reset_links(&app, &recovery).await;
    assert_eq!(links.len(), 1);
    let (status, form) = open_link(&app, &person, &links[0]).await;
    assert_eq!(status, 200);
    assert!(
        form.contains("id=\"password-rules\""),
        "the policy is shown: {form}"
    );
    assert!(form.contains(&login));
    let token = field(&form, "token");

    let (status, body) = post_reset(&app, &person, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("id=\"reset-done\""));

    assert!(
        !is_logged_in(&app, &old_browser).await,
        "the old SSO session is gone"
    );
    assert!(can_log_in(&app, &login, NEW_PASSWORD).await);
    assert!(!can_log_in(&app, &login, GOOD_PASSWORD).await);
    let notices: Vec<_> = app
        .mails_to(&recovery)
        .await
        .into_iter()
        .filter(|m| {
            m.subject
                .contains("mot de passe de votre compte a été modifié")
        })
        .collect();
    assert_eq!(notices.len(), 1, "one notice");
    let kinds = app.audit_kinds(&login).await;
    assert!(
        kinds.contains(&"recovery.password_reset".to_owned()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"recovery.reset_requested".to_owned()),
        "{kinds:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a49_forgot_by_mail_then_a_cas_login_with_the_new_password_gets_a_ticket() {
    let service = "https://moodle.example.org/login";
    let app = with_sms_outbox(TestApp::builder())
        .with(move |s| {
            s.cas.services = vec![sesame_tests::cas_service(
                "moodle",
                "https://moodle.example.org/",
                "",
            )];
        })
        .spawn()
        .await;
    let login = unique_login("resetcas");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    let person = browser();
    ask_reset(&app, &person, &format!("{login}@univ.example.org"), "mail").await;
    let links = reset_links(&app, &recovery).await;
    assert_eq!(
        links.len(),
        1,
        "the institutional address names the account too"
    );
    let (_, form) = open_link(&app, &person, &links[0]).await;
    let (status, _) = post_reset(
        &app,
        &person,
        &field(&form, "token"),
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(status, 200);

    let cas_browser = browser();
    let page = cas_browser
        .get(format!("{}/cas/login?service={service}", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lt = sesame_tests::extract_lt(&page).unwrap();
    let res = cas_browser
        .post(format!("{}/cas/login?service={service}", app.address))
        .form(&[
            ("lt", lt.as_str()),
            ("username", login.as_str()),
            ("password", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(service) && location.contains("ticket=ST-"),
        "{location}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a48_unknown_account_gets_the_identical_response() {
    let app = spawn_app().await;
    let login = unique_login("known");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    let without = unique_login("norecovery");
    app.create_user(&without, GOOD_PASSWORD).await;

    let known = ask_reset(&app, &browser(), &login, "mail").await;
    let unknown = ask_reset(&app, &browser(), &unique_login("nobody"), "mail").await;
    let no_address = ask_reset(&app, &browser(), &without, "mail").await;
    assert_eq!(known, unknown, "same status and body");
    assert_eq!(known, no_address);
    assert_eq!(reset_links(&app, &recovery).await.len(), 1);
    assert_eq!(app.deliver_mail().await.sent, 0, "nothing else was queued");

    // By SMS: the code form, whose only difference is the random request id.
    let (s1, b1) = ask_reset(&app, &browser(), &login, "sms").await;
    let (s2, b2) = ask_reset(&app, &browser(), &unique_login("nobody"), "sms").await;
    assert_eq!(s1, s2);
    assert_eq!(
        b1.replace(&field(&b1, "request_id"), ""),
        b2.replace(&field(&b2, "request_id"), "")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a49_a_reset_link_works_once() {
    let app = spawn_app().await;
    let login = unique_login("once");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    let person = browser();
    ask_reset(&app, &person, &login, "mail").await;
    let link = reset_links(&app, &recovery).await.remove(0);
    let (_, form) = open_link(&app, &person, &link).await;
    let token = field(&form, "token");
    assert_eq!(
        post_reset(&app, &person, &token, NEW_PASSWORD, NEW_PASSWORD)
            .await
            .0,
        200
    );

    let (status, body) = open_link(&app, &person, &link).await;
    assert_eq!(status, 400);
    assert!(body.contains("id=\"reset-invalid\""));
    let (status, _) = post_reset(
        &app,
        &person,
        &token,
        "another long enough passphrase",
        "another long enough passphrase",
    )
    .await;
    assert_eq!(status, 400);
    assert!(can_log_in(&app, &login, NEW_PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a49_a_reset_link_expires_after_its_lifetime() {
    let app = spawn_app().await;
    let login = unique_login("expiry");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    let person = browser();
    ask_reset(&app, &person, &login, "mail").await;
    let link = reset_links(&app, &recovery).await.remove(0);
    let (status, form) = open_link(&app, &person, &link).await;
    assert_eq!(status, 200);
    app.clock.advance(Duration::seconds(3601));
    assert_eq!(open_link(&app, &person, &link).await.0, 400);
    let (status, _) = post_reset(
        &app,
        &person,
        &field(&form, "token"),
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(status, 400);
    assert!(can_log_in(&app, &login, GOOD_PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a49_a_newer_link_kills_the_older_one() {
    let app = spawn_app().await;
    let login = unique_login("newer");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    let person = browser();
    ask_reset(&app, &person, &login, "mail").await;
    ask_reset(&app, &person, &login, "mail").await;
    let links = reset_links(&app, &recovery).await;
    assert_eq!(links.len(), 2);
    assert_eq!(open_link(&app, &person, &links[0]).await.0, 400);
    let (status, form) = open_link(&app, &person, &links[1]).await;
    assert_eq!(status, 200);
    assert_eq!(
        post_reset(
            &app,
            &person,
            &field(&form, "token"),
            NEW_PASSWORD,
            NEW_PASSWORD
        )
        .await
        .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a51_the_new_password_step_needs_a_verified_token() {
    let app = spawn_app().await;
    let login = unique_login("jump");
    app.create_user(&login, GOOD_PASSWORD).await;
    let person = browser();
    let res = person
        .get(format!("{}/password/reset", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(!res.text().await.unwrap().contains("name=\"password\""));
    for token in ["", "forged-token", &sesame_core::random::token()] {
        let (status, body) = post_reset(&app, &person, token, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(status, 400, "{token:?}");
        assert!(body.contains("id=\"reset-invalid\""));
    }
    // A request id from the SMS step is not a token either.
    let (_, code_page) = ask_reset(&app, &person, &login, "sms").await;
    let request_id = field(&code_page, "request_id");
    assert_eq!(
        post_reset(&app, &person, &request_id, NEW_PASSWORD, NEW_PASSWORD)
            .await
            .0,
        400
    );
    assert!(can_log_in(&app, &login, GOOD_PASSWORD).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a51_a_mismatch_or_a_weak_password_keeps_the_link_usable() {
    let app = spawn_app().await;
    let login = unique_login("weak");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    let person = browser();
    ask_reset(&app, &person, &login, "mail").await;
    let link = reset_links(&app, &recovery).await.remove(0);
    let (_, form) = open_link(&app, &person, &link).await;
    let token = field(&form, "token");
    let (status, body) = post_reset(
        &app,
        &person,
        &token,
        NEW_PASSWORD,
        "something else entirely",
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("id=\"reset-errors\""));
    assert_eq!(
        post_reset(&app, &person, &token, "short", "short").await.0,
        400
    );
    assert_eq!(
        post_reset(&app, &person, &token, NEW_PASSWORD, NEW_PASSWORD)
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c07_twenty_parallel_submissions_of_one_reset_link_exactly_one_succeeds() {
    let app = spawn_app().await;
    let login = unique_login("race");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    let person = browser();
    ask_reset(&app, &person, &login, "mail").await;
    let link = reset_links(&app, &recovery).await.remove(0);
    let (_, form) = open_link(&app, &person, &link).await;
    let token = field(&form, "token");

    let passwords: Vec<String> = (0..20)
        .map(|i| format!("parallel harbour tramway number {i}"))
        .collect();
    let sends = passwords.iter().map(|p| {
        let client = browser();
        let token = token.clone();
        let address = app.address.clone();
        let p = p.clone();
        async move {
            let res = client
                .post(format!("{address}/password/reset"))
                .form(&[
                    ("token", token.as_str()),
                    ("password", p.as_str()),
                    ("confirm", p.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (p, res.status())
        }
    });
    let outcomes = futures::future::join_all(sends).await;
    let winners: Vec<_> = outcomes.iter().filter(|(_, s)| *s == 200).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winner = &winners[0].0;
    assert!(
        can_log_in(&app, &login, winner).await,
        "the stored hash is the winner's"
    );
    for (p, _) in outcomes.iter().filter(|(p, _)| p != winner).take(3) {
        assert!(!can_log_in(&app, &login, p).await);
    }
    let notices = app
        .mails_to(&recovery)
        .await
        .into_iter()
        .filter(|m| m.subject.contains("a été modifié"))
        .count();
    assert_eq!(notices, 1, "one notification");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a50_forgot_by_sms_end_to_end() {
    let app = spawn_app().await;
    let login = unique_login("sms");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let number = give_mobile(&app, &account).await;
    let person = browser();
    let (status, page) = ask_reset(&app, &person, &login, "sms").await;
    assert_eq!(status, 200);
    let code = nth_sms_code(&app, &number, 1).await;
    let res = person
        .post(format!("{}/password/code", app.address))
        .form(&[
            ("request_id", field(&page, "request_id").as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let form = res.text().await.unwrap();
    assert!(form.contains(&login));
    let (status, _) = post_reset(
        &app,
        &person,
        &field(&form, "token"),
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(status, 200);
    assert!(can_log_in(&app, &login, NEW_PASSWORD).await);
}

async fn post_code(
    app: &TestApp,
    client: &reqwest::Client,
    request_id: &str,
    code: &str,
) -> (reqwest::StatusCode, String) {
    let res = client
        .post(format!("{}/password/code", app.address))
        .form(&[("request_id", request_id), ("code", code)])
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a50_an_sms_code_expires_after_ten_minutes() {
    let app = spawn_app().await;
    let login = unique_login("smsexpiry");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let number = give_mobile(&app, &account).await;
    let person = browser();
    let (_, page) = ask_reset(&app, &person, &login, "sms").await;
    let code = nth_sms_code(&app, &number, 1).await;
    app.clock.advance(Duration::seconds(601));
    let (status, body) = post_code(&app, &person, &field(&page, "request_id"), &code).await;
    assert_eq!(status, 400);
    assert!(body.contains("id=\"reset-invalid\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a50_the_sixth_try_is_refused_even_with_the_right_code() {
    let app = spawn_app().await;
    let login = unique_login("smstries");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let number = give_mobile(&app, &account).await;
    let person = browser();
    let (_, page) = ask_reset(&app, &person, &login, "sms").await;
    let request_id = field(&page, "request_id");
    let code = nth_sms_code(&app, &number, 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (status, body) = post_code(&app, &person, &request_id, wrong).await;
        assert_eq!(status, 400);
        assert!(body.contains("id=\"code-error\"") || body.contains("id=\"reset-invalid\""));
    }
    let (status, body) = post_code(&app, &person, &request_id, &code).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("id=\"reset-invalid\""),
        "the code was invalidated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a50_a_code_works_only_for_the_request_and_account_it_was_sent_for() {
    let app = spawn_app().await;
    let alice = unique_login("alice");
    let bob = unique_login("bob");
    let alice_account = app.create_user(&alice, GOOD_PASSWORD).await;
    let bob_account = app.create_user(&bob, GOOD_PASSWORD).await;
    let alice_number = give_mobile(&app, &alice_account).await;
    let bob_number = give_mobile(&app, &bob_account).await;
    let attacker = browser();
    let (_, alice_page) = ask_reset(&app, &attacker, &alice, "sms").await;
    let (_, bob_page) = ask_reset(&app, &attacker, &bob, "sms").await;
    let bob_code = nth_sms_code(&app, &bob_number, 1).await;
    let alice_code = nth_sms_code(&app, &alice_number, 1).await;
    if bob_code != alice_code {
        let (status, _) = post_code(
            &app,
            &attacker,
            &field(&alice_page, "request_id"),
            &bob_code,
        )
        .await;
        assert_eq!(status, 400, "Bob's code does not open Alice's request");
    }
    // Bob's code opens Bob's request, for Bob only.
    let (status, form) =
        post_code(&app, &attacker, &field(&bob_page, "request_id"), &bob_code).await;
    assert_eq!(status, 200);
    assert!(form.contains(&bob) && !form.contains(&alice));
    // And Alice's request still works with Alice's code.
    let (status, form) = post_code(
        &app,
        &attacker,
        &field(&alice_page, "request_id"),
        &alice_code,
    )
    .await;
    assert_eq!(status, 200);
    assert!(form.contains(&alice));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a50_the_sms_budget_per_number_stops_sending() {
    let app = with_sms_outbox(TestApp::builder())
        .with(|s| s.lifecycle.recovery.sms_per_number_per_day = 2)
        .spawn()
        .await;
    let login = unique_login("budget");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let number = give_mobile(&app, &account).await;
    for _ in 0..4 {
        let (status, _) = ask_reset(&app, &browser(), &login, "sms").await;
        assert_eq!(status, 200, "the answer does not change");
    }
    nth_sms_code(&app, &number, 2).await;
    // Give the background sender time to write any extra SMS it (wrongly) had queued.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    assert_eq!(sms_to(&app, &number).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a49_a_reset_sends_single_logout_to_the_applications_of_the_ended_sessions() {
    let rp = sesame_tests::RecordingServer::start().await;
    let rp_base = format!("{}/", rp.base);
    let app = with_sms_outbox(TestApp::builder())
        .with({
            let rp_base = rp_base.clone();
            move |s| {
                s.cas
                    .services
                    .push(sesame_tests::cas_service("rp", &rp_base, ""))
            }
        })
        .spawn()
        .await;
    let login = unique_login("resetslo");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    // The old session logs in to the application and gets a ticket.
    let old_browser = browser();
    app.login_with(&old_browser, &login, GOOD_PASSWORD, false)
        .await;
    let res = old_browser
        .get(format!("{}/cas/login?service={rp_base}", app.address))
        .send()
        .await
        .unwrap();
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .contains("ticket=ST-"));

    let person = browser();
    ask_reset(&app, &person, &login, "mail").await;
    let link = reset_links(&app, &recovery).await.remove(0);
    let (_, form) = open_link(&app, &person, &link).await;
    let (status, _) = post_reset(
        &app,
        &person,
        &field(&form, "token"),
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(status, 200);

    let received = rp.wait_for(1).await;
    let slo: Vec<_> = received.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(slo.len(), 1, "{received:?}");
    assert!(slo[0].body.contains("logoutRequest"), "{}", slo[0].body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a50_the_default_log_only_gateway_answers_the_same_and_sends_nothing() {
    // `sms.transport = "log"`: the log says an SMS went to a masked number, never its code
    // (tests/check-log-hygiene.sh searches the suite's logs for codes).
    let app = TestApp::spawn().await;
    let login = unique_login("logsms");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    give_mobile(&app, &account).await;
    let (status, page) = ask_reset(&app, &browser(), &login, "sms").await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"reset-code-sent\""));
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f15_with_the_mail_server_down_a_reset_answers_the_same_and_the_link_waits_in_the_queue() {
    let port = closed_port();
    let app = with_sms_outbox(TestApp::builder())
        .with(move |s| {
            s.mail.transport = sesame_mail::transport::TransportKind::Smtp;
            s.mail.smtp_host = "127.0.0.1".to_owned();
            s.mail.smtp_port = port;
            s.mail.smtp_security = sesame_mail::transport::SmtpSecurity::None;
            s.mail.timeout_secs = 1;
        })
        .spawn()
        .await;
    let login = unique_login("smtpdown");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    give_recovery_email(&app, &account).await;
    let known = ask_reset(&app, &browser(), &login, "mail").await;
    let unknown = ask_reset(&app, &browser(), &unique_login("nobody"), "mail").await;
    assert_eq!(known, unknown);
    assert_eq!(known.0, 200);
    let report = app.deliver_mail().await;
    assert_eq!(report.sent, 0);
    let counts = app.services.mail.queue.mail_counts().await.unwrap();
    assert_eq!(
        counts.pending, 1,
        "the link is queued durably, to be sent once SMTP is back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f16_with_the_sms_gateway_down_a_reset_answers_the_same() {
    let port = closed_port();
    let app = TestApp::builder()
        .with(move |s| {
            s.sms.transport = SmsTransport::Http;
            s.sms.http_url = format!("http://127.0.0.1:{port}/send");
            s.sms.timeout_secs = 1;
        })
        .spawn()
        .await;
    let login = unique_login("smsdown");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    give_mobile(&app, &account).await;
    let (s1, b1) = ask_reset(&app, &browser(), &login, "sms").await;
    let (s2, b2) = ask_reset(&app, &browser(), &unique_login("nobody"), "sms").await;
    assert_eq!((s1, s2), (reqwest::StatusCode::OK, reqwest::StatusCode::OK));
    assert_eq!(
        b1.replace(&field(&b1, "request_id"), ""),
        b2.replace(&field(&b2, "request_id"), "")
    );
    // The code's lifetime is not extended for the slow gateway: it still ends 10 minutes
    // after the request.
    app.clock.advance(Duration::seconds(601));
    let (status, _) = post_code(&app, &browser(), &field(&b1, "request_id"), "123456").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f16_an_sms_queued_while_the_gateway_is_down_arrives_once_it_is_back_and_its_code_still_ends_on_time(
) {
    let port = closed_port();
    let app = TestApp::builder()
        .with(move |s| {
            s.sms.transport = SmsTransport::Http;
            s.sms.http_url = format!("http://127.0.0.1:{port}/send");
            s.sms.timeout_secs = 1;
            s.sms.retry_for_secs = 60;
        })
        .spawn()
        .await;
    let login = unique_login("smsback");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    give_mobile(&app, &account).await;
    let person = browser();
    let (status, page) = ask_reset(&app, &person, &login, "sms").await;
    assert_eq!(status, reqwest::StatusCode::OK);
    // The gateway is down for the first tries (at 0 s and 1 s), then comes back.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let provider = sesame_tests::RecordingServer::start_on(port).await;
    let received = provider.wait_for(1).await;
    assert_eq!(received.len(), 1, "the SMS was tried again and delivered");
    let code: String = received[0]
        .body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_owned();
    // The late code still ends 10 minutes after the request, not after its delivery.
    app.clock.advance(Duration::seconds(601));
    let (status, _) = post_code(&app, &person, &field(&page, "request_id"), &code).await;
    assert_eq!(status, 400, "the code's lifetime was not extended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a50_the_http_gateway_posts_the_code_to_the_provider() {
    let provider = sesame_tests::RecordingServer::start().await;
    let url = format!("{}/v1/messages", provider.base);
    let app = TestApp::builder()
        .with(move |s| {
            s.sms.transport = SmsTransport::Http;
            s.sms.http_url = url;
            s.sms.http_auth_header = "Authorization".to_owned();
            s.sms.http_auth_value = "Bearer provider-key".into();
            s.sms.http_body_template = r#"{"recipient":"{to}","message":"{text}"}"#.to_owned();
        })
        .spawn()
        .await;
    let login = unique_login("httpsms");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let number = give_mobile(&app, &account).await;
    let person = browser();
    let (_, page) = ask_reset(&app, &person, &login, "sms").await;
    let received = provider.wait_for(1).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].method, "POST");
    assert_eq!(received[0].target, "/v1/messages");
    let body: serde_json::Value = serde_json::from_str(&received[0].body).unwrap();
    assert_eq!(body["recipient"], number.as_str());
    let message = body["message"].as_str().unwrap();
    let code: String = message
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap()
        .to_owned();
    let (status, form) = post_code(&app, &person, &field(&page, "request_id"), &code).await;
    assert_eq!(status, 200);
    assert!(form.contains(&login));
}
