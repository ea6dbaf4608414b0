//! The central login page: success, failure, one message for unknown and wrong, CSRF,
//! headers, language.

use sesame_tests::{browser, extract_lt, set_cookies, unique_login, TestApp, GOOD_PASSWORD};

#[tokio::test]
async fn a_person_logs_in_and_the_login_page_then_says_who_they_are() {
    let app = TestApp::spawn().await;
    let login = unique_login("alice");
    app.create_user(&login, GOOD_PASSWORD).await;

    let (status, html, lt) = app.login_page().await;
    assert_eq!(status, 200);
    assert!(html.contains("lang=\"fr\""), "French by default");
    assert!(html.contains("<label for=\"username\">Identifiant</label>"));
    assert!(html.contains("<label for=\"password\">Mot de passe</label>"));
    assert!(
        html.contains("type=\"checkbox\" value=\"true\""),
        "remember-me checkbox"
    );
    assert!(
        !html.contains("checked"),
        "remember-me is unchecked by default"
    );
    assert!(lt.starts_with("LT-") && lt.len() > 40);

    let res = app
        .post_login(&app.client, &lt, &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(res.status(), 303, "credentials POST answers 303, never 307");
    assert_eq!(
        res.headers()["location"],
        format!("{}/cas/login", app.address)
    );

    let res = app
        .client
        .get(format!("{}/cas/login", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!("<strong id=\"current-user\">{login}</strong>")),
        "{html}"
    );
    assert!(html.contains("Se déconnecter"));
    assert_eq!(
        app.audit_kinds(&login).await.first().map(String::as_str),
        Some("login.succeeded")
    );
}

#[tokio::test]
async fn a01_unknown_login_and_wrong_password_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let login = unique_login("bob");
    let nobody = unique_login("nobody");
    app.create_user(&login, GOOD_PASSWORD).await;

    let wrong = app
        .login_with(&browser(), &login, "not the password at all", false)
        .await;
    let unknown = app
        .login_with(&browser(), &nobody, "not the password at all", false)
        .await;
    let empty = app.login_with(&browser(), &login, "", false).await;

    let header_names = |res: &reqwest::Response| {
        let mut names: Vec<String> = res.headers().keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(header_names(&wrong), header_names(&unknown));
    for res in [&wrong, &unknown, &empty] {
        assert_eq!(res.status(), 401);
        assert!(set_cookies(res).is_empty(), "no cookie on failure");
    }
    // Same page apart from the fresh login ticket and the login typed back into the field.
    let normalise = |html: &str, typed: &str| {
        let lt = extract_lt(html).unwrap();
        html.replace(&lt, "LT").replace(typed, "USER")
    };
    let wrong = wrong.text().await.unwrap();
    let unknown = unknown.text().await.unwrap();
    let empty = empty.text().await.unwrap();
    assert!(wrong.contains("Identifiant ou mot de passe incorrect."));
    assert_eq!(normalise(&wrong, &login), normalise(&unknown, &nobody));
    assert_eq!(normalise(&wrong, &login), normalise(&empty, &login));
}

#[tokio::test]
async fn a41_a_login_ticket_is_single_use_and_required() {
    let app = TestApp::spawn().await;
    let login = unique_login("carol");
    app.create_user(&login, GOOD_PASSWORD).await;
    let lt = app.fresh_lt().await;

    let first = app
        .post_login(&browser(), &lt, &login, "wrong password here", false)
        .await;
    assert_eq!(first.status(), 401);
    let replay = app
        .post_login(&browser(), &lt, &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(replay.status(), 403, "a used login ticket is refused");
    assert!(set_cookies(&replay).is_empty());
    let forged = app
        .post_login(&browser(), "LT-forged", &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(forged.status(), 403);
    let body = forged.text().await.unwrap();
    assert!(body.contains("Le formulaire a expiré"));
    // Only the first reached the password check.
    assert_eq!(
        app.audit_kinds(&login)
            .await
            .iter()
            .filter(|k| k.starts_with("login."))
            .count(),
        1
    );
}

#[tokio::test]
async fn a41_a_cross_site_post_is_refused() {
    let app = TestApp::spawn().await;
    let login = unique_login("dave");
    app.create_user(&login, GOOD_PASSWORD).await;
    let lt = app.fresh_lt().await;
    let res = browser()
        .post(format!("{}/cas/login", app.address))
        .header("Origin", "https://evil.example")
        .form(&[
            ("lt", lt.as_str()),
            ("username", login.as_str()),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(set_cookies(&res).is_empty());
    assert!(app
        .audit_kinds(&login)
        .await
        .iter()
        .all(|k| !k.starts_with("login.")));
}

#[tokio::test]
async fn login_variants_reach_the_same_account() {
    let app = TestApp::spawn().await;
    let login = unique_login("eve");
    app.create_user(&login, GOOD_PASSWORD).await;
    for variant in [
        login.to_uppercase(),
        format!(" {login} "),
        format!("{login}@univ.example.org"),
    ] {
        let res = app
            .login_with(&browser(), &variant, GOOD_PASSWORD, false)
            .await;
        assert_eq!(res.status(), 303, "{variant:?}");
    }
}

#[tokio::test]
async fn a19_pages_carry_security_headers_and_escape_what_they_echo() {
    let app = TestApp::spawn().await;
    let res = app
        .login_with(
            &browser(),
            "<script>alert(1)</script>\"onmouseover=",
            "x",
            false,
        )
        .await;
    let headers = res.headers().clone();
    let html = res.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "frame-ancestors 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "script-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
    let request_id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(
        request_id.len(),
        16,
        "every response names its request for the helpdesk"
    );
}

#[tokio::test]
async fn https_deployments_send_strict_transport_security() {
    let app = TestApp::builder()
        .with(|s| s.server.public_url = "https://127.0.0.1".to_owned())
        .spawn()
        .await;
    let res = browser()
        .get(format!("{}/cas/login", app.address))
        .send()
        .await
        .unwrap();
    let hsts = res.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(hsts.contains("max-age=31536000"));
}

#[tokio::test]
async fn english_is_chosen_from_accept_language_or_the_switch() {
    let app = TestApp::spawn().await;
    let res = browser()
        .get(format!("{}/cas/login", app.address))
        .header("Accept-Language", "en-GB,en;q=0.9")
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains("lang=\"en\"") && html.contains(">Password</label>"));

    let client = browser();
    let res = client
        .get(format!("{}/cas/login?lang=en", app.address))
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains(">Remember me</label>"));
    // The choice sticks through the cookie.
    let res = client
        .get(format!("{}/cas/login", app.address))
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    assert!(html.contains(">Remember me</label>"));
    assert!(
        html.contains("login?lang=fr\" lang=\"fr\""),
        "visible switch back to French"
    );
}

#[tokio::test]
async fn a08_an_unregistered_service_gets_an_error_page_and_no_redirect() {
    let app = TestApp::spawn().await;
    let res = browser()
        .get(format!(
            "{}/cas/login?service=https%3A%2F%2Fevil.example%2F",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("location").is_none());
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Application non autorisée"));
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_any_hashing() {
    let app = TestApp::spawn().await;
    let lt = app.fresh_lt().await;
    let huge = "a".repeat(1024 * 1024);
    let res = browser()
        .post(format!("{}/cas/login", app.address))
        .form(&[
            ("lt", lt.as_str()),
            ("username", "someone"),
            ("password", huge.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert!(app.audit_kinds("someone").await.is_empty());
}

#[tokio::test]
async fn a57_duplicate_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let lt = app.fresh_lt().await;
    let res = browser()
        .post(format!("{}/cas/login", app.address))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("lt={lt}&username=a&username=b&password=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn a_blocked_account_cannot_log_in_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    let login = unique_login("frank");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    app.services
        .blocking
        .block(&account.login, "test")
        .await
        .unwrap();
    let res = app.login(&login, GOOD_PASSWORD).await;
    assert_eq!(res.status(), 403);
    assert!(set_cookies(&res).is_empty());
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Votre compte est bloqué"));
    let wrong = app
        .login_with(&browser(), &login, "wrong password here", false)
        .await;
    assert_eq!(
        wrong.status(),
        401,
        "a wrong password does not reveal the block"
    );
}
