//! The login page in a real headless Chromium: type, submit, land logged in, log out; and
//! the page at phone width.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use sesame_tests::{unique_login, TestApp, GOOD_PASSWORD};

pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_chromedriver() -> Option<Driver> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    Some(Driver { child, port })
}

pub(crate) async fn connect(driver: &Driver, width: u32) -> fantoccini::Client {
    sesame_tests::init_test_process();
    let mut caps = serde_json::Map::new();
    let profile = std::env::temp_dir().join(format!(
        "sesame-chromium-{}",
        sesame_core::random::alphanumeric(8)
    ));
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".to_owned()),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", format!("--window-size={width},900"),
                format!("--user-data-dir={}", profile.display()),
                "--lang=fr-FR",
            ],
            "prefs": { "intl.accept_languages": "fr-FR,fr" },
            "mobileEmulation": { "deviceMetrics": { "width": width, "height": 800, "pixelRatio": 1.0 } }
        }),
    );
    let url = format!("http://127.0.0.1:{}", driver.port);
    for _ in 0..100 {
        if let Ok(client) = ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("could not open a Chromium session through chromedriver");
}

pub(crate) fn driver_or_skip() -> Option<Driver> {
    match start_chromedriver() {
        Some(d) => Some(d),
        None => {
            assert!(
                std::env::var("CI").is_err(),
                "chromedriver must be installed in CI"
            );
            eprintln!(
                "skipped: chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

#[tokio::test]
async fn a_person_logs_in_and_out_in_a_real_browser() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    let login = unique_login("browser");
    app.create_user(&login, GOOD_PASSWORD).await;
    let c = connect(&driver, 1280).await;

    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    assert_eq!(c.title().await.unwrap(), "Connexion · Sesame");
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(&login)
        .await
        .unwrap();
    let password = c.find(Locator::Id("password")).await.unwrap();
    password.send_keys(GOOD_PASSWORD).await.unwrap();

    // The show/hide toggle is there once the script ran, and switches the field type.
    let toggle = c
        .find(Locator::Css("button.toggle-password"))
        .await
        .unwrap();
    assert!(toggle.is_displayed().await.unwrap());
    toggle.click().await.unwrap();
    assert_eq!(
        password.attr("type").await.unwrap().as_deref(),
        Some("text")
    );
    toggle.click().await.unwrap();
    assert_eq!(
        password.attr("type").await.unwrap().as_deref(),
        Some("password")
    );
    let remember = c.find(Locator::Id("remember_me")).await.unwrap();
    assert!(
        !remember.is_selected().await.unwrap(),
        "remember me unchecked by default"
    );

    c.find(Locator::Css("button[type=submit].primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let who = c
        .wait()
        .for_element(Locator::Id("current-user"))
        .await
        .unwrap();
    assert_eq!(who.text().await.unwrap(), login);

    c.find(Locator::Css("form[action$='/cas/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::XPath("//h1[text()='Déconnexion réussie']"))
        .await
        .unwrap();
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    assert!(
        c.find(Locator::Id("username")).await.is_ok(),
        "back to the login form"
    );
    c.close().await.unwrap();
}

#[tokio::test]
async fn a_wrong_password_shows_the_generic_error_in_the_browser_at_phone_width() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    let c = connect(&driver, 375).await;
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("nobody.here")
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("wrong password")
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit].primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let alert = c.wait().for_element(Locator::Id("login-error")).await;
    if alert.is_err() {
        let png = c.screenshot().await.unwrap();
        std::fs::write("/tmp/sesame-phone.png", png).unwrap();
        panic!("no error shown: {}", c.source().await.unwrap());
    }
    let alert = alert.unwrap();
    assert_eq!(
        alert.text().await.unwrap(),
        "Identifiant ou mot de passe incorrect."
    );
    // Nothing overflows horizontally at 375 px.
    let overflow = c
        .execute(
            "return document.documentElement.scrollWidth <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(overflow, serde_json::Value::Bool(true));
    let typed = c
        .find(Locator::Id("username"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap();
    assert_eq!(typed.as_deref(), Some("nobody.here"), "the login is kept");
    c.close().await.unwrap();
}

/// Runs axe-core (npm, tests/a11y) in the page and returns its serious and critical
/// violations, as `id: help (n nodes)` lines.
pub(crate) async fn serious_accessibility_violations(c: &fantoccini::Client) -> Vec<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/a11y/node_modules/axe-core/axe.min.js"
    );
    let source = std::fs::read_to_string(path)
        .expect("axe-core is installed: npm install --prefix tests/a11y");
    c.execute(&source, vec![]).await.unwrap();
    let result = c
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length }))));",
            vec![],
        )
        .await
        .unwrap();
    result
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(|v| format!("{}: {} ({} nodes)", v["id"], v["help"], v["nodes"]))
        .collect()
}

