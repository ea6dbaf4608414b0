//! Security spec rows of the CAS server that had no test of their own (A12, A14, A15, A35
//! for CAS attributes, A46, C10). Each test is named after its row.

use futures::future::join_all;
use sesame_tests::{browser, cas_service, unique_login, RecordingServer, TestApp, GOOD_PASSWORD};

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

fn ticket_of(location: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.into_owned())
}

/// Logs in with credentials through `/cas/login?service=…`; returns the service ticket.
async fn credentials_ticket(
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
    assert_eq!(res.status(), 303);
    ticket_of(res.headers()["location"].to_str().unwrap()).expect("a ticket")
}

/// A ticket through single sign-on: `client` already holds a session.
async fn sso_ticket(app: &TestApp, client: &reqwest::Client, service: &str) -> Option<String> {
    let res = client
        .get(format!(
            "{}/cas/login?service={}",
            app.address,
            enc(service)
        ))
        .send()
        .await
        .ok()?;
    let location = res.headers().get("location")?.to_str().ok()?.to_owned();
    ticket_of(&location)
}

async fn get_text(url: String) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

async fn validate(app: &TestApp, path: &str, service: &str, ticket: &str) -> String {
    get_text(format!(
        "{}{path}?service={}&ticket={}",
        app.address,
        enc(service),
        enc(ticket)
    ))
    .await
}

/// Strict parse of a CAS XML answer: (success user, failure code).
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

fn element_text(xml: &str, name: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.descendants()
        .find(|n| n.tag_name().name() == name)
        .and_then(|n| n.text())
        .map(str::to_owned)
}

