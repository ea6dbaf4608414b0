//! Second factors (issue 15): a person enrols an authenticator application on the account page,
//! and logins then ask for its code after the password. The codes are computed by pyotp, an
//! implementation independent of Sesame's, at the app's (manual) clock.

use std::process::Command;

use sesame_core::clock::Clock;

use sesame_tests::oidc::hidden_field;
use sesame_tests::{browser, cas_service, unique_login, TestApp, GOOD_PASSWORD};

const APP: &str = "https://moodle.univ.example.org/";

/// The TOTP code pyotp computes for `secret` (base32, as the page shows it) at `unix`.
pub(crate) fn pyotp(secret: &str, unix: i64) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.TOTP(sys.argv[1].replace(' ', '')).at(int(sys.argv[2])))",
            secret,
            &unix.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "pyotp (pip install pyotp): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

fn between<'a>(html: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = html.find(start)? + start.len();
    let to = html[from..].find(end)? + from;
    Some(&html[from..to])
}

fn recovery_codes(html: &str) -> Vec<String> {
    let Some(list) = between(html, "id=\"recovery-code-list\">", "</ul>") else {
        return Vec::new();
    };
    list.split("<code>")
        .skip(1)
        .filter_map(|c| c.split("</code>").next())
        .map(str::to_owned)
        .collect()
}

async fn get(b: &reqwest::Client, url: &str) -> (u16, String) {
    let res = b.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Enrols a TOTP application for the person logged in with `b`; returns the secret and the
/// recovery codes shown.
async fn enrol(app: &TestApp, b: &reqwest::Client) -> (String, Vec<String>) {
    let (status, page) = get(b, &format!("{}/account/second-factor", app.address)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"no-factor\""), "{page}");
    let csrf = hidden_field(&page, "csrf").unwrap();
    let res = b
        .post(format!("{}/account/second-factor/totp", app.address))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<svg"), "the QR code is drawn inline");
    let secret = between(&html, "id=\"totp-secret\">", "</code>")
        .unwrap()
        .to_owned();
    let enrolment = hidden_field(&html, "enrolment").unwrap();
    let now = app.clock.now().unix_timestamp();
    let confirm = |code: String, password: &'static str| {
        let form = vec![
            ("csrf", csrf.clone()),
            ("enrolment", enrolment.clone()),
            ("label", "Téléphone".to_owned()),
            ("code", code),
            ("current", password.to_owned()),
        ];
        let req = b
            .post(format!(
                "{}/account/second-factor/totp/confirm",
                app.address
            ))
            .form(&form);
        async move { req.send().await.unwrap() }
    };
    // Without the password, the right code adds nothing (a lab PC's open session).
    let res = confirm(pyotp(&secret, now), "not the password").await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("id=\"totp-secret\""));
    // With it, a wrong code adds nothing either; the right one does.
    let right = pyotp(&secret, now);
    let wrong: String = right
        .bytes()
        .map(|c| char::from(b'0' + (c - b'0' + 5) % 10))
        .collect();
    let res = confirm(wrong, GOOD_PASSWORD).await;
    assert_eq!(res.status(), 400);
    let res = confirm(right, GOOD_PASSWORD).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"factor-list\""), "{html}");
    assert!(html.contains("Téléphone"));
    let codes = recovery_codes(&html);
    assert_eq!(codes.len(), 10, "{html}");
    // Shown once: the page does not show them again.
    let (_, again) = get(b, &format!("{}/account/second-factor", app.address)).await;
    assert!(recovery_codes(&again).is_empty());
    assert!(again.contains("id=\"codes-left\""), "{again}");
    (secret, codes)
}

/// Logs in with the password in a new browser: the answer must be the second-factor step.
async fn password_then_step(app: &TestApp, login: &str) -> reqwest::Client {
    let b = browser();
    let res = app.login_with(&b, login, GOOD_PASSWORD, false).await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        location(&res),
        format!("{}/login/second-factor", app.address)
    );
    // No session yet: the account page still sends to the login.
    let res = b
        .get(format!("{}/account", app.address))
        .send()
        .await
        .unwrap();
    assert!(location(&res).contains("/cas/login"), "{}", location(&res));
    let (status, page) = get(&b, &format!("{}/login/second-factor", app.address)).await;
    assert_eq!(status, 200);
    assert!(page.contains("autocomplete=\"one-time-code\""), "{page}");
    b
}

