//! SSO sessions and their cookie (rows A40, A43, A44, A61, A62).

use sesame_tests::{browser, set_cookies, unique_login, TestApp, GOOD_PASSWORD};
use time::Duration;

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

async fn is_logged_in(app: &TestApp, client: &reqwest::Client) -> bool {
    let html = client
        .get(format!("{}/cas/login", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    html.contains("id=\"current-user\"")
}

async fn with_cookie(app: &TestApp, name: &str, value: &str) -> bool {
    let html = reqwest::Client::new()
        .get(format!("{}/cas/login", app.address))
        .header("Cookie", format!("{name}={value}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    html.contains("id=\"current-user\"")
}

#[tokio::test]
async fn a43_the_session_cookie_is_httponly_lax_and_a_browser_session_cookie_by_default() {
    let app = TestApp::spawn().await;
    let login = unique_login("cookie");
    app.create_user(&login, GOOD_PASSWORD).await;
    let res = app.login(&login, GOOD_PASSWORD).await;
    let cookies = set_cookies(&res);
    // The session cookie, and the device cookie that makes this browser a known device
    // (persistent by design: it is no session, and opens nothing by itself).
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies.iter().any(|c| c.starts_with("sesame_device=")),
        "{cookies:?}"
    );
    let c = cookies
        .iter()
        .find(|c| c.starts_with("sesame_tgc="))
        .expect("the session cookie");
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"),
        "{c}"
    );
    assert!(
        !c.contains("Max-Age") && !c.contains("Expires"),
        "no persistence without remember-me: {c}"
    );
    let value = cookie_value(c);
    assert!(
        value.len() >= 43 && value.bytes().all(|b| b.is_ascii_alphanumeric()),
        "≥128 random bits"
    );
}

#[tokio::test]
async fn a61_remember_me_makes_the_cookie_persistent_for_the_configured_time() {
    let app = TestApp::spawn().await;
    let login = unique_login("remember");
    app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    let res = app.login_with(&client, &login, GOOD_PASSWORD, true).await;
    let c = &set_cookies(&res)[0];
    assert!(c.contains(&format!("Max-Age={}", 14 * 24 * 3600)), "{c}");
    // It outlives the idle timeout and the working-day lifetime…
    app.clock.advance(Duration::days(13));
    assert!(is_logged_in(&app, &client).await);
    // …but not its own lifetime.
    app.clock.advance(Duration::days(2));
    assert!(!is_logged_in(&app, &client).await);
}

#[tokio::test]
async fn a43_over_https_the_cookie_is_secure_and_host_prefixed() {
    let app = TestApp::builder()
        .with(|s| s.server.public_url = "https://127.0.0.1".to_owned())
        .spawn()
        .await;
    let login = unique_login("secure");
    app.create_user(&login, GOOD_PASSWORD).await;
    // No Origin header: the test talks plain http to an app that believes it is behind https.
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    let cookies = set_cookies(&res);
    let c = &cookies[0];
    assert!(
        c.starts_with("__Host-sesame_tgc=") && c.contains("Secure") && c.contains("Path=/"),
        "{c}"
    );
    let device = cookies
        .iter()
        .find(|c| c.starts_with("__Host-sesame_device="))
        .expect("the device cookie, host-prefixed");
    assert!(
        device.contains("Secure")
            && device.contains("HttpOnly")
            && device.contains("SameSite=Lax")
            && device.contains("Path=/"),
        "{device}"
    );
    assert!(!c.contains("Domain"), "{c}");
}

#[tokio::test]
async fn a40_login_issues_a_new_session_id_and_ignores_one_planted_before() {
    let app = TestApp::spawn().await;
    let login = unique_login("fixation");
    app.create_user(&login, GOOD_PASSWORD).await;
    let planted = "AttackerChosenValue0123456789abcdefghijklmno";
    let client = browser();
    let (_, _, lt) = sesame_tests::get_login_page(&client, &app.address).await;
    let res = client
        .post(format!("{}/cas/login", app.address))
        .header("Cookie", format!("sesame_tgc={planted}"))
        .form(&[
            ("lt", lt.as_str()),
            ("username", login.as_str()),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let first = cookie_value(&set_cookies(&res)[0]);
    assert_ne!(first, planted);
    assert!(
        !with_cookie(&app, "sesame_tgc", planted).await,
        "the planted value opens nothing"
    );
    assert!(with_cookie(&app, "sesame_tgc", &first).await);

    // Logging in again replaces the id and kills the previous one.
    let lt = app.fresh_lt().await;
    let res = app
        .post_login(&client, &lt, &login, GOOD_PASSWORD, false)
        .await;
    let second = cookie_value(&set_cookies(&res)[0]);
    assert_ne!(first, second);
    assert!(!with_cookie(&app, "sesame_tgc", &first).await);
    assert!(with_cookie(&app, "sesame_tgc", &second).await);
}

#[tokio::test]
async fn a44_logout_destroys_the_session_so_a_copied_cookie_is_dead() {
    let app = TestApp::spawn().await;
    let login = unique_login("logout");
    app.create_user(&login, GOOD_PASSWORD).await;
    let res = app.login(&login, GOOD_PASSWORD).await;
    let copied = cookie_value(&set_cookies(&res)[0]);
    assert!(is_logged_in(&app, &app.client).await);

    let res = app
        .client
        .get(format!("{}/cas/logout", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let removal = set_cookies(&res);
    assert!(
        removal
            .iter()
            .any(|c| c.starts_with("sesame_tgc=;") && c.contains("Max-Age=0")),
        "{removal:?}"
    );
    assert!(res.text().await.unwrap().contains("Déconnexion réussie"));
    assert!(!is_logged_in(&app, &app.client).await);
    assert!(
        !with_cookie(&app, "sesame_tgc", &copied).await,
        "server-side session gone"
    );
    assert!(app.audit_kinds(&login).await.iter().any(|k| k == "logout"));
}

#[tokio::test]
async fn the_logout_button_needs_its_token() {
    let app = TestApp::spawn().await;
    let login = unique_login("logoutpost");
    app.create_user(&login, GOOD_PASSWORD).await;
    app.login(&login, GOOD_PASSWORD).await;
    let forged = app
        .client
        .post(format!("{}/cas/logout", app.address))
        .form(&[("csrf", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(is_logged_in(&app, &app.client).await);
    let html = app
        .client
        .get(format!("{}/cas/login", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let token = &html[start..start + 64];
    let res = app
        .client
        .post(format!("{}/cas/logout", app.address))
        .form(&[("csrf", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(!is_logged_in(&app, &app.client).await);
}

#[tokio::test]
async fn a62_an_idle_session_expires_and_a_busy_one_hits_its_absolute_lifetime() {
    let app = TestApp::spawn().await;
    let login = unique_login("idle");
    app.create_user(&login, GOOD_PASSWORD).await;

    let idle = browser();
    app.login_with(&idle, &login, GOOD_PASSWORD, false).await;
    let busy = browser();
    app.login_with(&busy, &login, GOOD_PASSWORD, false).await;

    // Busy: used every 65 minutes; idle: never again.
    for i in 1..=8 {
        app.clock.advance(Duration::minutes(65));
        if i == 2 {
            assert!(!is_logged_in(&app, &idle).await, "idle for more than 2 h");
        }
        assert_eq!(
            is_logged_in(&app, &busy).await,
            i < 8,
            "after {} min",
            i * 65
        );
    }
    // Logging in again starts both clocks afresh.
    app.login_with(&busy, &login, GOOD_PASSWORD, false).await;
    assert!(is_logged_in(&app, &busy).await);
}

#[tokio::test]
async fn a54_blocking_an_account_ends_its_sessions() {
    let app = TestApp::spawn().await;
    let login = unique_login("blocked");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    app.login(&login, GOOD_PASSWORD).await;
    assert!(is_logged_in(&app, &app.client).await);
    let (_, ended) = app
        .services
        .blocking
        .block(&account.login, "test")
        .await
        .unwrap();
    assert_eq!(ended.len(), 1);
    assert!(!is_logged_in(&app, &app.client).await);
}

#[tokio::test]
async fn a_session_opened_on_one_instance_is_seen_and_closed_by_another() {
    if sesame_tests::backend() != sesame_tests::Backend::Production {
        eprintln!("skipped: two instances share state only on PostgreSQL + Redis");
        return;
    }
    let a = TestApp::spawn().await;
    let b = a.spawn_sibling().await;
    let login = unique_login("twoinstances");
    a.create_user(&login, GOOD_PASSWORD).await;
    let res = a.login(&login, GOOD_PASSWORD).await;
    let value = cookie_value(&set_cookies(&res)[0]);
    assert!(
        with_cookie(&b, "sesame_tgc", &value).await,
        "instance B sees A's session"
    );
    reqwest::Client::new()
        .get(format!("{}/cas/logout", b.address))
        .header("Cookie", format!("sesame_tgc={value}"))
        .send()
        .await
        .unwrap();
    assert!(
        !with_cookie(&a, "sesame_tgc", &value).await,
        "logout on B ends it on A"
    );
}
