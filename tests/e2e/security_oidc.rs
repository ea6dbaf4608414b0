//! Security spec rows of the OpenID Provider and the session forms that had no test of their
//! own (A31, A32, A35 for UserInfo, A42, A46 for consent). Each test is named after its row.

use serde_json::Value;
use sesame_protocol::oidc::clients::OidcClient;
use sesame_tests::oidc::{hidden_field, http_client, oidc_app, query_param};
use sesame_tests::{browser, extract_lt, set_cookies, unique_login, TestApp, GOOD_PASSWORD};

const CB: &str = "https://app.example.org/oidc/callback";
const SECRET: &str = "security-test-secret-0123456789abcdefghijklmnopqrs";

fn confidential(id: &str, extra: &str) -> OidcClient {
    let text = format!(
        "client_id = \"{id}\"\nname = \"App {id}\"\nredirect_uris = [\"{CB}\"]\n\
         scopes = [\"profile\", \"email\", \"groups\", \"offline_access\"]\n\
         client_secret_sha256 = \"{}\"\n{extra}\n",
        sesame_core::random::sha256_hex(SECRET)
    );
    toml::from_str(&text).expect("valid client definition")
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn authorize_url(app: &TestApp, client_id: &str, scope: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=s1&nonce=n1",
        app.address,
        enc(CB),
        enc(scope)
    )
}

/// Where a browser ends after following redirects from `url` (logging in on the way):
/// either the redirect to the client, or a page (consent) with its body.
enum Landing {
    Client(String),
    Page(String),
}

async fn follow(app: &TestApp, browser: &reqwest::Client, url: &str, login: &str) -> Landing {
    let mut next = url.to_owned();
    for _ in 0..10 {
        // A login made for the request answers it: its redirect may be the client's.
        if next.starts_with(CB) {
            return Landing::Client(next);
        }
        let res = browser.get(&next).send().await.unwrap();
        if res.status().is_redirection() {
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            if location.starts_with(CB) {
                return Landing::Client(location);
            }
            next = if location.starts_with("http") {
                location
            } else {
                format!("{}{location}", app.address)
            };
            continue;
        }
        let html = res.text().await.unwrap();
        if let Some(lt) = extract_lt(&html) {
            let authz = query_param(&next, "authz").expect("login page for an OIDC request");
            let res = browser
                .post(format!("{}/cas/login?authz={authz}", app.address))
                .form(&[
                    ("lt", lt.as_str()),
                    ("username", login),
                    ("password", GOOD_PASSWORD),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303, "credential POST answers 303 (A46)");
            next = res.headers()["location"].to_str().unwrap().to_owned();
            continue;
        }
        return Landing::Page(html);
    }
    panic!("too many redirects");
}

async fn token_request(app: &TestApp, form: &[(&str, &str)], client_id: &str) -> (u16, Value) {
    let res = http_client()
        .post(format!("{}/token", app.address))
        .basic_auth(client_id, Some(SECRET))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A person logged in for the first-party `client_id`: the token response.
async fn tokens(app: &TestApp, client_id: &str, scope: &str) -> (String, Value) {
    let login = unique_login("sec");
    app.create_user(&login, GOOD_PASSWORD).await;
    let Landing::Client(location) = follow(
        app,
        &browser(),
        &authorize_url(app, client_id, scope),
        &login,
    )
    .await
    else {
        panic!("a first-party client gets a code without consent");
    };
    let code = query_param(&location, "code").expect("a code");
    let (status, body) = token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CB),
        ],
        client_id,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (login, body)
}