async fn answer(app: &TestApp, b: &reqwest::Client, code: &str) -> reqwest::Response {
    b.post(format!("{}/login/second-factor", app.address))
        .form(&[("code", code)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a64_a68_an_enrolled_person_logs_in_with_the_password_and_a_code_that_serves_once() {
    let app = TestApp::spawn().await;
    let login = unique_login("mfa");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    assert_eq!(
        app.login_with(&b, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
    let (secret, _) = enrol(&app, &b).await;
    assert!(app
        .audit_kinds(&login)
        .await
        .contains(&"mfa.enrolled".to_owned()));
    // The person is told at their address, in case it was not them.
    let mails = app.mails_to(&format!("{login}@univ.example.org")).await;
    let notice = mails
        .iter()
        .find(|m| m.subject.contains("vérification en deux étapes"))
        .expect("a notice of the new factor");
    assert!(
        notice.text.contains("/account/second-factor"),
        "{}",
        notice.text
    );

    // The code of the enrolment is used; the next step's (±1 step allowed) opens a login.
    let person = password_then_step(&app, &login).await;
    let next_step = pyotp(&secret, app.clock.now().unix_timestamp() + 30);
    let res = answer(&app, &person, &next_step).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), format!("{}/cas/login", app.address));
    let (_, page) = get(&person, &format!("{}/cas/login", app.address)).await;
    assert!(page.contains(&login), "logged in: {page}");
    assert!(app
        .audit_kinds(&login)
        .await
        .contains(&"mfa.succeeded".to_owned()));

    // The same code again, from another browser with the password: refused.
    let thief = password_then_step(&app, &login).await;
    let res = answer(&app, &thief, &next_step).await;
    assert_eq!(res.status(), 401);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("id=\"attempts-warning\""));
    // The step cannot be skipped: the account page and a service get nothing.
    let res = thief
        .get(format!("{}/account", app.address))
        .send()
        .await
        .unwrap();
    assert!(location(&res).contains("/cas/login"));
}

#[tokio::test]
async fn a67_a_recovery_code_replaces_the_phone_once() {
    let app = TestApp::spawn().await;
    let login = unique_login("mfarc");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    let (_, codes) = enrol(&app, &b).await;
    let person = password_then_step(&app, &login).await;
    // Typed in capitals with spaces instead of dashes, as people do.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let res = answer(&app, &person, &typed).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    // Each use is told to the person, with the codes left.
    let mails = app.mails_to(&format!("{login}@univ.example.org")).await;
    let used = mails
        .iter()
        .find(|m| m.subject.contains("code de secours"))
        .expect("a notice of the recovery code used");
    assert!(used.text.contains("il en reste 9"), "{}", used.text);
    let other = password_then_step(&app, &login).await;
    let res = answer(&app, &other, &codes[0]).await;
    assert_eq!(res.status(), 401);
    let (_, page) = get(&person, &format!("{}/account/second-factor", app.address)).await;
    assert!(page.contains("id=\"codes-left\">"), "{page}");
    assert!(
        between(&page, "id=\"codes-left\">", "</p>")
            .unwrap()
            .ends_with(" 9"),
        "{page}"
    );
}

#[tokio::test]
async fn a63_five_wrong_codes_end_the_login_and_lock_the_factor_not_the_password() {
    let app = TestApp::spawn().await;
    let login = unique_login("mfalock");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    let (secret, _) = enrol(&app, &b).await;
    let attacker = password_then_step(&app, &login).await;
    for _ in 0..4 {
        let res = answer(&app, &attacker, "abcd-efgh-jkmn-pqrs").await;
        assert_eq!(res.status(), 401);
    }
    let res = answer(&app, &attacker, "abcd-efgh-jkmn-pqrs").await;
    assert_eq!(res.status(), 429);
    // The transaction is gone: no sixth try on it.
    let res = answer(&app, &attacker, "123456").await;
    assert_eq!(res.status(), 403);
    // The password still opens the step (no password lock), but the factor is locked, even
    // for the right code, until the lock is over.
    let person = password_then_step(&app, &login).await;
    let now = app.clock.now().unix_timestamp();
    let res = answer(&app, &person, &pyotp(&secret, now + 30)).await;
    assert_eq!(res.status(), 429);
    app.clock.advance(time::Duration::minutes(16));
    let person = password_then_step(&app, &login).await;
    let now = app.clock.now().unix_timestamp();
    let res = answer(&app, &person, &pyotp(&secret, now)).await;
    assert_eq!(res.status(), 303);
    let kinds = app.audit_kinds(&login).await;
    assert!(kinds.contains(&"mfa.failed".to_owned()), "{kinds:?}");
}

#[tokio::test]
async fn a65_a66_adding_or_removing_a_factor_and_new_recovery_codes_need_the_password() {
    let app = TestApp::spawn().await;
    let login = unique_login("mfapw");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    // `enrol` checks that the right code without the password adds nothing (A65).
    let (_, codes) = enrol(&app, &b).await;
    let (_, page) = get(&b, &format!("{}/account/second-factor", app.address)).await;
    let csrf = hidden_field(&page, "csrf").unwrap();
    let id = hidden_field(&page, "id").unwrap();
    let post = |path: &'static str, password: &'static str| {
        let form = [
            ("csrf", csrf.clone()),
            ("id", id.clone()),
            ("current", password.to_owned()),
        ];
        let req = b
            .post(format!("{}/account/second-factor/{path}", app.address))
            .form(&form);
        async move { req.send().await.unwrap() }
    };
    let res = post("remove", "not the password").await;
    assert_eq!(res.status(), 401);
    let res = post("recovery-codes", "not the password").await;
    assert_eq!(res.status(), 401);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("id=\"factor-list\""),
        "the factor stays: {html}"
    );
    assert!(recovery_codes(&html).is_empty(), "no new codes");
    // The old codes still work: nothing was regenerated.
    let person = password_then_step(&app, &login).await;
    assert_eq!(answer(&app, &person, &codes[1]).await.status(), 303);
    // With the password: new codes (the old ones void), then the factor goes.
    let res = post("recovery-codes", GOOD_PASSWORD).await;
    assert_eq!(res.status(), 200);
    let fresh = recovery_codes(&res.text().await.unwrap());
    assert_eq!(fresh.len(), 10);
    let person = password_then_step(&app, &login).await;
    assert_eq!(answer(&app, &person, &codes[2]).await.status(), 401);
    assert_eq!(answer(&app, &person, &fresh[0]).await.status(), 303);
    let res = post("remove", GOOD_PASSWORD).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("id=\"no-factor\""));
    let kinds = app.audit_kinds(&login).await;
    assert!(kinds.contains(&"mfa.removed".to_owned()), "{kinds:?}");
    // Without a factor the password alone logs in again.
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(location(&res), format!("{}/cas/login", app.address));
}