#[tokio::test]
async fn the_pages_have_no_serious_accessibility_violations() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    let login = unique_login("a11y");
    app.create_user(&login, GOOD_PASSWORD).await;
    let c = connect(&driver, 375).await;
    // The login form, then the same form showing an error.
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "login page"
    );
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(&login)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys("wrong password")
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit].primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("login-error"))
        .await
        .unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "login error page"
    );
    // Keyboard only: tab to the fields, type, Enter.
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    let username = c.find(Locator::Id("username")).await.unwrap();
    username.send_keys(&login).await.unwrap();
    username.send_keys("\u{e004}").await.unwrap(); // Tab
    let active = c.active_element().await.unwrap();
    assert_eq!(
        active.attr("id").await.unwrap().as_deref(),
        Some("password"),
        "Tab moves to the password"
    );
    active.send_keys(GOOD_PASSWORD).await.unwrap();
    active.send_keys("\u{e007}").await.unwrap(); // Enter
    c.wait()
        .for_element(Locator::Id("current-user"))
        .await
        .unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "logged-in page"
    );
    // The logged-out and error pages.
    c.goto(&format!("{}/cas/logout", app.address))
        .await
        .unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "logged-out page"
    );
    c.goto(&format!(
        "{}/cas/login?service=https%3A%2F%2Fevil.example%2F",
        app.address
    ))
    .await
    .unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "error page"
    );
    // The check itself can fail: an unlabelled field is reported.
    c.execute(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text>');",
        vec![],
    )
    .await
    .unwrap();
    let found = serious_accessibility_violations(&c).await;
    assert!(found.iter().any(|v| v.contains("label")), "{found:?}");
    c.close().await.unwrap();
}