fn str_of<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> u16 {
    http_client()
        .get(format!("{}/userinfo", app.address))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a31_password_implicit_and_unknown_grants_are_unsupported_grant_type() {
    let app = oidc_app(vec![confidential("app", "first_party = true")]).await;
    let login = unique_login("ropc");
    app.create_user(&login, GOOD_PASSWORD).await;
    for form in [
        vec![
            ("grant_type", "password"),
            ("username", login.as_str()),
            ("password", GOOD_PASSWORD),
            ("scope", "openid"),
        ],
        vec![("grant_type", "implicit"), ("scope", "openid")],
        vec![("grant_type", "urn:example:made-up"), ("scope", "openid")],
        vec![("grant_type", "PASSWORD")],
    ] {
        let (status, body) = token_request(&app, &form, "app").await;
        assert_eq!(status, 400, "{form:?}: {body}");
        assert_eq!(
            body["error"].as_str(),
            Some("unsupported_grant_type"),
            "{form:?}: {body}"
        );
        assert!(body.get("access_token").is_none(), "{body}");
    }
    // The person's credentials were never checked: no login event.
    assert!(app
        .audit_kinds(&login)
        .await
        .iter()
        .all(|k| k != "login.succeeded" && k != "login.failed"));
}

#[tokio::test]
async fn a32_an_old_refresh_token_after_rotation_is_invalid_grant_and_revokes_the_family() {
    let app = oidc_app(vec![confidential("app", "first_party = true")]).await;
    let (_, first) = tokens(&app, "app", "openid profile").await;
    let r1 = str_of(&first, "refresh_token").to_owned();
    let refresh = |token: String| {
        let app = &app;
        async move {
            token_request(
                app,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                "app",
            )
            .await
        }
    };
    let (status, second) = refresh(r1.clone()).await;
    assert_eq!(status, 200, "{second}");
    let r2 = str_of(&second, "refresh_token").to_owned();
    let a2 = str_of(&second, "access_token").to_owned();
    let (status, third) = refresh(r2.clone()).await;
    assert_eq!(status, 200, "{third}");
    let r3 = str_of(&third, "refresh_token").to_owned();
    let a3 = str_of(&third, "access_token").to_owned();
    assert_eq!(userinfo_status(&app, &a3).await, 200);

    // The first token, rotated away twice, comes back.
    let (status, body) = refresh(r1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The whole family is dead: the newest refresh token and every access token.
    let (status, body) = refresh(r3).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(r2).await;
    assert_eq!(status, 400);
    assert_eq!(userinfo_status(&app, &a2).await, 401);
    assert_eq!(userinfo_status(&app, &a3).await, 401);
}

#[tokio::test]
async fn a35_userinfo_and_token_answers_carry_no_internal_fields() {
    let app = oidc_app(vec![confidential("app", "first_party = true")]).await;
    let (login, body) = tokens(&app, "app", "openid profile email groups").await;
    let access = str_of(&body, "access_token").to_owned();
    let claims: Value = http_client()
        .get(format!("{}/userinfo", app.address))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(claims["preferred_username"].as_str(), Some(login.as_str()));
    let allowed = [
        "sub",
        "name",
        "given_name",
        "family_name",
        "preferred_username",
        "email",
        "email_verified",
        "groups",
        "locale",
        "updated_at",
        "eduperson_affiliation",
    ];
    let object = claims.as_object().expect("a JSON object");
    for key in object.keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "unexpected claim {key}: {claims}"
        );
    }
    for text in [claims.to_string(), body.to_string()] {
        let lowered = text.to_lowercase();
        for internal in [
            "secret",
            "argon2",
            "password",
            "policy",
            "national",
            "hr_id",
            "account_id",
            "session",
        ] {
            assert!(!lowered.contains(internal), "{internal} in {text}");
        }
    }
    // The token response holds tokens and their facts only.
    for key in body.as_object().unwrap().keys() {
        assert!(
            [
                "access_token",
                "token_type",
                "expires_in",
                "refresh_token",
                "id_token",
                "scope"
            ]
            .contains(&key.as_str()),
            "unexpected member {key}: {body}"
        );
    }
}

#[tokio::test]
async fn a42_cross_site_posts_to_consent_withdrawal_and_logout_are_refused() {
    let app = oidc_app(vec![confidential("third", "")]).await;
    let login = unique_login("csrf");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    let Landing::Page(html) =
        follow(&app, &b, &authorize_url(&app, "third", "openid"), &login).await
    else {
        panic!("a third-party client asks for consent");
    };
    let authz = hidden_field(&html, "authz").expect("the consent form");
    let csrf = hidden_field(&html, "csrf").expect("the consent form's token");
    let consent = |origin: Option<&'static str>, csrf: Option<String>| {
        let mut form = vec![("authz", authz.clone()), ("decision", "allow".to_owned())];
        if let Some(csrf) = csrf {
            form.push(("csrf", csrf));
        }
        let mut req = b
            .post(format!("{}/authorize/consent", app.address))
            .form(&form);
        if let Some(origin) = origin {
            req = req.header("Origin", origin);
        }
        async move { req.send().await.unwrap() }
    };
    // Consent from a foreign origin, even with the right token.
    let res = consent(Some("https://evil.example"), Some(csrf.clone())).await;
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("location").is_none());
    // Consent without the token, or with a wrong one.
    let res = consent(None, None).await;
    assert_eq!(res.status(), 403);
    let res = consent(None, Some("0".repeat(64))).await;
    assert_eq!(res.status(), 403);
    // The genuine form still works, and answers with a redirect that is not 307 (A46).
    let res = consent(None, Some(csrf)).await;
    assert!(
        [302, 303].contains(&res.status().as_u16()),
        "{}",
        res.status()
    );
    assert!(res.headers()["location"].to_str().unwrap().starts_with(CB));

    // Withdrawing the consent from a foreign origin, or without the page's token.
    let page = b
        .get(format!("{}/account/applications", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let revoke_csrf = hidden_field(&page, "csrf").expect("the applications page's token");
    let res = b
        .post(format!("{}/account/applications/revoke", app.address))
        .header("Origin", "https://evil.example")
        .form(&[("client_id", "third"), ("csrf", revoke_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = b
        .post(format!("{}/account/applications/revoke", app.address))
        .form(&[("client_id", "third")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let page = b
        .get(format!("{}/account/applications", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("App third"), "the consent is still there");

    // Logging out (all services) by a forged POST without the page's token.
    let res = b
        .post(format!("{}/cas/logout", app.address))
        .header("Origin", "https://evil.example")
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(set_cookies(&res).is_empty());
    let still = b
        .get(format!("{}/account/applications", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        still.status(),
        200,
        "the session survived the forged logout"
    );
}
