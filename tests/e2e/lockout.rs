//! Lockout (security spec decision 1; rows A03, A04, A56, C01, C03, C14, C15), and how it is
//! kept from being a weapon: known devices, the reset that lifts every lock, the warnings and
//! the ways out of a lock (ADR 0012).

use futures::future::join_all;
use sesame_tests::{browser, set_cookies, unique_login, TestApp, GOOD_PASSWORD};
use time::Duration;

use sesame_core::clock::Clock;

use crate::recovery::{
    ask_reset, field, give_recovery_email, open_link, reset_links, NEW_PASSWORD,
};

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

#[tokio::test]
async fn c01_two_hundred_concurrent_wrong_passwords_lock_at_exactly_the_threshold() {
    let app = TestApp::builder()
        .with(|s| {
            s.lockout.ip_threshold = 10_000;
            s.password_hashing.queue_per_worker = 200;
        })
        .spawn()
        .await;
    let login = unique_login("target");
    app.create_user(&login, GOOD_PASSWORD).await;
    let lts = join_all((0..200).map(|_| app.fresh_lt())).await;

    let client = browser();
    let responses = join_all(
        lts.iter()
            .map(|lt| app.post_login(&client, lt, &login, "wrong password, attempt", false)),
    )
    .await;
    assert!(responses.iter().all(|r| r.status() == 401));
    let kinds = app.audit_kinds(&login).await;
    assert_eq!(
        count(&kinds, "login.failed"),
        5,
        "exactly the threshold reached the password check"
    );
    assert_eq!(count(&kinds, "login.locked"), 1);
    assert_eq!(count(&kinds, "login.refused_locked"), 195);

    // The right password while locked gets the lock message, is not checked, opens nothing.
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(res.status(), 401);
    assert!(set_cookies(&res).is_empty());
    let body = res.text().await.unwrap();
    assert!(
        body.contains("temporairement verrouillée. Réessayez à"),
        "{body}"
    );
    let kinds = app.audit_kinds(&login).await;
    assert_eq!(count(&kinds, "login.failed"), 5);
    assert_eq!(count(&kinds, "login.succeeded"), 0);

    // The lock ends by itself.
    app.clock.advance(Duration::minutes(16));
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(res.status(), 303);
}

#[tokio::test]
async fn an_unknown_login_locks_like_a_known_one() {
    let app = TestApp::spawn().await;
    let nobody = unique_login("ghost");
    for _ in 0..4 {
        assert_eq!(
            app.login_with(&browser(), &nobody, "wrong password here", false)
                .await
                .status(),
            401
        );
    }
    let fifth = app
        .login_with(&browser(), &nobody, "wrong password here", false)
        .await;
    assert!(fifth
        .text()
        .await
        .unwrap()
        .contains("temporairement verrouillée"));
}

#[tokio::test]
async fn a04_case_and_width_variants_share_one_counter() {
    let app = TestApp::spawn().await;
    let login = unique_login("variant");
    app.create_user(&login, GOOD_PASSWORD).await;
    let variants = [
        login.clone(),
        login.to_uppercase(),
        format!("{login} "),
        login.replacen('v', "\u{ff56}", 1), // full-width v
        login.clone(),
    ];
    for v in &variants {
        app.login_with(&browser(), v, "wrong password here", false)
            .await;
    }
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(
        res.status(),
        401,
        "five failures over variants lock the one login"
    );
}

