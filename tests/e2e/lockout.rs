//! Lockout (security spec decision 1; rows A03, A04, A56, C01, C03, C14, C15).

use futures::future::join_all;
use sesame_tests::{browser, set_cookies, unique_login, TestApp, GOOD_PASSWORD};
use time::Duration;

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
