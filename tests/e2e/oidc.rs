//! OpenID Connect against the real server, driven by a real OIDC library (`openidconnect`)
//! where a relying party would use one (security spec A20–A39, C05–C06).

use futures::future::join_all;
use openidconnect::core::{CoreClient, CoreResponseType, CoreUserInfoClaims};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;
use sesame_protocol::oidc::clients::OidcClient;
use sesame_tests::oidc::{base64_url_decode, hidden_field, http_client, oidc_app, query_param};
use sesame_tests::{browser, extract_lt, unique_login, RecordingServer, TestApp, GOOD_PASSWORD};

const CB: &str = "https://app.example.org/oidc/callback";
const SECRET: &str = "moodle-test-secret-0123456789abcdefghijklmnopqrstuv";

fn client(id: &str, extra: &str) -> OidcClient {
    let text = format!(
        "client_id = \"{id}\"\nname = \"App {id}\"\nredirect_uris = [\"{CB}\"]\nscopes = [\"profile\", \"email\", \"groups\", \"offline_access\"]\n{extra}\n"
    );
    toml::from_str(&text).expect("valid client definition")
}

fn confidential(id: &str, extra: &str) -> OidcClient {
    client(
        id,
        &format!(
            "client_secret_sha256 = \"{}\"\n{extra}",
            sesame_core::random::sha256_hex(SECRET)
        ),
    )
}