#[tokio::test]
async fn an_oidc_login_with_consent_and_the_applications_page_in_a_real_browser() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let client: sesame_protocol::oidc::clients::OidcClient = toml::from_str(&format!(
        "client_id = \"notes\"\nname = \"Notes\"\nredirect_uris = [\"http://127.0.0.1:9/cb\"]\nscopes = [\"profile\", \"email\"]\nclient_secret_sha256 = \"{}\"\n",
        sesame_core::random::sha256_hex("secret")
    ))
    .unwrap();
    let app = TestApp::builder()
        .with(move |s| s.oidc.clients = vec![client])
        .spawn()
        .await;
    let login = unique_login("consent");
    app.create_user(&login, GOOD_PASSWORD).await;
    let c = connect(&driver, 375).await;
    c.goto(&format!(
        "{}/authorize?response_type=code&client_id=notes&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&scope=openid%20profile%20email&state=st",
        app.address
    ))
    .await
    .unwrap();
    // The login page names the application.
    let name = c.find(Locator::Id("service-name")).await.unwrap();
    assert_eq!(name.text().await.unwrap(), "Notes");
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(&login)
        .await
        .unwrap();
    let password = c.find(Locator::Id("password")).await.unwrap();
    password.send_keys(GOOD_PASSWORD).await.unwrap();
    password.send_keys("\u{e007}").await.unwrap(); // Enter
    c.wait()
        .for_element(Locator::Id("consent-allow"))
        .await
        .unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "consent page"
    );
    let scopes = c
        .find(Locator::Id("consent-scopes"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(scopes.contains("adresse électronique"), "{scopes}");
    c.find(Locator::Id("consent-allow"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // The browser is sent to the application (which is not running) with a code.
    let mut landed = String::new();
    for _ in 0..50 {
        landed = c.current_url().await.unwrap().to_string();
        if landed.starts_with("http://127.0.0.1:9/cb") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        landed.contains("code=") && landed.contains("state=st"),
        "{landed}"
    );
    c.goto(&format!("{}/account/applications", app.address))
        .await
        .unwrap();
    let listed = c.find(Locator::Id("applications")).await.unwrap();
    assert!(listed.text().await.unwrap().contains("Notes"));
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "applications page"
    );
    c.goto(&format!("{}/logout", app.address)).await.unwrap();
    c.wait()
        .for_element(Locator::Id("logout-confirm"))
        .await
        .unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "logout confirmation page"
    );
    c.close().await.unwrap();
}

/// No horizontal scrolling at the window's width.
pub(crate) async fn fits_the_width(c: &fantoccini::Client) -> bool {
    c.execute(
        "return document.documentElement.scrollWidth <= window.innerWidth;",
        vec![],
    )
    .await
    .unwrap()
        == serde_json::Value::Bool(true)
}

#[tokio::test]
async fn the_account_and_reset_pages_are_accessible_at_phone_width() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    let login = unique_login("a11yaccount");
    app.create_user(&login, GOOD_PASSWORD).await;
    let c = connect(&driver, 375).await;
    // The forgotten-password pages.
    c.goto(&format!("{}/password/forgot", app.address))
        .await
        .unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "forgotten-password page"
    );
    assert!(
        fits_the_width(&c).await,
        "forgotten-password page at 375 px"
    );
    c.find(Locator::Id("identifier"))
        .await
        .unwrap()
        .send_keys(&login)
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit].primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("reset-sent"))
        .await
        .unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "request sent page"
    );
    // The account page, reached through the login page and back.
    c.goto(&format!("{}/account", app.address)).await.unwrap();
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(&login)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(GOOD_PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit].primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("profile")).await.unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "account page"
    );
    assert!(fits_the_width(&c).await, "account page at 375 px");
    c.close().await.unwrap();
}

// --- helpdesk ---

