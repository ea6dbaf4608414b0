//! Blocked accounts and the helpdesk (seed 004): block with a reason → a correct password is
//! told the account is blocked and pointed to the assistance form, a wrong one stays generic →
//! the form stores the request and mails the helpdesk → `sesame helpdesk` lists and closes it
//! → unblock → the next login must change the password before any ticket. Also A54 (a block
//! kills what was issued), C11 (a block racing logins leaves nothing issued after it), the
//! operators' `account add`/`show`, and retention (security spec A54, A55, C11).

use futures::future::join_all;
use sesame_core::account::AccountState;
use sesame_core::helpdesk::BlockReason;
use sesame_core::ids::LoginName;
use sesame_protocol::oidc::clients::OidcClient;
use sesame_tests::oidc::{hidden_field, http_client, query_param};
use sesame_tests::{
    browser, cas_service, extract_lt, set_cookies, unique_login, TestApp, GOOD_PASSWORD,
};
use time::Duration;

use crate::cli::{text, Cli};

const APP: &str = "https://app.example.org/moodle/";
const HELPDESK: &str = "assistance@univ.example.org";
const CB: &str = "https://app.example.org/oidc/callback";
const SECRET: &str = "helpdesk-test-secret-0123456789abcdefghijklmnopqrstu";
const NEW_PASSWORD: &str = "seven lanterns over the quiet canal";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn portal_client() -> OidcClient {
    let text = format!(
        "client_id = \"portal\"\nname = \"Portal\"\nredirect_uris = [\"{CB}\"]\nclient_secret_sha256 = \"{}\"\nfirst_party = true\nscopes = [\"profile\", \"email\"]\n",
        sesame_core::random::sha256_hex(SECRET)
    );
    toml::from_str(&text).unwrap()
}

async fn helpdesk_app() -> TestApp {
    TestApp::builder()
        .with(|s| {
            s.cas.services.push(cas_service("moodle", APP, ""));
            s.oidc.clients.push(portal_client());
            s.helpdesk.address = HELPDESK.to_owned();
        })
        .spawn()
        .await
}

