//! What happens around an activation, end to end (issue 13, points 6, 7, 13 and 14): the
//! contacts typed during it are proven by codes before it completes, and can be verified
//! later from the account page and the helpdesk console; no field is pre-filled with
//! `None`; the person is logged in at the end; a person back in an HR file gets a new
//! activation mail, the import names who got none; and the helpdesk's unblock and closing
//! of a request are mailed to the person.

use reqwest::StatusCode;
use sesame_core::account::{AccountChanges, AccountState, Contact};
use sesame_core::api_keys::ApiScope;
use sesame_core::clock::Clock;
use sesame_core::i18n::Lang;
use sesame_core::ids::{Email, LoginName, MobilePhone};
use sesame_lifecycle::import::read::Format;
use sesame_lifecycle::import::ImportOptions;
use sesame_tests::oidc::hidden_field;
use sesame_tests::{browser, unique_login, TestApp, GOOD_PASSWORD};

use crate::activation::{
    activation_app, complete_steps, confirm_codes, follow_link, get, import_person, input_value,
    location, mailed_code, post_code, post_identity, pupil_with_code, shown_login, state_of,
    unescaped, unique_hr_id, unique_name, validate_ticket_of, Identity, SERVICE,
};
use crate::cli::{text, Cli};
use crate::recovery::{ask_reset, is_logged_in, nth_sms_code, reset_links, with_sms_outbox};