async fn saml_validate(app: &TestApp, service: &str, ticket: &str) -> String {
    let envelope = format!(
        "<SOAP-ENV:Envelope xmlns:SOAP-ENV=\"http://schemas.xmlsoap.org/soap/envelope/\"><SOAP-ENV:Header/><SOAP-ENV:Body>\
         <samlp:Request xmlns:samlp=\"urn:oasis:names:tc:SAML:1.0:protocol\" MajorVersion=\"1\" MinorVersion=\"1\" RequestID=\"_1\" IssueInstant=\"2026-11-22T10:00:00Z\">\
         <samlp:AssertionArtifact>{ticket}</samlp:AssertionArtifact></samlp:Request></SOAP-ENV:Body></SOAP-ENV:Envelope>"
    );
    reqwest::Client::new()
        .post(format!(
            "{}/cas/samlValidate?TARGET={}",
            app.address,
            enc(service)
        ))
        .header("Content-Type", "text/xml")
        .body(envelope)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a12_a_ticket_validated_twice_fails_the_second_time_on_every_endpoint() {
    let app = cas_app().await;
    let login = unique_login("twice");
    app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    credentials_ticket(&app, &client, &login, APP).await;

    // CAS 1.0: "yes" then "no".
    let st = sso_ticket(&app, &client, APP).await.unwrap();
    assert_eq!(
        validate(&app, "/cas/validate", APP, &st).await,
        format!("yes\n{login}\n")
    );
    assert_eq!(validate(&app, "/cas/validate", APP, &st).await, "no\n\n");

    // CAS 2.0 and 3.0: success then INVALID_TICKET, on each endpoint.
    for path in [
        "/cas/serviceValidate",
        "/cas/p3/serviceValidate",
        "/cas/proxyValidate",
        "/cas/p3/proxyValidate",
    ] {
        let st = sso_ticket(&app, &client, APP).await.unwrap();
        let first = validate(&app, path, APP, &st).await;
        assert_eq!(outcome(&first).0.as_deref(), Some(login.as_str()), "{path}");
        let second = validate(&app, path, APP, &st).await;
        assert_eq!(
            outcome(&second),
            (None, Some("INVALID_TICKET".to_owned())),
            "{path}: {second}"
        );
    }

    // SAML 1.1: success then no success.
    let st = sso_ticket(&app, &client, APP).await.unwrap();
    let first = saml_validate(&app, APP, &st).await;
    assert!(
        first.contains("samlp:Success") && first.contains(&login),
        "{first}"
    );
    let second = saml_validate(&app, APP, &st).await;
    assert!(!second.contains("samlp:Success"), "{second}");
    assert!(!second.contains(&login), "{second}");

    // Across endpoints: consumed at one, refused at another.
    let st = sso_ticket(&app, &client, APP).await.unwrap();
    assert!(validate(&app, "/cas/p3/serviceValidate", APP, &st)
        .await
        .contains("authenticationSuccess"));
    assert_eq!(validate(&app, "/cas/validate", APP, &st).await, "no\n\n");
    assert!(!saml_validate(&app, APP, &st)
        .await
        .contains("samlp:Success"));
}

#[tokio::test]
async fn a14_a_proxy_ticket_is_refused_at_validate_and_service_validate() {
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
    let login = unique_login("pt");
    app.create_user(&login, GOOD_PASSWORD).await;
    let st = credentials_ticket(&app, &browser(), &login, &rp_base).await;
    let xml = get_text(format!(
        "{}/cas/serviceValidate?service={}&ticket={st}&pgtUrl={}",
        app.address,
        enc(&rp_base),
        enc(&format!("{rp_base}pgtCallback"))
    ))
    .await;
    assert!(element_text(&xml, "proxyGrantingTicket").is_some(), "{xml}");
    let callback = rp
        .wait_for(1)
        .await
        .into_iter()
        .find(|r| r.target.contains("pgtId"))
        .expect("the proxy callback");
    let url = url::Url::parse(&format!("http://x{}", callback.target)).unwrap();
    let pgt = url
        .query_pairs()
        .find(|(k, _)| k == "pgtId")
        .map(|(_, v)| v.into_owned())
        .unwrap();

    let proxy_ticket = || async {
        let xml = get_text(format!(
            "{}/cas/proxy?pgt={}&targetService={}",
            app.address,
            enc(&pgt),
            enc(OTHER)
        ))
        .await;
        element_text(&xml, "proxyTicket").unwrap_or_else(|| panic!("a proxy ticket: {xml}"))
    };
    let pt = proxy_ticket().await;
    assert!(pt.starts_with("PT-"), "{pt}");
    assert_eq!(validate(&app, "/cas/validate", OTHER, &pt).await, "no\n\n");
    for path in ["/cas/serviceValidate", "/cas/p3/serviceValidate"] {
        let pt = proxy_ticket().await;
        let xml = validate(&app, path, OTHER, &pt).await;
        let (user, code) = outcome(&xml);
        assert_eq!(user, None, "{path}: {xml}");
        assert!(code.is_some(), "{path}: {xml}");
    }
}

#[tokio::test]
async fn a15_renew_refuses_a_ticket_issued_through_single_sign_on() {
    let app = cas_app().await;
    let login = unique_login("renew");
    app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    // A ticket from a fresh credential login satisfies renew…
    let fresh = credentials_ticket(&app, &client, &login, APP).await;
    let xml = get_text(format!(
        "{}/cas/p3/serviceValidate?service={}&ticket={fresh}&renew=true",
        app.address,
        enc(APP)
    ))
    .await;
    assert_eq!(outcome(&xml).0.as_deref(), Some(login.as_str()), "{xml}");
    // …one issued from the SSO session does not, at any endpoint.
    for path in [
        "/cas/validate",
        "/cas/serviceValidate",
        "/cas/p3/serviceValidate",
    ] {
        let st = sso_ticket(&app, &client, APP).await.expect("an SSO ticket");
        let body = get_text(format!(
            "{}{path}?service={}&ticket={st}&renew=true",
            app.address,
            enc(APP)
        ))
        .await;
        if path == "/cas/validate" {
            assert_eq!(body, "no\n\n", "{path}");
        } else {
            let (user, code) = outcome(&body);
            assert_eq!(user, None, "{path}: {body}");
            assert!(code.is_some(), "{path}: {body}");
        }
    }
}

#[tokio::test]
async fn a35_cas_attributes_carry_no_internal_fields() {
    let app = cas_app().await;
    let login = unique_login("attrs");
    app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    let st = credentials_ticket(&app, &client, &login, APP).await;
    let xml = validate(&app, "/cas/p3/serviceValidate", APP, &st).await;
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let attributes: Vec<&str> = doc
        .descendants()
        .filter(|n| {
            n.is_element()
                && n.ancestors()
                    .any(|a| a.tag_name().name() == "attributes" && a != *n)
        })
        .map(|n| n.tag_name().name())
        .collect();
    // Only released attributes and the CAS 3.0 authentication facts.
    let allowed = [
        "mail",
        "givenName",
        "sn",
        "eduPersonAffiliation",
        "eduPersonPrincipalName",
        "supannAliasLogin",
        "authenticationDate",
        "longTermAuthenticationRequestTokenUsed",
        "isFromNewLogin",
        "authenticationMethod",
        "successfulAuthenticationHandlers",
        "credentialType",
        "clientIpAddress",
        "serverIpAddress",
        "userAgent",
    ];
    for name in &attributes {
        assert!(allowed.contains(name), "unexpected attribute {name}: {xml}");
    }
    let lowered = xml.to_lowercase();
    for internal in [
        "password",
        "argon2",
        "secret",
        "tgt-",
        "st-",
        "policy",
        "national",
        "account_id",
        "hr_id",
    ] {
        assert!(!lowered.contains(internal), "{internal} in {xml}");
    }
    // A service without released attributes gets none.
    let st = sso_ticket(&app, &client, OTHER).await.unwrap();
    let xml = validate(&app, "/cas/p3/serviceValidate", OTHER, &st).await;
    assert!(element_text(&xml, "mail").is_none(), "{xml}");
    assert!(element_text(&xml, "givenName").is_none(), "{xml}");
}

#[tokio::test]
async fn a46_credential_posts_are_answered_with_303_never_307() {
    let app = cas_app().await;
    let login = unique_login("see.other");
    app.create_user(&login, GOOD_PASSWORD).await;
    // Without a service: to the logged-in page.
    let res = app
        .login_with(&browser(), &login, GOOD_PASSWORD, false)
        .await;
    assert_eq!(res.status(), 303);
    // With a service: to the service, with the ticket.
    let client = browser();
    let page = client
        .get(format!("{}/cas/login?service={}", app.address, enc(APP)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lt = sesame_tests::extract_lt(&page).unwrap();
    let res = client
        .post(format!("{}/cas/login?service={}", app.address, enc(APP)))
        .form(&[
            ("lt", lt.as_str()),
            ("username", login.as_str()),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_ne!(res.status(), 307);
    assert!(res.headers()["location"].to_str().unwrap().starts_with(APP));
}

#[tokio::test]
async fn c10_no_ticket_issued_around_a_logout_validates_after_it() {
    let app = cas_app().await;
    let login = unique_login("c10");
    app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    credentials_ticket(&app, &client, &login, APP).await;

    let requests = (0..20).map(|_| sso_ticket(&app, &client, APP));
    let logout = async {
        client
            .get(format!("{}/cas/logout", app.address))
            .send()
            .await
            .unwrap()
            .status()
    };
    let (tickets, logout_status) = tokio::join!(join_all(requests), logout);
    assert_eq!(logout_status, 200);
    let tickets: Vec<String> = tickets.into_iter().flatten().collect();
    // Whichever got a ticket before the session closed, none validates now.
    for st in &tickets {
        let xml = validate(&app, "/cas/serviceValidate", APP, st).await;
        assert_eq!(outcome(&xml).0, None, "{st} validated after logout: {xml}");
    }
    // And the session is gone: no more tickets from it.
    assert_eq!(sso_ticket(&app, &client, APP).await, None);
}

/// Status, `Content-Type` and body of a GET.
async fn get_all(url: String) -> (u16, String, String) {
    let res = reqwest::get(url).await.unwrap();
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, res.text().await.unwrap())
}

#[tokio::test]
async fn a57_malformed_cas_requests_are_refused_in_the_cas_format_asked_for() {
    let app = cas_app().await;
    let login = unique_login("malformed");
    app.create_user(&login, GOOD_PASSWORD).await;
    let client = browser();
    let base = &app.address;
    let service = enc(APP);
    let long = "a".repeat(9 * 1024);
    let malformed = [
        format!("service={service}&service={}&ticket=ST-1", enc(OTHER)),
        format!("service={service}&ticket=ST-1&ticket=ST-2"),
        format!("service={service}&ticket=ST-%ZZ"),
        format!("service={service}&ticket=ST-%C3%28"),
        format!("service={service}&ticket={long}"),
    ];
    for query in &malformed {
        // CAS 2.0 and 3.0: an XML failure that a CAS client parses, status 400.
        for path in [
            "/cas/serviceValidate",
            "/cas/proxyValidate",
            "/cas/p3/serviceValidate",
            "/cas/p3/proxyValidate",
        ] {
            let (status, content_type, body) = get_all(format!("{base}{path}?{query}")).await;
            assert_eq!(status, 400, "{path}?{query}: {body}");
            assert!(
                content_type.starts_with("application/xml"),
                "{content_type}"
            );
            let doc = roxmltree::Document::parse(&body).expect("XML");
            let failure = doc
                .descendants()
                .find(|n| n.tag_name().name() == "authenticationFailure")
                .unwrap_or_else(|| panic!("{path}: {body}"));
            assert_eq!(failure.attribute("code"), Some("INVALID_REQUEST"));
            // With format=JSON: the same failure in JSON.
            let (status, content_type, body) =
                get_all(format!("{base}{path}?{query}&format=JSON")).await;
            assert_eq!(status, 400, "{body}");
            assert!(
                content_type.starts_with("application/json"),
                "{content_type}"
            );
            let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(
                json["serviceResponse"]["authenticationFailure"]["code"], "INVALID_REQUEST",
                "{body}"
            );
        }
        // CAS 1.0: "no", two lines.
        let (status, _, body) = get_all(format!("{base}/cas/validate?{query}")).await;
        assert_eq!((status, body.as_str()), (400, "no\n\n"), "{query}");
    }
    // /proxy: a proxy failure.
    let (status, _, body) = get_all(format!(
        "{base}/cas/proxy?pgt=PGT-1&pgt=PGT-2&targetService={service}"
    ))
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("proxyFailure") && body.contains("INVALID_REQUEST"),
        "{body}"
    );
    // /samlValidate: a SAML failure for a repeated TARGET and for an oversized body.
    let saml = |query: String, body: String| {
        let url = format!("{base}/cas/samlValidate?{query}");
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .header("Content-Type", "text/xml")
                .body(body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    let (status, body) = saml(format!("TARGET={service}&TARGET={service}"), String::new()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("samlp:RequestDenied") && !body.contains("samlp:Success"),
        "{body}"
    );
    let (status, body) = saml(format!("TARGET={service}"), "<x/>".repeat(100_000)).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body.contains("samlp:RequestDenied") && !body.contains("samlp:Success"),
        "{body}"
    );

    // A well-formed request still validates (and a refused malformed one consumed nothing).
    let st = credentials_ticket(&app, &client, &login, APP).await;
    let (_, _, body) = get_all(format!(
        "{base}/cas/serviceValidate?service={service}&ticket={st}&ticket={st}"
    ))
    .await;
    assert!(body.contains("INVALID_REQUEST"), "{body}");
    let (status, _, body) = get_all(format!(
        "{base}/cas/serviceValidate?service={service}&ticket={st}"
    ))
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("authenticationSuccess"), "{body}");
}
