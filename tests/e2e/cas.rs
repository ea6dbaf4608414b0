//! CAS protocol 1.0 / 2.0 / 3.0 against the real server (security spec A08–A18, A44, A61,
//! C04, C10).

use futures::future::join_all;
use sesame_tests::{
    browser, cas_service, set_cookies, unique_login, RecordingServer, TestApp, GOOD_PASSWORD,
};
use time::Duration;

const APP: &str = "https://app.example.org/moodle/";
const OTHER: &str = "https://mail.example.org/";

async fn cas_app() -> TestApp {
    TestApp::builder()
        .with(|s| {
            s.cas.services.push(cas_service(
                "moodle",
                APP,
                "attributes = [\"mail\", \"givenName\", \"sn\", \"eduPersonAffiliation\", \"eduPersonPrincipalName\", \"supannAliasLogin\"]",
            ));
            s.cas.services.push(cas_service("webmail", OTHER, ""));
        })
        .spawn()
        .await
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn ticket_of(location: &str) -> String {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "ticket")
        .unwrap()
        .1
        .into_owned()
}

/// Logs in through `/cas/login?service=…` with `client` and returns the service ticket.
async fn login_for_service(
    app: &TestApp,
    client: &reqwest::Client,
    login: &str,
    service: &str,
) -> String {
    let page = client
        .get(format!(
            "{}/cas/login?service={}",
            app.address,
            enc(service)
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lt = sesame_tests::extract_lt(&page).expect("a login form");
    let expected_name = if service.starts_with(APP) {
        Some("moodle")
    } else {
        None
    };
    if let Some(name) = expected_name {
        assert!(
            page.contains(&format!("<strong id=\"service-name\">{name}</strong>")),
            "{page}"
        );
    }
    let res = client
        .post(format!(
            "{}/cas/login?service={}",
            app.address,
            enc(service)
        ))
        .form(&[
            ("lt", lt.as_str()),
            ("username", login),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "credentials POST answers 303");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(service), "{location}");
    ticket_of(&location)
}

async fn validate(app: &TestApp, path: &str, service: &str, ticket: &str) -> String {
    reqwest::Client::new()
        .get(format!(
            "{}{path}?service={}&ticket={}",
            app.address,
            enc(service),
            enc(ticket)
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Parses a CAS XML response strictly and returns (success user, failure code).
fn outcome(xml: &str) -> (Option<String>, Option<String>) {
    let doc = roxmltree::Document::parse(xml)
        .unwrap_or_else(|e| panic!("not well-formed XML ({e}): {xml}"));
    let user = doc
        .descendants()
        .find(|n| n.tag_name().name() == "user")
        .and_then(|n| n.text())
        .map(str::to_owned);
    let code = doc
        .descendants()
        .find(|n| n.tag_name().name() == "authenticationFailure")
        .and_then(|n| n.attribute("code"))
        .map(str::to_owned);
    (user, code)
}

fn attribute(xml: &str, name: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .find(|n| n.tag_name().name() == name)
        .and_then(|n| n.text())
        .map(str::to_owned)
}

#[tokio::test]
async fn a_person_logs_in_for_a_service_which_validates_the_ticket_once() {
    let app = cas_app().await;
    let login = unique_login("cas");
    app.create_user(&login, GOOD_PASSWORD).await;
    let service = format!("{APP}login/index.php?id=3");
    let st = login_for_service(&app, &app.client, &login, &service).await;
    assert!(st.starts_with("ST-") && st.len() >= 30, "{st}");

    let xml = validate(&app, "/cas/p3/serviceValidate", &service, &st).await;
    assert_eq!(outcome(&xml), (Some(login.clone()), None), "{xml}");
    assert_eq!(
        attribute(&xml, "mail").as_deref(),
        Some(format!("{login}@univ.example.org").as_str())
    );
    assert_eq!(
        attribute(&xml, "eduPersonAffiliation").as_deref(),
        Some("staff")
    );
    assert_eq!(attribute(&xml, "isFromNewLogin").as_deref(), Some("true"));
    assert_eq!(
        attribute(&xml, "longTermAuthenticationRequestTokenUsed").as_deref(),
        Some("false")
    );
    // How the session was authenticated comes from the session: the password.
    assert_eq!(
        attribute(&xml, "authenticationMethod").as_deref(),
        Some("pwd")
    );
    assert_eq!(
        attribute(&xml, "successfulAuthenticationHandlers").as_deref(),
        Some("SesamePwdAuthenticationHandler")
    );

    for path in [
        "/cas/p3/serviceValidate",
        "/cas/serviceValidate",
        "/cas/validate",
    ] {
        let again = validate(&app, path, &service, &st).await;
        if path == "/cas/validate" {
            assert_eq!(again, "no\n\n");
        } else {
            assert_eq!(
                outcome(&again).1.as_deref(),
                Some("INVALID_TICKET"),
                "{path}: {again}"
            );
        }
    }
}

#[tokio::test]
async fn single_sign_on_gives_a_second_service_a_ticket_without_credentials() {
    let app = cas_app().await;
    let login = unique_login("sso");
    app.create_user(&login, GOOD_PASSWORD).await;
    login_for_service(&app, &app.client, &login, APP).await;

    let res = app
        .client
        .get(format!("{}/cas/login?service={}", app.address, enc(OTHER)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let st = ticket_of(res.headers()["location"].to_str().unwrap());
    // CAS 2.0 has no attributes; CAS 1.0 answers yes.
    let xml = validate(&app, "/cas/serviceValidate", OTHER, &st).await;
    assert_eq!(outcome(&xml).0.as_deref(), Some(login.as_str()));
    assert!(!xml.contains("<cas:attributes>"), "{xml}");

    // renew=true asks for credentials again, and an SSO ticket does not satisfy it (A15).
    let res = app
        .client
        .get(format!(
            "{}/cas/login?service={}&renew=true",
            app.address,
            enc(OTHER)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("name=\"lt\""));
    let res = app
        .client
        .get(format!("{}/cas/login?service={}", app.address, enc(OTHER)))
        .send()
        .await
        .unwrap();
    let st = ticket_of(res.headers()["location"].to_str().unwrap());
    let xml = reqwest::get(format!(
        "{}/cas/serviceValidate?service={}&ticket={st}&renew=true",
        app.address,
        enc(OTHER)
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(outcome(&xml).1.as_deref(), Some("INVALID_TICKET"), "{xml}");
}

#[tokio::test]
async fn cas_1_validate_answers_yes_then_no() {
    let app = cas_app().await;
    let login = unique_login("v1");
    app.create_user(&login, GOOD_PASSWORD).await;
    let st = login_for_service(&app, &app.client, &login, OTHER).await;
    assert_eq!(
        validate(&app, "/cas/validate", OTHER, &st).await,
        format!("yes\n{login}\n")
    );
    assert_eq!(validate(&app, "/cas/validate", OTHER, &st).await, "no\n\n");
}

#[tokio::test]
async fn json_format_is_available_and_escapes_what_it_echoes() {
    let app = cas_app().await;
    let login = unique_login("json");
    app.create_user(&login, GOOD_PASSWORD).await;
    let st = login_for_service(&app, &app.client, &login, APP).await;
    let body: serde_json::Value = reqwest::get(format!(
        "{}/cas/p3/serviceValidate?service={}&ticket={st}&format=JSON",
        app.address,
        enc(APP)
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        body["serviceResponse"]["authenticationSuccess"]["user"],
        login.as_str()
    );
    let evil = "ST-1\"}},\"authenticationSuccess\":{\"user\":\"admin";
    let body: serde_json::Value = reqwest::get(format!(
        "{}/cas/p3/serviceValidate?service={}&ticket={}&format=JSON",
        app.address,
        enc(APP),
        enc(evil)
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(
        body["serviceResponse"]["authenticationSuccess"].is_null(),
        "{body}"
    );
    assert!(body["serviceResponse"]["authenticationFailure"]["code"].is_string());
}

#[tokio::test]
async fn a09_unregistered_and_look_alike_services_get_no_ticket_and_no_redirect() {
    let app = cas_app().await;
    let login = unique_login("evil");
    app.create_user(&login, GOOD_PASSWORD).await;
    app.login(&login, GOOD_PASSWORD).await; // an SSO session exists: still nothing for them
    for service in [
        "https://evil.example/",
        "https://app.example.org.evil.com/moodle/",
        "https://app.example.org@evil.com/moodle/",
        "https://a@b@evil.com/moodle/",
        "//evil.com/moodle/",
        "https:/\\evil.com/moodle/",
        "https://app.example.org/moodle/../admin",
        "https://app.example.org/moodle/%2E%2E/admin",
        "https://app.example.org/moodle/%252E%252E/admin",
        "https://app.example.org/moodle/..;/admin",
        "https://app.example.org/moodle/\tx",
        "https://app.example.org/moodle/\nx",
        "javascript:alert(1)//app.example.org/moodle/",
        "data:text/html,app.example.org/moodle/",
        "http://app.example.org/moodle/",
        "https://app.example.org/moodle2/",
    ] {
        let res = app
            .client
            .get(format!(
                "{}/cas/login?service={}",
                app.address,
                enc(service)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{service:?}");
        assert!(res.headers().get("location").is_none(), "{service:?}");
        assert!(!res.text().await.unwrap().contains("ST-"), "{service:?}");
    }
}

#[tokio::test]
async fn a11_a_ticket_for_one_service_fails_for_another_and_is_burned() {
    let app = cas_app().await;
    let login = unique_login("swap");
    app.create_user(&login, GOOD_PASSWORD).await;
    let st = login_for_service(&app, &app.client, &login, APP).await;
    let xml = validate(&app, "/cas/serviceValidate", OTHER, &st).await;
    assert_eq!(outcome(&xml).1.as_deref(), Some("INVALID_SERVICE"), "{xml}");
    let xml = validate(&app, "/cas/serviceValidate", APP, &st).await;
    assert_eq!(outcome(&xml).1.as_deref(), Some("INVALID_TICKET"), "{xml}");
}

#[tokio::test]
async fn a13_a_ticket_expires_after_ten_seconds() {
    let app = cas_app().await;
    let login = unique_login("expiry");
    app.create_user(&login, GOOD_PASSWORD).await;
    let st = login_for_service(&app, &app.client, &login, APP).await;
    app.clock.advance(Duration::seconds(11));
    let xml = validate(&app, "/cas/serviceValidate", APP, &st).await;
    assert_eq!(outcome(&xml).1.as_deref(), Some("INVALID_TICKET"), "{xml}");
}

#[tokio::test]
async fn a17_injected_markup_in_a_ticket_comes_out_escaped() {
    let app = cas_app().await;
    let evil = "ST-1</cas:authenticationFailure><cas:authenticationSuccess><cas:user>admin</cas:user></cas:authenticationSuccess><x>";
    let xml = validate(&app, "/cas/serviceValidate", APP, evil).await;
    let (user, code) = outcome(&xml);
    assert_eq!(user, None, "{xml}");
    assert!(code.is_some(), "{xml}");
}

#[tokio::test]
async fn gateway_without_a_session_returns_to_the_service_without_a_ticket() {
    let app = cas_app().await;
    let res = browser()
        .get(format!(
            "{}/cas/login?service={}&gateway=true",
            app.address,
            enc(APP)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], APP);
}

#[tokio::test]
async fn method_post_hands_the_ticket_over_in_a_form() {
    let app = cas_app().await;
    let login = unique_login("post");
    app.create_user(&login, GOOD_PASSWORD).await;
    login_for_service(&app, &app.client, &login, APP).await;
    let res = app
        .client
        .get(format!(
            "{}/cas/login?service={}&method=POST",
            app.address,
            enc(OTHER)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        html.contains("method=\"post\"") && html.contains("name=\"ticket\" value=\"ST-"),
        "{html}"
    );
}

#[tokio::test]
async fn remember_me_is_flagged_to_the_service() {
    let app = cas_app().await;
    let login = unique_login("longterm");
    app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    app.login_with(&client, &login, GOOD_PASSWORD, true).await;
    let res = client
        .get(format!("{}/cas/login?service={}", app.address, enc(APP)))
        .send()
        .await
        .unwrap();
    let st = ticket_of(res.headers()["location"].to_str().unwrap());
    let xml = validate(&app, "/cas/p3/serviceValidate", APP, &st).await;
    assert_eq!(
        attribute(&xml, "longTermAuthenticationRequestTokenUsed").as_deref(),
        Some("true"),
        "{xml}"
    );
    assert_eq!(
        attribute(&xml, "isFromNewLogin").as_deref(),
        Some("false"),
        "{xml}"
    );
}

/// An application that records what it receives (its base URL), registered as the service
/// `rp`, and a Sesame that knows it.
async fn app_with_recording_service() -> (RecordingServer, String, TestApp) {
    let rp = RecordingServer::start().await;
    let rp_base = format!("{}/", rp.base);
    let app = TestApp::builder()
        .with({
            let rp_base = rp_base.clone();
            move |s| s.cas.services.push(cas_service("rp", &rp_base, ""))
        })
        .spawn()
        .await;
    (rp, rp_base, app)
}

/// The bodies of the single-logout requests (POSTs) `rp` received: once one has arrived, a
/// moment more for any other to arrive too.
async fn logout_requests(rp: &RecordingServer) -> Vec<String> {
    rp.wait_for(1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    rp.requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.body)
        .collect()
}

#[tokio::test]
async fn a44_logout_kills_unvalidated_tickets_and_notifies_services() {
    let (rp, rp_base, app) = app_with_recording_service().await;
    let login = unique_login("slo");
    app.create_user(&login, GOOD_PASSWORD).await;
    let first = login_for_service(&app, &app.client, &login, &rp_base).await;
    let xml = validate(&app, "/cas/serviceValidate", &rp_base, &first).await;
    assert!(outcome(&xml).0.is_some());
    let res = app
        .client
        .get(format!(
            "{}/cas/login?service={}",
            app.address,
            enc(&rp_base)
        ))
        .send()
        .await
        .unwrap();
    let pending = ticket_of(res.headers()["location"].to_str().unwrap());

    let res = app
        .client
        .get(format!(
            "{}/cas/logout?service={}",
            app.address,
            enc(&rp_base)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "back to the registered service");
    assert_eq!(res.headers()["location"], rp_base.as_str());
    let xml = validate(&app, "/cas/serviceValidate", &rp_base, &pending).await;
    assert_eq!(
        outcome(&xml).1.as_deref(),
        Some("INVALID_TICKET"),
        "no ticket outlives its session: {xml}"
    );

    // The service's latest ticket is its session to end (as Apereo CAS tracks only the most
    // recent session per service): one logout request, for the second ticket.
    let received = logout_requests(&rp).await;
    assert_eq!(
        received.len(),
        1,
        "one logout request per service: {received:?}"
    );
    let body = &received[0];
    assert!(
        body.contains("logoutRequest=") && body.contains(&enc(&pending)),
        "{body}"
    );
    assert!(!body.contains(&enc(&first)), "{body}");
}

#[tokio::test]
async fn a79_a_session_minting_tickets_for_one_application_keeps_one_logout_record() {
    let (rp, rp_base, app) = app_with_recording_service().await;
    let login = unique_login("mint");
    app.create_user(&login, GOOD_PASSWORD).await;
    let mut tickets = vec![login_for_service(&app, &app.client, &login, &rp_base).await];
    for page in 0..30 {
        // One application, whatever page it asks to come back to.
        let service = format!("{rp_base}?page={page}");
        let res = app
            .client
            .get(format!(
                "{}/cas/login?service={}",
                app.address,
                enc(&service)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302);
        tickets.push(ticket_of(res.headers()["location"].to_str().unwrap()));
    }
    let res = app
        .client
        .get(format!("{}/cas/logout", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let bodies = logout_requests(&rp).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let latest = tickets.last().unwrap();
    assert!(bodies[0].contains(&enc(latest)), "{bodies:?}");
}

#[tokio::test]
async fn a10_logout_never_redirects_to_an_unregistered_url() {
    let app = cas_app().await;
    for query in [
        "service=https%3A%2F%2Fevil.example%2F",
        "url=https%3A%2F%2Fevil.example%2F",
    ] {
        let res = browser()
            .get(format!("{}/cas/logout?{query}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{query}");
        assert!(res.headers().get("location").is_none());
    }
}

#[tokio::test]
async fn proxy_tickets_work_through_a_verified_callback_and_only_where_allowed() {
    let rp = RecordingServer::start().await;
    let rp_base = format!("{}/", rp.base);
    let app = TestApp::builder()
        .with({
            let rp_base = rp_base.clone();
            move |s| {
                s.cas
                    .services
                    .push(cas_service("portal", &rp_base, "allow_proxy = true"));
                s.cas.services.push(cas_service("webmail", OTHER, ""));
                s.cas.proxy_callback_http_hosts = vec!["127.0.0.1".to_owned()];
            }
        })
        .spawn()
        .await;
    let login = unique_login("proxy");
    app.create_user(&login, GOOD_PASSWORD).await;
    let st = login_for_service(&app, &app.client, &login, &rp_base).await;
    let pgt_url = format!("{rp_base}pgtCallback");
    let xml = reqwest::get(format!(
        "{}/cas/serviceValidate?service={}&ticket={st}&pgtUrl={}",
        app.address,
        enc(&rp_base),
        enc(&pgt_url)
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let iou = attribute(&xml, "proxyGrantingTicket").expect("a PGT IOU");
    let callback = rp
        .wait_for(1)
        .await
        .into_iter()
        .find(|r| r.target.contains("pgtIou"))
        .expect("callback");
    let cb = url::Url::parse(&format!("http://x{}", callback.target)).unwrap();
    let pairs: std::collections::HashMap<_, _> = cb.query_pairs().into_owned().collect();
    assert_eq!(pairs["pgtIou"], iou);
    let pgt = pairs["pgtId"].clone();
    assert!(pgt.starts_with("PGT-"));

    let xml = reqwest::get(format!(
        "{}/cas/proxy?pgt={pgt}&targetService={}",
        app.address,
        enc(OTHER)
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let pt = attribute(&xml, "proxyTicket").expect("a proxy ticket");
    assert!(pt.starts_with("PT-"));
    // A proxy ticket is refused where only service tickets are accepted (A14)…
    let refused = validate(&app, "/cas/serviceValidate", OTHER, &pt).await;
    assert!(outcome(&refused).1.is_some(), "{refused}");
    // …and since that attempt burned nothing, a fresh one validates at /proxyValidate with the chain.
    let xml = reqwest::get(format!(
        "{}/cas/proxy?pgt={pgt}&targetService={}",
        app.address,
        enc(OTHER)
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let pt = attribute(&xml, "proxyTicket").unwrap();
    let xml = validate(&app, "/cas/proxyValidate", OTHER, &pt).await;
    assert_eq!(outcome(&xml).0.as_deref(), Some(login.as_str()), "{xml}");
    assert_eq!(
        attribute(&xml, "proxy").as_deref(),
        Some(pgt_url.as_str()),
        "{xml}"
    );
}

#[tokio::test]
async fn a16_a_callback_to_an_unacceptable_url_gets_no_proxy_granting_ticket() {
    let app = TestApp::builder()
        .with(|s| {
            s.cas.services.push(cas_service(
                "portal",
                "https://portal.example.org/",
                "allow_proxy = true",
            ))
        })
        .spawn()
        .await;
    let login = unique_login("pgtbad");
    app.create_user(&login, GOOD_PASSWORD).await;
    for pgt_url in [
        "http://portal.example.org/cb",
        "https://127.0.0.1/cb",
        "https://169.254.169.254/latest",
        "https://10.0.0.1/cb",
        "https://evil.example/cb",
    ] {
        let st = login_for_service(&app, &browser(), &login, "https://portal.example.org/").await;
        let xml = reqwest::get(format!(
            "{}/cas/serviceValidate?service={}&ticket={st}&pgtUrl={}",
            app.address,
            enc("https://portal.example.org/"),
            enc(pgt_url)
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        assert!(
            attribute(&xml, "proxyGrantingTicket").is_none(),
            "{pgt_url}: {xml}"
        );
        assert_eq!(
            outcome(&xml).1.as_deref(),
            Some("INVALID_PROXY_CALLBACK"),
            "{pgt_url}: {xml}"
        );
    }
}

#[tokio::test]
async fn a18_saml_validate_accepts_a_ticket_and_refuses_entities() {
    let app = cas_app().await;
    let login = unique_login("saml");
    app.create_user(&login, GOOD_PASSWORD).await;
    let st = login_for_service(&app, &app.client, &login, APP).await;
    let envelope = |artifact: &str| {
        format!(
            "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Header/><SOAP-ENV:Body>\
             <samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\" MajorVersion=\"1\" MinorVersion=\"1\" RequestID=\"_1\" IssueInstant=\"2026-11-22T10:00:00Z\">\
             <samlp:AssertionArtifact>{artifact}</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"
        )
    };
    let post = |body: String| {
        reqwest::Client::new()
            .post(format!(
                "{}/cas/samlValidate?TARGET={}",
                app.address,
                enc(APP)
            ))
            .header("Content-Type", "text/xml")
            .body(body)
            .send()
    };
    let xml = post(envelope(&st)).await.unwrap().text().await.unwrap();
    assert!(
        xml.contains("samlp:Success") && xml.contains(&login),
        "{xml}"
    );
    let again = post(envelope(&st)).await.unwrap().text().await.unwrap();
    assert!(!again.contains("samlp:Success"), "{again}");

    let xxe = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
        envelope("&xxe;")
    );
    let res = post(xxe).await.unwrap().text().await.unwrap();
    assert!(
        !res.contains("samlp:Success") && !res.contains("root:"),
        "{res}"
    );
}

#[tokio::test]
async fn c04_a_hundred_concurrent_validations_of_one_ticket_succeed_once() {
    let app = cas_app().await;
    let sibling = if sesame_tests::backend() == sesame_tests::Backend::Production {
        Some(app.spawn_sibling().await)
    } else {
        None
    };
    let login = unique_login("race");
    app.create_user(&login, GOOD_PASSWORD).await;
    let st = login_for_service(&app, &app.client, &login, APP).await;
    let validations = (0..100).map(|i| {
        let target = match (&sibling, i % 2) {
            (Some(b), 1) => b,
            _ => &app,
        };
        validate(target, "/cas/serviceValidate", APP, &st)
    });
    let results = join_all(validations).await;
    let successes = results.iter().filter(|x| outcome(x).0.is_some()).count();
    let invalid = results
        .iter()
        .filter(|x| outcome(x).1.as_deref() == Some("INVALID_TICKET"))
        .count();
    assert_eq!((successes, invalid), (1, 99));
}

#[tokio::test]
async fn a_blocked_account_tickets_stop_validating() {
    let app = cas_app().await;
    let login = unique_login("blockst");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let st = login_for_service(&app, &app.client, &login, APP).await;
    app.services
        .blocking
        .block(&account.login, "test")
        .await
        .unwrap();
    let xml = validate(&app, "/cas/serviceValidate", APP, &st).await;
    assert_eq!(outcome(&xml).1.as_deref(), Some("INVALID_TICKET"), "{xml}");
    assert!(set_cookies(&app.login(&login, GOOD_PASSWORD).await).is_empty());
}

#[tokio::test]
async fn every_validation_error_code_is_reachable() {
    let app = TestApp::builder()
        .with(|s| {
            s.cas.services.push(cas_service("moodle", APP, ""));
            s.cas.services.push(cas_service("webmail", OTHER, ""));
        })
        .spawn()
        .await;
    let login = unique_login("codes");
    app.create_user(&login, GOOD_PASSWORD).await;
    let code = |xml: String| outcome(&xml).1;

    // INVALID_REQUEST: a required parameter is missing.
    let xml = reqwest::get(format!(
        "{}/cas/serviceValidate?service={}",
        app.address,
        enc(APP)
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(code(xml).as_deref(), Some("INVALID_REQUEST"));
    // INVALID_TICKET_SPEC: not a service ticket at all.
    let xml = validate(&app, "/cas/serviceValidate", APP, "PGT-123456").await;
    assert_eq!(code(xml).as_deref(), Some("INVALID_TICKET_SPEC"));
    // INVALID_TICKET: well-formed but unknown.
    let xml = validate(
        &app,
        "/cas/serviceValidate",
        APP,
        "ST-0123456789abcdefghijklmnopqrstuvwxyz",
    )
    .await;
    assert_eq!(code(xml).as_deref(), Some("INVALID_TICKET"));
    // UNAUTHORIZED_SERVICE_PROXY: a pgtUrl from a service that may not proxy.
    let st = login_for_service(&app, &browser(), &login, APP).await;
    let xml = reqwest::get(format!(
        "{}/cas/serviceValidate?service={}&ticket={st}&pgtUrl={}",
        app.address,
        enc(APP),
        enc(&format!("{APP}cb"))
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(code(xml).as_deref(), Some("UNAUTHORIZED_SERVICE_PROXY"));
    // /proxy: unknown PGT, and an unregistered target.
    let xml = reqwest::get(format!(
        "{}/cas/proxy?pgt=PGT-nope&targetService={}",
        app.address,
        enc(OTHER)
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        xml.contains("proxyFailure") && !xml.contains("proxySuccess"),
        "{xml}"
    );
    let xml = reqwest::get(format!(
        "{}/cas/proxy?pgt=PGT-nope&targetService={}",
        app.address,
        enc("https://evil.example/")
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(xml.contains("UNAUTHORIZED_SERVICE"), "{xml}");
    // A repeated parameter is refused outright (A57).
    let res = reqwest::get(format!(
        "{}/cas/serviceValidate?service={}&service={}&ticket=ST-1",
        app.address,
        enc(APP),
        enc(OTHER)
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn c09_fifty_services_on_two_instances_all_get_single_logout() {
    let rp = RecordingServer::start().await;
    let rp_base = format!("{}/", rp.base);
    let a = TestApp::builder()
        .with({
            let rp_base = rp_base.clone();
            move |s| s.cas.services.push(cas_service("apps", &rp_base, ""))
        })
        .spawn()
        .await;
    let b = if sesame_tests::backend() == sesame_tests::Backend::Production {
        Some(a.spawn_sibling().await)
    } else {
        None
    };
    let login = unique_login("fifty");
    a.create_user(&login, GOOD_PASSWORD).await;
    let res = a.login(&login, GOOD_PASSWORD).await;
    let cookie = set_cookies(&res)[0].split(';').next().unwrap().to_owned();
    let logins = (0..50).map(|i| {
        let target = match (&b, i % 2) {
            (Some(b), 1) => b,
            _ => &a,
        };
        let service = format!("{rp_base}app{i}/");
        let cookie = cookie.clone();
        async move {
            let res = browser()
                .get(format!(
                    "{}/cas/login?service={}",
                    target.address,
                    enc(&service)
                ))
                .header("Cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 302);
        }
    });
    join_all(logins).await;
    let res = browser()
        .get(format!("{}/cas/logout", a.address))
        .header("Cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let received = rp.wait_for(50).await;
    let mut paths: Vec<_> = received
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.target.clone())
        .collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 50, "one logout request per service, none lost");
}

#[tokio::test]
async fn an_https_proxy_callback_is_called_only_when_its_certificate_verifies() {
    let (rp, ca_pem) = RecordingServer::start_tls().await;
    let rp_base = format!("{}/", rp.base);
    let ca_file = std::env::temp_dir().join(format!(
        "sesame-ca-{}.pem",
        sesame_core::random::alphanumeric(8)
    ));
    std::fs::write(&ca_file, &ca_pem).unwrap();
    let trusting = |trust: bool| {
        let rp_base = rp_base.clone();
        let ca = ca_file.display().to_string();
        move |s: &mut sesame_server::config::Settings| {
            s.cas
                .services
                .push(cas_service("portal", &rp_base, "allow_proxy = true"));
            // localhost resolves to loopback: allowed for this host only; https still required.
            s.cas.proxy_callback_internal_hosts = vec!["localhost".to_owned()];
            if trust {
                s.cas.proxy_callback_ca_file = ca;
            }
        }
    };
    let pgt_url = format!("{rp_base}pgtCallback");
    for trust in [false, true] {
        let app = TestApp::builder().with(trusting(trust)).spawn().await;
        let login = unique_login("tlscb");
        app.create_user(&login, GOOD_PASSWORD).await;
        let st = login_for_service(&app, &browser(), &login, &rp_base).await;
        let xml = reqwest::get(format!(
            "{}/cas/proxyValidate?service={}&ticket={st}&pgtUrl={}",
            app.address,
            enc(&rp_base),
            enc(&pgt_url)
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        if trust {
            let iou = attribute(&xml, "proxyGrantingTicket")
                .unwrap_or_else(|| panic!("a PGT IOU: {xml}"));
            let calls = rp.wait_for(1).await;
            assert!(
                calls
                    .iter()
                    .any(|c| c.target.contains(&enc(&iou)) || c.target.contains(&iou)),
                "{calls:?}"
            );
        } else {
            // The certificate is not trusted (as a self-signed one would not be): no PGT, no call.
            assert_eq!(
                outcome(&xml).1.as_deref(),
                Some("INVALID_PROXY_CALLBACK"),
                "{xml}"
            );
            assert!(
                rp.requests().is_empty(),
                "the TLS handshake failed before any request"
            );
        }
    }
    std::fs::remove_file(ca_file).unwrap();
}

/// A service ticket that came from an SSO session (no credentials typed for it).
async fn sso_ticket(app: &TestApp, client: &reqwest::Client, service: &str) -> String {
    let res = client
        .get(format!(
            "{}/cas/login?service={}",
            app.address,
            enc(service)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302, "a ticket from the SSO session");
    ticket_of(res.headers()["location"].to_str().unwrap())
}

#[tokio::test]
async fn a55_p3_tickets_issued_before_a_block_are_refused_after_it() {
    let app = cas_app().await;
    let login = unique_login("blockp3");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    let from_login = login_for_service(&app, &client, &login, APP).await;
    let from_sso = sso_ticket(&app, &client, APP).await;
    app.services
        .blocking
        .block(&account.login, "test")
        .await
        .unwrap();
    for st in [&from_login, &from_sso] {
        for path in ["/cas/p3/serviceValidate", "/cas/serviceValidate"] {
            let xml = validate(&app, path, APP, st).await;
            assert_eq!(
                outcome(&xml),
                (None, Some("INVALID_TICKET".to_owned())),
                "{path}: {xml}"
            );
            assert!(!xml.contains(&format!("{login}@")), "no attribute: {xml}");
        }
    }
}

/// Changes the given name of `account` as an import or the console would (through the
/// database, which marks the change in the store).
async fn rename(app: &TestApp, account: sesame_core::ids::AccountId, given_name: &str) {
    app.services
        .profiles
        .update_account(
            account,
            &sesame_core::account::AccountChanges {
                given_name: Some(given_name.to_owned()),
                ..Default::default()
            },
            sesame_core::clock::Clock::now(app.clock.as_ref()),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sessions_copy_of_the_account_stands_until_a_change_is_marked_or_the_backstop() {
    use sesame_core::session::{ACCOUNT_BACKSTOP, ACCOUNT_RECHECK};
    let app = cas_app().await;
    let login = unique_login("backstop");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    login_for_service(&app, &client, &login, APP).await;
    // This use reads the account (the session's copy is from now).
    let st = sso_ticket(&app, &client, APP).await;
    let xml = validate(&app, "/cas/p3/serviceValidate", APP, &st).await;
    assert_eq!(
        attribute(&xml, "givenName").as_deref(),
        Some(account.given_name.as_str())
    );
    rename(&app, account.id, "Renamed").await;
    async fn given_name_now(app: &TestApp, client: &reqwest::Client) -> Option<String> {
        let st = sso_ticket(app, client, APP).await;
        let xml = validate(app, "/cas/p3/serviceValidate", APP, &st).await;
        attribute(&xml, "givenName")
    }
    if sesame_tests::backend() == sesame_tests::Backend::Production {
        // As if the store had failed just after the database committed: the mark is lost.
        assert!(
            app.services
                .store
                .delete(&sesame_core::account_marks::mark_key(account.id))
                .await
                .unwrap(),
            "the change was marked"
        );
        // Past `ACCOUNT_RECHECK`, no mark: the copy stands and the database is not read.
        app.clock.advance(ACCOUNT_RECHECK + Duration::seconds(60));
        assert_eq!(
            given_name_now(&app, &client).await.as_deref(),
            Some(account.given_name.as_str()),
            "unmarked change, copy younger than the backstop"
        );
        // At the backstop the account is read again whatever the marks say.
        app.clock
            .advance(ACCOUNT_BACKSTOP - ACCOUNT_RECHECK - Duration::seconds(60));
        assert_eq!(
            given_name_now(&app, &client).await.as_deref(),
            Some("Renamed")
        );
    } else {
        // One instance: the database is read at each use of the session.
        assert_eq!(
            given_name_now(&app, &client).await.as_deref(),
            Some("Renamed")
        );
    }
}

#[tokio::test]
async fn p3_releases_the_attributes_read_when_the_ticket_was_issued() {
    let app = cas_app().await;
    let login = unique_login("capture");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    login_for_service(&app, &client, &login, APP).await;
    let st = sso_ticket(&app, &client, APP).await;
    // Validation answers from the ticket: a change made after it was issued shows in the
    // next ticket, not in this one.
    rename(&app, account.id, "Renamed").await;
    let xml = validate(&app, "/cas/p3/serviceValidate", APP, &st).await;
    assert_eq!(outcome(&xml), (Some(login.clone()), None), "{xml}");
    assert_eq!(
        attribute(&xml, "givenName").as_deref(),
        Some(account.given_name.as_str())
    );
    assert_eq!(
        attribute(&xml, "mail").as_deref(),
        Some(format!("{login}@univ.example.org").as_str())
    );
    let next = sso_ticket(&app, &client, APP).await;
    let xml = validate(&app, "/cas/p3/serviceValidate", APP, &next).await;
    if sesame_tests::backend() == sesame_tests::Backend::Production {
        // Several instances: the session keeps the account as its last use read it, for
        // `ACCOUNT_RECHECK` (a block or a disable ends the session itself), so that a ticket
        // costs no database read; then the change, marked in the store, shows.
        assert_eq!(
            attribute(&xml, "givenName").as_deref(),
            Some(account.given_name.as_str())
        );
        app.clock.advance(sesame_core::session::ACCOUNT_RECHECK);
        let next = sso_ticket(&app, &client, APP).await;
        let xml = validate(&app, "/cas/p3/serviceValidate", APP, &next).await;
        assert_eq!(attribute(&xml, "givenName").as_deref(), Some("Renamed"));
    } else {
        // One instance: the database is read at each use of the session.
        assert_eq!(attribute(&xml, "givenName").as_deref(), Some("Renamed"));
    }
    // The webmail is released nothing, whatever the ticket holds.
    let st = sso_ticket(&app, &client, OTHER).await;
    let xml = validate(&app, "/cas/p3/serviceValidate", OTHER, &st).await;
    assert_eq!(outcome(&xml), (Some(login), None), "{xml}");
    assert_eq!(attribute(&xml, "mail"), None, "{xml}");
}