#[tokio::test]
async fn a_cas_service_learns_that_the_login_used_two_factors() {
    let app = TestApp::builder()
        .with(|s| s.cas.services.push(cas_service("moodle", APP, "")))
        .spawn()
        .await;
    let login = unique_login("mfacas");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    let (secret, _) = enrol(&app, &b).await;
    let person = browser();
    let service = format!("{APP}course/view.php?id=7");
    let service_enc: String = url::form_urlencoded::byte_serialize(service.as_bytes()).collect();
    let (_, page) = get(
        &person,
        &format!("{}/cas/login?service={service_enc}", app.address),
    )
    .await;
    let lt = sesame_tests::extract_lt(&page).unwrap();
    let res = person
        .post(format!("{}/cas/login?service={service_enc}", app.address))
        .form(&[
            ("lt", lt.as_str()),
            ("username", login.as_str()),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    // No ticket before the second factor.
    assert_eq!(
        location(&res),
        format!("{}/login/second-factor", app.address)
    );
    let code = pyotp(&secret, app.clock.now().unix_timestamp() + 30);
    let res = answer(&app, &person, &code).await;
    let to_service = location(&res);
    assert!(to_service.starts_with(&service), "{to_service}");
    let ticket = to_service.split("ticket=").nth(1).unwrap().to_owned();
    let xml = reqwest::get(format!(
        "{}/cas/p3/serviceValidate?service={service_enc}&ticket={ticket}",
        app.address
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let values = |name: &str| -> Vec<String> {
        doc.descendants()
            .filter(|n| n.tag_name().name() == name)
            .filter_map(|n| n.text().map(str::to_owned))
            .collect()
    };
    assert_eq!(values("user"), vec![login.clone()], "{xml}");
    let methods = values("authenticationMethod");
    assert!(methods.contains(&"pwd".to_owned()), "{xml}");
    assert!(methods.contains(&"otp".to_owned()), "{xml}");
    assert!(values("successfulAuthenticationHandlers")
        .contains(&"SesameOtpAuthenticationHandler".to_owned()));
}

#[tokio::test]
async fn without_a_sealing_key_the_account_page_offers_no_second_factor() {
    let app = TestApp::builder()
        .with(|s| s.mfa.sealing_key = sesame_server::config::Secret::default())
        .spawn()
        .await;
    let login = unique_login("mfaoff");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    let (status, page) = get(&b, &format!("{}/account/second-factor", app.address)).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"mfa-off\""), "{page}");
    assert!(!page.contains("id=\"add-totp\""));
    // And a login without a factor is unchanged.
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(location(&res), format!("{}/cas/login", app.address));
}

#[tokio::test]
async fn the_helpdesk_removes_a_lost_phone_with_the_command_line() {
    let app = TestApp::spawn().await;
    let login = unique_login("mfacli");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    enrol(&app, &b).await;
    let cli = crate::cli::Cli::for_app(&app);
    let out = cli.run(&["account", "mfa-list", &login], None);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        listed.contains("totp") && listed.contains("Téléphone"),
        "{listed}"
    );
    assert!(listed.contains("recovery codes left: 10"), "{listed}");
    let out = cli.run(&["account", "mfa-reset", &login], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 second factor(s)"));
    // The next login asks for the password only.
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(location(&res), format!("{}/cas/login", app.address));
    let kinds = app.audit_kinds(&login).await;
    assert!(kinds.contains(&"mfa.removed".to_owned()), "{kinds:?}");
    let out = cli.run(&["account", "mfa-reset", "nobody.here"], None);
    assert!(!out.status.success());
}

// ----- step-up ----------------------------------------------------------------------------

const CB: &str = "https://portal.univ.example.org/callback";
const SECRET: &str = "portal-secret-with-enough-entropy-0123456789";
const REFEDS_MFA: &str = "https://refeds.org/profile/mfa";

fn portal(extra: &str) -> sesame_protocol::oidc::clients::OidcClient {
    let text = format!(
        "client_id = \"portal\"\nname = \"Portail\"\nredirect_uris = [\"{CB}\"]\nfirst_party = true\nclient_secret_sha256 = \"{}\"\n{extra}\n",
        sesame_core::random::sha256_hex(SECRET)
    );
    toml::from_str(&text).unwrap()
}

fn authorize(app: &TestApp, extra: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", app.address)).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", "portal")
            .append_pair("redirect_uri", CB)
            .append_pair("scope", "openid")
            .append_pair("state", "s")
            .append_pair("nonce", "n");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.into()
}

/// The ID token's claims for the code in `redirect`.
async fn id_token_of(app: &TestApp, redirect: &str) -> serde_json::Value {
    let code = sesame_tests::oidc::query_param(redirect, "code").expect("a code");
    let res = reqwest::Client::new()
        .post(format!("{}/token", app.address))
        .basic_auth("portal", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", CB),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    let jwt = body["id_token"].as_str().unwrap();
    let payload = sesame_tests::oidc::base64_url_decode(jwt.split('.').nth(1).unwrap());
    serde_json::from_slice(&payload).unwrap()
}

#[tokio::test]
async fn a_client_asking_for_mfa_steps_a_password_session_up_and_learns_it_from_acr_and_amr() {
    let app = sesame_tests::oidc::oidc_app(vec![portal("")]).await;
    let login = unique_login("mfaacr");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    // A session opened with the password only, then a factor added on the account page.
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    let (secret, _) = enrol(&app, &b).await;

    // Without acr_values the password session suffices, and no acr is said.
    let res = b.get(authorize(&app, &[])).send().await.unwrap();
    let plain = id_token_of(&app, &location(&res)).await;
    assert_eq!(plain["amr"], serde_json::json!(["pwd"]), "{plain}");
    assert!(plain.get("acr").is_none(), "{plain}");

    // acr_values=REFEDS MFA: no password again, the code step only.
    let res = b
        .get(authorize(&app, &[("acr_values", REFEDS_MFA)]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&res),
        format!("{}/login/second-factor", app.address)
    );
    // prompt=none cannot step up: interaction_required, no page.
    let res = b
        .get(authorize(
            &app,
            &[("acr_values", REFEDS_MFA), ("prompt", "none")],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        sesame_tests::oidc::query_param(&location(&res), "error").as_deref(),
        Some("interaction_required")
    );
    let code = pyotp(&secret, app.clock.now().unix_timestamp() + 30);
    let res = answer(&app, &b, &code).await;
    let redirect = location(&res);
    assert!(redirect.starts_with(CB), "{redirect}");
    // The same session, stepped up: no new session cookie.
    assert!(
        !sesame_tests::set_cookies(&res)
            .iter()
            .any(|c| c.starts_with("sesame_tgc=")),
        "{:?}",
        sesame_tests::set_cookies(&res)
    );
    let claims = id_token_of(&app, &redirect).await;
    assert_eq!(claims["acr"], REFEDS_MFA, "{claims}");
    let amr: Vec<String> = serde_json::from_value(claims["amr"].clone()).unwrap();
    assert_eq!(amr, ["pwd", "otp", "mfa"], "{claims}");
    // Asked again, the stepped-up session answers at once.
    let res = b
        .get(authorize(&app, &[("acr_values", REFEDS_MFA)]))
        .send()
        .await
        .unwrap();
    assert!(location(&res).starts_with(CB), "{}", location(&res));
}

#[tokio::test]
async fn a_service_that_requires_mfa_steps_up_an_enrolled_person_and_sends_others_to_enrol() {
    let app = TestApp::builder()
        .with(|s| {
            s.cas
                .services
                .push(cas_service("payroll", APP, "require_mfa = true"));
        })
        .spawn()
        .await;
    let service = format!("{APP}payslips");
    let service_enc: String = url::form_urlencoded::byte_serialize(service.as_bytes()).collect();
    let cas_login = format!("{}/cas/login?service={service_enc}", app.address);

    // An enrolled person with a password-only session: the code step, then the ticket.
    let login = unique_login("mfastep");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    let (secret, _) = enrol(&app, &b).await;
    let res = b.get(&cas_login).send().await.unwrap();
    assert_eq!(
        location(&res),
        format!("{}/login/second-factor", app.address)
    );
    let res = answer(
        &app,
        &b,
        &pyotp(&secret, app.clock.now().unix_timestamp() + 30),
    )
    .await;
    let to_service = location(&res);
    assert!(to_service.starts_with(&service), "{to_service}");
    // SSO from then on, without a code.
    let res = b.get(&cas_login).send().await.unwrap();
    assert!(location(&res).starts_with(&service), "{}", location(&res));

    // Someone without a factor: no ticket, the page on turning it on, whether the session
    // exists already or the login is made for the service.
    let other = unique_login("mfanone");
    app.create_user(&other, GOOD_PASSWORD).await;
    let c = browser();
    app.login_with(&c, &other, GOOD_PASSWORD, false).await;
    let res = c.get(&cas_login).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let page = res.text().await.unwrap();
    assert!(page.contains("id=\"mfa-required\""), "{page}");
    assert!(page.contains("/account/second-factor"));
    let d = browser();
    let (_, form) = get(&d, &cas_login).await;
    let lt = sesame_tests::extract_lt(&form).unwrap();
    let res = d
        .post(&cas_login)
        .form(&[
            ("lt", lt.as_str()),
            ("username", other.as_str()),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(location(&res).is_empty());
    // authn_method=mfa asks the same of a service that does not require it.
    let moodle = format!(
        "{}/cas/login?service={service_enc}&authn_method=mfa",
        app.address
    );
    let res = c.get(&moodle).send().await.unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn a_helpdesk_agent_removes_the_factors_of_a_person_who_lost_their_phone() {
    let agent = unique_login("mfaagent");
    let configured = agent.clone();
    let app = TestApp::builder()
        .with(move |s| s.helpdesk.agents = vec![configured])
        .spawn()
        .await;
    app.create_user(&agent, GOOD_PASSWORD).await;
    let console = browser();
    app.login_with(&console, &agent, GOOD_PASSWORD, false).await;
    let login = unique_login("mfalost");
    app.create_user(&login, GOOD_PASSWORD).await;
    let person = browser();
    app.login_with(&person, &login, GOOD_PASSWORD, false).await;
    enrol(&app, &person).await;

    let account_page = format!("{}/helpdesk/accounts/{login}", app.address);
    let (status, html) = get(&console, &account_page).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"mfa-reset\""), "{html}");
    let csrf = hidden_field(&html, "csrf").unwrap();
    // Without the console's token: refused, nothing removed.
    let res = console
        .post(format!("{account_page}/mfa-reset"))
        .form(&[("csrf", "0".repeat(64))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        location(&password_then_step_response(&app, &login).await),
        format!("{}/login/second-factor", app.address)
    );
    let res = console
        .post(format!("{account_page}/mfa-reset"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(!html.contains("id=\"mfa-reset\""), "{html}");
    let kinds = app.services.audit.recent(Some(&login), 100).await.unwrap();
    assert!(kinds
        .iter()
        .any(|e| e.kind == "mfa.removed" && e.actor.contains(&agent)));
    // The next login asks for the password only.
    let res = password_then_step_response(&app, &login).await;
    assert_eq!(location(&res), format!("{}/cas/login", app.address));
}

/// The answer to a password login in a new browser.
async fn password_then_step_response(app: &TestApp, login: &str) -> reqwest::Response {
    app.login_with(&browser(), login, GOOD_PASSWORD, false)
        .await
}

#[tokio::test]
async fn a_required_factor_is_reminded_during_the_grace_then_nothing_is_issued_until_it_is_added() {
    let app = TestApp::builder()
        .with(|s| {
            s.mfa.affiliations.insert(
                sesame_core::ids::Affiliation::Staff,
                sesame_mfa::policy::MfaRequirement::Required,
            );
            s.mfa.grace = sesame_mfa::policy::EnrolmentGrace {
                logins: Some(2),
                until: None,
            };
            s.cas.services.push(cas_service("moodle", APP, ""));
        })
        .spawn()
        .await;
    let login = unique_login("mfareq");
    app.create_user(&login, GOOD_PASSWORD).await;
    let reminder = format!("{}/login/second-factor-reminder", app.address);
    for left in ["2", "1"] {
        let b = browser();
        let res = app.login_with(&b, &login, GOOD_PASSWORD, false).await;
        assert_eq!(location(&res), reminder);
        let (status, page) = get(&b, &reminder).await;
        assert_eq!(status, 200);
        assert!(
            between(&page, "id=\"mfa-reminder-logins\">", "</p>")
                .unwrap()
                .contains(left),
            "{page}"
        );
        let res = b
            .post(&reminder)
            .form(&[("choice", "later")])
            .send()
            .await
            .unwrap();
        assert_eq!(location(&res), format!("{}/cas/login", app.address));
    }
    // The grace is over: the session opens, but neither the login nor a service gets anything.
    let b = browser();
    let res = app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("id=\"mfa-required\""));
    let service = format!("{APP}my/");
    let service_enc: String = url::form_urlencoded::byte_serialize(service.as_bytes()).collect();
    let cas_login = format!("{}/cas/login?service={service_enc}", app.address);
    let res = b.get(&cas_login).send().await.unwrap();
    assert_eq!(res.status(), 403);
    // The account page stays open: the person adds a phone, then the service asks the code.
    let (secret, _) = enrol(&app, &b).await;
    let res = b.get(&cas_login).send().await.unwrap();
    assert_eq!(
        location(&res),
        format!("{}/login/second-factor", app.address)
    );
    let res = answer(
        &app,
        &b,
        &pyotp(&secret, app.clock.now().unix_timestamp() + 30),
    )
    .await;
    assert!(location(&res).starts_with(&service), "{}", location(&res));

    // "Now" ends the login on the page where a factor is added.
    let other = unique_login("mfanow");
    app.create_user(&other, GOOD_PASSWORD).await;
    let c = browser();
    app.login_with(&c, &other, GOOD_PASSWORD, false).await;
    let res = c
        .post(&reminder)
        .form(&[("choice", "now")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&res),
        format!("{}/account/second-factor", app.address)
    );
}

// ----- in a real browser ------------------------------------------------------------------

/// Types `text` into the field `id` and presses Enter there (keyboard only).
async fn type_and_enter(c: &fantoccini::Client, id: &str, text: &str) {
    let field = c.find(fantoccini::Locator::Id(id)).await.unwrap();
    field.send_keys(text).await.unwrap();
    field.send_keys("\u{E007}").await.unwrap();
}

#[tokio::test]
async fn a_person_turns_on_two_step_verification_with_the_keyboard_at_phone_width_and_logs_in_with_a_code(
) {
    use crate::browser::{
        connect, driver_or_skip, fits_the_width, serious_accessibility_violations,
    };
    use fantoccini::Locator;
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    let login = unique_login("mfabrowser");
    app.create_user(&login, GOOD_PASSWORD).await;
    let c = connect(&driver, 375).await;
    // The account page's section, through the login page and back.
    c.goto(&format!("{}/account/second-factor", app.address))
        .await
        .unwrap();
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(&login)
        .await
        .unwrap();
    type_and_enter(&c, "password", GOOD_PASSWORD).await;
    let add = c.wait().for_element(Locator::Id("add-totp")).await.unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "factor list"
    );
    assert!(fits_the_width(&c).await, "factor list at 375 px");
    add.send_keys("\u{E007}").await.unwrap();
    let secret = c
        .wait()
        .for_element(Locator::Id("totp-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "enrolment"
    );
    assert!(fits_the_width(&c).await, "enrolment page at 375 px");
    c.find(Locator::Id("totp-code"))
        .await
        .unwrap()
        .send_keys(&pyotp(&secret, app.clock.now().unix_timestamp()))
        .await
        .unwrap();
    type_and_enter(&c, "totp-current", GOOD_PASSWORD).await;
    let codes = c
        .wait()
        .for_element(Locator::Id("recovery-code-list"))
        .await
        .unwrap();
    assert_eq!(codes.find_all(Locator::Css("li")).await.unwrap().len(), 10);
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "codes shown"
    );

    // A new login: the code page after the password, then logged in.
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(&login)
        .await
        .unwrap();
    type_and_enter(&c, "password", GOOD_PASSWORD).await;
    c.wait().for_element(Locator::Id("code")).await.unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "code step"
    );
    assert!(fits_the_width(&c).await, "code step at 375 px");
    type_and_enter(
        &c,
        "code",
        &pyotp(&secret, app.clock.now().unix_timestamp() + 30),
    )
    .await;
    let who = c
        .wait()
        .for_element(Locator::Id("current-user"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(who, login);
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_helpdesk_tool_lists_and_removes_second_factors_through_the_admin_api_with_its_scope() {
    use sesame_core::api_keys::ApiScope;
    let app = TestApp::spawn().await;
    let login = unique_login("mfaapi");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    enrol(&app, &b).await;
    let key = |scopes: &'static [ApiScope]| {
        let app = &app;
        async move {
            app.services
                .api_keys
                .create("mfa", scopes, None, "test")
                .await
                .unwrap()
                .key
        }
    };
    let helpdesk = key(&[ApiScope::Helpdesk]).await;
    let reader = key(&[ApiScope::AccountsRead]).await;
    let url = format!(
        "{}/admin/api/v1/accounts/{login}/second-factors",
        app.address
    );
    let http = reqwest::Client::new();
    // Another scope is not enough.
    let res = http.get(&url).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = http.delete(&url).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let res = http.get(&url).bearer_auth(&helpdesk).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["factors"][0]["kind"], "totp", "{body}");
    assert_eq!(body["factors"][0]["label"], "Téléphone");
    assert_eq!(body["recovery_codes_left"], 10);
    assert!(!body.to_string().contains("sealed"), "no secret: {body}");
    let res = http
        .delete(&url)
        .bearer_auth(&helpdesk)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["removed"], 1);
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(location(&res), format!("{}/cas/login", app.address));
    let missing = format!(
        "{}/admin/api/v1/accounts/nobody.here/second-factors",
        app.address
    );
    let res = http
        .delete(&missing)
        .bearer_auth(&helpdesk)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// A new browser that carries `cookie` (`name=value`) for the app, and keeps the rest.
fn browser_carrying(app: &TestApp, cookie: &str) -> reqwest::Client {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(cookie, &app.address.parse::<url::Url>().unwrap());
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Whether a password login with `b` lands without the second-factor step.
async fn password_alone_opens(app: &TestApp, b: &reqwest::Client, login: &str) -> bool {
    let res = app.login_with(b, login, GOOD_PASSWORD, false).await;
    assert_eq!(res.status(), 303);
    location(&res) != format!("{}/login/second-factor", app.address)
}

#[tokio::test]
async fn a72_a_remembered_browser_skips_the_code_for_its_account_only_until_forgotten_or_expired() {
    let app = TestApp::builder()
        .with(|s| s.mfa.remember_browser_days = 30)
        .spawn()
        .await;
    let login = unique_login("mfarem");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    let (secret, _) = enrol(&app, &b).await;

    // The step offers it; ticked with a right code, the answer sets the browser's cookie.
    let person = password_then_step(&app, &login).await;
    let (_, page) = get(&person, &format!("{}/login/second-factor", app.address)).await;
    assert!(page.contains("id=\"remember-browser\""), "{page}");
    assert!(page.contains("pendant 30 jours"), "{page}");
    let code = pyotp(&secret, app.clock.now().unix_timestamp() + 30);
    let res = person
        .post(format!("{}/login/second-factor", app.address))
        .form(&[("code", code.as_str()), ("remember_browser", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let set_cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sesame_mfa_browser="))
        .expect("the remembered browser's cookie")
        .to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("Max-Age=2592000"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    // That browser: the password alone opens, and the session still says two factors.
    let remembered = browser_carrying(&app, &cookie);
    assert!(password_alone_opens(&app, &remembered, &login).await);
    let (_, account_page) = get(
        &remembered,
        &format!("{}/account/second-factor", app.address),
    )
    .await;
    assert!(
        account_page.contains("id=\"remembered-list\""),
        "{account_page}"
    );
    assert!(account_page.contains("(ce navigateur)"), "{account_page}");
    // Another browser is still asked for the code.
    assert!(!password_alone_opens(&app, &browser(), &login).await);
    // The cookie stands for its own account only.
    let other = unique_login("mfarem2");
    app.create_user(&other, GOOD_PASSWORD).await;
    let ob = browser();
    app.login_with(&ob, &other, GOOD_PASSWORD, false).await;
    enrol(&app, &ob).await;
    assert!(!password_alone_opens(&app, &browser_carrying(&app, &cookie), &other).await);

    // Forgotten on the account page: asked again.
    let csrf = hidden_field(&account_page, "csrf").unwrap();
    let id = between(&account_page, "name=\"id\" value=\"", "\"")
        .map(str::to_owned)
        .unwrap();
    let forget_id = account_page
        .split("action=\"/account/second-factor/forget-browser\"")
        .nth(1)
        .and_then(|rest| between(rest, "name=\"id\" value=\"", "\""))
        .unwrap()
        .to_owned();
    assert_ne!(id, forget_id, "the factor's form comes first");
    let res = remembered
        .post(format!(
            "{}/account/second-factor/forget-browser",
            app.address
        ))
        .form(&[("csrf", csrf.as_str()), ("id", forget_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"mfa-notice\""), "{html}");
    assert!(!html.contains("id=\"remembered-list\""), "{html}");
    assert!(!password_alone_opens(&app, &browser_carrying(&app, &cookie), &login).await);

    // Remembered again, then past its 30 days: asked again.
    app.clock.advance(time::Duration::seconds(90));
    let person = password_then_step(&app, &login).await;
    let code = pyotp(&secret, app.clock.now().unix_timestamp());
    let res = person
        .post(format!("{}/login/second-factor", app.address))
        .form(&[("code", code.as_str()), ("remember_browser", "on")])
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sesame_mfa_browser="))
        .and_then(|v| v.split(';').next())
        .expect("a new cookie")
        .to_owned();
    assert!(password_alone_opens(&app, &browser_carrying(&app, &cookie), &login).await);
    app.clock.advance(time::Duration::days(31));
    assert!(!password_alone_opens(&app, &browser_carrying(&app, &cookie), &login).await);

    // The helpdesk's removal of a lost factor forgets every remembered browser too: one
    // remembered with the lost phone must not stand for the next factor.
    let person = password_then_step(&app, &login).await;
    let code = pyotp(&secret, app.clock.now().unix_timestamp());
    let res = person
        .post(format!("{}/login/second-factor", app.address))
        .form(&[("code", code.as_str()), ("remember_browser", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let account = app
        .services
        .accounts_repo
        .find_by_login(&sesame_core::ids::LoginName::parse(&login).unwrap())
        .await
        .unwrap()
        .unwrap();
    let remembered = &app.services.remembered_browsers;
    assert_eq!(remembered.list(account.id).await.unwrap().len(), 1);
    sesame_server::operations::reset_second_factors(&app.services, &account.login, "test")
        .await
        .unwrap();
    assert!(remembered.list(account.id).await.unwrap().is_empty());
}
