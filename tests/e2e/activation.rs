//! Account activation end to end over HTTP (security spec A47, C07): the e-mailed link from
//! an import, the code handed out by a school, the identity check, the steps, the forgotten
//! login, the charter bump at login, and a CAS login once active.

use futures::future::join_all;
use std::sync::Arc;

use sesame_core::account::{AccountChanges, AccountState, CharterAcceptance};
use sesame_core::clock::Clock;
use sesame_core::ids::{Affiliation, LoginName};
use sesame_lifecycle::activation::challenge;
use sesame_lifecycle::import::read::Format;
use sesame_lifecycle::import::{ImportOptions, ImportReport, Importer, ImporterParts, Outcome};
use sesame_tests::{cas_service, TestApp, GOOD_PASSWORD};
use time::Duration;

use crate::cli::{text, Cli};
use crate::recovery::{nth_sms_code, sms_to, with_sms_outbox};

const NATIONAL_ID_KEY: &str = "e2e-activation-national-id-key-0123456789";
pub const SERVICE: &str = "https://ent.example.org/portail/";
const CHARTER: &str = "2026-09";
/// The generic answer of the identity check, as in the seed (French is the default).
const MISMATCH_FR: &str = "Informations erronées ou compte inexistant.";
const CODE_ERROR_FR: &str = "Identifiant ou code d'activation incorrect, expiré ou déjà utilisé.";

pub async fn activation_app() -> TestApp {
    activation_builder().spawn().await
}

fn activation_builder() -> sesame_tests::TestAppBuilder {
    with_sms_outbox(TestApp::builder()).with(|s| {
        s.lifecycle.email_pattern = "{login}@univ.example.org".to_owned();
        // Pupils and parents have no institutional mailbox (no redirect step).
        s.lifecycle
            .email_patterns
            .insert(Affiliation::Pupil, String::new());
        s.lifecycle.national_id_key = NATIONAL_ID_KEY.into();
        s.lifecycle.activation.challenge_bits = 4;
        s.lifecycle.charter.version = CHARTER.to_owned();
        s.lifecycle.charter.text = "Usage loyal des moyens informatiques.".to_owned();
        s.ui.time_zone = "Europe/Paris".to_owned();
        s.cas.services.push(cas_service("ent", SERVICE, ""));
        // Hassan II: staff may reset a forgotten password by identity check.
        s.lifecycle.recovery.identity_check = vec![Affiliation::Staff];
    })
}

pub fn unique_hr_id() -> String {
    format!("E{}", sesame_core::random::alphanumeric(10).to_uppercase())
}

/// A family name unique to this test (logins are made from names).
pub fn unique_name() -> String {
    let letters: String = sesame_core::random::alphanumeric(24)
        .chars()
        .filter(char::is_ascii_alphabetic)
        .take(8)
        .collect();
    format!("Test{}", letters.to_lowercase())
}

/// Imports one person (the lifecycle importer, as `sesame import` runs it), then queues the
/// activation links as the command does; returns the new login.
pub async fn import_person(app: &TestApp, line: &str) -> String {
    let csv = format!(
        "hr_id,given_name,family_name,birth_date,affiliation,national_id,recovery_email\n{line}\n"
    );
    let report = importer(app)
        .run(
            csv.as_bytes(),
            ImportOptions {
                format: Format::Csv,
                full: false,
                strict: true,
                dry_run: false,
            },
            "test",
        )
        .await
        .unwrap();
    app.services
        .activation
        .after_import(&report, "test", 4)
        .await
        .unwrap();
    created_login(&report)
}

pub fn importer(app: &TestApp) -> Importer {
    Importer::new(ImporterParts {
        profiles: Arc::clone(&app.services.profiles),
        accounts: app.services.accounts.clone(),
        audit: Arc::clone(&app.services.audit),
        sessions: app.services.sessions.clone(),
        clock: Arc::clone(&app.services.clock),
        rules: app.settings.lifecycle.import_rules().unwrap(),
        parallelism: 4,
    })
}

fn created_login(report: &ImportReport) -> String {
    match report.outcomes.first() {
        Some(Outcome::Created { login, .. }) => login.as_str().to_owned(),
        other => panic!("expected one created account, got {other:?}"),
    }
}

pub async fn state_of(app: &TestApp, login: &str) -> AccountState {
    app.services
        .accounts
        .get(&LoginName::parse(login).unwrap())
        .await
        .unwrap()
        .state
}

/// The `value` of the input named `name` (first one).
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let rest = &html[at..];
    let start = rest.find("value=\"")? + "value=\"".len();
    let end = rest[start..].find('"')? + start;
    Some(
        rest[start..end]
            .replace("&#x40;", "@")
            .replace("&#64;", "@"),
    )
}