#[tokio::test]
async fn a_blocked_person_finds_the_assistance_form_and_later_sets_a_new_password_with_a_helpdesk_code_at_phone_width(
) {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    let login = unique_login("a11yblock");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    app.services
        .helpdesk
        .desk
        .block(
            &account.login,
            sesame_core::helpdesk::BlockReason::Phishing,
            None,
            "test",
        )
        .await
        .unwrap();
    let c = connect(&driver, 375).await;
    let check = |name: &'static str| {
        let c = c.clone();
        async move {
            assert_eq!(
                serious_accessibility_violations(&c).await,
                Vec::<String>::new(),
                "{name}"
            );
            assert!(fits_the_width(&c).await, "{name} overflows at 375 px");
        }
    };
    let type_into = |id: &'static str, value: String| {
        let c = c.clone();
        async move {
            c.find(Locator::Id(id))
                .await
                .unwrap()
                .send_keys(&value)
                .await
                .unwrap();
        }
    };
    let submit = || {
        let c = c.clone();
        async move {
            c.find(Locator::Css("button[type=submit].primary"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
        }
    };

    // The right password: the blocked page, with the way to the form.
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    type_into("username", login.clone()).await;
    type_into("password", GOOD_PASSWORD.to_owned()).await;
    submit().await;
    c.wait()
        .for_element(Locator::Id("blocked-message"))
        .await
        .unwrap();
    check("blocked page").await;
    c.find(Locator::Id("assistance-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("assistance-kinds"))
        .await
        .unwrap();
    check("assistance: who is asking").await;
    c.find(Locator::Css("#assistance-kinds a[href$='as=staff']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("account")).await.unwrap();
    check("assistance form").await;
    // Sent empty: every field says what is missing, and the summary links to them.
    submit().await;
    c.wait()
        .for_element(Locator::Id("assistance-errors"))
        .await
        .unwrap();
    check("assistance form with errors").await;
    type_into("name", "Test Person".to_owned()).await;
    type_into("account", account.email.clone().unwrap().to_string()).await;
    type_into("personal_email", "perso@gmail.example".to_owned()).await;
    type_into("phone", "06 12 34 56 78".to_owned()).await;
    type_into(
        "description",
        "Compte bloqué, merci de me rappeler.".to_owned(),
    )
    .await;
    submit().await;
    c.wait()
        .for_element(Locator::Id("assistance-reference"))
        .await
        .unwrap();
    check("assistance sent page").await;
    // The parents' form (ENT 77): no institutional address, the child and a contact.
    c.goto(&format!("{}/assistance?as=parent", app.address))
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("child_name"))
        .await
        .unwrap();
    check("assistance form for parents").await;

    // Unblocked: the old password only leads to how to set a new one; the code the
    // helpdesk gives sets it, then the new password logs in.
    app.services
        .helpdesk
        .desk
        .unblock(&account.login, "test")
        .await
        .unwrap();
    let issued = app
        .services
        .recovery
        .issue_helpdesk_code(&account.login, "test")
        .await
        .unwrap();
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    type_into("username", login.clone()).await;
    type_into("password", GOOD_PASSWORD.to_owned()).await;
    submit().await;
    c.wait()
        .for_element(Locator::Id("reset-required"))
        .await
        .unwrap();
    check("password to set again after an unblock").await;
    c.find(Locator::Css(
        "#reset-ways a[href$='/password/helpdesk-code']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    c.wait().for_element(Locator::Id("code")).await.unwrap();
    check("helpdesk code form").await;
    type_into("identifier", login.clone()).await;
    type_into("code", issued.code.clone()).await;
    submit().await;
    c.wait().for_element(Locator::Id("confirm")).await.unwrap();
    check("new password after a helpdesk code").await;
    const NEW_PASSWORD: &str = "seven lanterns over the quiet canal";
    type_into("password", NEW_PASSWORD.to_owned()).await;
    type_into("confirm", NEW_PASSWORD.to_owned()).await;
    submit().await;
    c.wait()
        .for_element(Locator::Id("reset-done"))
        .await
        .unwrap();
    c.goto(&format!("{}/cas/login", app.address)).await.unwrap();
    type_into("username", login.clone()).await;
    type_into("password", NEW_PASSWORD.to_owned()).await;
    submit().await;
    c.wait()
        .for_element(Locator::Id("current-user"))
        .await
        .unwrap();
    c.close().await.unwrap();
}

// --- helpdesk console ---

#[tokio::test]
async fn the_helpdesk_console_is_accessible_and_keyboard_usable_at_phone_width() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let agent = unique_login("agent");
    let configured = agent.clone();
    let app = TestApp::builder()
        .with(move |s| s.helpdesk.agents = vec![configured])
        .spawn()
        .await;
    app.create_user(&agent, GOOD_PASSWORD).await;
    let target = unique_login("target");
    app.create_user(&target, GOOD_PASSWORD).await;
    app.services
        .accounts
        .lock(&target, None, "test")
        .await
        .unwrap();
    let form = sesame_lifecycle::helpdesk::assistance::AssistanceForm {
        name: "Someone".to_owned(),
        account: format!("{target}@univ.example.org"),
        personal_email: "someone@gmail.example".to_owned(),
        phone: "06 12 34 56 78".to_owned(),
        description: "Mon compte est verrouillé.".to_owned(),
        ..Default::default()
    };
    let reference = app
        .services
        .helpdesk
        .assistance
        .submit(
            sesame_lifecycle::helpdesk::assistance::check(&form).unwrap(),
            sesame_core::i18n::Lang::Fr,
            None,
        )
        .await
        .unwrap()
        .reference;
    let c = connect(&driver, 375).await;

    // The console sends to the login page and back, keyboard only.
    c.goto(&format!("{}/helpdesk", app.address)).await.unwrap();
    let username = c.find(Locator::Id("username")).await.unwrap();
    username.send_keys(&agent).await.unwrap();
    username.send_keys("\u{e004}").await.unwrap(); // Tab
    let password = c.active_element().await.unwrap();
    password.send_keys(GOOD_PASSWORD).await.unwrap();
    password.send_keys("\u{e007}").await.unwrap(); // Enter
    let q = c.wait().for_element(Locator::Id("q")).await.unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "search page"
    );
    assert!(fits_the_width(&c).await, "search page at 375 px");

    q.send_keys(&target).await.unwrap();
    q.send_keys("\u{e007}").await.unwrap(); // Enter
    c.wait().for_element(Locator::Id("results")).await.unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "search results"
    );
    assert!(fits_the_width(&c).await, "search results at 375 px");
    c.find(Locator::LinkText(&target))
        .await
        .unwrap()
        .send_keys("\u{e007}")
        .await
        .unwrap();
    let unlock = c.wait().for_element(Locator::Id("unlock")).await.unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "account page"
    );
    assert!(fits_the_width(&c).await, "account page at 375 px");
    unlock.send_keys("\u{e007}").await.unwrap(); // Enter on the focused button
    c.wait()
        .for_element(Locator::Id("console-notice"))
        .await
        .unwrap();
    assert!(app
        .services
        .accounts
        .locked_until(&target)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "account page after an action"
    );

    // The assistance requests.
    c.goto(&format!("{}/helpdesk/requests", app.address))
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("requests")).await.unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "requests page"
    );
    assert!(fits_the_width(&c).await, "requests page at 375 px");
    c.find(Locator::LinkText(&reference))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("close-form"))
        .await
        .unwrap();
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "request page"
    );
    assert!(fits_the_width(&c).await, "request page at 375 px");
    c.close().await.unwrap();
}

