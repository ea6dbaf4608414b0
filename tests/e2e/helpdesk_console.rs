//! The helpdesk console (`/helpdesk/…`): only the logins in `helpdesk.agents`, after a
//! normal login; CSRF on every form; each action's effect and its audit event with the
//! agent as actor.

use reqwest::StatusCode;
use sesame_core::account::AccountState;
use sesame_core::i18n::Lang;
use sesame_core::ids::{Affiliation, LoginName};
use sesame_lifecycle::helpdesk::assistance::{check, AssistanceForm};
use sesame_tests::oidc::hidden_field;
use sesame_tests::{browser, extract_lt, unique_login, TestApp, GOOD_PASSWORD};

/// An app whose helpdesk agent is `agent` (an active account), and a browser logged in as it.
async fn console_app() -> (TestApp, String, reqwest::Client) {
    let agent = unique_login("agent");
    let configured = agent.clone();
    let app = TestApp::builder()
        .with(move |s| s.helpdesk.agents = vec![configured])
        .spawn()
        .await;
    app.create_user(&agent, GOOD_PASSWORD).await;
    let client = browser();
    let res = app.login_with(&client, &agent, GOOD_PASSWORD, false).await;
    assert!(res.status().is_redirection(), "{}", res.status());
    (app, agent, client)
}