/// Posts one activation step with the browser's flow.
async fn post_step(
    app: &TestApp,
    client: &reqwest::Client,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let res = client
        .post(format!("{}/activation/step", app.address))
        .form(form)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// The current step's page and its name.
async fn current_step(app: &TestApp, client: &reqwest::Client) -> (String, String) {
    let (status, page) = get(client, format!("{}/activation/step", app.address)).await;
    assert_eq!(status, 200, "{page}");
    (input_value(&page, "step").unwrap_or_default(), page)
}

/// A wrong code that differs from `right` (its last digit moved by one).
fn wrong_code(right: &str) -> String {
    let mut digits: Vec<u8> = right.bytes().collect();
    if let Some(last) = digits.last_mut() {
        *last = b'0' + (*last - b'0' + 1) % 10;
    }
    String::from_utf8(digits).unwrap()
}

async fn profile_of(app: &TestApp, login: &str) -> sesame_core::account::AccountProfile {
    let account = app
        .services
        .accounts
        .get(&LoginName::parse(login).unwrap())
        .await
        .unwrap();
    app.services
        .profiles
        .find_with_profile(account.id)
        .await
        .unwrap()
        .unwrap()
        .profile
}

async fn audited(app: &TestApp, login: &str, kind: &str, actor: &str) -> bool {
    app.services
        .audit
        .recent(Some(login), 200)
        .await
        .unwrap()
        .iter()
        .any(|e| e.kind == kind && e.actor == actor)
}

// --- point 6: contacts proven during the activation ------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_typed_at_an_identity_activation_are_proven_by_codes_so_a_forgotten_password_reaches_them(
) {
    let app = activation_app().await;
    let hr_id = unique_hr_id();
    let login = import_person(
        &app,
        &format!("{hr_id},Karim,{},20-10-1970,staff,BK123456,", unique_name()),
    )
    .await;
    let personal = format!("{}@perso.example.com", login.replace('.', "-"));
    let client = browser();
    let res = post_identity(
        &app,
        &client,
        "/activation/identity",
        &Identity {
            hr_id: &hr_id,
            national_id: "BK123456",
            birth_date: "20-10-1970",
            email: &personal,
        },
    )
    .await;
    assert_eq!(res.status(), 303);
    for form in [
        vec![("step", "charter"), ("accept", "true")],
        vec![("step", "directory"), ("opt_in", "false")],
        vec![
            ("step", "contacts"),
            ("recovery_email", personal.as_str()),
            ("mobile", "06 98 76 54 32"),
        ],
    ] {
        assert_eq!(post_step(&app, &client, &form).await.0, 303, "{form:?}");
    }
    // Codes went to both contacts; the activation waits for them.
    let (step, page) = current_step(&app, &client).await;
    assert_eq!(step, "verify", "{page}");
    let page = unescaped(&page).replace("&#x40;", "@");
    assert!(page.contains(&personal), "{page}");
    assert!(page.contains("0698765432"), "{page}");
    let email_code = mailed_code(&app, &personal).await;
    let sms_code = nth_sms_code(&app, "0698765432", 1).await;
    // The password step cannot be reached before them.
    let (status, _) = post_step(
        &app,
        &client,
        &[
            ("step", "password"),
            ("password", GOOD_PASSWORD),
            ("password_confirm", GOOD_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(current_step(&app, &client).await.0, "verify");
    assert_eq!(state_of(&app, &login).await, AccountState::Provisioned);
    // A wrong code is refused, beside its field; the right one of the other contact is kept.
    let (status, page) = post_step(
        &app,
        &client,
        &[
            ("step", "verify"),
            ("email_code", &wrong_code(&email_code)),
            ("mobile_code", &sms_code),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(page.contains("id=\"email-code-error\""), "{page}");
    assert!(
        !page.contains("name=\"mobile_code\""),
        "the mobile is proven"
    );
    let (status, _) = post_step(
        &app,
        &client,
        &[("step", "verify"), ("email_code", &email_code)],
    )
    .await;
    assert_eq!(status, 303);
    // Montpellier: the recovery address is proposed as the redirect, not applied unticked.
    let (step, page) = current_step(&app, &client).await;
    assert_eq!(step, "redirect");
    assert_eq!(
        input_value(&page, "redirect").as_deref(),
        Some(personal.as_str())
    );
    assert!(!page.contains("name=\"forward\" type=\"checkbox\" value=\"true\" checked"));
    assert_eq!(
        post_step(
            &app,
            &client,
            &[("step", "redirect"), ("redirect", &personal)]
        )
        .await
        .0,
        303
    );
    let (status, done) = post_step(
        &app,
        &client,
        &[
            ("step", "password"),
            ("password", GOOD_PASSWORD),
            ("password_confirm", GOOD_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(shown_login(&done).as_deref(), Some(login.as_str()));

    let profile = profile_of(&app, &login).await;
    let recovery = profile.recovery_email.unwrap();
    assert_eq!(recovery.address.as_str(), personal);
    assert!(recovery.verified, "proven by its code");
    let mobile = profile.mobile.unwrap();
    assert!(mobile.verified, "proven by its code");
    assert!(profile.mail_redirect.is_none(), "the box was not ticked");
    assert!(audited(&app, &login, "account.contact_verified", "self").await);

    // The forgotten-password page now sends its link, and its SMS.
    let (status, _) = ask_reset(&app, &browser(), &login, "mail").await;
    assert_eq!(status, 200);
    assert_eq!(reset_links(&app, &personal).await.len(), 1);
    let (status, _) = ask_reset(&app, &browser(), &login, "sms").await;
    assert_eq!(status, 200);
    nth_sms_code(&app, "0698765432", 2).await;
    // And the helpdesk's reset link goes out instead of answering 409.
    let sent = sesame_server::operations::send_reset_link(
        &app.services,
        &app.address,
        &LoginName::parse(&login).unwrap(),
        "test",
    )
    .await
    .unwrap();
    assert_eq!(sent.as_str(), personal);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_activation_goes_back_to_fix_a_mistyped_address_and_asks_for_new_codes() {
    let app = activation_app().await;
    let (login, code) = pupil_with_code(&app).await;
    let client = browser();
    assert_eq!(post_code(&app, &client, &login, &code).await.status(), 303);
    let typo = format!("{}@perso.exemple.com", login.replace('.', "-"));
    let right = format!("{}@perso.example.com", login.replace('.', "-"));
    for form in [
        vec![("step", "charter"), ("accept", "true")],
        vec![("step", "directory"), ("opt_in", "false")],
        vec![
            ("step", "contacts"),
            ("recovery_email", typo.as_str()),
            ("mobile", ""),
        ],
    ] {
        assert_eq!(post_step(&app, &client, &form).await.0, 303, "{form:?}");
    }
    let (step, page) = current_step(&app, &client).await;
    assert_eq!(step, "verify");
    assert!(page.contains("name=\"email_code\""));
    assert!(!page.contains("name=\"mobile_code\""), "no mobile given");
    let typo_code = mailed_code(&app, &typo).await;

    // "Change my contact details" goes back to the contacts step.
    assert_eq!(
        post_step(&app, &client, &[("step", "verify"), ("action", "change")])
            .await
            .0,
        303
    );
    assert_eq!(current_step(&app, &client).await.0, "contacts");
    assert_eq!(
        post_step(
            &app,
            &client,
            &[
                ("step", "contacts"),
                ("recovery_email", right.as_str()),
                ("mobile", ""),
            ],
        )
        .await
        .0,
        303
    );
    // The code of the mistyped address proves nothing about the new one.
    let (status, _) = post_step(
        &app,
        &client,
        &[("step", "verify"), ("email_code", &typo_code)],
    )
    .await;
    assert_eq!(status, 400);
    // New codes on request: the earlier one no longer works.
    let first = mailed_code(&app, &right).await;
    let (status, page) =
        post_step(&app, &client, &[("step", "verify"), ("action", "resend")]).await;
    assert_eq!(status, 200);
    assert!(page.contains("id=\"form-notice\""), "{page}");
    assert_eq!(app.mails_to(&right).await.len(), 2);
    let second = mailed_code(&app, &right).await;
    if first != second {
        let (status, _) =
            post_step(&app, &client, &[("step", "verify"), ("email_code", &first)]).await;
        assert_eq!(status, 400, "the earlier code");
    }
    // Wrong tries use the code up: then even the right one must be asked for again.
    for _ in 0..4 {
        let (status, _) = post_step(
            &app,
            &client,
            &[("step", "verify"), ("email_code", &wrong_code(&second))],
        )
        .await;
        assert_eq!(status, 400);
    }
    let (status, page) = post_step(
        &app,
        &client,
        &[("step", "verify"), ("email_code", &second)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(unescaped(&page).contains("plus valable"), "{page}");
    assert_eq!(
        post_step(&app, &client, &[("step", "verify"), ("action", "resend")])
            .await
            .0,
        200
    );
    confirm_codes(&app, &client).await;
    let (status, done) = post_step(
        &app,
        &client,
        &[
            ("step", "password"),
            ("password", GOOD_PASSWORD),
            ("password_confirm", GOOD_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, 200, "{done}");
    let recovery = profile_of(&app, &login).await.recovery_email.unwrap();
    assert_eq!(recovery.address.as_str(), right);
    assert!(recovery.verified);
}

/// Gives an account an unverified recovery address and mobile, as an import does.
async fn unverified_contacts(app: &TestApp, login: &str) -> (String, String) {
    let account = app
        .services
        .accounts
        .get(&LoginName::parse(login).unwrap())
        .await
        .unwrap();
    let address = format!("{}@perso.example.com", login.replace('.', "-"));
    let number = format!("+336{}", sesame_core::random::digits(8));
    app.services
        .profiles
        .update_account(
            account.id,
            &AccountChanges {
                recovery_email: Some(Some(Contact::unverified(Email::parse(&address).unwrap()))),
                mobile: Some(Some(Contact::unverified(
                    MobilePhone::parse(&number).unwrap(),
                ))),
                ..AccountChanges::default()
            },
            app.clock.now(),
        )
        .await
        .unwrap();
    (address, number)
}

async fn account_page(app: &TestApp, client: &reqwest::Client) -> String {
    let (status, page) = get(client, format!("{}/account", app.address)).await;
    assert_eq!(status, 200, "{page}");
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_page_verifies_an_unverified_recovery_address_and_mobile() {
    let app = with_sms_outbox(TestApp::builder()).spawn().await;
    let login = unique_login("verifyme");
    app.create_user(&login, GOOD_PASSWORD).await;
    let (address, number) = unverified_contacts(&app, &login).await;
    let client = browser();
    assert_eq!(
        app.login_with(&client, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
    let page = account_page(&app, &client).await;
    assert!(page.contains("id=\"verify-recovery-email\""), "{page}");
    assert!(page.contains("id=\"verify-mobile\""), "{page}");
    let csrf = hidden_field(&page, "csrf").unwrap();

    // The address: a link to it, which verifies it when opened (no session needed).
    let res = client
        .post(format!(
            "{}/account/recovery-email/verification",
            app.address
        ))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("id=\"account-notice\""));
    let mails = app.mails_to(&address).await;
    assert_eq!(mails.len(), 1);
    let link = mails[0].link_to(&format!("{}/account/verify", app.address));
    let (shown, status, _) = crate::account_page::follow_verify_link(&link).await;
    assert_eq!((shown, status), (StatusCode::OK, StatusCode::OK));
    assert!(
        profile_of(&app, &login)
            .await
            .recovery_email
            .unwrap()
            .verified
    );
    assert!(audited(&app, &login, "account.contact_verification_sent", "self").await);

    // The mobile: a code by SMS, typed on the code form.
    let res = client
        .post(format!("{}/account/mobile/verification", app.address))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let form = res.text().await.unwrap();
    let request_id = hidden_field(&form, "request_id").expect("the code form");
    let code = nth_sms_code(&app, &number, 1).await;
    let res = client
        .post(format!("{}/account/mobile/verify", app.address))
        .form(&[
            ("csrf", csrf.as_str()),
            ("request_id", request_id.as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(profile_of(&app, &login).await.mobile.unwrap().verified);

    // Nothing left to verify: no button.
    let page = account_page(&app, &client).await;
    assert!(!page.contains("id=\"verify-recovery-email\""));
    assert!(!page.contains("id=\"verify-mobile\""));
    // Another site cannot press the button.
    let res = client
        .post(format!(
            "{}/account/recovery-email/verification",
            app.address
        ))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

/// An app whose helpdesk agent is a new account, and a browser logged in as it.
async fn console_app() -> (TestApp, String, reqwest::Client) {
    let agent = unique_login("agent");
    let configured = agent.clone();
    let app = with_sms_outbox(TestApp::builder())
        .with(move |s| s.helpdesk.agents = vec![configured])
        .spawn()
        .await;
    app.create_user(&agent, GOOD_PASSWORD).await;
    let client = browser();
    let res = app.login_with(&client, &agent, GOOD_PASSWORD, false).await;
    assert_eq!(res.status(), 303);
    (app, agent, client)
}

/// Posts a console form with the token of the page at `form_page`.
async fn console_post(
    app: &TestApp,
    client: &reqwest::Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let (status, page) = get(client, format!("{}{form_page}", app.address)).await;
    assert_eq!(status, 200, "{page}");
    let csrf = hidden_field(&page, "csrf").unwrap();
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let res = client
        .post(format!("{}{action}", app.address))
        .form(&form)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helpdesk_console_sends_the_link_that_verifies_a_recovery_address_then_a_reset_link_goes_out(
) {
    let (app, agent, console) = console_app().await;
    let login = unique_login("unverified");
    app.create_user(&login, GOOD_PASSWORD).await;
    let (address, _) = unverified_contacts(&app, &login).await;
    let account_path = format!("/helpdesk/accounts/{login}");
    // Unverified: the reset link is refused, and the console offers the verification.
    let (status, _) = console_post(
        &app,
        &console,
        &account_path,
        &format!("{account_path}/reset-link"),
        &[],
    )
    .await;
    assert_eq!(status, 409);
    let (_, page) = get(&console, format!("{}{account_path}", app.address)).await;
    assert!(page.contains("id=\"recovery-verification\""), "{page}");
    let (status, page) = console_post(
        &app,
        &console,
        &account_path,
        &format!("{account_path}/recovery-verification"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"console-notice\""), "{page}");
    assert!(
        audited(
            &app,
            &login,
            "account.contact_verification_sent",
            &format!("helpdesk:{agent}")
        )
        .await
    );
    let mails = app.mails_to(&address).await;
    assert_eq!(mails.len(), 1);
    let (shown, status, _) = crate::account_page::follow_verify_link(
        &mails[0].link_to(&format!("{}/account/verify", app.address)),
    )
    .await;
    assert_eq!((shown, status), (StatusCode::OK, StatusCode::OK));
    // Verified: nothing more to send, and the reset link goes out.
    let (status, _) = console_post(
        &app,
        &console,
        &account_path,
        &format!("{account_path}/recovery-verification"),
        &[],
    )
    .await;
    assert_eq!(status, 409);
    let (status, _) = console_post(
        &app,
        &console,
        &account_path,
        &format!("{account_path}/reset-link"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reset_links(&app, &address).await.len(), 1);
}

// --- point 7: no `None` in a field ------------------------------------------------------

fn assert_no_none(page: &str, what: &str) {
    assert!(
        !page.contains("value=\"None\"") && !page.contains("value=\"none\""),
        "{what}: {page}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_activation_or_account_page_prefills_a_field_with_none() {
    let app = activation_app().await;
    // A pupil imported without any contact: the contacts step is empty, not `None`.
    let (login, code) = pupil_with_code(&app).await;
    let client = browser();
    assert_eq!(post_code(&app, &client, &login, &code).await.status(), 303);
    for form in [
        vec![("step", "charter"), ("accept", "true")],
        vec![("step", "directory"), ("opt_in", "false")],
    ] {
        assert_eq!(post_step(&app, &client, &form).await.0, 303);
    }
    let (step, page) = current_step(&app, &client).await;
    assert_eq!(step, "contacts");
    assert_eq!(input_value(&page, "recovery_email").as_deref(), Some(""));
    assert_eq!(input_value(&page, "mobile").as_deref(), Some(""));
    assert_no_none(&page, "contacts step");
    // Sent as shown, the empty mobile is accepted (only the address is required).
    let address = format!("{}@perso.example.com", login.replace('.', "-"));
    let (status, _) = post_step(
        &app,
        &client,
        &[
            ("step", "contacts"),
            ("recovery_email", address.as_str()),
            ("mobile", input_value(&page, "mobile").unwrap().as_str()),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, page) = current_step(&app, &client).await;
    assert_no_none(&page, "verify step");

    // A staff member imported without contacts, by the identity check: the redirect step
    // proposes the address typed, never `None`.
    let hr_id = unique_hr_id();
    let staff = import_person(
        &app,
        &format!("{hr_id},Nina,{},01-01-1990,staff,,", unique_name()),
    )
    .await;
    let personal = format!("{}@perso.example.com", staff.replace('.', "-"));
    let client = browser();
    let res = post_identity(
        &app,
        &client,
        "/activation/identity",
        &Identity {
            hr_id: &hr_id,
            national_id: "",
            birth_date: "01-01-1990",
            email: &personal,
        },
    )
    .await;
    assert_eq!(res.status(), 303);
    for form in [
        vec![("step", "charter"), ("accept", "true")],
        vec![("step", "directory"), ("opt_in", "false")],
        vec![
            ("step", "contacts"),
            ("recovery_email", personal.as_str()),
            ("mobile", ""),
        ],
    ] {
        assert_eq!(post_step(&app, &client, &form).await.0, 303);
    }
    confirm_codes(&app, &client).await;
    let (step, page) = current_step(&app, &client).await;
    assert_eq!(step, "redirect");
    assert_eq!(
        input_value(&page, "redirect").as_deref(),
        Some(personal.as_str())
    );
    assert_no_none(&page, "redirect step");

    // The account page of someone with no contact and no redirect (an app without a
    // charter to accept first).
    let app = TestApp::spawn().await;
    let plain = unique_login("plain");
    app.create_user(&plain, GOOD_PASSWORD).await;
    let client = browser();
    app.login_with(&client, &plain, GOOD_PASSWORD, false).await;
    let page = account_page(&app, &client).await;
    assert_eq!(
        input_value(&page, "address").as_deref(),
        Some(""),
        "the redirect field"
    );
    assert_no_none(&page, "account page");
}

// --- point 13: logged in after the activation -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_activation_the_person_is_logged_in_and_sees_the_login_mailbox_and_redirect_to_check(
) {
    let app = activation_app().await;
    let family = unique_name();
    let recovery = format!("{}@perso.example.com", family.to_lowercase());
    let login = import_person(
        &app,
        &format!(
            "{},Anne,{family},20-10-1970,staff,,{recovery}",
            unique_hr_id()
        ),
    )
    .await;
    let link =
        app.mails_to(&recovery).await[0].link_to(&format!("{}/activation/link", app.address));
    let person = browser();
    assert_eq!(follow_link(&person, &link).await.status(), 303);
    let forward = format!("fwd-{recovery}");
    let (status, done) = complete_steps(&app, &person, Some(&forward)).await;
    assert_eq!(status, 200, "{done}");
    let page = unescaped(&done).replace("&#x40;", "@");
    assert_eq!(shown_login(&done).as_deref(), Some(login.as_str()));
    assert!(page.contains("id=\"activation-done\""), "{page}");
    assert!(
        page.contains(&format!("{login}@univ.example.org")),
        "the mailbox: {page}"
    );
    assert!(page.contains(&forward), "the redirect: {page}");
    assert!(page.contains("id=\"redirect-check\""), "{page}");

    // The same browser is logged in: the logged-in page, and a CAS ticket without a password.
    assert!(is_logged_in(&app, &person).await);
    let service = format!("{SERVICE}index.php");
    let enc: String = url::form_urlencoded::byte_serialize(service.as_bytes()).collect();
    let res = person
        .get(format!("{}/cas/login?service={enc}", app.address))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(validate_ticket_of(&app, &location(&res), &enc).await, login);
    // Another browser is not.
    assert!(!is_logged_in(&app, &browser()).await);
}

// --- point 14: back in the HR file, the import report, the helpdesk's notices ------------

fn options(full: bool) -> ImportOptions {
    ImportOptions {
        format: Format::Csv,
        full,
        strict: false,
        dry_run: false,
    }
}

async fn run_import(app: &TestApp, csv: &str, full: bool) -> sesame_server::operations::ImportDone {
    sesame_server::operations::import(
        &app.services,
        app.settings.lifecycle.import_rules().unwrap(),
        csv.as_bytes(),
        options(full),
        "test",
        4,
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_disabled_then_back_in_the_hr_file_gets_a_new_activation_mail_and_activates_again()
{
    let app = activation_app().await;
    let family = unique_name();
    let (hr_a, hr_b) = (unique_hr_id(), unique_hr_id());
    let (mail_a, mail_b) = (
        format!("{}a@perso.example.com", family.to_lowercase()),
        format!("{}b@perso.example.com", family.to_lowercase()),
    );
    let header = "hr_id,given_name,family_name,birth_date,affiliation,recovery_email";
    let line_a = format!("{hr_a},Alix,{family},01-02-1980,staff,{mail_a}");
    let line_b = format!("{hr_b},Bea,{family},01-02-1981,staff,{mail_b}");
    let both = format!("{header}\n{line_a}\n{line_b}\n");
    let done = run_import(&app, &both, true).await;
    assert_eq!(done.activation_links, 2);
    let login_a = match &done.report.outcomes[0] {
        sesame_lifecycle::import::Outcome::Created { login, .. } => login.as_str().to_owned(),
        other => panic!("{other:?}"),
    };
    let login_b = match &done.report.outcomes[1] {
        sesame_lifecycle::import::Outcome::Created { login, .. } => login.as_str().to_owned(),
        other => panic!("{other:?}"),
    };
    // B activates; then both leave (absent from a full file of staff)…
    let link_b =
        app.mails_to(&mail_b).await[0].link_to(&format!("{}/activation/link", app.address));
    let b = browser();
    assert_eq!(follow_link(&b, &link_b).await.status(), 303);
    assert_eq!(complete_steps(&app, &b, None).await.0, 200);
    assert_eq!(state_of(&app, &login_b).await, AccountState::Active);
    let other = format!(
        "{header}\n{},Carl,{family},01-02-1982,staff,\n",
        unique_hr_id()
    );
    run_import(&app, &other, true).await;
    assert_eq!(state_of(&app, &login_a).await, AccountState::Disabled);
    assert_eq!(state_of(&app, &login_b).await, AccountState::Disabled);

    // …and come back: both must activate again, and each gets a new activation mail.
    let done = run_import(
        &app,
        &format!("{both}{}", other.lines().nth(1).unwrap()),
        true,
    )
    .await;
    assert_eq!(done.activation_links, 2, "{:?}", done.report);
    assert_eq!(state_of(&app, &login_a).await, AccountState::Provisioned);
    assert_eq!(state_of(&app, &login_b).await, AccountState::Provisioned);
    let mails_a = app.mails_to(&mail_a).await;
    assert_eq!(mails_a.len(), 2, "the first link and the new one");
    let new_a = mails_a[1].link_to(&format!("{}/activation/link", app.address));
    let a = browser();
    assert_eq!(follow_link(&a, &new_a).await.status(), 303);
    assert_eq!(complete_steps(&app, &a, None).await.0, 200);
    assert_eq!(state_of(&app, &login_a).await, AccountState::Active);
    let links_b: Vec<_> = app
        .mails_to(&mail_b)
        .await
        .into_iter()
        .filter(|m| m.text.contains("/activation/link?token="))
        .collect();
    assert_eq!(links_b.len(), 2);
    let new_b = links_b[1].link_to(&format!("{}/activation/link", app.address));
    assert_eq!(follow_link(&browser(), &new_b).await.status(), 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_report_names_the_people_it_could_not_send_an_activation_link_to() {
    let app = activation_app().await;
    let family = unique_name();
    let with_address = format!("{}@perso.example.com", family.to_lowercase());
    let (hr_with, hr_without) = (unique_hr_id(), unique_hr_id());
    let csv = format!(
        "hr_id,given_name,family_name,affiliation,recovery_email\n{hr_with},Paul,{family},staff,{with_address}\n{hr_without},Rita,{family},staff,\n"
    );
    // The admin API's report.
    let key = app
        .services
        .api_keys
        .create("hr-sync", &[ApiScope::Imports], None, "test")
        .await
        .unwrap()
        .key;
    let res = reqwest::Client::new()
        .post(format!("{}/admin/api/v1/imports", app.address))
        .bearer_auth(&key)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let report: serde_json::Value = res.json().await.unwrap();
    assert_eq!(report["activation_links_queued"], 1, "{report}");
    let missing = report["no_activation_link"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{report}");
    let without = missing[0].as_str().unwrap().to_owned();
    assert!(without.starts_with("rita."), "{report}");
    let lines: Vec<String> = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "no activation link for {without} (hr_id {hr_without})"
        ))),
        "{lines:?}"
    );

    // The command line prints the same lines.
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
    let hr_cli = unique_hr_id();
    let file = std::env::temp_dir().join(format!(
        "sesame-noaddress-{}.csv",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::write(
        &file,
        format!("hr_id,given_name,family_name,affiliation\n{hr_cli},Sami,{family},faculty\n"),
    )
    .unwrap();
    let out = cli.run(&["import", file.to_str().unwrap()], None);
    let _ = std::fs::remove_file(&file);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("(hr_id {hr_cli}): no recovery address")),
        "{}",
        text(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_person_is_mailed_when_the_helpdesk_unblocks_the_account_or_closes_their_request() {
    let (app, _agent, console) = console_app().await;
    let login = unique_login("phished");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = crate::recovery::give_recovery_email(&app, &account).await;
    let institutional = format!("{login}@univ.example.org");
    let account_path = format!("/helpdesk/accounts/{login}");
    let (status, _) = console_post(
        &app,
        &console,
        &account_path,
        &format!("{account_path}/block"),
        &[("reason", "phishing")],
    )
    .await;
    assert_eq!(status, 200);
    assert!(app.mails_to(&recovery).await.is_empty(), "nothing yet");
    let (status, _) = console_post(
        &app,
        &console,
        &account_path,
        &format!("{account_path}/unblock"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    for address in [&recovery, &institutional] {
        let mails = app.mails_to(address).await;
        assert_eq!(mails.len(), 1, "{address}");
        assert!(
            mails[0].subject.contains("débloqué"),
            "{}",
            mails[0].subject
        );
        assert!(mails[0].text.contains(&login));
    }
    // An address nobody proved is not told.
    let other = unique_login("unproven");
    app.create_user(&other, GOOD_PASSWORD).await;
    let (unproven, _) = unverified_contacts(&app, &other).await;
    app.services
        .helpdesk
        .desk
        .block(
            &LoginName::parse(&other).unwrap(),
            sesame_core::helpdesk::BlockReason::Other,
            None,
            "test",
        )
        .await
        .unwrap();
    let other_path = format!("/helpdesk/accounts/{other}");
    let (status, _) = console_post(
        &app,
        &console,
        &other_path,
        &format!("{other_path}/unblock"),
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert!(app.mails_to(&unproven).await.is_empty());
    assert_eq!(
        app.mails_to(&format!("{other}@univ.example.org"))
            .await
            .len(),
        1
    );

    // The request: the sender's personal address hears that it is closed, without the note.
    let personal = format!("{}@gmail.example", login.replace('.', "-"));
    let form = sesame_lifecycle::helpdesk::assistance::AssistanceForm {
        kind: sesame_core::helpdesk::RequesterKind::Staff,
        name: "Jean Dupont".to_owned(),
        account: institutional.clone(),
        number: String::new(),
        school: String::new(),
        child_name: String::new(),
        personal_email: personal.clone(),
        phone: "06 12 34 56 78".to_owned(),
        description: "Mon compte est bloqué.".to_owned(),
    };
    let reference = app
        .services
        .helpdesk
        .assistance
        .submit(
            sesame_lifecycle::helpdesk::assistance::check(&form).unwrap(),
            Lang::En,
            None,
        )
        .await
        .unwrap()
        .reference;
    assert_eq!(
        app.mails_to(&personal).await.len(),
        1,
        "the acknowledgement"
    );
    let request_path = format!("/helpdesk/requests/{reference}");
    let (status, _) = console_post(
        &app,
        &console,
        &request_path,
        &format!("{request_path}/close"),
        &[("note", "rappelé, débloqué, secret interne")],
    )
    .await;
    assert_eq!(status, 200);
    let mails = app.mails_to(&personal).await;
    assert_eq!(mails.len(), 2);
    let closed = &mails[1];
    assert!(closed.subject.contains(&reference), "{}", closed.subject);
    assert!(
        closed.subject.contains("closed"),
        "in the form's language: {}",
        closed.subject
    );
    assert!(!closed.text.contains("secret interne"));
    // Closing again (a second tab's form) tells nobody again.
    console_post(
        &app,
        &console,
        &account_path,
        &format!("{request_path}/close"),
        &[],
    )
    .await;
    assert_eq!(app.mails_to(&personal).await.len(), 2);
}

// --- in a real browser, at phone width ----------------------------------------------------

#[tokio::test]
async fn a_pupil_activates_with_a_code_proves_the_address_and_ends_logged_in_at_phone_width() {
    use fantoccini::Locator;

    use crate::browser::{
        connect, driver_or_skip, fits_the_width, serious_accessibility_violations,
    };

    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = activation_app().await;
    let (login, code) = pupil_with_code(&app).await;
    let address = format!("{}@perso.example.com", login.replace('.', "-"));
    let c = connect(&driver, 375).await;
    c.goto(&format!("{}/activation/code", app.address))
        .await
        .unwrap();
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
    type_into("login", login.clone()).await;
    type_into("code", code).await;
    submit().await;
    c.wait().for_element(Locator::Id("accept")).await.unwrap();
    c.find(Locator::Id("accept"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    submit().await;
    c.wait()
        .for_element(Locator::Id("opt_in_no"))
        .await
        .unwrap();
    submit().await;
    c.wait()
        .for_element(Locator::Id("recovery_email"))
        .await
        .unwrap();
    type_into("recovery_email", address.clone()).await;
    submit().await;
    // The verify step: readable and usable at 375 px.
    c.wait()
        .for_element(Locator::Id("email_code"))
        .await
        .unwrap();
    assert!(fits_the_width(&c).await, "verify step at 375 px");
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "verify step"
    );
    type_into("email_code", mailed_code(&app, &address).await).await;
    submit().await;
    c.wait().for_element(Locator::Id("password")).await.unwrap();
    type_into("password", GOOD_PASSWORD.to_owned()).await;
    type_into("password_confirm", GOOD_PASSWORD.to_owned()).await;
    submit().await;
    // Done: logged in, on the confirmation page.
    let shown = c
        .wait()
        .for_element(Locator::Id("login-shown"))
        .await
        .unwrap();
    assert_eq!(shown.text().await.unwrap(), login);
    assert!(fits_the_width(&c).await, "confirmation page at 375 px");
    assert_eq!(
        serious_accessibility_violations(&c).await,
        Vec::<String>::new(),
        "confirmation page"
    );
    c.find(Locator::Id("continue"))
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
    c.close().await.unwrap();
}