/// Follows `/authorize` in a browser until Sesame redirects to the client: logs in with
/// `credentials` when the login page shows up, allows on the consent page when `consent`.
/// Returns the final redirect to the client.
async fn run_browser(
    app: &TestApp,
    browser: &reqwest::Client,
    authorize_url: &str,
    credentials: Option<(&str, &str)>,
    consent: bool,
) -> String {
    let mut next = authorize_url.to_owned();
    for _ in 0..10 {
        // A login made for the request answers it: its redirect may be the client's.
        if next.starts_with(CB) {
            return next;
        }
        let res = browser.get(&next).send().await.unwrap();
        let status = res.status();
        if status.is_redirection() {
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            if location.starts_with(CB) {
                return location;
            }
            next = if location.starts_with("http") {
                location
            } else {
                format!("{}{location}", app.address)
            };
            continue;
        }
        let html = res.text().await.unwrap();
        assert_eq!(status, 200, "unexpected page: {html}");
        if let Some(lt) = extract_lt(&html) {
            let (login, password) = credentials.expect("the login page was not expected");
            let authz = query_param(&next, "authz").expect("login page for an OIDC request");
            let res = browser
                .post(format!("{}/cas/login?authz={authz}", app.address))
                .form(&[
                    ("lt", lt.as_str()),
                    ("username", login),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 303, "login failed");
            next = res.headers()["location"].to_str().unwrap().to_owned();
            continue;
        }
        if html.contains("authorize/consent") {
            assert!(consent, "the consent page was not expected");
            let res = browser
                .post(format!("{}/authorize/consent", app.address))
                .form(&[
                    ("authz", hidden_field(&html, "authz").unwrap().as_str()),
                    ("csrf", hidden_field(&html, "csrf").unwrap().as_str()),
                    ("decision", "allow"),
                ])
                .send()
                .await
                .unwrap();
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            assert!(location.starts_with(CB), "{location}");
            return location;
        }
        panic!("unexpected page: {html}");
    }
    panic!("too many redirects");
}

async fn token_request(
    app: &TestApp,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut req = http_client()
        .post(format!("{}/token", app.address))
        .form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Logs a fresh person in through `/authorize` for `client_id` (first-party, no PKCE) and
/// returns (login, code).
async fn code_for(
    app: &TestApp,
    browser: &reqwest::Client,
    client_id: &str,
    scope: &str,
) -> (String, String) {
    let login = unique_login("oidc");
    app.create_user(&login, GOOD_PASSWORD).await;
    let url = format!(
        "{}/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&state=s1&nonce=n1",
        app.address,
        enc(CB),
        enc(scope)
    );
    let location = run_browser(app, browser, &url, Some((&login, GOOD_PASSWORD)), false).await;
    (login, query_param(&location, "code").expect("a code"))
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn exchange(app: &TestApp, code: &str, client_id: &str) -> (u16, Value) {
    token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
        ],
        Some((client_id, SECRET)),
    )
    .await
}

async fn userinfo(app: &TestApp, access_token: &str) -> reqwest::Response {
    http_client()
        .get(format!("{}/userinfo", app.address))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_oidc_library_logs_a_person_in_with_pkce_consent_id_token_userinfo_refresh_and_logout() {
    let app = oidc_app(vec![confidential(
        "moodle",
        "post_logout_redirect_uris = [\"https://app.example.org/bye\"]",
    )])
    .await;
    let login = unique_login("lib");
    app.create_user(&login, GOOD_PASSWORD).await;
    let http = http_client();
    let metadata = ProviderMetadataWithLogout::discover_async(
        IssuerUrl::new(app.address.clone()).unwrap(),
        &http,
    )
    .await
    .expect("discovery works for a standard library");
    let end_session = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("an end_session_endpoint");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("moodle".to_owned()),
        Some(ClientSecret::new(SECRET.to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(CB.to_owned()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".to_owned()))
        .add_scope(Scope::new("email".to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let session_browser = browser();
    let location = run_browser(
        &app,
        &session_browser,
        url.as_str(),
        Some((&login, GOOD_PASSWORD)),
        true,
    )
    .await;
    assert_eq!(
        query_param(&location, "state").as_deref(),
        Some(csrf.secret().as_str())
    );
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(app.address.as_str())
    );
    let code = query_param(&location, "code").unwrap();
    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the token response satisfies the library");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("signature, issuer, audience, nonce and expiry verify");
    assert_eq!(claims.preferred_username().unwrap().as_str(), login);
    assert!(claims.auth_time().is_some());
    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(
        info.email().unwrap().as_str(),
        format!("{login}@univ.example.org")
    );
    // Refresh through the library: a new access token that works, and a rotated refresh token.
    let refreshed = rp
        .exchange_refresh_token(tokens.refresh_token().expect("a refresh token"))
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.refresh_token().unwrap().secret(),
        tokens.refresh_token().unwrap().secret()
    );
    let info: CoreUserInfoClaims = rp
        .user_info(refreshed.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo with the refreshed token");
    assert_eq!(info.subject(), claims.subject());
    // RP-initiated logout built by the library: back to the application with its state, and
    // the tokens of that session are dead.
    let logout_url = LogoutRequest::from(end_session)
        .set_id_token_hint(id_token)
        .set_client_id(ClientId::new("moodle".to_owned()))
        .set_post_logout_redirect_uri(
            PostLogoutRedirectUrl::new("https://app.example.org/bye".to_owned()).unwrap(),
        )
        .set_state(CsrfToken::new("bye-state".to_owned()))
        .http_get_url();
    let res = session_browser
        .get(logout_url.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        "https://app.example.org/bye?state=bye-state"
    );
    assert_eq!(
        userinfo(&app, refreshed.access_token().secret())
            .await
            .status(),
        401
    );
    // The consent is remembered: the next authorization goes straight back.
    let (url, _, _) = rp
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".to_owned()))
        .url();
    let b = browser();
    run_browser(&app, &b, url.as_str(), Some((&login, GOOD_PASSWORD)), true).await;
    let again = run_browser(&app, &b, url.as_str(), None, false).await;
    assert!(query_param(&again, "code").is_some());
    assert!(app
        .audit_kinds(&login)
        .await
        .contains(&"oidc.consent_granted".to_owned()));
}

#[tokio::test]
async fn a20_a21_unknown_clients_and_unregistered_redirect_uris_get_a_page_not_a_redirect() {
    let app = oidc_app(vec![confidential("moodle", "first_party = true")]).await;
    for (client_id, redirect) in [
        ("nobody", CB),
        ("moodle", "https://evil.example.net/cb"),
        ("moodle", "https://app.example.org/oidc/callback/"),
        ("moodle", "https://app.example.org/oidc/callback?x=1"),
        ("moodle", "HTTPS://app.example.org/oidc/callback"),
    ] {
        let res = http_client()
            .get(format!(
                "{}/authorize?response_type=code&scope=openid&client_id={client_id}&redirect_uri={}",
                app.address,
                enc(redirect)
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{client_id} {redirect}");
        assert!(res.headers().get("location").is_none());
    }
    // Once client and redirect URI are known good, errors go back to the client.
    let res = http_client()
        .get(format!(
            "{}/authorize?response_type=token&scope=openid&client_id=moodle&redirect_uri={}&state=xyz",
            app.address,
            enc(CB)
        ))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(CB));
    assert_eq!(
        query_param(location, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(query_param(location, "state").as_deref(), Some("xyz"));
    // prompt=none without a session: login_required, no login page.
    let res = http_client()
        .get(format!(
            "{}/authorize?response_type=code&scope=openid&client_id=moodle&redirect_uri={}&prompt=none",
            app.address,
            enc(CB)
        ))
        .send()
        .await
        .unwrap();
    let location = res.headers()["location"].to_str().unwrap();
    assert_eq!(
        query_param(location, "error").as_deref(),
        Some("login_required")
    );
}

#[tokio::test]
async fn a_cas_login_serves_oidc_without_a_second_login_and_logout_ends_both() {
    let backchannel = RecordingServer::start().await;
    let app = oidc_app(vec![confidential(
        "portal",
        &format!(
            "first_party = true\nbackchannel_logout_uri = \"{}/bcl\"",
            backchannel.base
        ),
    )])
    .await;
    let login = unique_login("sso");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    let res = app.login_with(&b, &login, GOOD_PASSWORD, false).await;
    assert_eq!(res.status(), 303);
    let url = format!(
        "{}/authorize?response_type=code&client_id=portal&redirect_uri={}&scope=openid%20profile",
        app.address,
        enc(CB)
    );
    // No credentials offered: the SSO session must be enough.
    let location = run_browser(&app, &b, &url, None, false).await;
    let code = query_param(&location, "code").unwrap();
    let (status, tokens) = exchange(&app, &code, "portal").await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&app, &access).await.status(), 200);
    // Logging out at the CAS endpoint ends the OIDC grant too.
    let res = b
        .get(format!("{}/cas/logout", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(userinfo(&app, &access).await.status(), 401);
    let (status, body) = token_request(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        Some(("portal", SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // And the client got a signed logout token naming the session.
    let delivered = backchannel.wait_for(1).await;
    let token = url::form_urlencoded::parse(delivered[0].body.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("a logout_token field");
    let payload: Value =
        serde_json::from_slice(&base64_url_decode(token.split('.').nth(1).unwrap())).unwrap();
    assert_eq!(payload["aud"], "portal");
    assert_eq!(payload["iss"], app.address.as_str());
    assert!(payload["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(payload["sid"].is_string());
    assert!(payload.get("nonce").is_none());
}

#[tokio::test]
async fn a26_a_reused_code_fails_and_revokes_what_it_gave() {
    let app = oidc_app(vec![confidential("app", "first_party = true")]).await;
    let (_, code) = code_for(&app, &browser(), "app", "openid profile").await;
    let (status, first) = exchange(&app, &code, "app").await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.status(), 200);
    let (status, second) = exchange(&app, &code, "app").await;
    assert_eq!(
        (status, second["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(userinfo(&app, access).await.status(), 401);
    let (status, _) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ],
        Some(("app", SECRET)),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn c05_a_code_redeemed_twenty_times_at_once_succeeds_once() {
    let app = oidc_app(vec![confidential("app", "first_party = true")]).await;
    let (_, code) = code_for(&app, &browser(), "app", "openid").await;
    let results = join_all((0..20).map(|_| exchange(&app, &code, "app"))).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    // The others were reuses of the code: by policy the winner's tokens are revoked too.
    let access = winners[0]["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.status(), 401);
}

#[tokio::test]
async fn c06_twenty_parallel_refreshes_with_one_token_succeed_at_most_once_and_revoke_the_family() {
    let app = oidc_app(vec![confidential("app", "first_party = true")]).await;
    let (_, code) = code_for(&app, &browser(), "app", "openid").await;
    let (_, tokens) = exchange(&app, &code, "app").await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let results =
        join_all((0..20).map(|_| token_request(&app, &form, Some(("app", SECRET))))).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == 200)
        .map(|(_, body)| body)
        .collect();
    assert!(winners.len() <= 1, "{results:?}");
    for w in winners {
        let next = w["refresh_token"].as_str().unwrap();
        let (status, _) = token_request(
            &app,
            &[("grant_type", "refresh_token"), ("refresh_token", next)],
            Some(("app", SECRET)),
        )
        .await;
        assert_eq!(status, 400, "the family was revoked by the reuse");
        assert_eq!(
            userinfo(&app, w["access_token"].as_str().unwrap())
                .await
                .status(),
            401
        );
    }
}

#[tokio::test]
async fn a_refresh_token_rotates_and_a_replayed_one_revokes_the_family() {
    let app = oidc_app(vec![confidential("app", "first_party = true")]).await;
    let (_, code) = code_for(&app, &browser(), "app", "openid profile").await;
    let (_, first) = exchange(&app, &code, "app").await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let app = &app;
        async move {
            token_request(
                app,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                Some(("app", SECRET)),
            )
            .await
        }
    };
    let (status, second) = refresh(r1.clone()).await;
    assert_eq!(status, 200, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    let a2 = second["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&app, &a2).await.status(), 200);
    // A stolen, already used token comes back: the whole family dies.
    let (status, _) = refresh(r1).await;
    assert_eq!(status, 400);
    let (status, _) = refresh(r2).await;
    assert_eq!(status, 400);
    assert_eq!(userinfo(&app, &a2).await.status(), 401);
    // Another client's credentials never redeem it.
    let (_, code) = code_for(&app, &browser(), "app", "openid").await;
    let (_, t) = exchange(&app, &code, "app").await;
    let (status, body) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ],
        Some(("app", "wrong-secret")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn client_credentials_introspection_and_revocation() {
    let app = oidc_app(vec![
        confidential("api", "first_party = true\nclient_credentials = true"),
        confidential(
            "other",
            "first_party = true\ntoken_endpoint_auth_method = \"client_secret_post\"",
        ),
    ])
    .await;
    let (status, body) = token_request(
        &app,
        &[("grant_type", "client_credentials"), ("scope", "profile")],
        Some(("api", SECRET)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let token = body["access_token"].as_str().unwrap().to_owned();
    let introspect = |caller: &'static str, token: String| {
        let app = &app;
        async move {
            let mut form = vec![("token".to_owned(), token)];
            let mut req = http_client().post(format!("{}/introspect", app.address));
            if caller == "other" {
                form.push(("client_id".to_owned(), "other".to_owned()));
                form.push(("client_secret".to_owned(), SECRET.to_owned()));
            } else {
                req = req.basic_auth(caller, Some(SECRET));
            }
            let res = req.form(&form).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, info) = introspect("api", token.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], "api");
    assert_eq!(info["scope"], "profile");
    // Another client learns nothing about it.
    let (_, info) = introspect("other", token.clone()).await;
    assert_eq!(info, serde_json::json!({ "active": false }));
    // openid without a person is refused; the other client may not use the grant at all.
    let (status, body) = token_request(
        &app,
        &[("grant_type", "client_credentials"), ("scope", "openid")],
        Some(("api", SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (_, body) = token_request(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "other"),
            ("client_secret", SECRET),
        ],
        None,
    )
    .await;
    assert_eq!(body["error"], "unauthorized_client");
    // A client registered for client_secret_post cannot use Basic.
    let (status, _) = token_request(
        &app,
        &[("grant_type", "client_credentials")],
        Some(("other", SECRET)),
    )
    .await;
    assert_eq!(status, 401);
    // Revocation: 200, then the token is inactive.
    let res = http_client()
        .post(format!("{}/revoke", app.address))
        .basic_auth("api", Some(SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (_, info) = introspect("api", token).await;
    assert_eq!(info["active"], false);
    // Unknown tokens are still a 200 (RFC 7009 §2.2).
    let res = http_client()
        .post(format!("{}/revoke", app.address))
        .basic_auth("api", Some(SECRET))
        .form(&[("token", "no-such-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn discovery_and_jwks_publish_a_rotated_key_before_it_signs() {
    let app = oidc_app(vec![confidential("app", "first_party = true")]).await;
    let doc: Value = http_client()
        .get(format!("{}/.well-known/openid-configuration", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["issuer"], app.address.as_str());
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    let jwks = |app: &TestApp| {
        let url = format!("{}/jwks", app.address);
        async move {
            let v: Value = http_client()
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let before = jwks(&app).await;
    assert_eq!(before.len(), 3, "one key per default algorithm");
    let keys = app.services.oidc.tokens.keys();
    let new_kid = keys
        .rotate(
            sesame_protocol::oidc::clients::SigningAlg::RS256,
            std::time::Duration::from_secs(120),
            std::time::Duration::from_secs(3600),
        )
        .await
        .unwrap();
    keys.reload().await.unwrap();
    let after = jwks(&app).await;
    assert!(after.contains(&new_kid));
    assert!(before.iter().all(|k| after.contains(k)));
    // Not signing yet: ID tokens still carry an old kid.
    let (_, code) = code_for(&app, &browser(), "app", "openid").await;
    let (_, t) = exchange(&app, &code, "app").await;
    let kid_of = |jwt: &str| -> String {
        let header: Value =
            serde_json::from_slice(&base64_url_decode(jwt.split('.').next().unwrap())).unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    assert_ne!(kid_of(t["id_token"].as_str().unwrap()), new_kid);
    app.clock.advance(time::Duration::seconds(121));
    keys.reload().await.unwrap();
    let (_, code) = code_for(&app, &browser(), "app", "openid").await;
    let (_, t) = exchange(&app, &code, "app").await;
    assert_eq!(kid_of(t["id_token"].as_str().unwrap()), new_kid);
}

#[tokio::test]
async fn a_person_withdraws_a_consent_and_the_application_loses_its_tokens() {
    let app = oidc_app(vec![confidential("notes", "")]).await;
    let login = unique_login("withdraw");
    app.create_user(&login, GOOD_PASSWORD).await;
    let b = browser();
    let url = format!(
        "{}/authorize?response_type=code&client_id=notes&redirect_uri={}&scope=openid%20email%20offline_access",
        app.address,
        enc(CB)
    );
    let location = run_browser(&app, &b, &url, Some((&login, GOOD_PASSWORD)), true).await;
    let (status, tokens) = exchange(&app, &query_param(&location, "code").unwrap(), "notes").await;
    assert_eq!(status, 200);
    let page = b
        .get(format!("{}/account/applications", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("App notes"), "{page}");
    let csrf = hidden_field(&page, "csrf").unwrap();
    // A forged form (no token) changes nothing.
    let res = b
        .post(format!("{}/account/applications/revoke", app.address))
        .form(&[("client_id", "notes")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        userinfo(&app, tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let res = b
        .post(format!("{}/account/applications/revoke", app.address))
        .form(&[("client_id", "notes"), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // Even the offline grant is gone, and the next authorization asks again.
    assert_eq!(
        userinfo(&app, tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    let (status, _) = token_request(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
        Some(("notes", SECRET)),
    )
    .await;
    assert_eq!(status, 400);
    let page = b
        .get(format!("{}/account/applications", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("no-applications"));
    let again = b.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("authorize/consent"));
    assert!(app
        .audit_kinds(&login)
        .await
        .contains(&"oidc.consent_revoked".to_owned()));
}

#[tokio::test]
async fn a37_a_forged_id_token_hint_never_redirects_and_the_person_is_asked() {
    let app = oidc_app(vec![confidential(
        "app",
        "first_party = true\npost_logout_redirect_uris = [\"https://app.example.org/bye\"]",
    )])
    .await;
    let b = browser();
    let (_, code) = code_for(&app, &b, "app", "openid").await;
    let (_, tokens) = exchange(&app, &code, "app").await;
    let genuine = tokens["id_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = genuine.split('.').collect();
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let mut claims: Value = serde_json::from_slice(&base64_url_decode(parts[1])).unwrap();
    let unsigned = format!("{}.{}.", b64(&serde_json::json!({"alg": "none"})), parts[1]);
    let hs256 = format!(
        "{}.{}.{}",
        b64(&serde_json::json!({"alg": "HS256", "typ": "JWT"})),
        parts[1],
        parts[2]
    );
    claims["iss"] = Value::from("https://evil.example.net");
    let wrong_issuer = format!("{}.{}.{}", parts[0], b64(&claims), parts[2]);
    for forged in [unsigned, hs256, wrong_issuer] {
        let res = b
            .get(format!(
                "{}/logout?id_token_hint={}&post_logout_redirect_uri={}&state=x",
                app.address,
                enc(&forged),
                enc("https://app.example.org/bye")
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers().get("location").is_none());
        assert!(res.text().await.unwrap().contains("logout-confirm"));
    }
    // Still logged in: nothing was ended by the forged requests.
    let again = format!(
        "{}/authorize?response_type=code&client_id=app&redirect_uri={}&scope=openid",
        app.address,
        enc(CB)
    );
    assert!(query_param(&run_browser(&app, &b, &again, None, false).await, "code").is_some());
    // The genuine hint logs out at once and goes back to the application.
    let res = b
        .get(format!(
            "{}/logout?id_token_hint={}&post_logout_redirect_uri={}&state=x",
            app.address,
            enc(&genuine),
            enc("https://app.example.org/bye")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        "https://app.example.org/bye?state=x"
    );
}

#[tokio::test]
async fn the_login_page_names_the_client_and_takes_the_login_hint() {
    let app = oidc_app(vec![confidential("moodle", "")]).await;
    let b = browser();
    let res = b
        .get(format!(
            "{}/authorize?response_type=code&client_id=moodle&redirect_uri={}&scope=openid&login_hint=jean.dupont&ui_locales=en",
            app.address,
            enc(CB)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let login_url = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(login_url.contains("/cas/login?authz="), "{login_url}");
    assert!(login_url.contains("lang=en"), "{login_url}");
    let page = b
        .get(&login_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("App moodle"), "{page}");
    assert!(page.contains("value=\"jean.dupont\""), "{page}");
    assert!(page.contains("lang=\"en\""));
}

#[tokio::test]
async fn a30_expired_codes_and_access_tokens_are_refused_and_old_keys_still_verify() {
    let app = oidc_app(vec![confidential("app", "first_party = true")]).await;
    let b = browser();
    let (_, late_code) = code_for(&app, &b, "app", "openid").await;
    let (_, code) = code_for(&app, &browser(), "app", "openid").await;
    let (_, tokens) = exchange(&app, &code, "app").await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    app.clock.advance(time::Duration::seconds(61));
    let (status, body) = exchange(&app, &late_code, "app").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(userinfo(&app, &access).await.status(), 200);
    app.clock.advance(time::Duration::seconds(240));
    assert_eq!(userinfo(&app, &access).await.status(), 401);
    // A key rotation later, the ID token signed by the previous key still verifies against
    // what Sesame publishes.
    let keys = app.services.oidc.tokens.keys();
    keys.rotate(
        sesame_protocol::oidc::clients::SigningAlg::RS256,
        std::time::Duration::from_secs(120),
        std::time::Duration::from_secs(3600),
    )
    .await
    .unwrap();
    app.clock.advance(time::Duration::seconds(121));
    keys.reload().await.unwrap();
    let jwks: Value = http_client()
        .get(format!("{}/jwks", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header: Value =
        serde_json::from_slice(&base64_url_decode(id_token.split('.').next().unwrap())).unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the previous key is still published");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&["app"]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(
        &id_token,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .expect("the old ID token verifies with the published previous key");
}
