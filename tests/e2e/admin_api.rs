//! The admin HTTP API (`/admin/api/v1/…`): API keys and scopes, accounts, imports, sessions,
//! the OpenAPI document, and `sesame api-key` through the real binary.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sesame_core::account::AccountState;
use sesame_core::api_keys::ApiScope;
use sesame_core::ids::{Affiliation, LoginName};
use sesame_mail::transport::{SmtpSecurity, TransportKind};
use sesame_tests::{browser, set_cookies, unique_login, SmtpCatcher, TestApp, GOOD_PASSWORD};

use crate::cli::{text, Cli};

const ALL: [ApiScope; 5] = ApiScope::ALL;

/// A key named `name` with these scopes, made through the app's services.
async fn key_for(app: &TestApp, name: &str, scopes: &[ApiScope]) -> String {
    app.services
        .api_keys
        .create(name, scopes, None, "test")
        .await
        .unwrap()
        .key
}

fn api(app: &TestApp, path: &str) -> String {
    format!("{}/admin/api/v1{path}", app.address)
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let res = request.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let text = res.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

async fn get(app: &TestApp, key: &str, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(reqwest::Client::new().get(api(app, path)).bearer_auth(key)).await;
    (status, body)
}

async fn post(app: &TestApp, key: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let (status, _, body) = send(
        reqwest::Client::new()
            .post(api(app, path))
            .bearer_auth(key)
            .json(body),
    )
    .await;
    (status, body)
}

async fn import(app: &TestApp, key: &str, query: &str, csv: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(
        reqwest::Client::new()
            .post(api(app, &format!("/imports{query}")))
            .bearer_auth(key)
            .header("Content-Type", "text/csv")
            .body(csv.to_owned()),
    )
    .await;
    (status, body)
}

async fn is_logged_in(app: &TestApp, client: &reqwest::Client) -> bool {
    client
        .get(format!("{}/cas/login", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains("id=\"current-user\"")
}

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(
        body["type"],
        format!("urn:sesame:admin-api:{code}"),
        "{body}"
    );
}

#[tokio::test]
async fn a60_admin_calls_without_a_valid_key_get_401_with_a_challenge_and_without_the_scope_403() {
    let app = TestApp::spawn().await;
    let login = unique_login("guarded");
    app.create_user(&login, GOOD_PASSWORD).await;
    let path = format!("/accounts/{login}");

    // No key.
    let (status, headers, body) = send(reqwest::Client::new().get(api(&app, &path))).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(
        headers["www-authenticate"], "Bearer realm=\"sesame-admin\"",
        "{headers:?}"
    );
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/problem+json"));

    // A key of another form, and a key of Sesame's form with a wrong secret.
    let good = key_for(&app, "reader", &[ApiScope::AccountsRead]).await;
    let (id_part, _) = good.rsplit_once('_').unwrap();
    let forged = format!("{id_part}_{}", "x".repeat(43));
    for wrong in ["hunter2", forged.as_str()] {
        let (status, headers, body) = send(
            reqwest::Client::new()
                .get(api(&app, &path))
                .bearer_auth(wrong),
        )
        .await;
        assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("error=\"invalid_token\""),
            "{headers:?}"
        );
    }

    // The right key works, and its use is noted.
    let (status, body) = get(&app, &good, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed = app.services.api_keys.list().await.unwrap();
    assert!(listed[0].last_used_at.is_some(), "{listed:?}");

    // Wrong scope: 403 naming it.
    let (status, headers, body) = send(
        reqwest::Client::new()
            .post(api(&app, &format!("{path}/block")))
            .bearer_auth(&good),
    )
    .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_scope\", scope=\"accounts:write\""),
        "{headers:?}"
    );
    assert_eq!(
        app.services
            .accounts
            .get(&LoginName::parse(&login).unwrap())
            .await
            .unwrap()
            .state,
        AccountState::Active,
        "a refused call changes nothing"
    );

    // Revoked: refused at once.
    let id = listed[0].id.clone();
    app.services.api_keys.revoke(&id, "test").await.unwrap();
    let (status, body) = get(&app, &good, &path).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );

    // Expired: refused once its time has passed.
    let expiring = app
        .services
        .api_keys
        .create("short-lived", &[ApiScope::AccountsRead], Some(1), "test")
        .await
        .unwrap()
        .key;
    assert_eq!(get(&app, &expiring, &path).await.0, StatusCode::OK);
    app.clock
        .advance(time::Duration::days(1) + time::Duration::seconds(1));
    let (status, body) = get(&app, &expiring, &path).await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        body["detail"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    // Unknown paths under the API are JSON 404s, even with a key.
    let (status, body) = get(&app, &key_for(&app, "any", &ALL).await, "/nothing-here").await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn a54_an_account_is_created_read_updated_blocked_with_its_live_session_ended_and_unblocked()
{
    let rp = sesame_tests::RecordingServer::start().await;
    let rp_base = format!("{}/", rp.base);
    let app = TestApp::builder()
        .with({
            let rp_base = rp_base.clone();
            move |s| {
                s.cas
                    .services
                    .push(sesame_tests::cas_service("rp", &rp_base, ""))
            }
        })
        .spawn()
        .await;
    let key = key_for(&app, "siham-provisioning", &ALL).await;
    let login = unique_login("anne");

    let (status, body) = post(
        &app,
        &key,
        "/accounts",
        &json!({
            "login": login,
            "email": format!("{login}@univ.example.org"),
            "given_name": "Anne",
            "family_name": "Martin",
            "affiliation": "faculty",
            "recovery_email": "anne.martin@example.com",
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["state"], "provisioned");
    assert_eq!(body["recovery_email"]["address"], "anne.martin@example.com");
    assert_eq!(body["recovery_email"]["verified"], false);

    // The same login again: 409; a bad field: 400 naming it.
    let (status, body) = post(
        &app,
        &key,
        "/accounts",
        &json!({"login": login, "given_name": "X", "family_name": "Y", "affiliation": "staff"}),
    )
    .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "conflict");
    let (status, body) = post(
        &app,
        &key,
        "/accounts",
        &json!({"login": unique_login("bad"), "given_name": "X", "family_name": "Y", "affiliation": "wizard"}),
    )
    .await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        body["detail"].as_str().unwrap().starts_with("affiliation"),
        "{body}"
    );

    let (status, body) = get(&app, &key, &format!("/accounts/{login}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["given_name"], "Anne");
    assert_eq!(body["affiliation"], "faculty");
    let (status, body) = get(&app, &key, "/accounts/nobody.here").await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");

    // Update: names, e-mail removed, mobile set; absent fields stay.
    let (status, _, body) = send(
        reqwest::Client::new()
            .patch(api(&app, &format!("/accounts/{login}")))
            .bearer_auth(&key)
            .json(
                &json!({"family_name": "Martin-Durand", "email": null, "mobile": "06 12 34 56 78"}),
            ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["family_name"], "Martin-Durand");
    assert_eq!(body["given_name"], "Anne");
    assert_eq!(body["email"], Value::Null);
    assert_eq!(body["mobile"]["verified"], false);
    assert_eq!(body["recovery_email"]["address"], "anne.martin@example.com");

    // The person activates (here: an operator sets the password) and logs in to the application.
    app.services
        .accounts
        .set_password(
            &LoginName::parse(&login).unwrap(),
            sesame_core::credentials::Password::new(GOOD_PASSWORD),
            "test",
        )
        .await
        .unwrap();
    let person = browser();
    let lt = sesame_tests::get_login_page(&person, &app.address).await.2;
    let service = url::form_urlencoded::byte_serialize(rp_base.as_bytes()).collect::<String>();
    let res = person
        .post(format!("{}/cas/login?service={service}", app.address))
        .form(&[
            ("lt", lt.as_str()),
            ("username", login.as_str()),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(is_logged_in(&app, &person).await);

    let (status, body) = post(
        &app,
        &key,
        &format!("/accounts/{login}/block"),
        &json!({"reason": "phishing", "note": "phishing victim, ticket 4711"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "blocked");
    assert_eq!(body["sessions_ended"], 1, "{body}");
    assert_eq!(body["applications_notified"], 1, "{body}");
    assert!(!is_logged_in(&app, &person).await, "the live session ended");
    let received = rp.wait_for(1).await;
    assert!(
        received
            .iter()
            .any(|r| r.method == "POST" && r.body.starts_with("logoutRequest=")),
        "{received:?}"
    );
    let refused = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "login refused");
    assert!(set_cookies(&refused).is_empty());

    let (status, body) = post(
        &app,
        &key,
        &format!("/accounts/{login}/unblock"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "active");
    let (status, body) = post(
        &app,
        &key,
        &format!("/accounts/{login}/unblock"),
        &json!({}),
    )
    .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "bad_transition");
    // Unblocked, but the password it had (maybe the phished one) opens nothing: the person
    // learns how to set a new one.
    let again = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN, "old password voided");
    assert!(set_cookies(&again).is_empty());
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("/password/helpdesk-code"));

    // Every write is audited with the key's name as actor; the reason is kept.
    let (status, body) = get(&app, &key, &format!("/accounts/{login}/audit?limit=100")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let events = body["events"].as_array().unwrap();
    let by_key = |kind: &str| {
        events
            .iter()
            .any(|e| e["kind"] == kind && e["actor"] == "api:siham-provisioning")
    };
    for kind in [
        "account.created",
        "account.updated",
        "account.state_changed",
        "account.blocked",
    ] {
        assert!(by_key(kind), "{kind} by the key in {body}");
    }
    // The reason is in the audit trail; the note (it may name people) stays with the block.
    assert!(events
        .iter()
        .any(|e| e["kind"] == "account.blocked" && e["detail"]["reason"] == "phishing"));
    assert!(!body.to_string().contains("ticket 4711"), "{body}");
    let updated = events
        .iter()
        .find(|e| e["kind"] == "account.updated")
        .unwrap();
    assert_eq!(
        updated["detail"]["fields"],
        json!(["email", "family_name", "mobile"])
    );

    // Disable: the person left.
    let (status, body) = post(
        &app,
        &key,
        &format!("/accounts/{login}/disable"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "disabled");
    let (status, body) = post(&app, &key, &format!("/accounts/{login}/block"), &json!({})).await;
    assert_problem(status, &body, StatusCode::CONFLICT, "bad_transition");
}

const HEADER: &str = "hr_id,given_name,family_name,affiliation,birth_date\n";

#[tokio::test]
async fn an_import_names_its_bad_line_imports_the_rest_is_idempotent_strict_imports_nothing_and_full_disables_a_leaver(
) {
    let app = TestApp::builder()
        .with(|s| s.lifecycle.email_pattern = "{login}@univ.example.org".to_owned())
        .spawn()
        .await;
    let key = key_for(
        &app,
        "hr-sync",
        &[ApiScope::Imports, ApiScope::AccountsRead],
    )
    .await;
    let csv = format!(
        "{HEADER}\
         1001,Paul,Leroy,staff,01-02-1980\n\
         1002,Lise,Bad,staff,31-02-1990\n\
         1003,Marc,Petit,staff,\n"
    );

    // No key: refused before the file is read.
    let (status, _, body) = send(
        reqwest::Client::new()
            .post(api(&app, "/imports"))
            .header("Content-Type", "text/csv")
            .body(csv.clone()),
    )
    .await;
    assert_problem(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");

    // Strict: nothing imported because line 3 is bad.
    let (status, body) = import(&app, &key, "?strict=true", &csv).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "refused_strict", "{body}");
    assert_eq!(body["counts"]["rejected"], 1);
    assert!(app
        .services
        .profiles
        .accounts_with_hr_id()
        .await
        .unwrap()
        .is_empty());

    // Not strict: the bad line is named with its reason, the others go in.
    let (status, body) = import(&app, &key, "", &csv).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "applied");
    assert_eq!(body["counts"]["created"], 2, "{body}");
    let rejection = &body["rejections"][0];
    assert_eq!(rejection["line"], 3, "{body}");
    assert_eq!(rejection["hr_id"], "1002");
    assert!(
        rejection["reason"].as_str().unwrap().contains("birth_date"),
        "{body}"
    );
    let lines: Vec<&str> = body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        lines.contains(&"summary: 2 created, 0 updated, 0 unchanged, 0 disabled, 1 rejected"),
        "the report the CLI prints: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("line 3: rejected: birth_date")),
        "{lines:?}"
    );
    let paul = "paul.leroy".to_owned();
    let created = body["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["login"] == paul.as_str())
        .unwrap_or_else(|| panic!("{paul} in {body}"));
    assert_eq!(created["action"], "created");
    assert_eq!(created["email"], format!("{paul}@univ.example.org"));
    let (status, account) = get(&app, &key, &format!("/accounts/{paul}")).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["state"], "provisioned");
    assert_eq!(account["hr_id"], "1001");

    // The same file again changes nothing.
    let (_, body) = import(&app, &key, "", &csv).await;
    assert_eq!(body["counts"]["created"], 0, "{body}");
    assert_eq!(body["counts"]["updated"], 0, "{body}");
    assert_eq!(body["counts"]["unchanged"], 2, "{body}");
    assert!(body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l == "nothing changed: the accounts already match the file"));

    // A full import without Marc (and with the bad line fixed) disables him; JSON works too.
    let file = json!([
        {"hr_id": "1001", "given_name": "Paul", "family_name": "Leroy", "affiliation": "staff"},
        {"hr_id": "1002", "given_name": "Lise", "family_name": "Bad", "affiliation": "staff"},
    ]);
    let (status, _, body) = send(
        reqwest::Client::new()
            .post(api(&app, "/imports?full=true&dry_run=true"))
            .bearer_auth(&key)
            .json(&file),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["mode"], "dry_run");
    assert_eq!(body["counts"]["disabled"], 1, "{body}");
    let marc = "marc.petit".to_owned();
    let state = |login: String| {
        let app = &app;
        async move {
            app.services
                .accounts
                .get(&LoginName::parse(&login).unwrap())
                .await
                .unwrap()
                .state
        }
    };
    assert_eq!(
        state(marc.clone()).await,
        AccountState::Provisioned,
        "dry run"
    );
    let (status, _, body) = send(
        reqwest::Client::new()
            .post(api(&app, "/imports?full=true"))
            .bearer_auth(&key)
            .json(&file),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["counts"]["created"], 1, "{body}");
    assert_eq!(body["counts"]["disabled"], 1, "{body}");
    assert_eq!(body["full"], "applied");
    let disabled = body["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["action"] == "disabled")
        .unwrap();
    assert_eq!(disabled["login"], marc.as_str());
    assert_eq!(state(marc).await, AccountState::Disabled);
    assert_eq!(state(paul).await, AccountState::Provisioned);

    // A file that cannot be read at all: 422, nothing imported.
    let (status, body) = import(&app, &key, "", "surname;firstname\nx;y\n").await;
    assert_problem(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable",
    );
    let (status, body) = import(&app, &key, "?format=xml", &csv).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST, "bad_request");
    // Every import is audited with the key's name.
    let imports = app
        .services
        .audit
        .recent(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "import.completed")
        .collect::<Vec<_>>();
    assert_eq!(imports.len(), 3, "{imports:?}");
    assert!(imports.iter().all(|e| e.actor == "api:hr-sync"));
}

#[tokio::test]
async fn the_sessions_of_an_account_are_listed_and_ended_everywhere_without_blocking_it() {
    let app = TestApp::spawn().await;
    let key = key_for(&app, "helpdesk-tool", &[ApiScope::Sessions]).await;
    let login = unique_login("twodevices");
    app.create_user(&login, GOOD_PASSWORD).await;
    let (laptop, phone) = (browser(), browser());
    for device in [&laptop, &phone] {
        let res = app.login_with(device, &login, GOOD_PASSWORD, false).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
    }
    let path = format!("/accounts/{login}/sessions");
    let (status, body) = get(&app, &key, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{body}");
    assert_eq!(sessions[0]["remember_me"], false);
    assert_eq!(sessions[0]["id"].as_str().unwrap().len(), 16);
    assert_ne!(sessions[0]["id"], sessions[1]["id"]);

    let (status, _, body) = send(
        reqwest::Client::new()
            .delete(api(&app, &path))
            .bearer_auth(&key),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sessions_ended"], 2);
    assert!(!is_logged_in(&app, &laptop).await);
    assert!(!is_logged_in(&app, &phone).await);
    let (_, body) = get(&app, &key, &path).await;
    assert_eq!(body["sessions"], json!([]), "{body}");
    assert!(app
        .audit_kinds(&login)
        .await
        .contains(&"account.sessions_ended".to_owned()));
    // The account stays usable.
    let res = app.login_with(&laptop, &login, GOOD_PASSWORD, false).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Reading the account itself needs another scope.
    let (status, body) = get(&app, &key, &format!("/accounts/{login}")).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
}

#[tokio::test]
async fn a59_an_api_key_never_appears_in_the_logs_nor_the_audit_trail() {
    if std::env::var("TEST_LOG").is_ok() {
        eprintln!("skipped: logs go to the test output, not to the file this test reads");
        return;
    }
    let app = TestApp::spawn().await;
    let key = key_for(&app, "log-check", &ALL).await;
    let login = unique_login("logcheck");
    app.create_user(&login, GOOD_PASSWORD).await;
    let mut wrong = key.clone();
    wrong.pop();
    wrong.push('_');
    let (status, _) = get(&app, &key, &format!("/accounts/{login}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&app, &wrong, &format!("/accounts/{login}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(&app, &key, &format!("/accounts/{login}/block"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);

    let log_file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/test-logs")
        .join(format!("e2e-{}.log", std::process::id()));
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(
        log.contains(&format!("/admin/api/v1/accounts/{login}/block")),
        "the calls are in the log this test reads ({})",
        log_file.display()
    );
    let secret = key.rsplit_once('_').unwrap().1;
    assert!(!log.contains(secret), "the key's secret is in the log");
    assert!(!log.contains(&wrong), "a presented key is in the log");
    let trail =
        serde_json::to_string(&app.services.audit.recent(None, 10_000).await.unwrap()).unwrap();
    assert!(
        !trail.contains(secret),
        "the key's secret is in the audit trail"
    );
    assert!(trail.contains("api:log-check"));
}

/// The checked-in copy of the OpenAPI document (`make openapi` rewrites it).
fn checked_in_openapi() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/admin-api.openapi.json");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run make openapi", path.display()))
}

#[tokio::test]
async fn the_served_openapi_document_is_the_checked_in_one_and_describes_every_endpoint() {
    let app = TestApp::spawn().await;
    let (status, _, _) = send(reqwest::Client::new().get(api(&app, "/openapi.json"))).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "not described to strangers"
    );
    let key = key_for(&app, "docs", &[ApiScope::AccountsRead]).await;
    let res = reqwest::Client::new()
        .get(api(&app, "/openapi.json"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let served = res.text().await.unwrap();
    assert!(
        served == checked_in_openapi(),
        "docs/admin-api.openapi.json is not what Sesame serves: run make openapi and commit it"
    );
    let doc: Value = serde_json::from_str(&served).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/admin/api/v1/accounts", "post"),
        ("/admin/api/v1/accounts/{login}", "get"),
        ("/admin/api/v1/accounts/{login}", "patch"),
        ("/admin/api/v1/accounts/{login}/disable", "post"),
        ("/admin/api/v1/accounts/{login}/block", "post"),
        ("/admin/api/v1/accounts/{login}/unblock", "post"),
        ("/admin/api/v1/accounts/{login}/audit", "get"),
        ("/admin/api/v1/accounts/{login}/sessions", "get"),
        ("/admin/api/v1/accounts/{login}/sessions", "delete"),
        ("/admin/api/v1/imports", "post"),
        ("/admin/api/v1/accounts/{login}/reset-link", "post"),
        ("/admin/api/v1/accounts/{login}/activation-link", "post"),
        ("/admin/api/v1/helpdesk/requests", "get"),
        ("/admin/api/v1/helpdesk/requests/{reference}", "get"),
        ("/admin/api/v1/helpdesk/requests/{reference}/close", "post"),
        ("/admin/api/v1/accounts/{login}/second-factors", "get"),
        ("/admin/api/v1/accounts/{login}/second-factors", "delete"),
    ] {
        let operation = &paths[path][method];
        assert!(
            operation.is_object(),
            "{method} {path} in {:?}",
            paths.keys()
        );
        assert!(
            operation["security"][0]["api_key"].is_array(),
            "{method} {path}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a60_with_its_own_listener_the_api_is_not_served_on_the_public_one_and_can_be_switched_off()
{
    let admin_port = free_port();
    let app = TestApp::builder()
        .with(move |s| s.admin_api.listen = format!("127.0.0.1:{admin_port}"))
        .spawn()
        .await;
    let key = key_for(&app, "internal", &ALL).await;
    let login = unique_login("split");
    app.create_user(&login, GOOD_PASSWORD).await;
    let public = reqwest::Client::new()
        .get(api(&app, &format!("/accounts/{login}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::NOT_FOUND, "public listener");
    let internal = format!("http://127.0.0.1:{admin_port}/admin/api/v1/accounts/{login}");
    let (status, _, _) = send(reqwest::Client::new().get(&internal)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = send(reqwest::Client::new().get(&internal).bearer_auth(&key)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["login"], login.as_str());
    let (status, _, _) =
        send(reqwest::Client::new().get(format!("http://127.0.0.1:{admin_port}/cas/login"))).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "only the API on the admin listener"
    );

    let off = TestApp::builder()
        .with(|s| s.admin_api.enabled = false)
        .spawn()
        .await;
    let key = key_for(&off, "unused", &ALL).await;
    let res = reqwest::Client::new()
        .get(api(&off, "/openapi.json"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_made_listed_and_revoked_with_the_command_line() {
    let app = TestApp::spawn().await;
    let cli = Cli::for_app(&app);
    let login = unique_login("clikey");
    app.create_user(&login, GOOD_PASSWORD).await;

    let out = cli.run(
        &[
            "api-key",
            "create",
            "--name",
            "helpdesk-tool",
            "--scope",
            "accounts:read",
            "--scope",
            "sessions",
            "--expires",
            "30",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let key = String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_owned();
    assert!(key.starts_with("sesame_ak_"), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only time the key is shown"),
        "{}",
        text(&out)
    );
    let (status, body) = get(&app, &key, &format!("/accounts/{login}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let out = cli.run(&["api-key", "list"], None);
    assert!(out.status.success(), "{}", text(&out));
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let id = key
        .trim_start_matches("sesame_ak_")
        .split('_')
        .next()
        .unwrap();
    assert!(
        listing.contains(id) && listing.contains("active"),
        "{listing}"
    );
    assert!(listing.contains("accounts:read sessions"), "{listing}");
    assert!(!listing.contains(&key), "the list never shows a key");

    let out = cli.run(&["api-key", "revoke", id], None);
    assert!(out.status.success(), "{}", text(&out));
    let (status, _) = get(&app, &key, &format!("/accounts/{login}")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked at once");
    let out = cli.run(&["api-key", "list"], None);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("revoked"),
        "{}",
        text(&out)
    );

    let bad = cli.run(
        &["api-key", "create", "--name", "x", "--scope", "everything"],
        None,
    );
    assert!(!bad.status.success());
    assert!(text(&bad).contains("unknown scope"), "{}", text(&bad));
    let none = cli.run(&["api-key", "revoke", "nosuchkey"], None);
    assert!(!none.status.success());

    let audit = app.services.audit.recent(None, 1000).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.kind == "api_key.created" && e.actor == "cli"));
    assert!(audit
        .iter()
        .any(|e| e.kind == "api_key.revoked" && e.actor == "cli"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_disables_and_ends_sessions_through_the_same_operations_as_the_api() {
    let app = TestApp::spawn().await;
    let cli = Cli::for_app(&app);
    let login = unique_login("leaver");
    app.create_user(&login, GOOD_PASSWORD).await;

    let out = cli.run(&["account", "end-sessions", &login], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("session(s) ended"), "{}", text(&out));
    let out = cli.run(
        &[
            "account",
            "block",
            &login,
            "--reason",
            "other",
            "--note",
            "stolen laptop",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    // A person who leaves while blocked is disabled all the same.
    let out = cli.run(&["account", "disable", &login], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("disabled"), "{}", text(&out));
    assert_eq!(
        app.services
            .accounts
            .get(&LoginName::parse(&login).unwrap())
            .await
            .unwrap()
            .state,
        AccountState::Disabled
    );
    let events = app.services.audit.recent(Some(&login), 100).await.unwrap();
    assert!(events
        .iter()
        .any(|e| e.kind == "account.sessions_ended" && e.actor == "cli"));
    assert!(events
        .iter()
        .any(|e| e.kind == "account.blocked" && e.actor == "cli" && e.detail["reason"] == "other"));
}

/// The audit event of `kind` for `login` caused by `actor`, if there is one.
async fn audited(app: &TestApp, login: &str, kind: &str, actor: &str) -> bool {
    app.services
        .audit
        .recent(Some(login), 100)
        .await
        .unwrap()
        .iter()
        .any(|e| e.kind == kind && e.actor == actor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_link_goes_by_smtp_to_the_verified_recovery_address_only_and_is_audited() {
    let Some(smtp) = SmtpCatcher::start(None) else {
        return;
    };
    let port = smtp.port;
    let app = TestApp::builder()
        .with(move |s| {
            s.mail.transport = TransportKind::Smtp;
            s.mail.smtp_host = "127.0.0.1".to_owned();
            s.mail.smtp_port = port;
            s.mail.smtp_security = SmtpSecurity::None;
        })
        .spawn()
        .await;
    let login = unique_login("reset");
    let recovery = format!("{login}@gmail.example");
    app.create_provisioned(&login, Affiliation::Staff, Some((&recovery, true)))
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
    let writer = key_for(&app, "provisioning", &[ApiScope::AccountsWrite]).await;
    let helpdesk = key_for(&app, "helpdesk-tool", &[ApiScope::Helpdesk]).await;
    let path = format!("/accounts/{login}/reset-link");

    let (status, body) = post(&app, &writer, &path, &json!({})).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = post(
        &app,
        &helpdesk,
        "/accounts/nobody.here/reset-link",
        &json!({}),
    )
    .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");

    // No recovery address, an unverified one, an account that is not active: refused,
    // with the reason.
    let bare = unique_login("bare");
    app.create_user(&bare, GOOD_PASSWORD).await;
    let (status, body) = post(
        &app,
        &helpdesk,
        &format!("/accounts/{bare}/reset-link"),
        &json!({}),
    )
    .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "no_recovery_address");
    let unverified = unique_login("unverified");
    app.create_provisioned(
        &unverified,
        Affiliation::Staff,
        Some(("someone@gmail.example", false)),
    )
    .await;
    app.services
        .accounts
        .set_password(
            &LoginName::parse(&unverified).unwrap(),
            sesame_core::credentials::Password::new(GOOD_PASSWORD),
            "test",
        )
        .await
        .unwrap();
    let (status, body) = post(
        &app,
        &helpdesk,
        &format!("/accounts/{unverified}/reset-link"),
        &json!({}),
    )
    .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "no_recovery_address");
    assert!(
        body["detail"].as_str().unwrap().contains("not verified"),
        "{body}"
    );
    let newcomer = unique_login("newcomer");
    app.create_provisioned(
        &newcomer,
        Affiliation::Staff,
        Some(("new@gmail.example", true)),
    )
    .await;
    let (status, body) = post(
        &app,
        &helpdesk,
        &format!("/accounts/{newcomer}/reset-link"),
        &json!({}),
    )
    .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "bad_transition");
    app.deliver_mail().await;
    assert!(
        smtp.messages().is_empty(),
        "nothing was sent for the refusals"
    );

    let (status, body) = post(&app, &helpdesk, &path, &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["login"], login.as_str());
    assert_eq!(body["sent_to"], "r***@gmail.example");
    assert!(
        !body.to_string().contains("token"),
        "the link is not in the answer: {body}"
    );

    app.deliver_mail().await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let (envelope, mail) = &messages[0];
    assert_eq!(envelope["rcpt_tos"], json!([recovery]));
    let link = mail.link_to(&format!("{}/password/reset?token=", app.address));
    // The link works: it opens the new-password form.
    let page = browser().get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("type=\"password\""));
    assert!(
        audited(
            &app,
            &login,
            "recovery.reset_requested",
            "api:helpdesk-tool"
        )
        .await
    );
}

#[tokio::test]
async fn an_activation_link_is_sent_again_to_a_provisioned_account_and_refused_otherwise() {
    let app = TestApp::spawn().await;
    let key = key_for(&app, "helpdesk-tool", &[ApiScope::Helpdesk]).await;
    let reader = key_for(&app, "reader", &[ApiScope::AccountsRead]).await;
    let login = unique_login("newcomer");
    let recovery = format!("{login}@gmail.example");
    app.create_provisioned(&login, Affiliation::Staff, Some((&recovery, false)))
        .await;
    let path = format!("/accounts/{login}/activation-link");

    let (status, body) = post(&app, &reader, &path, &json!({})).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    let (status, body) = post(
        &app,
        &key,
        "/accounts/nobody.here/activation-link",
        &json!({}),
    )
    .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");
    let active = unique_login("active");
    app.create_user(&active, GOOD_PASSWORD).await;
    let (status, body) = post(
        &app,
        &key,
        &format!("/accounts/{active}/activation-link"),
        &json!({}),
    )
    .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "bad_transition");
    let pupil = unique_login("pupil");
    app.create_provisioned(&pupil, Affiliation::Pupil, Some(("p@gmail.example", false)))
        .await;
    let (status, body) = post(
        &app,
        &key,
        &format!("/accounts/{pupil}/activation-link"),
        &json!({}),
    )
    .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "bad_transition");

    let (status, body) = post(&app, &key, &path, &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mails = app.mails_to(&recovery).await;
    assert_eq!(mails.len(), 1);
    mails[0].link_to(&format!("{}/activation/link?token=", app.address));
    assert!(audited(&app, &login, "activation.link_sent", "api:helpdesk-tool").await);
}

/// Sends an assistance request through the desk, as the public form does.
async fn assistance_request(app: &TestApp, institutional: &str, description: &str) -> String {
    let form = sesame_lifecycle::helpdesk::assistance::AssistanceForm {
        name: "Someone".to_owned(),
        account: institutional.to_owned(),
        personal_email: "someone@gmail.example".to_owned(),
        phone: "06 12 34 56 78".to_owned(),
        number: "SOM 4711".to_owned(),
        description: description.to_owned(),
        ..Default::default()
    };
    let checked = sesame_lifecycle::helpdesk::assistance::check(&form).unwrap();
    app.services
        .helpdesk
        .assistance
        .submit(checked, sesame_core::i18n::Lang::Fr, None)
        .await
        .unwrap()
        .reference
}

#[tokio::test]
async fn helpdesk_requests_are_listed_by_status_read_and_closed_with_a_note() {
    let app = TestApp::spawn().await;
    let key = key_for(&app, "helpdesk-tool", &[ApiScope::Helpdesk]).await;
    let other = key_for(
        &app,
        "other",
        &[ApiScope::AccountsRead, ApiScope::AccountsWrite],
    )
    .await;
    let login = unique_login("asker");
    app.create_user(&login, GOOD_PASSWORD).await;
    let first = assistance_request(&app, &format!("{login}@univ.example.org"), "Bloqué.").await;
    let second = assistance_request(&app, "stranger@univ.example.org", "Perdu.\nAidez-moi.").await;

    let (status, body) = get(&app, &other, "/helpdesk/requests").await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");

    let (status, body) = get(&app, &key, &format!("/helpdesk/requests/{first}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "open");
    assert_eq!(body["account_login"], login.as_str());
    assert_eq!(body["description"], "Bloqué.");
    let (status, body) = get(&app, &key, "/helpdesk/requests/AS-NOSUCH99").await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");

    let (status, body) = post(
        &app,
        &key,
        &format!("/helpdesk/requests/{}/close", second.to_lowercase()),
        &json!({"note": "rappelé, mot de passe réinitialisé"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"reference": second, "newly_closed": true}));
    let (status, body) = post(
        &app,
        &key,
        &format!("/helpdesk/requests/{second}/close"),
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["newly_closed"], false);
    let (status, body) = post(
        &app,
        &key,
        "/helpdesk/requests/AS-NOSUCH99/close",
        &json!({}),
    )
    .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "not_found");

    let references = |body: &Value| -> Vec<String> {
        body["requests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reference"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, open) = get(&app, &key, "/helpdesk/requests").await;
    assert_eq!(references(&open), vec![first.clone()]);
    let (_, closed) = get(&app, &key, "/helpdesk/requests?status=closed").await;
    assert_eq!(references(&closed), vec![second.clone()]);
    assert_eq!(
        closed["requests"][0]["closure"]["closed_by"],
        "api:helpdesk-tool"
    );
    assert_eq!(
        closed["requests"][0]["closure"]["note"],
        "rappelé, mot de passe réinitialisé"
    );
    let (_, all) = get(&app, &key, "/helpdesk/requests?status=all").await;
    assert_eq!(references(&all).len(), 2);
    let (status, body) = get(&app, &key, "/helpdesk/requests?status=pending").await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST, "bad_request");

    let closed_events: Vec<_> = app
        .services
        .audit
        .recent(None, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "assistance.closed")
        .collect();
    assert_eq!(closed_events.len(), 1, "a second close records nothing");
    assert_eq!(closed_events[0].actor, "api:helpdesk-tool");
    assert_eq!(closed_events[0].detail["reference"], second.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_sends_an_activation_link_through_the_same_operation_as_the_api() {
    let app = TestApp::spawn().await;
    let cli = Cli::for_app(&app);
    let newcomer = unique_login("newcomer");
    let newcomer_mail = format!("{newcomer}@gmail.example");
    app.create_provisioned(&newcomer, Affiliation::Staff, Some((&newcomer_mail, false)))
        .await;
    let active = unique_login("active");
    app.create_user(&active, GOOD_PASSWORD).await;

    // Not provisioned: refused with the reason, as the API does.
    let out = cli.run(&["account", "activation-link", &active], None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("is active"), "{}", text(&out));

    let out = cli.run(&["account", "activation-link", &newcomer], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("n***@gmail.example"), "{}", text(&out));
    // The server's mail worker sends it once the test clock has caught up with the
    // command's real one.
    app.clock.advance(time::Duration::seconds(60));
    let mails = app.mails_to(&newcomer_mail).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].text.contains("/activation/link?token="),
        "{}",
        mails[0].text
    );
    assert!(audited(&app, &newcomer, "activation.link_sent", "cli").await);
}

#[tokio::test]
async fn a_login_that_is_another_accounts_email_or_an_email_that_is_another_accounts_login_is_a_409(
) {
    let app = TestApp::spawn().await;
    let key = key_for(&app, "provisioning", &ALL).await;
    // Jean: login jean.dupont.<x>, e-mail jean.dupont.<x>@univ.example.org.
    let jean = unique_login("jean.dupont");
    app.create_user(&jean, GOOD_PASSWORD).await;
    let jean_email = format!("{jean}@univ.example.org");

    // Jean's e-mail as the login of a new account: it would take what Jean types at login.
    let (status, body) = post(
        &app,
        &key,
        "/accounts",
        &json!({"login": jean_email, "given_name": "X", "family_name": "Y", "affiliation": "staff"}),
    )
    .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("login is already the email of another account"),
        "{body}"
    );
    // An address made the login of one account, then asked as another's e-mail (another
    // case, the same folded string).
    let other = unique_login("autre");
    let squatted = format!("{other}@univ.example.org");
    let (status, body) = post(
        &app,
        &key,
        "/accounts",
        &json!({"login": squatted, "given_name": "X", "family_name": "Y", "affiliation": "staff"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = post(
        &app,
        &key,
        "/accounts",
        &json!({"login": other, "email": squatted.to_uppercase(), "given_name": "X", "family_name": "Y", "affiliation": "staff"}),
    )
    .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "conflict");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("email is already the login of another account"),
        "{body}"
    );
    assert!(app
        .services
        .accounts_repo
        .find_by_login(&LoginName::parse(&other).unwrap())
        .await
        .unwrap()
        .is_none());

    // An update giving Jean's e-mail the other account's login: 409, nothing changed.
    let (status, _, body) = send(
        reqwest::Client::new()
            .patch(api(&app, &format!("/accounts/{jean}")))
            .bearer_auth(&key)
            .json(&json!({"email": squatted, "family_name": "Changed"})),
    )
    .await;
    assert_problem(status, &body, StatusCode::CONFLICT, "conflict");
    let (_, body) = get(&app, &key, &format!("/accounts/{jean}")).await;
    assert_eq!(body["email"], jean_email.as_str(), "{body}");
    assert_eq!(body["family_name"], "Person", "{body}");
    // At the login page, Jean's e-mail still leads to Jean.
    assert_eq!(
        app.login_with(&browser(), &jean_email, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
}