#[tokio::test]
async fn a_success_resets_the_counter() {
    let app = TestApp::spawn().await;
    let login = unique_login("reset");
    app.create_user(&login, GOOD_PASSWORD).await;
    for _ in 0..4 {
        app.login_with(&browser(), &login, "wrong password here", false)
            .await;
    }
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
    for _ in 0..4 {
        app.login_with(&browser(), &login, "wrong password here", false)
            .await;
    }
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn c14_spraying_from_one_address_trips_the_address_throttle_not_the_accounts() {
    let app = TestApp::builder()
        .with(|s| s.lockout.ip_threshold = 10)
        .spawn()
        .await;
    let logins: Vec<String> = (0..30)
        .map(|i| unique_login(&format!("spray{i}")))
        .collect();
    for l in &logins {
        app.create_user(l, GOOD_PASSWORD).await;
    }
    let mut statuses = Vec::new();
    for (i, l) in logins.iter().enumerate() {
        // A spoofed X-Forwarded-For from an untrusted peer changes nothing (A56).
        let lt = app.fresh_lt().await;
        let res = browser()
            .post(format!("{}/cas/login", app.address))
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .form(&[
                ("lt", lt.as_str()),
                ("username", l.as_str()),
                ("password", "Summer2026!"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 20);
    // The accounts tried after the throttle tripped were never counted against.
    for l in &logins[10..] {
        assert_eq!(count(&app.audit_kinds(l).await, "login.failed"), 0);
    }
    app.clock.advance(Duration::minutes(16));
    assert_eq!(
        app.login_with(&browser(), &logins[29], GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn c15_many_addresses_on_one_account_still_lock_it() {
    let app = TestApp::builder()
        .with(|s| s.server.trusted_proxies = vec!["127.0.0.1".to_owned()])
        .spawn()
        .await;
    let login = unique_login("distributed");
    app.create_user(&login, GOOD_PASSWORD).await;
    for i in 0..5 {
        let lt = app.fresh_lt().await;
        let res = browser()
            .post(format!("{}/cas/login", app.address))
            .header("X-Forwarded-For", format!("198.51.100.{i}"))
            .form(&[
                ("lt", lt.as_str()),
                ("username", login.as_str()),
                ("password", "wrong password here"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("temporairement verrouillée"));
    let events = app.services.audit.recent(Some(&login), 100).await.unwrap();
    let ips: std::collections::BTreeSet<_> = events.iter().filter_map(|e| e.ip.clone()).collect();
    assert!(
        ips.contains("198.51.100.0") && ips.contains("198.51.100.4"),
        "trusted proxy's X-Forwarded-For used: {ips:?}"
    );
}

#[tokio::test]
async fn an_operator_unlock_lifts_the_lock_at_once() {
    let app = TestApp::spawn().await;
    let login = unique_login("unlockme");
    app.create_user(&login, GOOD_PASSWORD).await;
    for _ in 0..5 {
        app.login_with(&browser(), &login, "wrong password here", false)
            .await;
    }
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        401
    );
    assert!(app
        .services
        .accounts
        .locked_until(&login)
        .await
        .unwrap()
        .is_some());
    app.services.accounts.unlock(&login, "test").await.unwrap();
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn c12_a_saturated_hashing_pool_answers_503_with_retry_after() {
    let app = TestApp::builder()
        .with(|s| {
            // Real cost, no queue: more concurrent logins than cores must be refused.
            s.password_hashing.memory_kib = 19_456;
            s.password_hashing.iterations = 2;
            s.password_hashing.queue_per_worker = 0;
            s.lockout.ip_threshold = 10_000;
        })
        .spawn()
        .await;
    let lts = join_all((0..40).map(|_| app.fresh_lt())).await;
    let client = browser();
    let app = &app;
    let responses = join_all(lts.iter().enumerate().map(|(i, lt)| {
        let login = format!("nobody{i}");
        let client = client.clone();
        async move {
            app.post_login(&client, lt, &login, "whatever password", false)
                .await
        }
    }))
    .await;
    let busy: Vec<_> = responses.iter().filter(|r| r.status() == 503).collect();
    assert!(!busy.is_empty(), "some logins must be refused");
    assert!(busy.iter().all(|r| r.headers()["retry-after"] == "1"));
    assert!(responses
        .iter()
        .all(|r| r.status() == 503 || r.status() == 401));
}

#[tokio::test]
async fn c02_two_instances_share_one_counter() {
    if sesame_tests::backend() != sesame_tests::Backend::Production {
        eprintln!("skipped: two instances share counters only on PostgreSQL + Redis");
        return;
    }
    let a = TestApp::builder()
        .with(|s| {
            s.password_hashing.queue_per_worker = 100;
            s.lockout.ip_threshold = 10_000;
        })
        .spawn()
        .await;
    let b = a.spawn_sibling().await;
    let login = unique_login("shared");
    a.create_user(&login, GOOD_PASSWORD).await;
    let lts_a = join_all((0..50).map(|_| a.fresh_lt())).await;
    let lts_b = join_all((0..50).map(|_| b.fresh_lt())).await;
    let client = browser();
    let on_a = lts_a
        .iter()
        .map(|lt| a.post_login(&client, lt, &login, "wrong password here", false));
    let on_b = lts_b
        .iter()
        .map(|lt| b.post_login(&client, lt, &login, "wrong password here", false));
    let (ra, rb) = futures::join!(join_all(on_a), join_all(on_b));
    assert!(ra.iter().chain(rb.iter()).all(|r| r.status() == 401));
    let kinds = a.audit_kinds(&login).await;
    assert_eq!(
        count(&kinds, "login.failed"),
        5,
        "exactly the threshold over both instances"
    );
    assert_eq!(
        b.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        401
    );
    assert_eq!(
        a.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn failures_before_the_lock_are_answered_ever_more_slowly() {
    let app = TestApp::builder()
        .with(|s| {
            s.lockout.failure_delay_ms = 400;
            s.lockout.max_failure_delay_ms = 800;
        })
        .spawn()
        .await;
    let login = unique_login("slow");
    app.create_user(&login, GOOD_PASSWORD).await;
    let mut elapsed = Vec::new();
    for _ in 0..3 {
        let lt = app.fresh_lt().await;
        let started = std::time::Instant::now();
        let res = app
            .post_login(&browser(), &lt, &login, "wrong password here", false)
            .await;
        assert_eq!(res.status(), 401);
        elapsed.push(started.elapsed());
    }
    // A deliberate wait, so only lower bounds are checked.
    assert!(
        elapsed[1] >= std::time::Duration::from_millis(400),
        "{elapsed:?}"
    );
    assert!(
        elapsed[2] >= std::time::Duration::from_millis(800),
        "{elapsed:?}"
    );
    // A success is not delayed and resets the count.
    let lt = app.fresh_lt().await;
    assert_eq!(
        app.post_login(&browser(), &lt, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
}

/// The device cookie a response sets, if any.
fn device_cookie(res: &reqwest::Response) -> Option<String> {
    set_cookies(res)
        .into_iter()
        .find(|c| c.starts_with("sesame_device="))
}

/// The person's own browser: it logged in to the account with the password (and got its
/// device cookie), then logged out.
async fn known_browser(app: &TestApp, login: &str) -> reqwest::Client {
    let person = browser();
    let res = app.login_with(&person, login, GOOD_PASSWORD, false).await;
    assert_eq!(res.status(), 303);
    let cookie = device_cookie(&res).expect("a login sets the device cookie");
    let value = cookie
        .trim_start_matches("sesame_device=")
        .split(';')
        .next()
        .unwrap_or_default();
    assert_eq!(value.len(), 43, "a 256-bit token: {cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=31536000"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let out = person
        .get(format!("{}/cas/logout", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    person
}

fn counters_of(events: &[sesame_core::audit::AuditEvent], kind: &str) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .map(|e| e.detail["counter"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a03_an_attackers_parallel_wrong_passwords_lock_unknown_browsers_but_the_persons_own_browser_still_logs_in(
) {
    let app = TestApp::builder()
        .with(|s| {
            s.lockout.ip_threshold = 10_000;
            s.password_hashing.queue_per_worker = 100;
        })
        .spawn()
        .await;
    let login = unique_login("prenom");
    app.create_user(&login, GOOD_PASSWORD).await;
    let person = known_browser(&app, &login).await;

    // The attacker has no cookie of the person's: fifty guesses in parallel.
    let lts = join_all((0..50).map(|_| app.fresh_lt())).await;
    let attacker = browser();
    let responses = join_all(
        lts.iter()
            .map(|lt| app.post_login(&attacker, lt, &login, "guessed password", false)),
    )
    .await;
    assert!(responses.iter().all(|r| r.status() == 401));
    let events = app.services.audit.recent(Some(&login), 1000).await.unwrap();
    assert_eq!(
        counters_of(&events, "login.failed").len(),
        5,
        "C01 still holds"
    );
    assert_eq!(counters_of(&events, "login.locked"), ["login"]);

    // Unknown browsers are locked out, even with the right password...
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(res.status(), 401);
    assert!(set_cookies(&res).is_empty());
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("temporairement verrouillée"));
    // ...the person's own browser is not.
    let res = app.login_with(&person, &login, GOOD_PASSWORD, false).await;
    assert_eq!(res.status(), 303, "the known browser logs in");
    assert_eq!(count(&app.audit_kinds(&login).await, "login.succeeded"), 2);
}

#[tokio::test]
async fn a_known_browsers_own_failures_lock_only_that_browser() {
    let app = TestApp::spawn().await;
    let login = unique_login("typo");
    app.create_user(&login, GOOD_PASSWORD).await;
    let laptop = known_browser(&app, &login).await;
    let phone = known_browser(&app, &login).await;

    let mut pages = Vec::new();
    for _ in 0..5 {
        let res = app
            .login_with(&laptop, &login, "caps lock was on", false)
            .await;
        assert_eq!(res.status(), 401);
        pages.push(res.text().await.unwrap());
    }
    assert!(
        pages[4].contains("temporairement verrouillée"),
        "{}",
        pages[4]
    );
    // Locked: the right password from the laptop gets the lock answer.
    let res = app.login_with(&laptop, &login, GOOD_PASSWORD, false).await;
    assert_eq!(res.status(), 401);
    let events = app.services.audit.recent(Some(&login), 1000).await.unwrap();
    assert_eq!(counters_of(&events, "login.locked"), ["device"]);

    // The other known browser and an unknown one are not locked.
    assert_eq!(
        app.login_with(&phone, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
    assert_eq!(
        app.login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
    // The device's lock is in the database: it ends by itself like any other.
    app.clock.advance(Duration::minutes(16));
    assert_eq!(
        app.login_with(&laptop, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn a_completed_password_reset_lifts_every_lock_and_makes_the_browser_known() {
    let app = TestApp::spawn().await;
    let login = unique_login("locked.out");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    let laptop = known_browser(&app, &login).await;
    // The laptop locks itself, and an attacker locks the login for unknown browsers.
    for _ in 0..5 {
        app.login_with(&laptop, &login, "forgotten password", false)
            .await;
        app.login_with(&browser(), &login, "guessed password", false)
            .await;
    }
    let events = app.services.audit.recent(Some(&login), 1000).await.unwrap();
    let mut locked = counters_of(&events, "login.locked");
    locked.sort();
    assert_eq!(locked, ["device", "login"]);

    // The person resets the password from a new browser, by the mailed link.
    let person = browser();
    let (status, _) = ask_reset(&app, &person, &login, "mail").await;
    assert_eq!(status, 200);
    let links = reset_links(&app, &recovery).await;
    let (_, form) = open_link(&app, &person, &links[0]).await;
    let token = field(&form, "token");
    let res = person
        .post(format!("{}/password/reset", app.address))
        .form(&[
            ("token", token.as_str()),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        device_cookie(&res).is_some(),
        "the browser that reset becomes a known device: {:?}",
        set_cookies(&res)
    );

    // Every lock is gone: the laptop's, the login's; the resetting browser is known.
    for client in [&laptop, &browser(), &person] {
        assert_eq!(
            app.login_with(client, &login, NEW_PASSWORD, false)
                .await
                .status(),
            303
        );
        client
            .get(format!("{}/cas/logout", app.address))
            .send()
            .await
            .unwrap();
    }
    let unlocked: Vec<_> = app
        .services
        .audit
        .recent(Some(&login), 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "login.unlocked")
        .collect();
    assert_eq!(unlocked.len(), 1);
    assert_eq!(unlocked[0].actor, "self:reset");
    // The browser that reset is known: an attacker's lock does not refuse it.
    for _ in 0..5 {
        app.login_with(&browser(), &login, "guessed password", false)
            .await;
    }
    assert_eq!(
        app.login_with(&person, &login, NEW_PASSWORD, false)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn an_operator_unlock_lifts_the_locks_of_the_accounts_browsers_too() {
    let app = TestApp::spawn().await;
    let login = unique_login("helpdesk");
    app.create_user(&login, GOOD_PASSWORD).await;
    let laptop = known_browser(&app, &login).await;
    for _ in 0..5 {
        app.login_with(&laptop, &login, "forgotten password", false)
            .await;
    }
    assert_eq!(
        app.login_with(&laptop, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        401
    );
    app.services.accounts.unlock(&login, "test").await.unwrap();
    assert_eq!(
        app.login_with(&laptop, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
}

#[tokio::test]
async fn wrong_passwords_warn_before_the_last_attempts_for_unknown_logins_as_for_real_ones() {
    let app = TestApp::spawn().await;
    let login = unique_login("warned");
    app.create_user(&login, GOOD_PASSWORD).await;
    let nobody = unique_login("nobody");
    for who in [&login, &nobody] {
        let mut pages = Vec::new();
        for _ in 0..4 {
            let res = app
                .login_with(&browser(), who, "wrong password here", false)
                .await;
            assert_eq!(res.status(), 401);
            pages.push(res.text().await.unwrap());
        }
        for page in &pages[..2] {
            assert!(!page.contains("id=\"attempts-warning\""), "{page}");
        }
        assert!(
            pages[2].contains("Attention : encore 2 essais avant le verrouillage temporaire."),
            "{}",
            pages[2]
        );
        assert!(
            pages[3].contains("Attention : encore 1 essai avant le verrouillage temporaire."),
            "{}",
            pages[3]
        );
        // Every wrong answer offers the first activation.
        for page in &pages {
            assert!(
                page.contains("Première connexion ? Activer mon compte")
                    && page.contains("href=\"/activation\" id=\"first-time-link\""),
                "{page}"
            );
        }
    }
}

#[tokio::test]
async fn the_lock_page_says_when_to_retry_that_a_reset_unlocks_and_where_to_find_help() {
    for helpdesk in ["", "https://assistance.univ.example.org/ticket"] {
        let app = TestApp::builder()
            .with(move |s| {
                s.ui.helpdesk_url = helpdesk.to_owned();
                s.ui.time_zone = "UTC".to_owned();
            })
            .spawn()
            .await;
        let login = unique_login("stuck");
        app.create_user(&login, GOOD_PASSWORD).await;
        let mut last = String::new();
        for _ in 0..5 {
            last = app
                .login_with(&browser(), &login, "wrong password here", false)
                .await
                .text()
                .await
                .unwrap()
                .replace("&#x2f;", "/");
        }
        // When to retry: the lock's end, in `ui.time_zone`.
        let until = app.clock.now() + Duration::minutes(15);
        assert!(
            last.contains(&format!(
                "Réessayez à partir de {:02}:{:02}.",
                until.hour(),
                until.minute()
            )),
            "{last}"
        );
        assert!(
            last.contains("lève aussi ce verrouillage")
                && last.contains("href=\"/password/forgot\" id=\"locked-reset\""),
            "{last}"
        );
        let help = if helpdesk.is_empty() {
            "/assistance"
        } else {
            helpdesk
        };
        assert!(
            last.contains(&format!("href=\"{help}\" id=\"help-link\"")),
            "{last}"
        );
    }
}

#[tokio::test]
async fn the_blocked_page_links_to_the_configured_helpdesk_besides_the_assistance_form() {
    let app = TestApp::builder()
        .with(|s| s.ui.helpdesk_url = "https://assistance.univ.example.org/".to_owned())
        .spawn()
        .await;
    let login = unique_login("blocked");
    app.create_user(&login, GOOD_PASSWORD).await;
    app.services
        .helpdesk
        .desk
        .block(
            &sesame_core::ids::LoginName::parse(&login).unwrap(),
            sesame_core::helpdesk::BlockReason::Phishing,
            None,
            "test",
        )
        .await
        .unwrap();
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(res.status(), 403);
    let page = res.text().await.unwrap().replace("&#x2f;", "/");
    // The form that works without logging in stays; the institution's helpdesk is offered too.
    assert!(page.contains("href=\"/assistance\""), "{page}");
    assert!(
        page.contains("href=\"https://assistance.univ.example.org/\" id=\"help-link\""),
        "{page}"
    );
}
