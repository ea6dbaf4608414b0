//! Passkeys and security keys end to end in Chromium, with the DevTools protocol's virtual
//! authenticator (`WebAuthn.addVirtualAuthenticator`: CTAP2, internal, resident keys, user
//! verification), on the app served as `localhost` (an address cannot be an RP ID): a person
//! registers a key on the account page, logs in with the password and the key, then with the
//! key alone, and removes it; a removed key opens nothing (A71). Over HTTP: forged and
//! replayed answers (A69), a registration without the password (A70).

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::Locator;
use sesame_tests::{unique_login, TestApp, GOOD_PASSWORD};

use crate::browser::{connect, driver_or_skip, fits_the_width, serious_accessibility_violations};

/// A Chrome DevTools Protocol command, through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

async fn cdp(
    c: &fantoccini::Client,
    cmd: &'static str,
    params: serde_json::Value,
) -> serde_json::Value {
    c.issue_cmd(Cdp { cmd, params })
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// A platform authenticator that verifies its user (a phone's fingerprint, say).
async fn add_authenticator(c: &fantoccini::Client) -> String {
    cdp(c, "WebAuthn.enable", serde_json::json!({})).await;
    let added = cdp(
        c,
        "WebAuthn.addVirtualAuthenticator",
        serde_json::json!({ "options": {
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        }}),
    )
    .await;
    added["authenticatorId"]
        .as_str()
        .expect("an authenticator id")
        .to_owned()
}

/// Whether the authenticator answers by itself (a person touching it at once). Off, a
/// request waits, as the login page's conditional request waits for the person to pick a key
/// in the username field's list.
async fn presence(c: &fantoccini::Client, authenticator: &str, enabled: bool) {
    cdp(
        c,
        "WebAuthn.setAutomaticPresenceSimulation",
        serde_json::json!({ "authenticatorId": authenticator, "enabled": enabled }),
    )
    .await;
}

async fn credentials(c: &fantoccini::Client, authenticator: &str) -> Vec<serde_json::Value> {
    let got = cdp(
        c,
        "WebAuthn.getCredentials",
        serde_json::json!({ "authenticatorId": authenticator }),
    )
    .await;
    got["credentials"].as_array().cloned().unwrap_or_default()
}

async fn fill(c: &fantoccini::Client, id: &str, text: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .send_keys(text)
        .await
        .unwrap();
}

/// The page passes axe-core (nothing serious or critical) and fits the width.
async fn accessible(c: &fantoccini::Client, what: &str) {
    let violations = serious_accessibility_violations(c).await;
    assert!(violations.is_empty(), "{what}: {violations:?}");
    assert!(fits_the_width(c).await, "{what} is wider than the screen");
}

async fn click(c: &fantoccini::Client, id: &str) {
    c.wait()
        .for_element(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("#{id}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click #{id}: {e}"));
}

async fn password_login(c: &fantoccini::Client, app: &TestApp, login: &str) {
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    fill(c, "username", login).await;
    fill(c, "password", GOOD_PASSWORD).await;
    c.find(Locator::Css("form.login button[type=submit].primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The element `id` once the page has it, or a failure that shows the page.
async fn wait_for(c: &fantoccini::Client, id: &str) -> fantoccini::elements::Element {
    match c.wait().for_element(Locator::Id(id)).await {
        Ok(element) => element,
        Err(e) => {
            let reason = match c.find(Locator::Id("passkey-status")).await {
                Ok(status) => status.attr("data-reason").await.ok().flatten(),
                Err(_) => None,
            };
            panic!(
                "no #{id}: {e}; the browser said {reason:?}; page: {:?}",
                c.source().await
            )
        }
    }
}

async fn logged_in_as(c: &fantoccini::Client) -> String {
    wait_for(c, "current-user").await.text().await.unwrap()
}

#[tokio::test]
async fn a71_a_person_registers_a_passkey_logs_in_with_it_then_without_a_password_and_once_removed_it_opens_nothing(
) {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::builder().on_host("localhost").spawn().await;
    let login = unique_login("passkey");
    app.create_user(&login, GOOD_PASSWORD).await;
    // At phone width: every page of the journey is checked by axe-core and must fit.
    let c = connect(&driver, 375).await;
    // The authenticator belongs to the tab; the first page gives it one.
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    let authenticator = add_authenticator(&c).await;

    // Registration, on the account page, with the password.
    password_login(&c, &app, &login).await;
    assert_eq!(logged_in_as(&c).await, login);
    c.goto(&format!("{}/account/second-factor", app.address))
        .await
        .unwrap();
    wait_for(&c, "add-passkey").await;
    accessible(&c, "the account page's second factors").await;
    fill(&c, "passkey-label", "Ordinateur du bureau").await;
    fill(&c, "passkey-current", GOOD_PASSWORD).await;
    click(&c, "add-passkey").await;
    wait_for(&c, "passkey-create").await;
    accessible(&c, "the passkey registration page").await;
    click(&c, "passkey-create").await;
    let notice = wait_for(&c, "mfa-notice").await;
    assert_eq!(
        notice.text().await.unwrap(),
        "Votre clé d'accès est enregistrée."
    );
    let list = c.find(Locator::Id("factor-list")).await.unwrap();
    let listed = list.text().await.unwrap();
    assert!(listed.contains("Ordinateur du bureau"), "{listed}");
    assert!(listed.contains("clé d'accès"), "{listed}");
    // The first factor comes with its recovery codes, shown once.
    let codes = c
        .find_all(Locator::Css("#recovery-code-list li"))
        .await
        .unwrap();
    assert_eq!(codes.len(), 10);
    let stored = credentials(&c, &authenticator).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["isResidentCredential"], true, "{stored:?}");
    let kinds = app.audit_kinds(&login).await;
    assert!(kinds.contains(&"mfa.enrolled".to_owned()), "{kinds:?}");

    // The password, then the key as the second factor.
    c.delete_all_cookies().await.unwrap();
    presence(&c, &authenticator, false).await;
    password_login(&c, &app, &login).await;
    wait_for(&c, "passkey-step").await;
    accessible(&c, "the second-factor step with a key").await;
    presence(&c, &authenticator, true).await;
    click(&c, "passkey-step").await;
    assert_eq!(logged_in_as(&c).await, login);
    let kinds = app.audit_kinds(&login).await;
    assert!(kinds.contains(&"mfa.succeeded".to_owned()), "{kinds:?}");
    let signed_once = credentials(&c, &authenticator).await[0]["signCount"].clone();

    // The key alone, from the username field's list (conditional UI; the virtual
    // authenticator picks the key as the person would): no username, no password.
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    assert_eq!(logged_in_as(&c).await, login);
    let passkey_logins = |events: &[sesame_core::audit::AuditEvent]| {
        events
            .iter()
            .filter(|e| e.kind == "login.succeeded" && e.detail.to_string().contains("passkey"))
            .count()
    };
    let events = app.services.audit.recent(Some(&login), 50).await.unwrap();
    assert_eq!(passkey_logins(&events), 1, "{events:?}");
    // The session says how: a key and the authenticator's verification, two factors.
    let cookie = c.get_named_cookie("sesame_tgc").await.unwrap();
    let session = app
        .services
        .sessions
        .get(cookie.value())
        .await
        .unwrap()
        .expect("the session");
    let amr = session.methods.amr();
    assert!(amr.contains(&"user".to_owned()), "{amr:?}");
    assert!(amr.contains(&"mfa".to_owned()), "{amr:?}");
    assert!(!amr.contains(&"pwd".to_owned()), "{amr:?}");
    assert_eq!(
        session.methods.assurance(),
        Some(sesame_core::login::methods::Assurance::MultiFactor)
    );
    assert_ne!(
        credentials(&c, &authenticator).await[0]["signCount"],
        signed_once,
        "each use moves the key's counter"
    );

    // The key alone, with the button.
    c.delete_all_cookies().await.unwrap();
    presence(&c, &authenticator, false).await;
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    wait_for(&c, "passkey-login").await;
    accessible(&c, "the login page with its passkey button").await;
    presence(&c, &authenticator, true).await;
    click(&c, "passkey-login").await;
    assert_eq!(logged_in_as(&c).await, login);
    let events = app.services.audit.recent(Some(&login), 50).await.unwrap();
    assert_eq!(passkey_logins(&events), 2, "{events:?}");

    // Removal needs the password; then the key opens nothing.
    c.goto(&format!("{}/account/second-factor", app.address))
        .await
        .unwrap();
    fill(&c, "rm-current-1", GOOD_PASSWORD).await;
    c.find(Locator::Css("#factor-list form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("no-factor"))
        .await
        .unwrap();
    c.delete_all_cookies().await.unwrap();
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    let error = wait_for(&c, "login-error").await;
    assert!(
        error.text().await.unwrap().contains("clé d'accès"),
        "{:?}",
        error.text().await
    );
    assert!(c.find(Locator::Id("current-user")).await.is_err());
    c.close().await.unwrap();
}

#[tokio::test]
async fn a69_a_forged_or_replayed_key_answer_opens_no_session() {
    let app = TestApp::builder().on_host("localhost").spawn().await;
    let b = sesame_tests::browser();
    let options: serde_json::Value = b
        .post(format!("{}/login/passkey/options", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ceremony = options["ceremony"].as_str().unwrap().to_owned();
    let public_key = &options["options"];
    assert_eq!(public_key["rpId"], "localhost", "{options}");
    assert_eq!(public_key["userVerification"], "required", "{options}");
    assert!(
        public_key["challenge"]
            .as_str()
            .is_some_and(|c| c.len() >= 22),
        "{options}"
    );
    // An answer no authenticator made.
    let forged = serde_json::json!({
        "id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": { "clientDataJSON": "e30", "authenticatorData": "AAAA", "signature": "AAAA" },
        "clientExtensionResults": {}, "authenticatorAttachment": "platform"
    });
    for attempt in 0..2 {
        let (_, page, lt) = app.login_page().await;
        assert!(page.contains("id=\"passkey-login\""), "{page}");
        let res = app
            .client
            .post(format!("{}/login/passkey", app.address))
            .form(&[
                ("lt", lt.as_str()),
                ("ceremony", ceremony.as_str()),
                ("credential", &forged.to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "attempt {attempt}");
        let page = res.text().await.unwrap();
        assert!(page.contains("id=\"login-error\""), "{page}");
        assert!(!page.contains("current-user"), "{page}");
    }
    // Served on an address, the app offers no keys at all.
    let plain = TestApp::spawn().await;
    let res = plain
        .client
        .post(format!("{}/login/passkey/options", plain.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let (_, page, _) = plain.login_page().await;
    assert!(!page.contains("passkey-login"), "{page}");
}

#[tokio::test]
async fn a70_a_key_cannot_be_registered_from_an_open_session_without_the_password() {
    let app = TestApp::builder().on_host("localhost").spawn().await;
    let login = unique_login("passkeypw");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = sesame_tests::browser();
    app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    let page = b
        .get(format!("{}/account/second-factor", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"add-passkey\""), "{page}");
    let csrf = sesame_tests::oidc::hidden_field(&page, "csrf").unwrap();
    // Without the password (a lab PC's open session): no ceremony begins.
    let res = b
        .post(format!("{}/account/second-factor/passkey", app.address))
        .form(&[
            ("csrf", csrf.as_str()),
            ("label", "Clé"),
            ("current", "not the password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let html = res.text().await.unwrap();
    assert!(!html.contains("webauthn-options"), "{html}");
    // Nor can an answer be posted to a ceremony that was never begun, or to another's.
    let res = b
        .post(format!(
            "{}/account/second-factor/passkey/finish",
            app.address
        ))
        .form(&[
            ("csrf", csrf.as_str()),
            ("ceremony", "made-up"),
            ("label", "Clé"),
            ("credential", "{}"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"no-factor\""), "{html}");
    // With the password, the options name this account and this site, and exclude nothing.
    let res = b
        .post(format!("{}/account/second-factor/passkey", app.address))
        .form(&[
            ("csrf", csrf.as_str()),
            ("label", "Clé"),
            ("current", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    let json = html
        .split("id=\"webauthn-options\">")
        .nth(1)
        .and_then(|rest| rest.split("</script>").next())
        .unwrap();
    let options: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(options["rp"]["id"], "localhost", "{options}");
    assert_eq!(options["user"]["name"], login.as_str(), "{options}");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"], "required",
        "{options}"
    );
    let kinds = app.audit_kinds(&login).await;
    assert!(!kinds.contains(&"mfa.enrolled".to_owned()), "{kinds:?}");
}