/// Posts the login form for the CAS service with `client`.
async fn post_login_for_service(
    app: &TestApp,
    client: &reqwest::Client,
    login: &str,
    password: &str,
) -> reqwest::Response {
    let page = client
        .get(format!("{}/cas/login?service={}", app.address, enc(APP)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lt = extract_lt(&page).expect("a login form");
    client
        .post(format!("{}/cas/login?service={}", app.address, enc(APP)))
        .form(&[
            ("lt", lt.as_str()),
            ("username", login),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn validate(app: &TestApp, ticket: &str) -> String {
    http_client()
        .get(format!(
            "{}/cas/serviceValidate?service={}&ticket={}",
            app.address,
            enc(APP),
            enc(ticket)
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn validated_user(xml: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .find(|n| n.tag_name().name() == "user")
        .and_then(|n| n.text())
        .map(str::to_owned)
}

/// Whether `client`'s SSO session gets a ticket for the service without credentials.
async fn session_gets_a_ticket(app: &TestApp, client: &reqwest::Client) -> bool {
    let res = client
        .get(format!("{}/cas/login?service={}", app.address, enc(APP)))
        .send()
        .await
        .unwrap();
    query_param(&location(&res), "ticket").is_some()
}

/// The fields of a well-formed assistance request.
fn assistance_fields<'a>(institutional: &'a str, personal: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("kind", "staff"),
        ("name", "Jean Dupont"),
        ("account", institutional),
        ("number", "SOM 4711"),
        ("personal_email", personal),
        ("phone", "06 12 34 56 78"),
        (
            "description",
            "Mon compte est bloqué depuis ce matin.\nJ'ai cliqué sur un lien <b>étrange</b>.",
        ),
    ]
}

/// Fetches the form of the `kind` among `fields` with `client` and posts `fields` with its
/// token.
async fn send_assistance(
    app: &TestApp,
    client: &reqwest::Client,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let kind = fields
        .iter()
        .find(|(k, _)| *k == "kind")
        .map_or("staff", |(_, v)| *v);
    let page = client
        .get(format!("{}/assistance?as={kind}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let token = hidden_field(&html, "token").expect("the form carries a token");
    let mut form = vec![("token", token.as_str())];
    form.extend_from_slice(fields);
    client
        .post(format!("{}/assistance", app.address))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_person_asks_for_help_and_once_unblocked_the_phished_password_opens_nothing_until_a_helpdesk_code_sets_a_new_one(
) {
    let app = helpdesk_app().await;
    let cli = Cli::for_app(&app);
    let login = unique_login("bloque");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let institutional = account.email.clone().unwrap().to_string();

    // The operator blocks the account with a reason.
    let out = cli.run(
        &[
            "account",
            "block",
            &login,
            "--reason",
            "phishing",
            "--note",
            "clicked a fake webmail link",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("blocked (phishing)"), "{}", text(&out));
    let bad_reason = cli.run(&["account", "block", &login, "--reason", "bored"], None);
    assert!(!bad_reason.status.success());

    // The right password learns that the account is blocked and where to ask for help...
    let res = post_login_for_service(&app, &browser(), &login, GOOD_PASSWORD).await;
    assert_eq!(res.status(), 403);
    assert!(
        set_cookies(&res).is_empty(),
        "no session for a blocked account"
    );
    let blocked_page = res.text().await.unwrap();
    assert!(blocked_page.contains("Compte bloqué"), "{blocked_page}");
    assert!(
        blocked_page.contains("href=\"/assistance\""),
        "{blocked_page}"
    );
    // ...the wrong one gets the generic answer, exactly as an unknown login does.
    let wrong = post_login_for_service(&app, &browser(), &login, "not the right password").await;
    assert_eq!(wrong.status(), 401);
    let wrong_page = wrong.text().await.unwrap();
    assert!(!wrong_page.contains("bloqué") && !wrong_page.contains("/assistance"));
    let unknown =
        post_login_for_service(&app, &browser(), "nobody.here", "not the right password").await;
    assert_eq!(unknown.status(), 401);
    let unknown_page = unknown.text().await.unwrap();
    for page in [&wrong_page, &unknown_page] {
        assert!(
            page.contains("Identifiant ou mot de passe incorrect."),
            "{page}"
        );
    }

    // The assistance form works without logging in.
    let personal = format!("{}@gmail.example", login.replace('.', "-"));
    let person = browser();
    let res = send_assistance(&app, &person, &assistance_fields(&institutional, &personal)).await;
    assert_eq!(res.status(), 303);
    let sent = location(&res);
    let reference = query_param(&sent, "reference").expect("a reference");
    assert!(reference.starts_with("AS-"), "{reference}");
    let page = person
        .get(&sent)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&reference), "{page}");

    // An unknown institutional address gets the same answer.
    let res = send_assistance(
        &app,
        &browser(),
        &assistance_fields("nobody.at.all@univ.example.org", "someone@gmail.example"),
    )
    .await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).starts_with(&format!("{}/assistance/sent?reference=AS-", app.address)));

    // Stored, linked to the account, mailed to the helpdesk, acknowledged to the person.
    let stored = app
        .services
        .helpdesk
        .assistance
        .show(&reference)
        .await
        .unwrap();
    assert_eq!(stored.account_id, Some(account.id));
    assert_eq!(stored.personal_email, personal);
    assert!(stored.is_open());
    let to_helpdesk = app.mails_to(HELPDESK).await;
    let mail = to_helpdesk
        .iter()
        .find(|m| m.subject.contains(&reference))
        .expect("the request is mailed to the helpdesk");
    assert!(mail.text.contains(&institutional), "{}", mail.text);
    // The agent opens the request in the console from the mail.
    assert_eq!(
        mail.link_to(&format!("{}/helpdesk/requests/", app.address)),
        format!("{}/helpdesk/requests/{reference}", app.address)
    );
    assert!(
        mail.text.contains(&login) && mail.text.contains("blocked"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("<b>étrange</b>"), "{}", mail.text);
    assert!(mail.text.contains("06 12 34 56 78") || mail.text.contains("0612345678"));
    let ack = app.mails_to(&personal).await;
    assert_eq!(ack.len(), 1);
    assert!(ack[0].text.contains(&reference), "{}", ack[0].text);
    assert!(app
        .audit_kinds(&login)
        .await
        .contains(&"assistance.requested".to_owned()));

    // The helpdesk works the request from the command line.
    let out = cli.run(&["helpdesk", "list"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&reference), "{}", text(&out));
    let out = cli.run(&["helpdesk", "show", &reference.to_lowercase()], None);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(
        shown.contains(&login) && shown.contains("state blocked"),
        "{shown}"
    );
    assert!(shown.contains("cliqué sur un lien"), "{shown}");
    let out = cli.run(&["account", "show", &login], None);
    let shown = text(&out);
    assert!(shown.contains("blocked:      phishing"), "{shown}");
    assert!(shown.contains("clicked a fake webmail link"), "{shown}");

    // The agent checked the caller's identity on the phone: unblock, with a code to read out.
    let out = cli.run(&["account", "unblock", &login, "--code"], None);
    assert!(out.status.success(), "{}", text(&out));
    let printed = text(&out);
    assert!(
        printed.contains("former password no longer logs in"),
        "{printed}"
    );
    let code = printed
        .lines()
        .find_map(|l| l.strip_prefix("reset code:"))
        .map(|c| c.trim().to_owned())
        .expect("the code is printed");
    let out = cli.run(&["account", "show", &login], None);
    assert!(
        text(&out).contains("password:     voided by the unblock"),
        "{}",
        text(&out)
    );
    let out = cli.run(
        &[
            "helpdesk",
            "close",
            &reference,
            "--note",
            "called back, unblocked",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("closed"), "{}", text(&out));
    let out = cli.run(&["helpdesk", "list"], None);
    assert!(
        !text(&out).contains(&reference),
        "closed: not in the open list"
    );
    let out = cli.run(&["helpdesk", "list", "--all"], None);
    assert!(text(&out).contains(&reference), "{}", text(&out));
    let closed = app
        .services
        .helpdesk
        .assistance
        .show(&reference)
        .await
        .unwrap();
    assert_eq!(
        closed.closure.unwrap().note.as_deref(),
        Some("called back, unblocked")
    );
    let kinds = app.audit_kinds(&login).await;
    for kind in [
        "account.blocked",
        "account.unblocked",
        "assistance.requested",
    ] {
        assert!(kinds.contains(&kind.to_owned()), "{kind} in {kinds:?}");
    }

    // The phished password, though correct, opens nothing and leads to no password choice:
    // no session, no parked login, only the ways to set a new password.
    let person = browser();
    let res = post_login_for_service(&app, &person, &login, GOOD_PASSWORD).await;
    assert_eq!(res.status(), 403);
    assert!(
        set_cookies(&res).is_empty(),
        "no session and no parked login: {:?}",
        set_cookies(&res)
    );
    let page = res.text().await.unwrap();
    assert!(
        page.contains("ancien mot de passe ne permet plus de vous connecter"),
        "{page}"
    );
    assert!(
        page.contains("href=\"/password/forgot\"")
            && page.contains("href=\"/password/helpdesk-code\""),
        "{page}"
    );
    assert!(
        !page.contains("type=\"password\""),
        "no password field: {page}"
    );
    assert!(!session_gets_a_ticket(&app, &person).await);
    let res = person
        .get(format!("{}/password/required", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        404,
        "the forced change by old password is gone"
    );
    // A wrong password still gets the generic answer: the page is for the right one only.
    let wrong = post_login_for_service(&app, &browser(), &login, "not the right password").await;
    assert_eq!(wrong.status(), 401);
    assert!(!wrong.text().await.unwrap().contains("helpdesk-code"));

    // On the helpdesk-code page every wrong answer gets one message, whatever the login.
    let unknown = send_helpdesk_code(&app, &person, "nobody.here", &code).await;
    assert_eq!(unknown.status(), 400);
    let unknown_page = unknown.text().await.unwrap();
    let wrong = send_helpdesk_code(&app, &person, &login, "ABCDE-FGHJK").await;
    assert_eq!(wrong.status(), 400);
    let wrong_page = wrong.text().await.unwrap();
    for page in [&unknown_page, &wrong_page] {
        assert!(page.contains("Identifiant ou code incorrect"), "{page}");
    }
    // The right one, typed loosely, opens the new-password step of the reset flow.
    let loose = code.to_lowercase().replace('-', " ");
    let res = send_helpdesk_code(&app, &person, &login.to_uppercase(), &loose).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("Au moins 15 caractères"),
        "the policy is shown: {html}"
    );
    let token = hidden_field(&html, "token").expect("the new-password form");
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
    // The code worked once.
    let again = send_helpdesk_code(&app, &browser(), &login, &code).await;
    assert_eq!(again.status(), 400);

    // The phished password is gone; the new one logs in to the service with a ticket.
    let old = post_login_for_service(&app, &browser(), &login, GOOD_PASSWORD).await;
    assert_eq!(old.status(), 401);
    let fresh = post_login_for_service(&app, &person, &login, NEW_PASSWORD).await;
    assert_eq!(fresh.status(), 303);
    let to_service = location(&fresh);
    assert!(to_service.starts_with(APP), "{to_service}");
    let ticket = query_param(&to_service, "ticket").unwrap();
    assert_eq!(
        validated_user(&validate(&app, &ticket).await).as_deref(),
        Some(login.as_str())
    );
    assert!(!app
        .services
        .helpdesk
        .desk
        .password_change_required(&account)
        .await
        .unwrap());
    let events = app.services.audit.recent(Some(&login), 100).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "recovery.helpdesk_code_issued" && e.actor == "cli"));
    assert!(events.iter().any(
        |e| e.kind == "login.refused_state" && e.detail["reason"] == "password_reset_required"
    ));
    assert!(events.iter().any(|e| e.kind == "recovery.password_reset"));
}

/// Fetches `/password/helpdesk-code` with `client` and posts a login and a code with its form
/// ticket.
pub(crate) async fn send_helpdesk_code(
    app: &TestApp,
    client: &reqwest::Client,
    identifier: &str,
    code: &str,
) -> reqwest::Response {
    let html = client
        .get(format!("{}/password/helpdesk-code", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ft = hidden_field(&html, "ft").expect("the form carries a ticket");
    client
        .post(format!("{}/password/helpdesk-code", app.address))
        .form(&[
            ("ft", ft.as_str()),
            ("identifier", identifier),
            ("code", code),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_assistance_form_is_csrf_protected_bounded_and_rate_limited() {
    let app = TestApp::builder()
        .with(|s| {
            s.helpdesk.address = HELPDESK.to_owned();
            s.helpdesk.form_per_ip_per_hour = 2;
            s.helpdesk.acks_per_address_per_day = 1;
        })
        .spawn()
        .await;
    let fields = assistance_fields("jean.dupont@univ.example.org", "jean@gmail.example");

    // No token, or a foreign page: refused, nothing stored.
    let mut form = vec![("token", "forged")];
    form.extend_from_slice(&fields);
    let res = browser()
        .post(format!("{}/assistance", app.address))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let page = browser()
        .get(format!("{}/assistance?as=staff", app.address))
        .send()
        .await
        .unwrap();
    let token = hidden_field(&page.text().await.unwrap(), "token").unwrap();
    let mut form = vec![("token", token.as_str())];
    form.extend_from_slice(&fields);
    let res = browser()
        .post(format!("{}/assistance", app.address))
        .header("Origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Every bad field is reported, what was typed is kept, nothing is stored.
    let long = "x".repeat(4001);
    let res = send_assistance(
        &app,
        &browser(),
        &[
            ("kind", "staff"),
            ("name", ""),
            ("account", "jean.dupont@univ.example.org"),
            ("personal_email", "jean.dupont@univ.example.org"),
            ("phone", "call me"),
            ("number", "SOM 123"),
            ("description", &long),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"name-error\""), "{html}");
    assert!(html.contains("id=\"phone-error\""), "{html}");
    assert!(html.contains("id=\"description-error\""), "{html}");
    assert!(html.contains("id=\"personal_email-error\""), "{html}");
    assert!(html.contains("value=\"SOM 123\""), "{html}");
    assert!(app
        .services
        .helpdesk
        .assistance
        .list(sesame_core::helpdesk::RequestFilter::All, 100)
        .await
        .unwrap()
        .is_empty());

    // Two requests an hour from one address; the acknowledgement budget of the personal
    // address is one a day, the helpdesk still gets both.
    for _ in 0..2 {
        assert_eq!(
            send_assistance(&app, &browser(), &fields).await.status(),
            303
        );
    }
    let third = send_assistance(&app, &browser(), &fields).await;
    assert_eq!(third.status(), 429);
    assert_eq!(
        app.services
            .helpdesk
            .assistance
            .list(sesame_core::helpdesk::RequestFilter::Open, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(app.mails_to(HELPDESK).await.len(), 2);
    assert_eq!(app.mails_to("jean@gmail.example").await.len(), 1);
    app.clock.advance(Duration::minutes(61));
    assert_eq!(
        send_assistance(&app, &browser(), &fields).await.status(),
        303
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_and_pupils_without_an_institutional_address_ask_for_help_with_the_identity_fields_that_fit_them(
) {
    let app = helpdesk_app().await;
    // First, who is asking: one link per kind of person, no script needed.
    let html = browser()
        .get(format!("{}/assistance", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for kind in ["staff", "student", "pupil", "parent"] {
        assert!(html.contains(&format!("assistance?as={kind}\"")), "{html}");
    }
    // A parent is asked for the child and the school, not for a staff or student number.
    let html = browser()
        .get(format!("{}/assistance?as=parent", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("name=\"child_name\"") && html.contains("name=\"school\""));
    assert!(!html.contains("name=\"number\""), "{html}");

    // A parent with no institutional address and no e-mail: a phone is enough.
    let parent_login = unique_login("parent");
    let parent = app
        .create_user_with(
            &parent_login,
            GOOD_PASSWORD,
            sesame_core::ids::Affiliation::Parent,
        )
        .await;
    let res = send_assistance(
        &app,
        &browser(),
        &[
            ("kind", "parent"),
            ("name", "Nadia Benali"),
            ("child_name", "Yanis Benali"),
            ("school", "Collège Jean Moulin, Melun, 6e B"),
            ("account", &parent_login),
            ("phone", "06 98 76 54 32"),
            (
                "description",
                "Je n'arrive pas à activer mon compte avec le code.",
            ),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    let reference = query_param(&location(&res), "reference").expect("a reference");
    let stored = app
        .services
        .helpdesk
        .assistance
        .show(&reference)
        .await
        .unwrap();
    assert_eq!(stored.kind, sesame_core::helpdesk::RequesterKind::Parent);
    assert_eq!(stored.child_name, "Yanis Benali");
    assert_eq!(stored.school, "Collège Jean Moulin, Melun, 6e B");
    assert_eq!(
        stored.account_id,
        Some(parent.id),
        "their own account, by login"
    );
    assert!(stored.personal_email.is_empty());
    let mail = app
        .mails_to(HELPDESK)
        .await
        .into_iter()
        .find(|m| m.subject.contains(&reference))
        .expect("the helpdesk gets it");
    for expected in [
        "parent d'élève",
        "Nadia Benali",
        "Yanis Benali",
        "6e B",
        &parent_login,
    ] {
        assert!(mail.text.contains(expected), "{expected}: {}", mail.text);
    }

    // A pupil who does not know their login: the school and an address.
    let res = send_assistance(
        &app,
        &browser(),
        &[
            ("kind", "pupil"),
            ("name", "Léa Martin"),
            ("school", "Collège Jean Moulin, 5e A"),
            ("personal_email", "lea.martin@gmail.example"),
            ("description", "J'ai oublié mon mot de passe."),
        ],
    )
    .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        app.mails_to("lea.martin@gmail.example").await.len(),
        1,
        "acknowledged"
    );

    // A student must give the student number; nobody may leave both contacts out.
    let res = send_assistance(
        &app,
        &browser(),
        &[
            ("kind", "student"),
            ("name", "Zoé Lefèvre"),
            ("account", "zoe.lefevre@etu.univ.example.org"),
            ("description", "Compte bloqué."),
        ],
    )
    .await;
    assert_eq!(res.status(), 400);
    let html = res.text().await.unwrap();
    assert!(html.contains("id=\"number-error\""), "{html}");
    assert!(html.contains("id=\"personal_email-error\""), "{html}");
    assert_eq!(
        app.services
            .helpdesk
            .assistance
            .list(sesame_core::helpdesk::RequestFilter::All, 100)
            .await
            .unwrap()
            .len(),
        2
    );
}

/// Logs in through `/authorize` for the portal and returns the browser's code.
async fn portal_code(app: &TestApp, client: &reqwest::Client, login: Option<&str>) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", app.address)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "portal")
        .append_pair("redirect_uri", CB)
        .append_pair("scope", "openid profile")
        .append_pair("state", "s")
        .append_pair("nonce", "n");
    let mut next = url.to_string();
    for _ in 0..8 {
        let res = client.get(&next).send().await.unwrap();
        let loc = location(&res);
        if loc.starts_with(CB) {
            return query_param(&loc, "code").expect("a code");
        }
        if !loc.is_empty() {
            next = if loc.starts_with("http") {
                loc
            } else {
                format!("{}{loc}", app.address)
            };
            continue;
        }
        let html = res.text().await.unwrap();
        let lt = extract_lt(&html).expect("a login page");
        let authz = query_param(&next, "authz").unwrap();
        let login = login.expect("no login expected");
        let res = client
            .post(format!("{}/cas/login?authz={authz}", app.address))
            .form(&[
                ("lt", lt.as_str()),
                ("username", login),
                ("password", GOOD_PASSWORD),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        next = location(&res);
    }
    panic!("no code");
}

async fn token(app: &TestApp, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let res = http_client()
        .post(format!("{}/token", app.address))
        .basic_auth("portal", Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn a54_a_block_refuses_live_sessions_refresh_tokens_unvalidated_tickets_and_unredeemed_codes()
{
    let app = helpdesk_app().await;
    let login = unique_login("a54");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    // A session with an unvalidated ticket, a refresh token and an unredeemed code...
    let person = browser();
    let res = post_login_for_service(&app, &person, &login, GOOD_PASSWORD).await;
    let ticket = query_param(&location(&res), "ticket").unwrap();
    let code = portal_code(&app, &person, None).await;
    let (status, tokens) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let unredeemed = portal_code(&app, &person, None).await;
    // ...and a remember-me session in another browser.
    let remembered = browser();
    let lt = app.fresh_lt().await;
    let res = app
        .post_login(&remembered, &lt, &login, GOOD_PASSWORD, true)
        .await;
    assert_eq!(res.status(), 303);
    assert!(session_gets_a_ticket(&app, &remembered).await);

    let blocked = app
        .services
        .helpdesk
        .desk
        .block(&account.login, BlockReason::Suspicious, None, "test")
        .await
        .unwrap();
    assert_eq!(blocked.sessions_ended.len(), 2);

    // Every instance refuses all of it (they share the database and the store).
    let sibling = if sesame_tests::backend() == sesame_tests::Backend::Production {
        Some(app.spawn_sibling().await)
    } else {
        None
    };
    let judge = sibling.as_ref().unwrap_or(&app);
    assert!(validated_user(&validate(judge, &ticket).await).is_none());
    let (status, _) = token(
        judge,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = token(
        judge,
        &[
            ("grant_type", "authorization_code"),
            ("code", &unredeemed),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(!session_gets_a_ticket(&app, &person).await);
    assert!(!session_gets_a_ticket(&app, &remembered).await);
    let again = post_login_for_service(&app, &browser(), &login, GOOD_PASSWORD).await;
    assert_eq!(again.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c11_a_block_racing_many_logins_leaves_nothing_issued_once_it_returns() {
    let app = TestApp::builder()
        .with(|s| {
            s.cas.services.push(cas_service("moodle", APP, ""));
            // Every login must reach the password check: no lockout, no address throttle.
            s.lockout.threshold = 1000;
            s.lockout.ip_threshold = 10_000;
            s.password_hashing.queue_per_worker = 200;
        })
        .spawn()
        .await;
    let login = unique_login("c11");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    const LOGINS: usize = 80;
    let mut forms = Vec::new();
    for _ in 0..LOGINS {
        let client = browser();
        let page = client
            .get(format!("{}/cas/login?service={}", app.address, enc(APP)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        forms.push((client, extract_lt(&page).unwrap()));
    }
    // The block starts once a tenth of the logins have answered, so that it lands in the
    // middle of the burst: some logins finish before it, others are being checked while it
    // commits, the rest start after it.
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for (client, lt) in &forms {
        let url = format!("{}/cas/login?service={}", app.address, enc(APP));
        let (client, lt, login) = (client.clone(), lt.clone(), login.clone());
        let (answered, progress) = (answered.clone(), progress.clone());
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(url)
                .form(&[
                    ("lt", lt.as_str()),
                    ("username", login.as_str()),
                    ("password", GOOD_PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            let outcome = (
                res.status().as_u16(),
                query_param(&location(&res), "ticket"),
            );
            answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            progress.notify_one();
            outcome
        }));
    }
    loop {
        let waiting = progress.notified();
        if answered.load(std::sync::atomic::Ordering::SeqCst) >= LOGINS / 10 {
            break;
        }
        waiting.await;
    }
    app.services
        .helpdesk
        .desk
        .block(&account.login, BlockReason::Suspicious, None, "test")
        .await
        .unwrap();
    let outcomes: Vec<(u16, Option<String>)> = join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    // Whatever each login got before the block returned is dead now, and nothing new comes.
    let tickets: Vec<String> = outcomes.iter().filter_map(|(_, t)| t.clone()).collect();
    for t in &tickets {
        assert!(
            validated_user(&validate(&app, t).await).is_none(),
            "ticket {t} validated after the block"
        );
    }
    for (client, _) in &forms {
        assert!(
            !session_gets_a_ticket(&app, client).await,
            "a session outlived the block"
        );
    }
    for (status, _) in &outcomes {
        assert!(
            [303, 403, 503].contains(status),
            "unexpected status {status}"
        );
    }
    let stored = app
        .services
        .accounts_repo
        .find_by_login(&account.login)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, AccountState::Blocked);
    eprintln!(
        "c11: {} logins, {} got a ticket before the block, {} refused",
        LOGINS,
        tickets.len(),
        outcomes.iter().filter(|(s, _)| *s == 403).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_adds_verified_recovery_contacts_and_show_masks_them() {
    let app = TestApp::spawn().await;
    let cli = Cli::for_app(&app);
    let login = unique_login("contacts");
    let out = cli.run(
        &[
            "account",
            "add",
            &login,
            "--given-name",
            "Jeanne",
            "--family-name",
            "Martin",
            "--recovery-email",
            "jeanne.martin@gmail.com",
            "--mobile",
            "+33 6 12 34 56 12",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let bad = cli.run(
        &[
            "account",
            "add",
            &unique_login("bad"),
            "--given-name",
            "A",
            "--family-name",
            "B",
            "--mobile",
            "call me",
        ],
        None,
    );
    assert!(!bad.status.success(), "a bad number creates nothing");

    let stored = app
        .services
        .profiles
        .find_with_profile(
            app.services
                .accounts_repo
                .find_by_login(&LoginName::parse(&login).unwrap())
                .await
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap()
        .unwrap();
    let recovery = stored.profile.recovery_email.unwrap();
    assert!(recovery.verified && recovery.address.as_str() == "jeanne.martin@gmail.com");
    let mobile = stored.profile.mobile.unwrap();
    assert!(mobile.verified && mobile.address.as_str() == "+33612345612");

    let out = cli.run(&["account", "show", &login], None);
    assert!(out.status.success(), "{}", text(&out));
    let shown = text(&out);
    assert!(shown.contains("state:        provisioned"), "{shown}");
    assert!(shown.contains("j***@gmail.com (verified)"), "{shown}");
    assert!(shown.contains("+33 6** ** ** 12 (verified)"), "{shown}");
    assert!(
        !shown.contains("jeanne.martin@gmail.com") && !shown.contains("612345612"),
        "{shown}"
    );
    assert!(shown.contains("charter:      not accepted"), "{shown}");
    assert!(shown.contains("blocked:      no"), "{shown}");
    assert!(
        shown.contains("recent security events:") && shown.contains("account.created"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_only_disabled_accounts_past_the_period_and_keeps_the_audit() {
    let app = TestApp::builder()
        .with(|s| s.lifecycle.retention_days = 365)
        .spawn()
        .await;
    let make = |stem: &'static str| {
        let app = &app;
        async move {
            let login = unique_login(stem);
            app.create_user(&login, GOOD_PASSWORD).await
        }
    };
    let leaver = make("leaver").await;
    let recent = make("recent").await;
    let blocked = make("blockedlong").await;
    let active = make("active").await;
    app.services
        .oidc
        .consents
        .save_consent(sesame_core::ports::Consent {
            account_id: leaver.id,
            client_id: "portal".to_owned(),
            scopes: vec!["openid".to_owned()],
            granted_at: app.services.clock.now(),
        })
        .await
        .unwrap();
    app.services
        .accounts
        .set_state(&leaver, AccountState::Disabled, "test")
        .await
        .unwrap();
    app.services
        .helpdesk
        .desk
        .block(&blocked.login, BlockReason::Other, None, "test")
        .await
        .unwrap();
    app.clock.advance(Duration::days(200));
    app.services
        .accounts
        .set_state(&recent, AccountState::Disabled, "test")
        .await
        .unwrap();
    app.clock.advance(Duration::days(166));

    // 366 days after the first disable, 166 after the second.
    let retention = &app.services.helpdesk.retention;
    let dry = retention.run(true, "test").await.unwrap();
    let dry_logins: Vec<_> = dry
        .deleted
        .iter()
        .map(|d| d.account.login.clone())
        .collect();
    assert_eq!(dry_logins, vec![leaver.login.clone()]);
    assert!(
        app.services
            .accounts_repo
            .find_by_id(leaver.id)
            .await
            .unwrap()
            .is_some(),
        "dry run"
    );

    let report = retention.run(false, "test").await.unwrap();
    assert_eq!(report.deleted.len(), 1);
    assert!(app
        .services
        .accounts_repo
        .find_by_id(leaver.id)
        .await
        .unwrap()
        .is_none());
    assert!(app
        .services
        .profiles
        .find_with_profile(leaver.id)
        .await
        .unwrap()
        .is_none());
    assert!(app
        .services
        .oidc
        .consents
        .consents_of(leaver.id)
        .await
        .unwrap()
        .is_empty());
    assert!(app
        .services
        .accounts_repo
        .find_credential(leaver.login.as_str())
        .await
        .unwrap()
        .is_none());
    for kept in [&recent, &blocked, &active] {
        assert!(
            app.services
                .accounts_repo
                .find_by_id(kept.id)
                .await
                .unwrap()
                .is_some(),
            "{}",
            kept.login
        );
    }
    // The audit trail of the deleted account stays, with its deletion.
    let kinds = app.audit_kinds(leaver.login.as_str()).await;
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("account.deleted"),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"account.created".to_owned())
            && kinds.contains(&"account.state_changed".to_owned())
    );
    // A second run finds nothing more.
    assert!(retention
        .run(false, "test")
        .await
        .unwrap()
        .deleted
        .is_empty());

    // The command line runs the same (with the real clock: nothing is that old there).
    let cli = Cli::for_app(&app);
    let out = cli.run(&["retention", "run", "--dry-run"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("dry run: nothing was written"),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a54_a_block_from_the_command_line_refuses_what_was_issued_even_in_embedded_mode() {
    // The CLI is another process: with Redis it ends the sessions itself; with the in-process
    // store it cannot reach them, and the server must ask the database.
    let app = helpdesk_app().await;
    let cli = Cli::for_app(&app);
    let login = unique_login("a54cli");
    app.create_user(&login, GOOD_PASSWORD).await;
    let person = browser();
    let res = post_login_for_service(&app, &person, &login, GOOD_PASSWORD).await;
    let ticket = query_param(&location(&res), "ticket").unwrap();
    let code = portal_code(&app, &person, None).await;
    let (status, tokens) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let unredeemed = portal_code(&app, &person, None).await;

    let out = cli.run(
        &["account", "block", &login, "--reason", "suspicious"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));

    assert!(validated_user(&validate(&app, &ticket).await).is_none());
    let (status, _) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &unredeemed),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_token),
        ],
    )
    .await;
    assert_eq!(status, 400);

    // Unblocking does not bring back what existed before the block: the old session is
    // refused, and the old password opens nothing until a new one is set.
    let out = cli.run(&["account", "unblock", &login], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!session_gets_a_ticket(&app, &person).await);
    let res = post_login_for_service(&app, &person, &login, GOOD_PASSWORD).await;
    assert_eq!(res.status(), 403);
    assert!(!session_gets_a_ticket(&app, &person).await);
}

#[tokio::test]
async fn after_an_unblock_an_openid_connect_login_with_the_old_password_gets_no_code_and_the_new_password_does(
) {
    let app = helpdesk_app().await;
    let login = unique_login("oidcunblock");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let desk = &app.services.helpdesk.desk;
    desk.block(&account.login, BlockReason::Other, None, "test")
        .await
        .unwrap();
    desk.unblock(&account.login, "test").await.unwrap();

    let oidc_login = |password: &'static str| {
        let app = &app;
        let login = login.clone();
        async move {
            let person = browser();
            let mut url = url::Url::parse(&format!("{}/authorize", app.address)).unwrap();
            url.query_pairs_mut()
                .append_pair("response_type", "code")
                .append_pair("client_id", "portal")
                .append_pair("redirect_uri", CB)
                .append_pair("scope", "openid profile")
                .append_pair("state", "s")
                .append_pair("nonce", "n");
            let res = person.get(url.as_str()).send().await.unwrap();
            let to_login = location(&res);
            let to_login = if to_login.starts_with("http") {
                to_login
            } else {
                format!("{}{to_login}", app.address)
            };
            let authz = query_param(&to_login, "authz").unwrap();
            let html = person
                .get(&to_login)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let lt = extract_lt(&html).unwrap();
            let res = person
                .post(format!("{}/cas/login?authz={authz}", app.address))
                .form(&[
                    ("lt", lt.as_str()),
                    ("username", login.as_str()),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap();
            (person, res)
        }
    };

    // The old password: the page on setting a new one, and nothing the client could use.
    let (person, res) = oidc_login(GOOD_PASSWORD).await;
    assert_eq!(res.status(), 403);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("/password/helpdesk-code"));
    let res = person
        .get(format!("{}/authorize/continue", app.address))
        .send()
        .await
        .unwrap();
    assert!(
        !location(&res).starts_with(CB),
        "no code: {}",
        location(&res)
    );

    // A helpdesk code sets a new password; with it the authorization request completes.
    let issued = app
        .services
        .recovery
        .issue_helpdesk_code(&account.login, "test")
        .await
        .unwrap();
    let res = send_helpdesk_code(&app, &browser(), &login, &issued.code).await;
    let html = res.text().await.unwrap();
    let reset_token = hidden_field(&html, "token").expect("the new-password form");
    let res = browser()
        .post(format!("{}/password/reset", app.address))
        .form(&[
            ("token", reset_token.as_str()),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, res) = oidc_login(NEW_PASSWORD).await;
    // The login made for the request answers it: straight back to the client.
    assert_eq!(res.status(), 303);
    let back = location(&res);
    assert!(back.starts_with(CB), "{back}");
    let code = query_param(&back, "code").unwrap();
    let (status, tokens) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
}