/// Fills the login form in `c` and submits it.
async fn submit_login_form(c: &fantoccini::Client, address: &str, login: &str, password: &str) {
    c.goto(&format!("{address}/cas/login")).await.unwrap();
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys(login)
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(password)
        .await
        .unwrap();
    c.find(Locator::Css("button[type=submit].primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_browser_that_logged_in_before_still_logs_in_after_an_attacker_locks_the_login() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    let login = unique_login("prenom.nom");
    app.create_user(&login, GOOD_PASSWORD).await;

    // The person logs in with a real browser at phone width, which keeps a device cookie.
    let c = connect(&driver, 375).await;
    submit_login_form(&c, &app.address, &login, GOOD_PASSWORD).await;
    let who = c.wait().for_element(Locator::Id("current-user")).await;
    assert_eq!(who.unwrap().text().await.unwrap(), login);
    let device = c.get_named_cookie("sesame_device").await.unwrap();
    assert_eq!(device.http_only(), Some(true));
    c.find(Locator::Css("form[action$='/cas/logout'] button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::XPath("//h1[text()='Déconnexion réussie']"))
        .await
        .unwrap();

    // An attacker, from scripts without the person's cookie, locks the login.
    for _ in 0..5 {
        let res = app
            .login_with(&sesame_tests::browser(), &login, "guessed password", false)
            .await;
        assert_eq!(res.status(), 401);
    }
    let refused = app
        .login_with(&sesame_tests::browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(refused.status(), 401, "unknown browsers are locked out");

    // Another browser (unknown) sees the lock page: when to retry, the reset, the help.
    let other = connect(&driver, 375).await;
    submit_login_form(&other, &app.address, &login, GOOD_PASSWORD).await;
    let alert = other.wait().for_element(Locator::Id("login-error")).await;
    assert!(alert
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("temporairement verrouillée. Réessayez à"));
    assert!(other.find(Locator::Id("locked-reset")).await.is_ok());
    assert!(other.find(Locator::Id("help-link")).await.is_ok());
    assert!(fits_the_width(&other).await, "the lock page fits 375 px");
    assert_eq!(
        serious_accessibility_violations(&other).await,
        Vec::<String>::new()
    );
    other.close().await.unwrap();

    // The person's own browser logs in as usual.
    submit_login_form(&c, &app.address, &login, GOOD_PASSWORD).await;
    let who = c.wait().for_element(Locator::Id("current-user")).await;
    if who.is_err() {
        panic!("not logged in: {}", c.source().await.unwrap());
    }
    assert_eq!(who.unwrap().text().await.unwrap(), login);
    c.close().await.unwrap();
}