/// Page text with minijinja's HTML escapes undone, to compare with messages.
pub fn unescaped(html: &str) -> String {
    html.replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn data_attr(html: &str, name: &str) -> String {
    let key = format!("{name}=\"");
    let start = html
        .find(&key)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + key.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

/// The login shown on a result page.
pub fn shown_login(html: &str) -> Option<String> {
    let key = "<strong id=\"login-shown\">";
    let start = html.find(key)? + key.len();
    let end = html[start..].find('<')? + start;
    Some(html[start..end].to_owned())
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub async fn get(client: &reqwest::Client, url: String) -> (reqwest::StatusCode, String) {
    let res = client.get(url).send().await.unwrap();
    let status = res.status();
    (status, res.text().await.unwrap())
}

/// What a person types on the identity form.
pub struct Identity<'a> {
    pub hr_id: &'a str,
    pub national_id: &'a str,
    pub birth_date: &'a str,
    pub email: &'a str,
}

/// Fills the identity form at `path` (solving its proof of work as the page's script does)
/// and posts it.
pub async fn post_identity(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    who: &Identity<'_>,
) -> reqwest::Response {
    let (status, page) = get(client, format!("{}{path}", app.address)).await;
    assert_eq!(status, 200, "{page}");
    let challenge_id = input_value(&page, "challenge_id").unwrap();
    let prefix = data_attr(&page, "data-pow-prefix");
    let bits: u32 = data_attr(&page, "data-pow-bits").parse().unwrap();
    let nonce = challenge::solve(&prefix, bits);
    client
        .post(format!("{}{path}", app.address))
        .form(&[
            ("hr_id", who.hr_id),
            ("national_id", who.national_id),
            ("birth_date", who.birth_date),
            ("email", who.email),
            ("email_confirm", who.email),
            ("challenge_id", challenge_id.as_str()),
            ("pow_nonce", nonce.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

/// The last 6-digit code mailed to `address` (a verification code mail).
pub async fn mailed_code(app: &TestApp, address: &str) -> String {
    let mails = app.mails_to(address).await;
    mails
        .iter()
        .rev()
        .find_map(|m| {
            m.text
                .lines()
                .map(str::trim)
                .find(|l| l.len() == 6 && l.bytes().all(|b| b.is_ascii_digit()))
                .map(str::to_owned)
        })
        .unwrap_or_else(|| panic!("no code mailed to {address}"))
}

/// The form of the verify step: the codes sent to the contacts the page asks for. The code
/// of the mobile is that of its `sms_n`-th SMS (the SMS leave on a background task: without
/// it, the last one written so far).
pub async fn verify_form(app: &TestApp, page: &str, sms_n: Option<usize>) -> Vec<(String, String)> {
    let mut form = Vec::new();
    if page.contains("name=\"email_code\"") {
        let address = unescaped(page)
            .replace("&#x40;", "@")
            .split("Code reçu par courriel à ")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap_or_default()
            .to_owned();
        form.push(("email_code".into(), mailed_code(app, &address).await));
    }
    if page.contains("name=\"mobile_code\"") {
        let number = unescaped(page)
            .split("Code reçu par SMS au ")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap_or_default()
            .to_owned();
        let n = sms_n.unwrap_or_else(|| sms_to(app, &number).len().max(1));
        form.push(("mobile_code".into(), nth_sms_code(app, &number, n).await));
    }
    form
}

/// Goes through every step of the activation in progress with `client`; returns the final
/// page. `redirect` is the forwarding address chosen at the mailbox step.
pub async fn complete_steps(
    app: &TestApp,
    client: &reqwest::Client,
    redirect: Option<&str>,
) -> (reqwest::StatusCode, String) {
    let mut seen = Vec::new();
    let mut sms_n = None;
    loop {
        let (status, page) = get(client, format!("{}/activation/step", app.address)).await;
        assert_eq!(status, 200, "{page}");
        let step = input_value(&page, "step").unwrap();
        seen.push(step.clone());
        let mut form: Vec<(String, String)> = vec![("step".into(), step.clone())];
        match step.as_str() {
            "charter" => {
                assert!(page.contains(CHARTER), "{page}");
                form.push(("accept".into(), "true".into()));
            }
            "directory" => form.push(("opt_in".into(), "true".into())),
            "contacts" => {
                let email = input_value(&page, "recovery_email").unwrap_or_default();
                form.push(("recovery_email".into(), email));
                form.push(("mobile".into(), "06 12 34 56 78".into()));
                sms_n = Some(sms_to(app, "0612345678").len() + 1);
            }
            "verify" => form.extend(verify_form(app, &page, sms_n).await),
            "redirect" => {
                if let Some(redirect) = redirect {
                    form.push(("forward".into(), "true".into()));
                    form.push(("redirect".into(), redirect.into()));
                }
                form.push(("keep_copy".into(), "true".into()));
            }
            "password" => {
                // The rules are shown before the password is typed.
                assert!(page.contains("id=\"password-rules\""), "{page}");
                form.push(("password".into(), GOOD_PASSWORD.into()));
                form.push(("password_confirm".into(), GOOD_PASSWORD.into()));
            }
            other => panic!("unknown step {other}"),
        }
        let res = client
            .post(format!("{}/activation/step", app.address))
            .form(&form)
            .send()
            .await
            .unwrap();
        if step == "password" {
            assert_eq!(
                seen,
                [
                    "charter",
                    "directory",
                    "contacts",
                    "verify",
                    "redirect",
                    "password"
                ]
            );
            let status = res.status();
            return (status, res.text().await.unwrap());
        }
        assert_eq!(res.status(), 303, "step {step}");
        assert!(location(&res).ends_with("/activation/step"));
    }
}

/// Follows a mailed activation link: the GET shows a button (a mail scanner uses nothing
/// up), the POST starts the activation.
pub async fn follow_link(client: &reqwest::Client, link: &str) -> reqwest::Response {
    let (status, page) = get(client, link.to_owned()).await;
    assert_eq!(status, 200, "{page}");
    let token = input_value(&page, "token").unwrap();
    let action = link.split('?').next().unwrap();
    client
        .post(action)
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap()
}

/// Logs in for the CAS service and validates the ticket; returns the `cas:user`.
async fn cas_login_and_validate(app: &TestApp, client: &reqwest::Client, login: &str) -> String {
    let service = format!("{SERVICE}index.php");
    let enc: String = url::form_urlencoded::byte_serialize(service.as_bytes()).collect();
    let (_, page) = get(client, format!("{}/cas/login?service={enc}", app.address)).await;
    let lt = sesame_tests::extract_lt(&page).expect("a login form");
    let res = client
        .post(format!("{}/cas/login?service={enc}", app.address))
        .form(&[
            ("lt", lt.as_str()),
            ("username", login),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    validate_ticket_of(app, &location(&res), &enc).await
}

pub async fn validate_ticket_of(app: &TestApp, location: &str, enc_service: &str) -> String {
    assert!(location.starts_with(SERVICE), "{location}");
    let ticket = sesame_tests::oidc::query_param(location, "ticket").expect("a ticket");
    let xml = reqwest::get(format!(
        "{}/cas/p3/serviceValidate?service={enc_service}&ticket={ticket}",
        app.address
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(xml.contains("<cas:authenticationSuccess>"), "{xml}");
    let start = xml.find("<cas:user>").unwrap() + "<cas:user>".len();
    let end = xml.find("</cas:user>").unwrap();
    xml[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_person_activates_by_mailed_link_then_logs_in_to_cas() {
    let app = activation_app().await;
    let family = unique_name();
    let recovery = format!("{}@perso.example.com", family.to_lowercase());
    let login = import_person(
        &app,
        &format!(
            "{},Anne,{family},20-10-1970,staff,AB123456,{recovery}",
            unique_hr_id()
        ),
    )
    .await;
    assert_eq!(state_of(&app, &login).await, AccountState::Provisioned);

    // The mail gives the login and a link to this server.
    let mails = app.mails_to(&recovery).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].text.contains(&login), "{}", mails[0].text);
    let link = mails[0].link_to(&format!("{}/activation/link", app.address));

    let browser = sesame_tests::browser();
    let res = follow_link(&browser, &link).await;
    assert_eq!(res.status(), 303);
    // A mail-redirect address other than the (proven) recovery one gets a proof link.
    let forward = format!("fwd-{}", recovery);
    let (status, done) = complete_steps(&app, &browser, Some(&forward)).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        shown_login(&done).as_deref(),
        Some(login.as_str()),
        "{done}"
    );
    assert_eq!(state_of(&app, &login).await, AccountState::Active);

    let account = app
        .services
        .accounts
        .get(&LoginName::parse(&login).unwrap())
        .await
        .unwrap();
    let profile = app
        .services
        .profiles
        .find_with_profile(account.id)
        .await
        .unwrap()
        .unwrap()
        .profile;
    assert_eq!(profile.charter.unwrap().version, CHARTER);
    assert!(profile.directory_opt_in);
    let recovery_contact = profile.recovery_email.unwrap();
    assert_eq!(recovery_contact.address.as_str(), recovery);
    assert!(recovery_contact.verified, "the link proved the address");
    let redirect = profile.mail_redirect.unwrap();
    assert_eq!(redirect.address.as_str(), forward);
    assert!(!redirect.verified && redirect.keep_copy);

    // Every transition is audited.
    let kinds = app.audit_kinds(&login).await;
    for kind in [
        "activation.link_sent",
        "activation.started",
        "activation.step_completed",
        "account.charter_accepted",
        "account.password_changed",
        "account.state_changed",
        "activation.completed",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing in {kinds:?}"
        );
    }

    // The forwarding address proves itself by its link.
    let proofs = app.mails_to(&forward).await;
    assert_eq!(proofs.len(), 1);
    let proof = proofs[0].link_to(&format!("{}/activation/redirect", app.address));
    let res = follow_link(&browser, &proof).await;
    assert_eq!(res.status(), 200);
    let verified = app
        .services
        .profiles
        .find_with_profile(account.id)
        .await
        .unwrap()
        .unwrap()
        .profile
        .mail_redirect
        .unwrap();
    assert!(verified.verified);
    assert_eq!(
        follow_link(&browser, &proof).await.status(),
        400,
        "single use"
    );

    // The activated person logs in to a CAS application and the ticket validates.
    let user = cas_login_and_validate(&app, &sesame_tests::browser(), &login).await;
    assert_eq!(user, login);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a47_activation_link_expires_at_2359_the_next_day() {
    let app = activation_app().await;
    let family = unique_name();
    let before = format!("{}a@perso.example.com", family.to_lowercase());
    let after = format!("{}b@perso.example.com", family.to_lowercase());
    import_person(
        &app,
        &format!(
            "{},Ana,{family}a,01-02-1980,staff,,{before}",
            unique_hr_id()
        ),
    )
    .await;
    import_person(
        &app,
        &format!("{},Bob,{family}b,01-02-1980,staff,,{after}", unique_hr_id()),
    )
    .await;
    let link_before =
        app.mails_to(&before).await[0].link_to(&format!("{}/activation/link", app.address));
    let link_after =
        app.mails_to(&after).await[0].link_to(&format!("{}/activation/link", app.address));

    let deadline = app.services.activation.link_deadline(app.clock.now());
    let paris = time_tz::timezones::get_by_name("Europe/Paris").unwrap();
    let local = time_tz::OffsetDateTimeExt::to_timezone(&deadline, paris);
    assert_eq!((local.hour(), local.minute()), (23, 59));
    assert_eq!(
        local.date(),
        time_tz::OffsetDateTimeExt::to_timezone(&app.clock.now(), paris)
            .date()
            .next_day()
            .unwrap()
    );

    // Just before the deadline the link works…
    app.clock
        .advance(deadline - app.clock.now() - Duration::seconds(30));
    let res = follow_link(&sesame_tests::browser(), &link_before).await;
    assert_eq!(res.status(), 303, "valid until 23:59 the next day");
    // …just after, it does not (generic text, a way to ask for a new one).
    app.clock.advance(Duration::seconds(60));
    let res = follow_link(&sesame_tests::browser(), &link_after).await;
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(
        unescaped(&page).contains("/activation/first-login"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a47_first_login_sends_a_new_link_that_kills_the_old_one_and_answers_the_same_for_unknown_addresses(
) {
    let app = activation_app().await;
    let family = unique_name();
    let recovery = format!("{}@perso.example.com", family.to_lowercase());
    let login = import_person(
        &app,
        &format!(
            "{},Jean,{family},01-02-1980,faculty,,{recovery}",
            unique_hr_id()
        ),
    )
    .await;
    let first =
        app.mails_to(&recovery).await[0].link_to(&format!("{}/activation/link", app.address));

    let ask = |address: String| {
        let app = &app;
        async move {
            let client = sesame_tests::browser();
            let (_, page) = get(&client, format!("{}/activation/first-login", app.address)).await;
            let token = input_value(&page, "form_token").unwrap();
            let res = client
                .post(format!("{}/activation/first-login", app.address))
                .form(&[
                    ("address", address.as_str()),
                    ("form_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (res.status(), res.text().await.unwrap())
        }
    };
    let known = ask(format!("{login}@univ.example.org")).await;
    let unknown = ask("nobody.here@univ.example.org".to_owned()).await;
    assert_eq!(known.0, 200);
    assert_eq!(
        known, unknown,
        "the same answer whether or not the account exists"
    );

    let mails = app.mails_to(&recovery).await;
    assert_eq!(mails.len(), 2);
    let second = mails[1].link_to(&format!("{}/activation/link", app.address));
    assert_ne!(first, second);
    assert_eq!(
        follow_link(&sesame_tests::browser(), &first).await.status(),
        400,
        "a newer link kills the older one"
    );
    assert_eq!(
        follow_link(&sesame_tests::browser(), &second)
            .await
            .status(),
        303
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_check_gives_one_generic_message_for_every_mismatch_then_activates_once() {
    let app = activation_app().await;
    let family = unique_name();
    let hr_id = unique_hr_id();
    let login = import_person(
        &app,
        &format!("{hr_id},Karim,{family},20-10-1970,staff,BK 123 456,"),
    )
    .await;
    let right = Identity {
        hr_id: &hr_id,
        national_id: "BK123456",
        birth_date: "20-10-1970",
        email: "karim@perso.example.com",
    };
    let client = sesame_tests::browser();
    for (what, wrong) in [
        (
            "unknown number",
            Identity {
                hr_id: "NOSUCH999",
                ..right
            },
        ),
        (
            "wrong national id",
            Identity {
                national_id: "BK999999",
                ..right
            },
        ),
        (
            "no national id",
            Identity {
                national_id: "",
                ..right
            },
        ),
        (
            "wrong birth date",
            Identity {
                birth_date: "21-10-1970",
                ..right
            },
        ),
    ] {
        let res = post_identity(&app, &client, "/activation/identity", &wrong).await;
        assert_eq!(res.status(), 400, "{what}");
        let page = res.text().await.unwrap();
        assert!(unescaped(&page).contains(MISMATCH_FR), "{what}: {page}");
        assert!(!page.contains(&login), "{what}");
    }
    // A challenge that is not solved is refused before anything is compared.
    let (_, page) = get(&client, format!("{}/activation/identity", app.address)).await;
    let challenge_id = input_value(&page, "challenge_id").unwrap();
    let res = client
        .post(format!("{}/activation/identity", app.address))
        .form(&[
            ("hr_id", hr_id.as_str()),
            ("national_id", "BK123456"),
            ("birth_date", "20-10-1970"),
            ("email", right.email),
            ("email_confirm", right.email),
            ("challenge_id", challenge_id.as_str()),
            ("challenge_answer", "999"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(!unescaped(&res.text().await.unwrap()).contains(MISMATCH_FR));

    let res = post_identity(&app, &client, "/activation/identity", &right).await;
    assert_eq!(res.status(), 303);
    let (status, done) = complete_steps(&app, &client, None).await;
    assert_eq!(status, 200);
    assert_eq!(shown_login(&done).as_deref(), Some(login.as_str()));
    assert_eq!(state_of(&app, &login).await, AccountState::Active);

    // A second attempt says the account is already active and shows the login.
    let again = post_identity(
        &app,
        &sesame_tests::browser(),
        "/activation/identity",
        &right,
    )
    .await;
    assert_eq!(again.status(), 200);
    let page = again.text().await.unwrap();
    assert!(page.contains("déjà activé"), "{page}");
    assert_eq!(shown_login(&page).as_deref(), Some(login.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a47_identity_checks_are_rate_limited_per_identifier() {
    let app = activation_app().await;
    let hr_id = unique_hr_id();
    import_person(
        &app,
        &format!("{hr_id},Lina,{},20-10-1970,staff,,", unique_name()),
    )
    .await;
    let wrong = Identity {
        hr_id: &hr_id,
        national_id: "",
        birth_date: "01-01-1900",
        email: "lina@perso.example.com",
    };
    let client = sesame_tests::browser();
    for _ in 0..5 {
        let res = post_identity(&app, &client, "/activation/identity", &wrong).await;
        assert_eq!(res.status(), 400);
    }
    // Even the right answer is refused while the identifier is throttled.
    let right = Identity {
        birth_date: "20-10-1970",
        ..wrong
    };
    let res = post_identity(&app, &client, "/activation/identity", &right).await;
    assert_eq!(res.status(), 429);
    app.clock.advance(Duration::seconds(3601));
    let res = post_identity(&app, &client, "/activation/identity", &right).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forgotten_login_is_shown_after_the_identity_check() {
    let app = activation_app().await;
    let hr_id = unique_hr_id();
    let login = import_person(
        &app,
        &format!("{hr_id},Zoé,{},05-06-2004,student,XY987654,", unique_name()),
    )
    .await;
    let who = Identity {
        hr_id: &hr_id,
        national_id: "XY987654",
        birth_date: "05-06-2004",
        email: "zoe@perso.example.com",
    };
    let client = sesame_tests::browser();
    let wrong = Identity {
        birth_date: "06-06-2004",
        ..who
    };
    let res = post_identity(&app, &client, "/forgot-login", &wrong).await;
    assert_eq!(res.status(), 400);
    assert!(unescaped(&res.text().await.unwrap()).contains(MISMATCH_FR));
    let res = post_identity(&app, &client, "/forgot-login", &who).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert_eq!(
        shown_login(&page).as_deref(),
        Some(login.as_str()),
        "{page}"
    );
    assert!(app
        .audit_kinds(&login)
        .await
        .iter()
        .any(|k| k == "account.login_reminded"));
}

/// Imports a person and sets a password, as after an activation; returns the login.
async fn active_person(app: &TestApp, hr_id: &str, affiliation: &str, national_id: &str) -> String {
    let login = import_person(
        app,
        &format!(
            "{hr_id},Samir,{},20-10-1970,{affiliation},{national_id},",
            unique_name()
        ),
    )
    .await;
    app.services
        .accounts
        .set_password(
            &LoginName::parse(&login).unwrap(),
            sesame_core::credentials::Password::new(GOOD_PASSWORD),
            "test",
        )
        .await
        .unwrap();
    login
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_reset_a_forgotten_password_by_staff_number_national_id_and_birth_date_under_the_activation_limits(
) {
    const NEW_PASSWORD: &str = "seven lanterns over the quiet canal";
    let app = activation_app().await;
    let client = sesame_tests::browser();
    // The forgotten-password page offers it; the form asks no personal address.
    let (_, page) = get(&client, format!("{}/password/forgot", app.address)).await;
    assert!(unescaped(&page).contains("/password/identity"), "{page}");
    let (status, page) = get(&client, format!("{}/password/identity", app.address)).await;
    assert_eq!(status, 200);
    assert!(page.contains("name=\"national_id\"") && !page.contains("name=\"email\""));

    let hr_id = unique_hr_id();
    let login = active_person(&app, &hr_id, "staff", "AB123456").await;
    let who = Identity {
        hr_id: &hr_id,
        national_id: "ab 123 456",
        birth_date: "20-10-1970",
        email: "",
    };
    // A wrong birth date or national ID gets the guide's one answer.
    for wrong in [
        Identity {
            birth_date: "21-10-1970",
            ..who
        },
        Identity {
            national_id: "AB123457",
            ..who
        },
    ] {
        let res = post_identity(&app, &client, "/password/identity", &wrong).await;
        assert_eq!(res.status(), 400);
        assert!(unescaped(&res.text().await.unwrap()).contains(MISMATCH_FR));
    }
    // The right answers lead to the reset flow's new-password step.
    let res = post_identity(&app, &client, "/password/identity", &who).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["referrer-policy"].to_str().unwrap(),
        "no-referrer"
    );
    let page = res.text().await.unwrap();
    assert!(page.contains(&login), "{page}");
    let token = input_value(&page, "token").expect("the new-password form");
    let res = client
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
    let status = |password: &'static str| {
        let app = &app;
        let login = login.clone();
        async move {
            app.login_with(&sesame_tests::browser(), &login, password, false)
                .await
                .status()
        }
    };
    assert_eq!(status(GOOD_PASSWORD).await, 401);
    assert_eq!(status(NEW_PASSWORD).await, 303);
    let kinds = app.audit_kinds(&login).await;
    assert!(
        kinds.contains(&"recovery.password_reset".to_owned()),
        "{kinds:?}"
    );

    // It is a verified channel: after an unblock it sets the password the unblock voided.
    let desk = &app.services.helpdesk.desk;
    let account_login = LoginName::parse(&login).unwrap();
    desk.block(
        &account_login,
        sesame_core::helpdesk::BlockReason::Phishing,
        None,
        "test",
    )
    .await
    .unwrap();
    desk.unblock(&account_login, "test").await.unwrap();
    assert_eq!(status(NEW_PASSWORD).await, 403);
    let res = post_identity(&app, &client, "/password/identity", &who).await;
    let token = input_value(&res.text().await.unwrap(), "token").unwrap();
    const THIRD_PASSWORD: &str = "amber kites above the winter dunes";
    let res = client
        .post(format!("{}/password/reset", app.address))
        .form(&[
            ("token", token.as_str()),
            ("password", THIRD_PASSWORD),
            ("confirm", THIRD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(status(THIRD_PASSWORD).await, 303);

    // Only the affiliations configured, and only with a national ID on file.
    let student_hr = unique_hr_id();
    active_person(&app, &student_hr, "student", "CD654321").await;
    let no_id_hr = unique_hr_id();
    active_person(&app, &no_id_hr, "staff", "").await;
    for (hr, national_id) in [(&student_hr, "CD654321"), (&no_id_hr, "")] {
        let someone = Identity {
            hr_id: hr,
            national_id,
            ..who
        };
        let res = post_identity(&app, &client, "/password/identity", &someone).await;
        assert_eq!(res.status(), 400, "{hr}");
        assert!(unescaped(&res.text().await.unwrap()).contains(MISMATCH_FR));
    }

    // The same counters as activation and the forgotten login: five failures on a number,
    // wherever they were made, refuse even the right answers until the window ends.
    let limited_hr = unique_hr_id();
    let limited = active_person(&app, &limited_hr, "staff", "EF111222").await;
    let right = Identity {
        hr_id: &limited_hr,
        national_id: "EF111222",
        birth_date: "20-10-1970",
        email: "samir@perso.example.com",
    };
    let wrong = Identity {
        birth_date: "01-01-1990",
        ..right
    };
    for path in [
        "/password/identity",
        "/password/identity",
        "/password/identity",
    ] {
        assert_eq!(
            post_identity(&app, &client, path, &wrong).await.status(),
            400
        );
    }
    for path in ["/forgot-login", "/activation/identity"] {
        assert_eq!(
            post_identity(&app, &client, path, &wrong).await.status(),
            400
        );
    }
    let res = post_identity(&app, &client, "/password/identity", &right).await;
    assert_eq!(res.status(), 429);
    app.clock.advance(Duration::seconds(3601));
    let res = post_identity(&app, &client, "/password/identity", &right).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains(&limited));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_affiliations_configured_there_is_no_reset_by_identity_check() {
    let app = TestApp::spawn().await;
    let client = sesame_tests::browser();
    let (status, _) = get(&client, format!("{}/password/identity", app.address)).await;
    assert_eq!(status, 404);
    let (_, page) = get(&client, format!("{}/password/forgot", app.address)).await;
    assert!(!unescaped(&page).contains("/password/identity"), "{page}");
}

/// Imports a pupil and makes a code for them; returns (login, code).
pub async fn pupil_with_code(app: &TestApp) -> (String, String) {
    let login = import_person(
        app,
        &format!(
            "{},Léo,{},03-03-2012,pupil,,",
            unique_hr_id(),
            unique_name()
        ),
    )
    .await;
    let (_, code, _) = app
        .services
        .activation
        .issue_code(&LoginName::parse(&login).unwrap(), "test")
        .await
        .unwrap();
    (login, code)
}

pub async fn post_code(
    app: &TestApp,
    client: &reqwest::Client,
    login: &str,
    code: &str,
) -> reqwest::Response {
    let (_, page) = get(client, format!("{}/activation/code", app.address)).await;
    let token = input_value(&page, "form_token").unwrap();
    client
        .post(format!("{}/activation/code", app.address))
        .form(&[
            ("login", login),
            ("code", code),
            ("form_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a47_an_activation_code_works_until_its_activation_completes_and_never_after() {
    let app = activation_app().await;
    let (login, code) = pupil_with_code(&app).await;
    // Someone starts, then abandons the activation half way (closes the browser).
    let abandoned = sesame_tests::browser();
    let res = post_code(&app, &abandoned, &login, &code).await;
    assert_eq!(res.status(), 303);
    let res = abandoned
        .post(format!("{}/activation/step", app.address))
        .form(&[("step", "charter"), ("accept", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    // The code still works: typed in lower case without the dash, it is the same code.
    let client = sesame_tests::browser();
    let typed = code.to_lowercase().replace('-', "");
    let res = post_code(&app, &client, &login, &typed).await;
    assert_eq!(
        res.status(),
        303,
        "an abandoned activation does not use the code up"
    );

    // Pupils have no institutional mailbox here: no redirect step.
    let (_, page) = get(&client, format!("{}/activation/step", app.address)).await;
    assert_eq!(input_value(&page, "step").as_deref(), Some("charter"));
    for form in [
        vec![("step", "charter"), ("accept", "true")],
        vec![("step", "directory"), ("opt_in", "false")],
        vec![
            ("step", "contacts"),
            ("recovery_email", "parent@perso.example.com"),
            ("mobile", ""),
        ],
    ] {
        let res = client
            .post(format!("{}/activation/step", app.address))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
    }
    confirm_codes(&app, &client).await;
    // A password that breaks the policy is refused with the rules; the flow stays.
    let res = client
        .post(format!("{}/activation/step", app.address))
        .form(&[
            ("step", "password"),
            ("password", "short"),
            ("password_confirm", "short"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = client
        .post(format!("{}/activation/step", app.address))
        .form(&[
            ("step", "password"),
            ("password", GOOD_PASSWORD),
            ("password_confirm", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(state_of(&app, &login).await, AccountState::Active);

    // Done: the abandoned activation, resumed, only learns that the account is active.
    let (_, page) = complete_steps_from(&app, &abandoned, "directory", GOOD_PASSWORD).await;
    assert!(page.contains("Compte déjà activé"), "{page}");
    assert_eq!(count_kind(&app, &login, "activation.completed").await, 1);

    // Once active, the same code says so and gives the login.
    let res = post_code(&app, &sesame_tests::browser(), &login, &code).await;
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert_eq!(
        shown_login(&page).as_deref(),
        Some(login.as_str()),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a47_wrong_codes_are_rate_limited() {
    let app = activation_app().await;
    let (login, code) = pupil_with_code(&app).await;
    let client = sesame_tests::browser();
    for _ in 0..5 {
        let res = post_code(&app, &client, &login, "AAAAA-BBBBB").await;
        assert_eq!(res.status(), 400);
        // One generic answer, which says where a new code comes from.
        let page = unescaped(&res.text().await.unwrap());
        assert!(
            page.contains(CODE_ERROR_FR)
                && page.contains("demandez-en un nouveau à votre établissement"),
            "{page}"
        );
    }
    let res = post_code(&app, &client, &login, &code).await;
    assert_eq!(
        res.status(),
        429,
        "the right code waits for the window to end"
    );
    app.clock.advance(Duration::seconds(3601));
    let res = post_code(&app, &client, &login, &code).await;
    assert_eq!(res.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c07_twenty_parallel_completions_with_one_code_activate_once_with_the_winners_password() {
    // Each browser proves its recovery address by a mailed code: twenty mails to one account
    // in a day need a budget above the default five.
    let app = activation_builder()
        .with(|s| s.lifecycle.activation.max_links_per_day = 20)
        .spawn()
        .await;
    let (login, code) = pupil_with_code(&app).await;
    // Twenty browsers start an activation with the one code (it is used up only at the end)
    // and go as far as the password.
    let mut browsers = Vec::new();
    for i in 0..20 {
        let client = sesame_tests::browser();
        assert_eq!(post_code(&app, &client, &login, &code).await.status(), 303);
        // One address per browser: codes sent to one address are limited per day.
        let recovery = format!("p{i}@perso.example.com");
        for form in [
            vec![("step", "charter"), ("accept", "true")],
            vec![("step", "directory"), ("opt_in", "false")],
            vec![
                ("step", "contacts"),
                ("recovery_email", recovery.as_str()),
                ("mobile", ""),
            ],
        ] {
            let res = client
                .post(format!("{}/activation/step", app.address))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303);
        }
        confirm_codes(&app, &client).await;
        browsers.push(client);
    }
    let passwords: Vec<String> = (0..20)
        .map(|i| format!("{GOOD_PASSWORD} number {i}"))
        .collect();
    let responses = join_all(browsers.iter().zip(&passwords).map(|(client, password)| {
        client
            .post(format!("{}/activation/step", app.address))
            .form(&[
                ("step", "password"),
                ("password", password.as_str()),
                ("password_confirm", password.as_str()),
            ])
            .send()
    }))
    .await;
    let mut winners = Vec::new();
    for (i, res) in responses.into_iter().enumerate() {
        let page = unescaped(&res.unwrap().text().await.unwrap());
        if page.contains("Compte activé") {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(count_kind(&app, &login, "activation.completed").await, 1);
    assert_eq!(state_of(&app, &login).await, AccountState::Active);
    // The stored password is the winner's.
    let winner = &passwords[winners[0]];
    let loser = &passwords[(winners[0] + 1) % 20];
    assert_eq!(
        app.login_with(&sesame_tests::browser(), &login, winner, false)
            .await
            .status(),
        303
    );
    assert_eq!(
        app.login_with(&sesame_tests::browser(), &login, loser, false)
            .await
            .status(),
        401
    );
}

/// At the verify step: types the codes sent to the contacts, and expects the next step.
pub async fn confirm_codes(app: &TestApp, client: &reqwest::Client) {
    let (_, page) = get(client, format!("{}/activation/step", app.address)).await;
    assert_eq!(
        input_value(&page, "step").as_deref(),
        Some("verify"),
        "{page}"
    );
    let mut form: Vec<(String, String)> = vec![("step".into(), "verify".into())];
    form.extend(verify_form(app, &page, None).await);
    let res = client
        .post(format!("{}/activation/step", app.address))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the codes are accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_cannot_be_skipped_or_replayed() {
    let app = activation_app().await;
    let (login, code) = pupil_with_code(&app).await;
    let (client, jar) = browser_with_jar();
    assert_eq!(post_code(&app, &client, &login, &code).await.status(), 303);
    // Jumping to the password step is not applied: back to the current step.
    let res = client
        .post(format!("{}/activation/step", app.address))
        .form(&[
            ("step", "password"),
            ("password", GOOD_PASSWORD),
            ("password_confirm", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(state_of(&app, &login).await, AccountState::Provisioned);
    let (_, page) = get(&client, format!("{}/activation/step", app.address)).await;
    assert_eq!(input_value(&page, "step").as_deref(), Some("charter"));

    // Replaying a step with the flow id it was posted with finds nothing.
    let old_cookie = format!(
        "{}={}",
        sesame_server::routes::activation::FLOW_COOKIE,
        flow_cookie_of(&app, &jar)
    );
    let res = client
        .post(format!("{}/activation/step", app.address))
        .form(&[("step", "charter"), ("accept", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/activation/step", app.address))
        .header("cookie", old_cookie)
        .form(&[("step", "charter"), ("accept", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
}

/// A browser whose cookie jar the test can read.
fn browser_with_jar() -> (reqwest::Client, Arc<reqwest::cookie::Jar>) {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(Arc::clone(&jar))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    (client, jar)
}

/// The flow id the browser currently holds.
fn flow_cookie_of(app: &TestApp, jar: &reqwest::cookie::Jar) -> String {
    use reqwest::cookie::CookieStore;
    let url: url::Url = format!("{}/activation/step", app.address).parse().unwrap();
    let header = jar.cookies(&url).unwrap();
    let prefix = format!("{}=", sesame_server::routes::activation::FLOW_COOKIE);
    header
        .to_str()
        .unwrap()
        .split("; ")
        .find_map(|c| c.strip_prefix(prefix.as_str()))
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_charter_version_bump_must_be_accepted_at_the_next_login() {
    let app = activation_app().await;
    let login = sesame_tests::unique_login("charter");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    // The person accepted the previous version.
    app.services
        .profiles
        .update_account(
            account.id,
            &AccountChanges {
                charter: Some(CharterAcceptance {
                    version: "2025-09".to_owned(),
                    accepted_at: app.clock.now(),
                }),
                ..AccountChanges::default()
            },
            app.clock.now(),
        )
        .await
        .unwrap();
    let client = sesame_tests::browser();
    let service = format!("{SERVICE}index.php");
    let enc: String = url::form_urlencoded::byte_serialize(service.as_bytes()).collect();
    let (_, page) = get(&client, format!("{}/cas/login?service={enc}", app.address)).await;
    let lt = sesame_tests::extract_lt(&page).unwrap();
    let res = client
        .post(format!("{}/cas/login?service={enc}", app.address))
        .form(&[
            ("lt", lt.as_str()),
            ("username", login.as_str()),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).ends_with("/charter"), "{}", location(&res));
    // No SSO session yet: going straight to the service asks for the password again.
    let (_, page) = get(&client, format!("{}/cas/login?service={enc}", app.address)).await;
    assert!(
        sesame_tests::extract_lt(&page).is_some(),
        "no ticket without the charter"
    );

    let (status, page) = get(&client, format!("{}/charter", app.address)).await;
    assert_eq!(status, 200);
    assert!(page.contains(CHARTER));
    let res = client
        .post(format!("{}/charter", app.address))
        .form(&[("lang", "fr")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "the box must be ticked");
    let res = client
        .post(format!("{}/charter", app.address))
        .form(&[("accept", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(validate_ticket_of(&app, &location(&res), &enc).await, login);
    assert!(app
        .audit_kinds(&login)
        .await
        .iter()
        .any(|k| k == "account.charter_accepted"));

    // Accepted: the next login goes straight to the service.
    let user = cas_login_and_validate(&app, &sesame_tests::browser(), &login).await;
    assert_eq!(user, login);
}

/// An unblocked account whose charter is also out of date: the old password reaches neither
/// the charter nor the service; once a new password is set (here with a helpdesk code), the
/// login goes through the charter, then to the service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_unblock_with_a_new_charter_a_new_password_first_then_the_charter_then_the_service(
) {
    const NEW_PASSWORD: &str = "seven lanterns over the quiet canal";
    let app = activation_app().await;
    let login = sesame_tests::unique_login("unblockcharter");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let desk = &app.services.helpdesk.desk;
    desk.block(
        &account.login,
        sesame_core::helpdesk::BlockReason::Other,
        None,
        "test",
    )
    .await
    .unwrap();
    desk.unblock(&account.login, "test").await.unwrap();

    let service = format!("{SERVICE}index.php");
    let enc: String = url::form_urlencoded::byte_serialize(service.as_bytes()).collect();
    let login_for_service = |password: &'static str| {
        let app = &app;
        let enc = enc.clone();
        let login = login.clone();
        async move {
            let client = sesame_tests::browser();
            let (_, page) = get(&client, format!("{}/cas/login?service={enc}", app.address)).await;
            let lt = sesame_tests::extract_lt(&page).unwrap();
            let res = client
                .post(format!("{}/cas/login?service={enc}", app.address))
                .form(&[
                    ("lt", lt.as_str()),
                    ("username", login.as_str()),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap();
            (client, res)
        }
    };
    let (client, res) = login_for_service(GOOD_PASSWORD).await;
    assert_eq!(res.status(), 403);
    // Nothing was parked: the charter page has no login to act on.
    let (status, _) = get(&client, format!("{}/charter", app.address)).await;
    assert_eq!(status, 403);

    let issued = app
        .services
        .recovery
        .issue_helpdesk_code(&account.login, "test")
        .await
        .unwrap();
    let res = crate::helpdesk::send_helpdesk_code(&app, &client, &login, &issued.code).await;
    assert_eq!(res.status(), 200);
    let token = sesame_tests::oidc::hidden_field(&res.text().await.unwrap(), "token").unwrap();
    let res = client
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

    let (client, res) = login_for_service(NEW_PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert!(location(&res).ends_with("/charter"), "{}", location(&res));
    // Still no SSO session before the charter.
    let (_, page) = get(&client, format!("{}/cas/login?service={enc}", app.address)).await;
    assert!(sesame_tests::extract_lt(&page).is_some(), "no ticket yet");
    let (status, page) = get(&client, format!("{}/charter", app.address)).await;
    assert_eq!(status, 200);
    assert!(page.contains(CHARTER));
    let res = client
        .post(format!("{}/charter", app.address))
        .form(&[("accept", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(validate_ticket_of(&app, &location(&res), &enc).await, login);
    // Used up: the charter page is gone too.
    let (status, _) = get(&client, format!("{}/charter", app.address)).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_codes_command_prints_csv_for_a_mail_merge() {
    let app = activation_app().await;
    let family = unique_name();
    let hr_a = unique_hr_id();
    let a = import_person(&app, &format!("{hr_a},Léa,{family},03-03-2012,pupil,,")).await;
    let b = import_person(
        &app,
        &format!("{},Tom,{family},04-04-2012,pupil,,", unique_hr_id()),
    )
    .await;
    let staff = import_person(
        &app,
        &format!("{},Eve,{family},04-04-1980,staff,,", unique_hr_id()),
    )
    .await;
    let cli = Cli::for_app(&app);

    let out = cli.run(
        &[
            "activation-codes",
            "--affiliation",
            "pupil",
            "--login",
            &a,
            "--login",
            &b,
            "--format",
            "csv",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("login,name,code,expires"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    assert_eq!(rows[0][0], a);
    assert_eq!(rows[0][1], format!("Léa {family}"));
    // The printed code activates (and is stored only hashed).
    let code = rows[0][2].to_owned();
    let res = post_code(&app, &sesame_tests::browser(), &a, &code).await;
    assert_eq!(res.status(), 303);

    // Someone of another affiliation is refused by name; the command fails.
    let out = cli.run(
        &[
            "activation-codes",
            "--affiliation",
            "pupil",
            "--login",
            &staff,
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(text(&out).contains(&staff), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sesame_import_queues_the_activation_link_of_new_people() {
    let app = activation_app().await;
    let cli = Cli::for_app(&app);
    let config = std::fs::read_to_string(&cli.config).unwrap();
    std::fs::write(
        &cli.config,
        format!(
            "{config}\n[server]\npublic_url = \"{}\"\n\n[lifecycle]\nemail_pattern = \"{{login}}@univ.example.org\"\n",
            app.address
        ),
    )
    .unwrap();
    let family = unique_name();
    let recovery = format!("{}@perso.example.com", family.to_lowercase());
    let file = std::env::temp_dir().join(format!(
        "sesame-activation-{}.csv",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::write(
        &file,
        format!(
            "hr_id,given_name,family_name,affiliation,recovery_email\n{},Paul,{family},staff,{recovery}\n{},Eva,{family},pupil,\n",
            unique_hr_id(),
            unique_hr_id()
        ),
    )
    .unwrap();
    let out = cli.run(&["import", file.to_str().unwrap()], None);
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("activation links queued: 1"),
        "{}",
        text(&out)
    );
    // The server's mail worker sends it (once the test clock has caught up with the
    // command's real one); the link activates.
    app.clock.advance(Duration::seconds(60));
    let mails = app.mails_to(&recovery).await;
    assert_eq!(mails.len(), 1);
    let link = mails[0].link_to(&format!("{}/activation/link", app.address));
    let browser = sesame_tests::browser();
    assert_eq!(follow_link(&browser, &link).await.status(), 303);
    let (status, done) = complete_steps(&app, &browser, None).await;
    assert_eq!(status, 200, "{done}");
}

/// How many audit events of `kind` the login has.
async fn count_kind(app: &TestApp, login: &str, kind: &str) -> usize {
    app.audit_kinds(login)
        .await
        .iter()
        .filter(|k| *k == kind)
        .count()
}

/// Goes on with an activation in progress (of an account without mailbox) from `from`
/// (`charter`, `directory`, `contacts` or `password`) to the end; returns the last answer.
async fn complete_steps_from(
    app: &TestApp,
    client: &reqwest::Client,
    from: &str,
    password: &str,
) -> (reqwest::StatusCode, String) {
    let steps = [
        vec![("step", "charter"), ("accept", "true")],
        vec![("step", "directory"), ("opt_in", "false")],
        vec![
            ("step", "contacts"),
            ("recovery_email", "p@perso.example.com"),
            ("mobile", ""),
        ],
        vec![
            ("step", "password"),
            ("password", password),
            ("password_confirm", password),
        ],
    ];
    let start = steps.iter().position(|f| f[0].1 == from).unwrap();
    for form in &steps[start..] {
        let res = client
            .post(format!("{}/activation/step", app.address))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = res.status();
        if form[0].1 == "password" || status != 303 {
            return (status, unescaped(&res.text().await.unwrap()));
        }
        if form[0].1 == "contacts" {
            // A recovery address typed here is proven by a code before the password step.
            let (_, page) = get(client, format!("{}/activation/step", app.address)).await;
            if input_value(&page, "step").as_deref() == Some("verify") {
                confirm_codes(app, client).await;
            }
        }
    }
    unreachable!("the password step returns")
}

/// Posts the identity form at `path` as `client`, through a trusted proxy that says the
/// client's address is `from`.
async fn post_identity_from(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    who: &Identity<'_>,
    from: &str,
) -> reqwest::Response {
    let (status, page) = get(client, format!("{}{path}", app.address)).await;
    assert_eq!(status, 200, "{page}");
    let challenge_id = input_value(&page, "challenge_id").unwrap();
    let prefix = data_attr(&page, "data-pow-prefix");
    let bits: u32 = data_attr(&page, "data-pow-bits").parse().unwrap();
    let nonce = challenge::solve(&prefix, bits);
    client
        .post(format!("{}{path}", app.address))
        .header("X-Forwarded-For", from)
        .form(&[
            ("hr_id", who.hr_id),
            ("national_id", who.national_id),
            ("birth_date", who.birth_date),
            ("email", who.email),
            ("email_confirm", who.email),
            ("challenge_id", challenge_id.as_str()),
            ("pow_nonce", nonce.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a47_the_identity_check_cannot_be_blocked_for_the_real_person_from_another_address() {
    let app = activation_builder()
        .with(|s| s.server.trusted_proxies = vec!["127.0.0.1".to_owned()])
        .spawn()
        .await;
    let hr_id = unique_hr_id();
    import_person(
        &app,
        &format!("{hr_id},Nadia,{},12-04-1985,staff,,", unique_name()),
    )
    .await;
    let right = Identity {
        hr_id: &hr_id,
        national_id: "",
        birth_date: "12-04-1985",
        email: "nadia@perso.example.com",
    };
    let wrong = Identity {
        birth_date: "01-01-1980",
        ..right
    };
    // Someone who knows the HR number tries until refused, then goes on.
    let attacker = sesame_tests::browser();
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let res = post_identity_from(
            &app,
            &attacker,
            "/activation/identity",
            &wrong,
            "203.0.113.66",
        )
        .await;
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [400, 400, 400, 400, 400, 429, 429, 429]);
    // The attacker's own address stays refused, even with the right answers...
    let res = post_identity_from(
        &app,
        &attacker,
        "/activation/identity",
        &right,
        "203.0.113.66",
    )
    .await;
    assert_eq!(res.status(), 429);
    // ...but the person, from home, activates.
    let person = sesame_tests::browser();
    let res = post_identity_from(
        &app,
        &person,
        "/activation/identity",
        &right,
        "198.51.100.7",
    )
    .await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a47_wrong_tries_from_many_addresses_together_reach_the_identifiers_daily_ceiling() {
    let app = activation_builder()
        .with(|s| {
            s.server.trusted_proxies = vec!["127.0.0.1".to_owned()];
            s.lifecycle.activation.max_failures_per_identifier = 3;
            s.lifecycle
                .activation
                .max_daily_failures_per_identifier_and_address = 3;
            s.lifecycle.activation.max_daily_failures_per_identifier = 6;
        })
        .spawn()
        .await;
    let hr_id = unique_hr_id();
    import_person(
        &app,
        &format!("{hr_id},Omar,{},02-02-1990,staff,,", unique_name()),
    )
    .await;
    let right = Identity {
        hr_id: &hr_id,
        national_id: "",
        birth_date: "02-02-1990",
        email: "omar@perso.example.com",
    };
    let client = sesame_tests::browser();
    for (i, birth_date) in ["01-01-1990", "03-03-1990", "04-04-1990"]
        .iter()
        .enumerate()
    {
        for from in ["192.0.2.1", "192.0.2.2"] {
            let guess = Identity {
                birth_date,
                ..right
            };
            let res = post_identity_from(&app, &client, "/activation/identity", &guess, from).await;
            assert_eq!(res.status(), 400, "guess {i} from {from}");
        }
    }
    // Six wrong tries from two addresses: the identifier is refused to every address for the
    // rest of the day, so distributed guessing stays bounded.
    let res = post_identity_from(&app, &client, "/activation/identity", &right, "192.0.2.3").await;
    assert_eq!(res.status(), 429);
    app.clock
        .advance(Duration::hours(24) + Duration::seconds(1));
    let res = post_identity_from(&app, &client, "/activation/identity", &right, "192.0.2.3").await;
    assert_eq!(res.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_check_and_forgotten_login_errors_link_to_help() {
    for helpdesk in ["", "https://assistance.univ.example.org/"] {
        let app = activation_builder()
            .with(move |s| s.ui.helpdesk_url = helpdesk.to_owned())
            .spawn()
            .await;
        let help = if helpdesk.is_empty() {
            "/assistance"
        } else {
            helpdesk
        };
        let nobody = Identity {
            hr_id: "E000NOBODY",
            national_id: "",
            birth_date: "01-01-1990",
            email: "x@perso.example.com",
        };
        for path in ["/activation/identity", "/forgot-login"] {
            let res = post_identity(&app, &sesame_tests::browser(), path, &nobody).await;
            assert_eq!(res.status(), 400);
            let page = unescaped(&res.text().await.unwrap());
            assert!(page.contains(MISMATCH_FR), "{page}");
            assert!(
                page.contains(&format!("href=\"{help}\" id=\"help-link\"")),
                "{path}: {page}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_replaced_while_its_activation_goes_on_says_to_ask_the_school_for_a_new_one() {
    let app = activation_app().await;
    let (login, code) = pupil_with_code(&app).await;
    let client = sesame_tests::browser();
    assert_eq!(post_code(&app, &client, &login, &code).await.status(), 303);
    // Meanwhile the school hands out a new code: the old one is dead.
    let (_, new_code, _) = app
        .services
        .activation
        .issue_code(&LoginName::parse(&login).unwrap(), "test")
        .await
        .unwrap();
    let (status, page) = complete_steps_from(&app, &client, "charter", GOOD_PASSWORD).await;
    assert_eq!(status, 400, "{page}");
    assert!(
        page.contains("Demandez un nouveau code à votre établissement."),
        "{page}"
    );
    assert!(page.contains("href=\"/activation/code\""), "{page}");
    assert_eq!(state_of(&app, &login).await, AccountState::Provisioned);
    // The new code activates.
    let client = sesame_tests::browser();
    assert_eq!(
        post_code(&app, &client, &login, &new_code).await.status(),
        303
    );
    let (status, _) = complete_steps_from(&app, &client, "charter", GOOD_PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(state_of(&app, &login).await, AccountState::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activation_code_typed_as_the_password_goes_on_to_the_activation_and_counts_no_failure()
{
    let app = activation_app().await;
    let (login, code) = pupil_with_code(&app).await;
    // More times than the lockout threshold: none of them counts as a failure.
    for _ in 0..6 {
        let client = sesame_tests::browser();
        let res = app.login_with(&client, &login, &code, false).await;
        assert_eq!(res.status(), 303);
        assert!(
            location(&res).ends_with("/activation/step"),
            "{}",
            location(&res)
        );
        let (status, page) = get(&client, format!("{}/activation/step", app.address)).await;
        assert_eq!(status, 200);
        assert_eq!(
            input_value(&page, "step").as_deref(),
            Some("charter"),
            "{page}"
        );
    }
    let kinds = app.audit_kinds(&login).await;
    assert_eq!(count_kind(&app, &login, "login.activation_code").await, 6);
    assert!(
        !kinds
            .iter()
            .any(|k| k == "login.failed" || k == "login.locked"),
        "{kinds:?}"
    );
    // The last browser completes the activation, as the ENT 77 guide goes on.
    let client = sesame_tests::browser();
    app.login_with(&client, &login, &code.to_lowercase(), false)
        .await;
    let (status, _) = complete_steps_from(&app, &client, "charter", GOOD_PASSWORD).await;
    assert_eq!(status, 200);
    assert_eq!(state_of(&app, &login).await, AccountState::Active);
    // The code is used up: typed again, it is a wrong password like any other.
    let res = app
        .login_with(&sesame_tests::browser(), &login, &code, false)
        .await;
    assert_eq!(res.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_of_an_account_awaiting_activation_answers_like_any_wrong_password() {
    let app = activation_app().await;
    let (login, _code) = pupil_with_code(&app).await;
    let nobody = format!("nobody.{}", unique_name().to_lowercase());
    let mut pages = Vec::new();
    for who in [login.as_str(), nobody.as_str()] {
        let res = app
            .login_with(&sesame_tests::browser(), who, "AAAAA-BBBBB", false)
            .await;
        assert_eq!(res.status(), 401);
        let page = res.text().await.unwrap();
        let lt = sesame_tests::extract_lt(&page).unwrap();
        pages.push(page.replace(&lt, "LT").replace(who, "WHO"));
    }
    assert_eq!(pages[0], pages[1]);
    assert!(
        unescaped(&pages[0]).contains("Première connexion ? Activer mon compte"),
        "{}",
        pages[0]
    );
    assert_eq!(count_kind(&app, &login, "login.failed").await, 1);
}
