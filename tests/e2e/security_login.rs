//! Security spec rows of the login, lockout and public listener that had no test of their
//! own (A02, A03, A56, A58, A60, C03, C08). Each test is named after its row.

use futures::future::join_all;
use sesame_core::account::{AccountState, NewAccount};
use sesame_core::ids::{Affiliation, Email, LoginName};
use sesame_tests::{browser, extract_lt, set_cookies, unique_login, TestApp, GOOD_PASSWORD};

fn count(kinds: &[String], kind: &str) -> usize {
    kinds.iter().filter(|k| *k == kind).count()
}

/// The page of a failed login with its per-request parts (login ticket, typed login)
/// replaced, so two failures can be compared byte for byte.
fn normalised(html: &str, typed: &str) -> String {
    let lt = extract_lt(html).expect("the login form comes back");
    html.replace(&lt, "LT").replace(typed, "USER")
}

fn header_names(res: &reqwest::Response) -> Vec<String> {
    let mut names: Vec<String> = res.headers().keys().map(|k| k.to_string()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a02_an_empty_password_gets_the_answer_of_a_wrong_one_and_is_counted() {
    let app = TestApp::spawn().await;
    let login = unique_login("empty");
    let nobody = unique_login("nobody");
    app.create_user(&login, GOOD_PASSWORD).await;

    let wrong = app
        .login_with(&browser(), &login, "not the password at all", false)
        .await;
    let empty_known = app.login_with(&browser(), &login, "", false).await;
    let empty_unknown = app.login_with(&browser(), &nobody, "", false).await;
    assert_eq!(header_names(&wrong), header_names(&empty_known));
    assert_eq!(header_names(&wrong), header_names(&empty_unknown));
    for res in [&wrong, &empty_known, &empty_unknown] {
        assert_eq!(res.status(), 401);
        assert!(set_cookies(res).is_empty());
    }
    let wrong = normalised(&wrong.text().await.unwrap(), &login);
    assert_eq!(
        wrong,
        normalised(&empty_known.text().await.unwrap(), &login)
    );
    assert_eq!(
        wrong,
        normalised(&empty_unknown.text().await.unwrap(), &nobody)
    );
    // No early return: the empty password went through the same path and was counted.
    assert_eq!(count(&app.audit_kinds(&login).await, "login.failed"), 2);
    assert_eq!(count(&app.audit_kinds(&nobody).await, "login.failed"), 1);
}

#[tokio::test]
async fn a03_the_right_password_on_a_locked_login_gets_the_lock_answer_and_nothing_else() {
    let app = TestApp::spawn().await;
    let login = unique_login("locked");
    app.create_user(&login, GOOD_PASSWORD).await;
    for _ in 0..5 {
        let res = app
            .login_with(&browser(), &login, "wrong password here", false)
            .await;
        assert_eq!(res.status(), 401);
    }
    let before = app.audit_kinds(&login).await;
    let wrong = app
        .login_with(&browser(), &login, "wrong password again", false)
        .await;
    let right_client = browser();
    let right = app
        .login_with(&right_client, &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(wrong.status(), right.status());
    assert_eq!(right.status(), 401);
    assert!(set_cookies(&right).is_empty(), "no SSO cookie");
    assert_eq!(header_names(&wrong), header_names(&right));
    let wrong = normalised(&wrong.text().await.unwrap(), &login);
    let right = normalised(&right.text().await.unwrap(), &login);
    assert_eq!(wrong, right, "the same answer for the right password");
    assert!(right.contains("temporairement verrouillée"), "{right}");
    // No session came out of it: no ticket for a service, no OIDC code.
    let res = right_client
        .get(format!(
            "{}/cas/login?service=https%3A%2F%2Fapp.example.org%2F",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("location").is_none());
    // Neither attempt reached the password check; the failure count did not move.
    let after = app.audit_kinds(&login).await;
    assert_eq!(
        count(&after, "login.failed"),
        count(&before, "login.failed")
    );
    assert_eq!(count(&after, "login.succeeded"), 0);
    assert_eq!(
        count(&after, "login.refused_locked"),
        count(&before, "login.refused_locked") + 2
    );
}

#[tokio::test]
async fn a56_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::builder()
        .with(|s| {
            s.lockout.ip_threshold = 3;
            s.server.trusted_proxies = Vec::new();
        })
        .spawn()
        .await;
    let logins: Vec<String> = (0..5).map(|i| unique_login(&format!("xff{i}"))).collect();
    for l in &logins {
        app.create_user(l, GOOD_PASSWORD).await;
    }
    let mut statuses = Vec::new();
    for (i, l) in logins.iter().enumerate() {
        let lt = app.fresh_lt().await;
        let res = browser()
            .post(format!("{}/cas/login", app.address))
            .header("X-Forwarded-For", format!("192.0.2.{i}"))
            .header("X-Real-IP", format!("192.0.2.{i}"))
            .header("Forwarded", format!("for=192.0.2.{i}"))
            .form(&[
                ("lt", lt.as_str()),
                ("username", l.as_str()),
                ("password", "wrong password here"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    // The throttle counted the real peer, not the claimed addresses.
    assert_eq!(statuses, vec![401, 401, 401, 429, 429]);
    // And the audit log records the peer.
    for l in &logins[..3] {
        let events = app.services.audit.recent(Some(l), 10).await.unwrap();
        let ips: Vec<String> = events.iter().filter_map(|e| e.ip.clone()).collect();
        assert!(!ips.is_empty(), "{l}: an address is recorded");
        assert!(
            ips.iter().all(|ip| ip == "127.0.0.1"),
            "{l}: spoofed address in the audit log: {ips:?}"
        );
    }
}

/// This test process's log file (see the harness's `TRACING`), when logs go to a file.
fn own_log() -> Option<String> {
    if std::env::var("TEST_LOG").is_ok() {
        return None;
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-logs")
        .join(format!("e2e-{}.log", std::process::id()));
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("the test log {} is readable: {e}", path.display()));
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn a58_control_characters_in_a_username_never_reach_the_logs_raw() {
    let app = TestApp::spawn().await;
    let marker = sesame_core::random::alphanumeric(10);
    let hostile = [
        format!("{marker}\nINFO forged log line"),
        format!("{marker}\r\nWARN forged"),
        format!("{marker}\u{1b}[31mred\u{1b}[0m"),
        format!("{marker}\u{1b}]0;title\u{7}"),
    ];
    for username in &hostile {
        let res = app
            .login_with(&browser(), username, "wrong password here", false)
            .await;
        assert!(
            [400, 401].contains(&res.status().as_u16()),
            "{}",
            res.status()
        );
    }
    // The audit table keeps the attempted string as data (forensics); the operator CLI only
    // looks it up by a parsed, valid login. The log lines are what an operator's terminal or a
    // log pipeline reads: nothing raw may reach them.
    if let Some(log) = own_log() {
        assert!(!log.contains('\u{1b}'), "raw ESC in the log");
        assert!(!log.contains('\r'), "raw CR in the log");
        assert!(
            !log.lines()
                .any(|l| l.starts_with("INFO forged") || l.starts_with("WARN forged")),
            "a forged log line"
        );
    }
}

#[tokio::test]
async fn a60_metrics_admin_and_debug_paths_are_not_on_the_public_listener() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::new();
    for path in [
        "/metrics",
        "/admin",
        "/admin/",
        "/admin/accounts",
        "/api/admin/accounts",
        "/debug",
        "/debug/pprof",
        "/actuator",
        "/actuator/env",
        "/status/dashboard",
        "/.env",
        "/config",
        "/server-status",
    ] {
        let res = client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        assert!(
            [401, 403, 404].contains(&status),
            "{path} answered {status} on the public listener"
        );
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("process_") && !body.contains("# TYPE"),
            "{path} leaks metrics"
        );
    }
}

#[tokio::test]
async fn c03_the_right_password_among_parallel_wrong_ones_wins_only_within_the_threshold() {
    let app = TestApp::builder()
        .with(|s| {
            s.lockout.ip_threshold = 10_000;
            s.password_hashing.queue_per_worker = 100;
        })
        .spawn()
        .await;
    let login = unique_login("mixed");
    app.create_user(&login, GOOD_PASSWORD).await;
    let attempts = 60;
    // The right password at a position that changes from run to run.
    let right_at = usize::from(sesame_core::random::alphanumeric(1).as_bytes()[0]) % attempts;
    let lts = join_all((0..attempts).map(|_| app.fresh_lt())).await;
    let clients: Vec<reqwest::Client> = (0..attempts).map(|_| browser()).collect();
    let responses = join_all(lts.iter().zip(&clients).enumerate().map(|(i, (lt, c))| {
        let password = if i == right_at {
            GOOD_PASSWORD
        } else {
            "wrong password, attempt"
        };
        app.post_login(c, lt, &login, password, false)
    }))
    .await;
    let successes = responses
        .iter()
        .filter(|r| r.status() == 303 && !set_cookies(r).is_empty())
        .count();
    let kinds = app.audit_kinds(&login).await;
    let checked = count(&kinds, "login.failed") + count(&kinds, "login.succeeded");
    // Without a success, exactly the threshold reached the password check. A success clears
    // the failure count (as any login does), so wrong attempts that arrive after it may be
    // checked again, up to the threshold once more; the right password succeeded only if it
    // was among the first reservations (else it was refused as locked, below).
    assert_eq!(successes, count(&kinds, "login.succeeded"));
    assert!(successes <= 1);
    let limit = if successes == 1 { 5 + 1 + 5 } else { 5 };
    assert!(checked <= limit, "{kinds:?}");
    let refused = count(&kinds, "login.refused_locked");
    assert_eq!(
        refused + checked,
        attempts,
        "every attempt was either checked or refused as locked: {kinds:?}"
    );
    if successes == 0 {
        // The right password came after the lock: the login is locked now.
        let res = app
            .login_with(&browser(), &login, GOOD_PASSWORD, false)
            .await;
        assert_eq!(res.status(), 401);
        assert!(set_cookies(&res).is_empty());
    }
}

#[tokio::test]
async fn c08_parallel_registration_of_one_address_in_two_cases_makes_one_account() {
    let app = TestApp::spawn().await;
    let stem = unique_login("bob");
    let variants = [
        format!("{stem}@x.org"),
        format!("{}@X.ORG", stem.to_uppercase()),
        format!("{stem}@x.org"),
        format!("{}@x.org", stem.to_uppercase()),
    ];
    let creations = variants.iter().map(|raw| {
        let services = app.services.clone();
        let raw = raw.clone();
        async move {
            let login = LoginName::parse(&raw).expect("a valid login");
            let new = NewAccount {
                email: Some(Email::parse(&raw).expect("a valid address")),
                login,
                given_name: "Bob".to_owned(),
                family_name: "Martin".to_owned(),
                affiliation: Affiliation::Student,
                state: AccountState::Provisioned,
            };
            services.accounts.create(new, "test").await
        }
    });
    let results = join_all(creations).await;
    let created = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(created, 1, "{results:?}");
    // Every case variant finds that one account.
    let first = LoginName::parse(&variants[0]).unwrap();
    for raw in &variants {
        let login = LoginName::parse(raw).unwrap();
        assert_eq!(login, first, "{raw} folds to the one identifier");
    }
}