/// The page's HTML with the slashes and apostrophes that auto-escaping writes as entities put
/// back (the other entities stay, so escaping can still be checked).
fn readable(html: &str) -> String {
    html.replace("&#x2f;", "/").replace("&#x27;", "'")
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> (StatusCode, String) {
    let res = client
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap();
    (res.status(), readable(&res.text().await.unwrap()))
}

/// Posts a console form with the token of the page at `form_page`, plus `fields`.
async fn submit(
    app: &TestApp,
    client: &reqwest::Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let (status, html) = page(app, client, form_page).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let csrf = hidden_field(&html, "csrf").expect("the page carries a token");
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let res = client
        .post(format!("{}{action}", app.address))
        .form(&form)
        .send()
        .await
        .unwrap();
    (res.status(), readable(&res.text().await.unwrap()))
}

async fn audited(app: &TestApp, login: &str, kind: &str, actor: &str) -> bool {
    app.services
        .audit
        .recent(Some(login), 100)
        .await
        .unwrap()
        .iter()
        .any(|e| e.kind == kind && e.actor == actor)
}

async fn state_of(app: &TestApp, login: &str) -> AccountState {
    app.services
        .accounts
        .get(&LoginName::parse(login).unwrap())
        .await
        .unwrap()
        .state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_people_go_to_the_login_and_back_and_people_who_are_not_agents_get_403() {
    let (app, agent, _) = console_app().await;
    let target = unique_login("target");
    app.create_user(&target, GOOD_PASSWORD).await;

    let anonymous = browser();
    for path in [
        "/helpdesk",
        "/helpdesk/requests",
        &format!("/helpdesk/accounts/{target}"),
    ] {
        let res = anonymous
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            res.headers()["location"].to_str().unwrap(),
            format!("{}/cas/login?next=/helpdesk", app.address)
        );
    }
    // The login page sends the agent back to the console.
    let html = anonymous
        .get(format!("{}/cas/login?next=/helpdesk", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lt = extract_lt(&html).unwrap();
    let res = anonymous
        .post(format!("{}/cas/login?next=/helpdesk", app.address))
        .form(&[
            ("lt", lt.as_str()),
            ("username", &agent),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("{}/helpdesk", app.address)
    );
    let (status, html) = page(&app, &anonymous, "/helpdesk").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&agent), "the agent is named");

    // Someone logged in who is not an agent: 403 on every page and form, nothing done.
    let outsider = browser();
    app.login_with(&outsider, &target, GOOD_PASSWORD, false)
        .await;
    for path in [
        "/helpdesk",
        "/helpdesk/requests",
        &format!("/helpdesk/accounts/{target}"),
    ] {
        let (status, html) = page(&app, &outsider, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("Accès réservé à l'assistance"), "{html}");
    }
    let res = outsider
        .post(format!("{}/helpdesk/accounts/{target}/block", app.address))
        .form(&[("csrf", "whatever"), ("reason", "other")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(state_of(&app, &target).await, AccountState::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_finds_an_account_then_unlocks_blocks_and_unblocks_it_and_forms_need_their_token()
{
    let (app, agent, client) = console_app().await;
    let actor = format!("helpdesk:{agent}");
    let target = unique_login("dupont");
    app.create_user(&target, GOOD_PASSWORD).await;
    let other = unique_login("martin");
    app.create_user(&other, GOOD_PASSWORD).await;

    // Search: by part of the login, by e-mail, by several words; nothing for a stranger.
    let stem = target.split('.').nth(1).unwrap();
    let (status, html) = page(&app, &client, &format!("/helpdesk?q={stem}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(&format!("/helpdesk/accounts/{target}\"")),
        "{html}"
    );
    assert!(!html.contains(&other), "{html}");
    let (_, html) = page(
        &app,
        &client,
        &format!("/helpdesk?q={target}%40univ.example.org"),
    )
    .await;
    assert!(
        html.contains(&format!("/helpdesk/accounts/{target}\"")),
        "{html}"
    );
    let (_, html) = page(&app, &client, &format!("/helpdesk?q=TEST+{stem}")).await;
    assert!(
        html.contains(&format!("/helpdesk/accounts/{target}\"")),
        "{html}"
    );
    let (_, html) = page(&app, &client, "/helpdesk?q=nobody-at-all").await;
    assert!(html.contains("id=\"no-results\""), "{html}");

    // Locked after failures: the page says so; a form without its token, or from another
    // site, is refused and changes nothing.
    app.services
        .accounts
        .lock(&target, None, "test")
        .await
        .unwrap();
    let account_page = format!("/helpdesk/accounts/{target}");
    let (status, html) = page(&app, &client, &account_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-state=\"active\""), "{html}");
    assert!(html.contains("Verrouillé après des échecs"), "{html}");
    let csrf = hidden_field(&html, "csrf").unwrap();
    let res = client
        .post(format!("{}{account_page}/unlock", app.address))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = client
        .post(format!("{}{account_page}/unlock", app.address))
        .header("Origin", "https://evil.example")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(app
        .services
        .accounts
        .locked_until(&target)
        .await
        .unwrap()
        .is_some());

    let (status, html) = submit(
        &app,
        &client,
        &account_page,
        &format!("{account_page}/unlock"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"console-notice\""), "{html}");
    assert!(html.contains("Non verrouillé"), "{html}");
    assert!(app
        .services
        .accounts
        .locked_until(&target)
        .await
        .unwrap()
        .is_none());
    assert!(audited(&app, &target, "login.unlocked", &actor).await);

    // A reason that is not on the list is refused; nothing changes.
    let (status, html) = submit(
        &app,
        &client,
        &account_page,
        &format!("{account_page}/block"),
        &[("reason", "boredom")],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("id=\"console-error\""), "{html}");
    assert_eq!(state_of(&app, &target).await, AccountState::Active);

    // Block: the person's live session ends, the reason and note are kept.
    let person = browser();
    app.login_with(&person, &target, GOOD_PASSWORD, false).await;
    let (status, _) = page(&app, &person, "/account").await;
    assert_eq!(status, StatusCode::OK);
    let (status, html) = submit(
        &app,
        &client,
        &account_page,
        &format!("{account_page}/block"),
        &[
            ("reason", "phishing"),
            ("note", "a cliqué sur le lien du faux webmail"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-state=\"blocked\""), "{html}");
    assert!(html.contains("Hameçonnage"), "{html}");
    assert!(
        html.contains("a cliqué sur le lien du faux webmail"),
        "{html}"
    );
    assert_eq!(state_of(&app, &target).await, AccountState::Blocked);
    let res = person
        .get(format!("{}/account", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "the person's session ended"
    );
    assert!(audited(&app, &target, "account.blocked", &actor).await);
    let account = app
        .services
        .accounts
        .get(&LoginName::parse(&target).unwrap())
        .await
        .unwrap();
    let block = app
        .services
        .helpdesk
        .desk
        .repo()
        .find_block(account.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(block.blocked_by, actor);

    // Unblock: active again, and its former password voided until a new one is set.
    let (status, html) = submit(
        &app,
        &client,
        &account_page,
        &format!("{account_page}/unblock"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-state=\"active\""), "{html}");
    assert!(html.contains("Annulé par le déblocage"), "{html}");
    assert!(html.contains("id=\"reset-code\""), "{html}");
    assert_eq!(state_of(&app, &target).await, AccountState::Active);
    assert!(audited(&app, &target, "account.unblocked", &actor).await);
    assert!(app
        .services
        .helpdesk
        .desk
        .password_change_required(&account)
        .await
        .unwrap());

    // Unblocking an account that is not blocked is refused, with the reason.
    let (status, html) = submit(
        &app,
        &client,
        &account_page,
        &format!("{account_page}/unblock"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("id=\"console-error\""), "{html}");
    let (status, _) = page(&app, &client, "/helpdesk/accounts/nobody.here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_sends_activation_and_reset_links_and_issues_an_activation_code_shown_once() {
    let (app, agent, client) = console_app().await;
    let actor = format!("helpdesk:{agent}");

    // A provisioned member of staff: a new activation link to the recovery address.
    let newcomer = unique_login("newcomer");
    let newcomer_mail = format!("{newcomer}@gmail.example");
    app.create_provisioned(&newcomer, Affiliation::Staff, Some((&newcomer_mail, false)))
        .await;
    let account_page = format!("/helpdesk/accounts/{newcomer}");
    let (_, html) = page(&app, &client, &account_page).await;
    assert!(html.contains("Pas encore activé"), "{html}");
    let (status, html) = submit(
        &app,
        &client,
        &account_page,
        &format!("{account_page}/activation-link"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"console-notice\""), "{html}");
    let mails = app.mails_to(&newcomer_mail).await;
    assert_eq!(mails.len(), 1);
    mails[0].link_to(&format!("{}/activation/link?token=", app.address));
    assert!(audited(&app, &newcomer, "activation.link_sent", &actor).await);

    // A pupil: a code, shown once, that starts an activation.
    let pupil = unique_login("pupil");
    app.create_provisioned(&pupil, Affiliation::Pupil, None)
        .await;
    let pupil_page = format!("/helpdesk/accounts/{pupil}");
    let (status, html) = submit(
        &app,
        &client,
        &pupil_page,
        &format!("{pupil_page}/activation-code"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let start = html.find("id=\"code\">").expect("the code is shown") + "id=\"code\">".len();
    let code = html[start..start + html[start..].find('<').unwrap()].to_owned();
    assert!(!code.is_empty());
    let (_, again) = page(&app, &client, &pupil_page).await;
    assert!(!again.contains(&code), "the code is shown only once");
    assert!(audited(&app, &pupil, "activation.code_issued", &actor).await);
    app.services
        .activation
        .start_with_code(&pupil, &code, None)
        .await
        .expect("the code starts an activation");
    // A member of staff may not use codes: refused with the reason.
    let (status, html) = submit(
        &app,
        &client,
        &account_page,
        &format!("{account_page}/activation-code"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("id=\"console-error\""), "{html}");

    // An active account with a verified recovery address: a reset link, never shown.
    let member = unique_login("member");
    let member_mail = format!("{member}@gmail.example");
    app.create_provisioned(&member, Affiliation::Staff, Some((&member_mail, true)))
        .await;
    app.services
        .accounts
        .set_password(
            &LoginName::parse(&member).unwrap(),
            sesame_core::credentials::Password::new(GOOD_PASSWORD),
            "test",
        )
        .await
        .unwrap();
    let member_page = format!("/helpdesk/accounts/{member}");
    let (status, html) = submit(
        &app,
        &client,
        &member_page,
        &format!("{member_page}/reset-link"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        !html.contains("token="),
        "the link is not shown to the agent"
    );
    let mails = app.mails_to(&member_mail).await;
    assert_eq!(mails.len(), 1);
    mails[0].link_to(&format!("{}/password/reset?token=", app.address));
    assert!(audited(&app, &member, "recovery.reset_requested", &actor).await);

    // No recovery address: refused with the reason, nothing sent.
    let bare = unique_login("bare");
    app.create_user(&bare, GOOD_PASSWORD).await;
    let bare_page = format!("/helpdesk/accounts/{bare}");
    let (status, html) = submit(
        &app,
        &client,
        &bare_page,
        &format!("{bare_page}/reset-link"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(
        html.contains("pas d&#x27;adresse de secours") || html.contains("pas d'adresse de secours"),
        "{html}"
    );
    assert!(app
        .mails_to(&format!("{bare}@univ.example.org"))
        .await
        .is_empty());
}

const NATIONAL_ID_KEY: &str = "helpdesk-console-test-key-0123456789abcdef";

/// Creates an account the way an import does: names with accents, HR number, birth date and
/// national ID on file.
async fn imported_person(
    app: &TestApp,
    login: &str,
    given: &str,
    family: &str,
    affiliation: Affiliation,
    state: AccountState,
) -> sesame_core::account::Account {
    use sesame_core::national_id::{NationalId, NationalIdKey};
    let key = NationalIdKey::new(NATIONAL_ID_KEY).unwrap();
    let profile = sesame_core::account::AccountProfile {
        hr_id: Some(
            sesame_core::ids::HrId::parse(&format!("SOM{}", &login[login.len() - 6..])).unwrap(),
        ),
        birth_date: Some(time::macros::date!(1970 - 10 - 20)),
        national_id: Some(key.hash(&NationalId::parse("AB-123 456").unwrap())),
        ..Default::default()
    };
    app.services
        .profiles
        .create_with_profile(
            sesame_core::account::NewAccount {
                login: LoginName::parse(login).unwrap(),
                email: Some(
                    sesame_core::ids::Email::parse(&format!("{login}@univ.example.org")).unwrap(),
                ),
                given_name: given.to_owned(),
                family_name: family.to_owned(),
                affiliation,
                state,
            },
            profile,
            sesame_core::clock::Clock::now(app.clock.as_ref()),
        )
        .await
        .unwrap()
        .account
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_finds_elodie_with_or_without_accents_and_checks_what_the_caller_says_without_ever_seeing_the_record(
) {
    let agent = unique_login("agent");
    let configured = agent.clone();
    let app = TestApp::builder()
        .with(move |s| {
            s.helpdesk.agents = vec![configured];
            s.lifecycle.national_id_key = NATIONAL_ID_KEY.into();
        })
        .spawn()
        .await;
    app.create_user(&agent, GOOD_PASSWORD).await;
    let client = browser();
    app.login_with(&client, &agent, GOOD_PASSWORD, false).await;
    let actor = format!("helpdesk:{agent}");
    let login = unique_login("elodie");
    let family = format!("Lefèvre{}", &login[login.len() - 6..]);
    imported_person(
        &app,
        &login,
        "Élodie",
        &family,
        Affiliation::Staff,
        AccountState::Active,
    )
    .await;
    let href = format!("/helpdesk/accounts/{login}\"");

    // Search: with accents or not, in any case, on both databases.
    let folded_family = family.replace('è', "e").to_lowercase();
    for q in [
        "Élodie".to_owned(),
        "ÉLODIE".to_owned(),
        format!("elodie {folded_family}"),
        format!("élodie {}", family.to_uppercase()),
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        let (status, html) = page(&app, &client, &format!("/helpdesk?q={encoded}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(&href), "{q}: {html}");
    }

    // The page says what is on file, never the values.
    let account_page = format!("/helpdesk/accounts/{login}");
    let (_, html) = page(&app, &client, &account_page).await;
    assert!(html.contains("id=\"compare-form\""), "{html}");
    assert!(html.contains("Date de naissance (enregistrée)"), "{html}");
    let shown = without_csrf_token(&html);
    for secret in ["1970", "20-10", "20/10", "3456", "AB123456"] {
        assert!(!shown.contains(secret), "{secret} shown: {html}");
    }

    // Each comparison answers match / no match, and never shows the record.
    let compare = |field: &'static str, value: String| {
        let app = &app;
        let client = &client;
        let account_page = account_page.clone();
        async move {
            let (status, html) = submit(
                app,
                client,
                &account_page,
                &format!("{account_page}/compare"),
                &[("field", field), ("value", value.as_str())],
            )
            .await;
            let shown = without_csrf_token(&html);
            for secret in ["1970", "AB123456"] {
                assert!(
                    value.contains(secret) || !shown.contains(secret),
                    "{secret} shown: {html}"
                );
            }
            let outcome = html
                .split("data-outcome=\"")
                .nth(1)
                .map(|rest| rest[..rest.find('"').unwrap()].to_owned());
            (status, outcome, html)
        }
    };
    let outcome = |field, value: &str| {
        let answer = compare(field, value.to_owned());
        async move { answer.await.1 }
    };
    assert_eq!(
        outcome("birth_date", "20/10/1970").await.as_deref(),
        Some("match")
    );
    assert_eq!(
        outcome("birth_date", "21-10-1970").await.as_deref(),
        Some("no_match")
    );
    assert_eq!(
        outcome("birth_date", "hier").await.as_deref(),
        Some("unreadable")
    );
    assert_eq!(
        outcome("national_id_end", "34 56").await.as_deref(),
        Some("match")
    );
    assert_eq!(
        outcome("national_id_end", "9999").await.as_deref(),
        Some("no_match")
    );
    assert_eq!(
        outcome("national_id", "ab123456").await.as_deref(),
        Some("match")
    );
    let hr = format!("som{}", &login[login.len() - 6..]);
    assert_eq!(outcome("hr_id", &hr).await.as_deref(), Some("match"));
    let events = app.services.audit.recent(Some(&login), 100).await.unwrap();
    let compared: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "helpdesk.identity_compared")
        .collect();
    assert_eq!(compared.len(), 7);
    assert!(compared.iter().all(|e| e.actor == actor
        && !e.detail.to_string().contains("1970")
        && !e.detail.to_string().contains("3456")));
    // The event list says it in words.
    let (_, html) = page(&app, &client, &account_page).await;
    assert!(
        html.contains("Information d'identité vérifiée par l'assistance"),
        "{html}"
    );

    // Limited per agent and account: after 10 comparisons, refused until the hour is over.
    for _ in 0..4 {
        assert_eq!(
            outcome("birth_date", "01-01-1990").await.as_deref(),
            Some("no_match")
        );
    }
    let (status, answer, html) = compare("birth_date", "20-10-1970".to_owned()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(answer, None, "nothing answered: {html}");
    assert!(html.contains("Trop de vérifications"), "{html}");
    app.clock.advance(time::Duration::minutes(61));
    assert_eq!(
        outcome("birth_date", "20-10-1970").await.as_deref(),
        Some("match")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_how_each_category_activates_and_offers_only_the_activation_actions_it_allows(
) {
    let (app, _agent, client) = console_app().await;
    let pupil = unique_login("pupil");
    app.create_provisioned(
        &pupil,
        Affiliation::Pupil,
        Some(("parent@gmail.example", true)),
    )
    .await;
    let (_, html) = page(&app, &client, &format!("/helpdesk/accounts/{pupil}")).await;
    assert!(html.contains("code remis par l'établissement"), "{html}");
    assert!(html.contains("id=\"activation-code\""), "{html}");
    assert!(
        !html.contains("id=\"activation-link\""),
        "pupils may not activate by link: {html}"
    );
    let staff = unique_login("staff");
    app.create_provisioned(&staff, Affiliation::Staff, Some(("me@gmail.example", true)))
        .await;
    let (_, html) = page(&app, &client, &format!("/helpdesk/accounts/{staff}")).await;
    assert!(
        html.contains("vérification d'identité, lien par courriel"),
        "{html}"
    );
    assert!(html.contains("id=\"activation-link\""), "{html}");
    assert!(
        !html.contains("id=\"activation-code\""),
        "staff may not use codes: {html}"
    );
}

/// The code shown once on a console page (`id="code"`).
fn shown_code(html: &str) -> String {
    let start = html.find("id=\"code\">").expect("the code is shown") + "id=\"code\">".len();
    html[start..start + html[start..].find('<').unwrap()].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_unblock_in_the_console_a_reset_link_or_a_helpdesk_code_sets_the_new_password_and_the_code_is_short_lived_with_few_tries(
) {
    const NEW_PASSWORD: &str = "seven lanterns over the quiet canal";
    let (app, agent, client) = console_app().await;
    let actor = format!("helpdesk:{agent}");
    let login_status = |login: String, password: &'static str| {
        let app = &app;
        async move {
            app.login_with(&browser(), &login, password, false)
                .await
                .status()
        }
    };

    // Phished, blocked, unblocked: with a verified recovery address, a reset link.
    let member = unique_login("phished");
    let member_mail = format!("{member}@gmail.example");
    app.create_provisioned(&member, Affiliation::Staff, Some((&member_mail, true)))
        .await;
    let member_login = LoginName::parse(&member).unwrap();
    app.services
        .accounts
        .set_password(
            &member_login,
            sesame_core::credentials::Password::new(GOOD_PASSWORD),
            "test",
        )
        .await
        .unwrap();
    let member_page = format!("/helpdesk/accounts/{member}");
    for action in ["block", "unblock"] {
        let (status, html) = submit(
            &app,
            &client,
            &member_page,
            &format!("{member_page}/{action}"),
            &[("reason", "phishing")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{action}: {html}");
    }
    assert_eq!(login_status(member.clone(), GOOD_PASSWORD).await, 403);
    let (status, html) = submit(
        &app,
        &client,
        &member_page,
        &format!("{member_page}/reset-link"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let mails = app.mails_to(&member_mail).await;
    let link = mails
        .last()
        .expect("a reset link")
        .link_to(&format!("{}/password/reset?token=", app.address));
    let token = link.split("token=").nth(1).unwrap().to_owned();
    let res = browser()
        .post(format!("{}/password/reset", app.address))
        .form(&[
            ("token", token.as_str()),
            ("password", NEW_PASSWORD),
            ("confirm", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(login_status(member.clone(), GOOD_PASSWORD).await, 401);
    assert_eq!(login_status(member.clone(), NEW_PASSWORD).await, 303);

    // No verified contact at all: a code, shown once to the agent, never stored in clear.
    let caller = unique_login("caller");
    app.create_user(&caller, GOOD_PASSWORD).await;
    let caller_login = LoginName::parse(&caller).unwrap();
    let desk = &app.services.helpdesk.desk;
    desk.block(
        &caller_login,
        sesame_core::helpdesk::BlockReason::Phishing,
        None,
        "test",
    )
    .await
    .unwrap();
    let caller_page = format!("/helpdesk/accounts/{caller}");
    let (_, html) = page(&app, &client, &caller_page).await;
    assert!(
        !html.contains("id=\"reset-code\""),
        "no code for a blocked account: {html}"
    );
    let (status, _) = submit(
        &app,
        &client,
        &caller_page,
        &format!("{caller_page}/reset-code"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    desk.unblock(&caller_login, "test").await.unwrap();
    let issue = || async {
        let (status, html) = submit(
            &app,
            &client,
            &caller_page,
            &format!("{caller_page}/reset-code"),
            &[],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(
            html.contains("/password/helpdesk-code"),
            "where it is typed: {html}"
        );
        shown_code(&html)
    };
    let code = issue().await;
    let (_, again) = page(&app, &client, &caller_page).await;
    assert!(!again.contains(&code), "the code is shown only once");
    assert!(audited(&app, &caller, "recovery.helpdesk_code_issued", &actor).await);
    let events = app.services.audit.recent(None, 1000).await.unwrap();
    assert!(
        events.iter().all(|e| !e.detail.to_string().contains(&code)),
        "never in the audit trail"
    );

    // Five wrong codes: the code is spent, even the right one is refused afterwards.
    let person = browser();
    for _ in 0..5 {
        let res = crate::helpdesk::send_helpdesk_code(&app, &person, &caller, "ZZZZZ-ZZZZZ").await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    }
    let res = crate::helpdesk::send_helpdesk_code(&app, &person, &caller, &code).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // A new code starts afresh, but only for its lifetime.
    let code = issue().await;
    app.clock.advance(time::Duration::minutes(31));
    let res = crate::helpdesk::send_helpdesk_code(&app, &person, &caller, &code).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // And a newer code replaces the older one.
    let older = issue().await;
    let code = issue().await;
    let res = crate::helpdesk::send_helpdesk_code(&app, &person, &caller, &older).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = crate::helpdesk::send_helpdesk_code(&app, &person, &caller, &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
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
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(login_status(caller.clone(), GOOD_PASSWORD).await, 401);
    assert_eq!(login_status(caller.clone(), NEW_PASSWORD).await, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reads_and_closes_assistance_requests() {
    let (app, agent, client) = console_app().await;
    let login = unique_login("asker");
    app.create_user(&login, GOOD_PASSWORD).await;
    let form = AssistanceForm {
        name: "Asker".to_owned(),
        account: format!("{login}@univ.example.org"),
        personal_email: "asker@gmail.example".to_owned(),
        phone: "06 12 34 56 78".to_owned(),
        description: "Mon compte est bloqué.\nJ'ai cliqué sur un lien <b>étrange</b>.".to_owned(),
        ..Default::default()
    };
    let reference = app
        .services
        .helpdesk
        .assistance
        .submit(check(&form).unwrap(), Lang::Fr, None)
        .await
        .unwrap()
        .reference;

    let (status, html) = page(&app, &client, "/helpdesk/requests").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&reference), "{html}");
    let request_page = format!("/helpdesk/requests/{reference}");
    let (status, html) = page(&app, &client, &request_page).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("&lt;b&gt;étrange&lt;/b&gt;"),
        "typed text is escaped: {html}"
    );
    assert!(
        html.contains(&format!("/helpdesk/accounts/{login}\"")),
        "the account is linked"
    );

    let res = client
        .post(format!("{}{request_page}/close", app.address))
        .form(&[("note", "rappelé")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "no token, no close");
    assert!(app
        .services
        .helpdesk
        .assistance
        .show(&reference)
        .await
        .unwrap()
        .is_open());

    let (status, html) = submit(
        &app,
        &client,
        &request_page,
        &format!("{request_page}/close"),
        &[("note", "rappelé, compte débloqué")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"console-notice\""), "{html}");
    assert!(html.contains("rappelé, compte débloqué"), "{html}");
    let closed = app
        .services
        .helpdesk
        .assistance
        .show(&reference)
        .await
        .unwrap();
    let closure = closed.closure.expect("closed");
    assert_eq!(closure.closed_by, format!("helpdesk:{agent}"));
    assert_eq!(closure.note.as_deref(), Some("rappelé, compte débloqué"));
    let (_, open) = page(&app, &client, "/helpdesk/requests").await;
    assert!(!open.contains(&reference), "{open}");
    let (_, closed) = page(&app, &client, "/helpdesk/requests?status=closed").await;
    assert!(closed.contains(&reference), "{closed}");
    let (status, _) = page(&app, &client, "/helpdesk/requests/AS-NOSUCH99").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// `html` without its CSRF token, whose random hex may hold any four digits (a birth year, the
/// end of a document number) by chance.
fn without_csrf_token(html: &str) -> String {
    match hidden_field(html, "csrf") {
        Some(token) if !token.is_empty() => html.replace(&token, ""),
        _ => html.to_owned(),
    }
}
