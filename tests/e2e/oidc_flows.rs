//! More OpenID Provider flows against the real server, driven by hand over HTTP: public
//! clients and PKCE, `private_key_jwt`, `prompt` and `max_age`, consent, RP-initiated
//! logout, UserInfo, two instances sharing one database and store, and scope handling
//! (security spec A23–A25, A33, A34, A36, A37).

use serde_json::{json, Value};
use sesame_core::clock::{Clock, SystemClock};
use sesame_core::random;
use sesame_protocol::oidc::clients::{OidcClient, SigningAlg};
use sesame_protocol::oidc::keys::{generate_signing_key, KeySet};
use sesame_protocol::oidc::pkce::s256_challenge;
use sesame_tests::oidc::{base64_url_decode, hidden_field, http_client, oidc_app, query_param};
use sesame_tests::{browser, extract_lt, unique_login, TestApp, GOOD_PASSWORD};

const CB: &str = "https://app.example.org/oidc/callback";
/// The loopback redirect URI of a native or single-page public client.
const SPA_CB: &str = "http://127.0.0.1:8765/cb";
/// A registered `post_logout_redirect_uri`.
const BYE: &str = "https://app.example.org/bye";
const SECRET: &str = "flows-test-secret-0123456789abcdefghijklmnopqrstuvw";
const ALL_SCOPES: &str = "scopes = [\"profile\", \"email\", \"groups\", \"offline_access\"]";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

// ----- clients and the app -------------------------------------------------------------

/// A client from TOML lines; `extra` must name `scopes` when it wants any.
fn client(id: &str, redirect_uri: &str, extra: &str) -> OidcClient {
    let text = format!(
        "client_id = \"{id}\"\nname = \"App {id}\"\nredirect_uris = [\"{redirect_uri}\"]\n{extra}\n"
    );
    toml::from_str(&text).expect("valid client definition")
}

fn secret_line() -> String {
    format!("client_secret_sha256 = \"{}\"", random::sha256_hex(SECRET))
}

/// A confidential client (`client_secret_basic`) with every scope.
fn confidential(id: &str, extra: &str) -> OidcClient {
    client(id, CB, &format!("{}\n{ALL_SCOPES}\n{extra}", secret_line()))
}

/// A first-party public client on a loopback redirect URI.
fn public_client(id: &str) -> OidcClient {
    client(
        id,
        SPA_CB,
        &format!(
            "public = true\ntoken_endpoint_auth_method = \"none\"\nfirst_party = true\n{ALL_SCOPES}"
        ),
    )
}

/// The payload of a JWT, unverified.
fn jwt_payload(jwt: &str) -> Value {
    serde_json::from_slice(&base64_url_decode(jwt.split('.').nth(1).unwrap())).unwrap()
}

/// The `kid` of a JWT's header.
fn jwt_kid(jwt: &str) -> String {
    let header: Value =
        serde_json::from_slice(&base64_url_decode(jwt.split('.').next().unwrap())).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// `/authorize` for `client_id` with `state=st-1`, `nonce=n-1` and `extra` parameters.
fn authorize_url(
    app: &TestApp,
    client_id: &str,
    redirect_uri: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = url::Url::parse(&format!("{}/authorize", app.address)).unwrap();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", scope)
            .append_pair("state", "st-1")
            .append_pair("nonce", "n-1");
        for (k, v) in extra {
            q.append_pair(k, v);
        }
    }
    url.into()
}

/// `GET url` with `client`: status, `Location` and body.
async fn get(client: &reqwest::Client, url: &str) -> (u16, Option<String>, String) {
    let res = client.get(url).send().await.unwrap();
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, res.text().await.unwrap())
}

/// Follows `/authorize` in a browser until Sesame redirects to `cb`: logs in with
/// `credentials` when the login page shows up, allows on the consent page when `consent`.
/// Panics on a login or consent page that was not expected. Returns the redirect to `cb`.
async fn run_browser(
    app: &TestApp,
    browser: &reqwest::Client,
    authorize_url: &str,
    credentials: Option<(&str, &str)>,
    consent: bool,
    cb: &str,
) -> String {
    let mut next = authorize_url.to_owned();
    for _ in 0..10 {
        // A login made for the request answers it: its redirect may be the client's.
        if next.starts_with(cb) {
            return next;
        }
        let (status, location, html) = get(browser, &next).await;
        if let Some(location) = location {
            assert!((300..400).contains(&status), "{status} {location}");
            if location.starts_with(cb) {
                return location;
            }
            next = if location.starts_with("http") {
                location
            } else {
                format!("{}{location}", app.address)
            };
            continue;
        }
        assert_eq!(status, 200, "unexpected page: {html}");
        if let Some(lt) = extract_lt(&html) {
            let (login, password) = credentials.expect("the login page was not expected");
            let authz = query_param(&next, "authz").expect("login page for an OIDC request");
            let res = post_login(app, browser, &authz, &lt, login, password).await;
            assert_eq!(res.status(), 303, "login failed");
            next = res.headers()["location"].to_str().unwrap().to_owned();
            continue;
        }
        if html.contains("authorize/consent") {
            assert!(consent, "the consent page was not expected");
            let res = post_consent(app, browser, &html, "allow").await;
            let location = res.headers()["location"].to_str().unwrap().to_owned();
            assert!(location.starts_with(cb), "{location}");
            return location;
        }
        panic!("unexpected page: {html}");
    }
    panic!("too many redirects");
}

/// Posts the login form of a parked authorization request.
async fn post_login(
    app: &TestApp,
    browser: &reqwest::Client,
    authz: &str,
    lt: &str,
    login: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .post(format!("{}/cas/login?authz={authz}", app.address))
        .form(&[("lt", lt), ("username", login), ("password", password)])
        .send()
        .await
        .unwrap()
}

/// Answers the consent page `html` with `decision`.
async fn post_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    html: &str,
    decision: &str,
) -> reqwest::Response {
    browser
        .post(format!("{}/authorize/consent", app.address))
        .form(&[
            ("authz", hidden_field(html, "authz").unwrap().as_str()),
            ("csrf", hidden_field(html, "csrf").unwrap().as_str()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap()
}

/// A new person with the good password.
async fn person(app: &TestApp, stem: &str) -> String {
    let login = unique_login(stem);
    app.create_user(&login, GOOD_PASSWORD).await;
    login
}

/// The code of a redirect to the client.
fn code_of(location: &str) -> String {
    query_param(location, "code").unwrap_or_else(|| panic!("no code in {location}"))
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

/// Redeems a code of the confidential client `client_id` at `app`.
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

/// Refreshes with the confidential client `client_id` at `app`.
async fn refresh(
    app: &TestApp,
    client_id: &str,
    refresh_token: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    token_request(app, &form, Some((client_id, SECRET))).await
}

async fn userinfo(app: &TestApp, access_token: &str) -> reqwest::Response {
    http_client()
        .get(format!("{}/userinfo", app.address))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

async fn userinfo_status(app: &TestApp, access_token: &str) -> u16 {
    userinfo(app, access_token).await.status().as_u16()
}

async fn userinfo_claims(app: &TestApp, access_token: &str) -> Value {
    let res = userinfo(app, access_token).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Whether `browser`'s SSO session still serves `client_id` without any interaction:
/// `prompt=none` gets a code (true) or `login_required` (false).
async fn session_alive(app: &TestApp, browser: &reqwest::Client, client_id: &str) -> bool {
    let url = authorize_url(app, client_id, CB, "openid", &[("prompt", "none")]);
    let (status, location, _) = get(browser, &url).await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.starts_with(CB), "{location}");
    match query_param(&location, "error").as_deref() {
        None => {
            assert!(query_param(&location, "code").is_some());
            true
        }
        Some("login_required") => false,
        Some(other) => panic!("unexpected error {other}"),
    }
}

/// Logs `login` in through `/authorize` for the first-party confidential `client_id` and
/// redeems the code: the token response.
async fn tokens_for(
    app: &TestApp,
    browser: &reqwest::Client,
    client_id: &str,
    login: &str,
    scope: &str,
) -> Value {
    let url = authorize_url(app, client_id, CB, scope, &[]);
    let location = run_browser(app, browser, &url, Some((login, GOOD_PASSWORD)), false, CB).await;
    let (status, tokens) = exchange(app, &code_of(&location), client_id).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

fn str_of<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

// ----- 1. public clients and PKCE --------------------------------------------------------

#[tokio::test]
async fn a23_public_clients_must_use_pkce_s256() {
    let app = oidc_app(vec![public_client("spa")]).await;
    let verifier = random::alphanumeric(64);
    let challenge = s256_challenge(&verifier);
    let cases: [(&str, Vec<(&str, &str)>); 4] = [
        ("no challenge", vec![]),
        (
            "plain",
            vec![
                ("code_challenge", verifier.as_str()),
                ("code_challenge_method", "plain"),
            ],
        ),
        // Without a method the challenge means plain (RFC 7636 §4.3).
        ("no method", vec![("code_challenge", challenge.as_str())]),
        ("method only", vec![("code_challenge_method", "S256")]),
    ];
    for (case, extra) in cases {
        let url = authorize_url(&app, "spa", SPA_CB, "openid", &extra);
        // No session is needed to be refused: the request itself is wrong.
        let (status, location, _) = get(&http_client(), &url).await;
        assert_eq!(status, 302, "{case}");
        let location = location.unwrap();
        assert!(location.starts_with(SPA_CB), "{case}: {location}");
        assert_eq!(
            query_param(&location, "error").as_deref(),
            Some("invalid_request"),
            "{case}"
        );
        assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
        assert_eq!(
            query_param(&location, "iss").as_deref(),
            Some(app.address.as_str())
        );
        assert!(query_param(&location, "code").is_none(), "{case}");
    }
}

#[tokio::test]
async fn a24_a_public_clients_code_needs_the_right_code_verifier() {
    let app = oidc_app(vec![public_client("spa")]).await;
    let login = person(&app, "spa").await;
    let b = browser();
    let verifier = random::alphanumeric(64);
    let challenge = s256_challenge(&verifier);
    let url = authorize_url(
        &app,
        "spa",
        SPA_CB,
        "openid profile",
        &[
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    );
    let redeem = |code: String, verifier: Option<String>| {
        let app = &app;
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", SPA_CB),
                ("client_id", "spa"),
            ];
            if let Some(v) = verifier.as_deref() {
                form.push(("code_verifier", v));
            }
            token_request(app, &form, None).await
        }
    };
    // A wrong verifier (someone who stole the code, not the verifier).
    let first =
        code_of(&run_browser(&app, &b, &url, Some((&login, GOOD_PASSWORD)), false, SPA_CB).await);
    let (status, body) = redeem(first.clone(), Some(random::alphanumeric(64))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // That attempt burned the code: the right verifier comes too late.
    let (status, body) = redeem(first, Some(verifier.clone())).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // No verifier at all.
    let second = code_of(&run_browser(&app, &b, &url, None, false, SPA_CB).await);
    let (status, body) = redeem(second, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The right verifier.
    let third = code_of(&run_browser(&app, &b, &url, None, false, SPA_CB).await);
    let (status, tokens) = redeem(third, Some(verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(jwt_payload(str_of(&tokens, "id_token"))["aud"], "spa");
    let info = userinfo_claims(&app, str_of(&tokens, "access_token")).await;
    assert_eq!(info["preferred_username"], login.as_str());
}

#[tokio::test]
async fn a25_a_code_verifier_without_a_challenge_is_refused_as_a_downgrade() {
    let app = oidc_app(vec![confidential("app", "first_party = true")]).await;
    let login = person(&app, "down").await;
    let url = authorize_url(&app, "app", CB, "openid", &[]);
    let location = run_browser(
        &app,
        &browser(),
        &url,
        Some((&login, GOOD_PASSWORD)),
        false,
        CB,
    )
    .await;
    let verifier = random::alphanumeric(64);
    let (status, body) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code_of(&location)),
            ("redirect_uri", CB),
            ("code_verifier", &verifier),
        ],
        Some(("app", SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

// ----- 2. private_key_jwt ----------------------------------------------------------------

/// A client assertion (RFC 7523) signed by `keys`.
fn assertion(keys: &KeySet, client_id: &str, aud: Value, exp: i64) -> String {
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "jti": random::alphanumeric(24),
        "exp": exp,
    });
    keys.sign(SigningAlg::ES256, "JWT", &claims).unwrap()
}

/// An ES256 key pair as the client holds it, and the client registered with its public key.
fn jwt_client(id: &str) -> (KeySet, OidcClient) {
    let now = SystemClock.now() - time::Duration::minutes(1);
    let record = generate_signing_key(SigningAlg::ES256, now, now).unwrap();
    let client = client(
        id,
        CB,
        &format!(
            "token_endpoint_auth_method = \"private_key_jwt\"\nfirst_party = true\n{ALL_SCOPES}\njwks = '{{\"keys\":[{}]}}'",
            record.public_jwk
        ),
    );
    (KeySet::new(&[record], now).unwrap(), client)
}

async fn code_with_assertion(app: &TestApp, code: &str, assertion: &str) -> (u16, Value) {
    token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CB),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn private_key_jwt_assertions_authenticate_once_for_the_token_endpoint_only() {
    let (keys, registered) = jwt_client("signer");
    let app = oidc_app(vec![registered]).await;
    let login = person(&app, "pkj").await;
    let b = browser();
    let url = authorize_url(&app, "signer", CB, "openid profile", &[]);
    let token_endpoint = format!("{}/token", app.address);
    let now = app.clock.now().unix_timestamp();

    let first =
        code_of(&run_browser(&app, &b, &url, Some((&login, GOOD_PASSWORD)), false, CB).await);
    let good = assertion(&keys, "signer", json!(token_endpoint), now + 60);
    let (status, tokens) = code_with_assertion(&app, &first, &good).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(jwt_payload(str_of(&tokens, "id_token"))["aud"], "signer");
    assert_eq!(
        userinfo_status(&app, str_of(&tokens, "access_token")).await,
        200
    );

    // Each refusal below happens before the code is looked at, so the code survives them.
    let second = code_of(&run_browser(&app, &b, &url, None, false, CB).await);
    let refused = |body: &Value| body["error"].as_str() == Some("invalid_client");
    // The same assertion again (RFC 7523 §3 item 7).
    let (status, body) = code_with_assertion(&app, &second, &good).await;
    assert!(status == 401 && refused(&body), "replay: {status} {body}");
    // Meant for another server.
    let elsewhere = assertion(
        &keys,
        "signer",
        json!("https://other-idp.example.org/token"),
        now + 60,
    );
    let (status, body) = code_with_assertion(&app, &second, &elsewhere).await;
    assert!(
        status == 401 && refused(&body),
        "wrong aud: {status} {body}"
    );
    // Signed by a key that is not registered.
    let (other_keys, _) = jwt_client("signer");
    let forged = assertion(&other_keys, "signer", json!(token_endpoint), now + 60);
    let (status, body) = code_with_assertion(&app, &second, &forged).await;
    assert!(
        status == 401 && refused(&body),
        "foreign key: {status} {body}"
    );
    // Living too long (more than 300 s) or already expired.
    for exp in [now + 3600, now - 1] {
        let bad = assertion(&keys, "signer", json!(token_endpoint), exp);
        let (status, body) = code_with_assertion(&app, &second, &bad).await;
        assert!(
            status == 401 && refused(&body),
            "exp {exp}: {status} {body}"
        );
    }
    // Two authentication methods at once.
    let fresh = assertion(&keys, "signer", json!(token_endpoint), now + 60);
    let (status, body) = token_request(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &second),
            ("redirect_uri", CB),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &fresh),
        ],
        Some(("signer", "whatever")),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // A fresh assertion naming the issuer as audience is fine, and the code still works.
    let to_issuer = assertion(&keys, "signer", json!([app.address]), now + 60);
    let (status, tokens) = code_with_assertion(&app, &second, &to_issuer).await;
    assert_eq!(status, 200, "{tokens}");
}

// ----- 3. prompt=login and max_age (A36) -------------------------------------------------

/// The `auth_time` of a token response's ID token.
fn auth_time(tokens: &Value) -> i64 {
    jwt_payload(str_of(tokens, "id_token"))["auth_time"]
        .as_i64()
        .unwrap()
}

/// Asserts that `location` is the login page asking an already logged-in person again, and
/// logs in there: the redirect to the client.
async fn log_in_again(app: &TestApp, b: &reqwest::Client, location: &str, login: &str) -> String {
    assert!(
        location.starts_with(&format!("{}/cas/login?", app.address)),
        "{location}"
    );
    assert_eq!(query_param(location, "renew").as_deref(), Some("true"));
    let authz = query_param(location, "authz").unwrap();
    let (status, _, html) = get(b, location).await;
    assert_eq!(status, 200);
    let lt = extract_lt(&html).expect("the login form, not the logged-in page");
    let res = post_login(app, b, &authz, &lt, login, GOOD_PASSWORD).await;
    // The login made for the request answers it: straight back to the client.
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(CB), "{location}");
    location
}

#[tokio::test]
async fn a36_prompt_login_asks_for_credentials_despite_the_sso_session() {
    let app = oidc_app(vec![confidential("portal", "first_party = true")]).await;
    let login = person(&app, "again").await;
    let b = browser();
    assert_eq!(
        app.login_with(&b, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
    let plain = authorize_url(&app, "portal", CB, "openid", &[]);
    // The SSO session is enough without prompt.
    let location = run_browser(&app, &b, &plain, None, false, CB).await;
    let (_, before) = exchange(&app, &code_of(&location), "portal").await;
    // The server tells a login that happened before the request by whole seconds (see
    // `a36_prompt_login_right_after_a_login_still_asks_for_credentials`).
    app.clock.advance(time::Duration::seconds(1));
    let url = authorize_url(&app, "portal", CB, "openid", &[("prompt", "login")]);
    let (status, location, _) = get(&b, &url).await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.contains("/cas/login"), "{location}");
    assert!(location.contains("renew=true"), "{location}");
    let back = log_in_again(&app, &b, &location, &login).await;
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-1"));
    let (status, after) = exchange(&app, &code_of(&back), "portal").await;
    assert_eq!(status, 200);
    assert_eq!(auth_time(&after), auth_time(&before) + 1, "a new auth_time");
    // The fresh login satisfies the next ordinary request.
    let location = run_browser(&app, &b, &plain, None, false, CB).await;
    assert!(query_param(&location, "code").is_some());
}

#[tokio::test]
async fn a36_prompt_login_right_after_a_login_still_asks_for_credentials() {
    let app = oidc_app(vec![confidential("portal", "first_party = true")]).await;
    let login = person(&app, "same").await;
    let b = browser();
    assert_eq!(
        app.login_with(&b, &login, GOOD_PASSWORD, false)
            .await
            .status(),
        303
    );
    // The clock does not move: the login and the request fall in the same second.
    let url = authorize_url(&app, "portal", CB, "openid", &[("prompt", "login")]);
    let (status, location, _) = get(&b, &url).await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(
        location.contains("/cas/login"),
        "a code was issued without a new login: {location}"
    );
}

#[tokio::test]
async fn a36_max_age_asks_for_credentials_once_the_login_is_older() {
    let app = oidc_app(vec![confidential("portal", "first_party = true")]).await;
    let login = person(&app, "maxage").await;
    let b = browser();
    let before = tokens_for(&app, &b, "portal", &login, "openid").await;
    app.clock.advance(time::Duration::seconds(5));
    // A large max_age is still satisfied: straight back with a code, auth_time unchanged.
    let url = authorize_url(&app, "portal", CB, "openid", &[("max_age", "3600")]);
    let location = run_browser(&app, &b, &url, None, false, CB).await;
    let (_, same) = exchange(&app, &code_of(&location), "portal").await;
    assert_eq!(auth_time(&same), auth_time(&before));
    // prompt=none cannot ask: login_required.
    let url = authorize_url(
        &app,
        "portal",
        CB,
        "openid",
        &[("max_age", "0"), ("prompt", "none")],
    );
    let (_, location, _) = get(&b, &url).await;
    assert_eq!(
        query_param(&location.unwrap(), "error").as_deref(),
        Some("login_required")
    );
    // max_age=0 five seconds after the login: credentials again, then a new auth_time.
    let url = authorize_url(&app, "portal", CB, "openid", &[("max_age", "0")]);
    let (status, location, _) = get(&b, &url).await;
    assert_eq!(status, 302);
    let back = log_in_again(&app, &b, &location.unwrap(), &login).await;
    let (status, after) = exchange(&app, &code_of(&back), "portal").await;
    assert_eq!(status, 200);
    assert_eq!(auth_time(&after), auth_time(&before) + 5);
}

// ----- 4. consent --------------------------------------------------------------------------

#[tokio::test]
async fn consent_is_asked_refusable_remembered_and_asked_again_on_prompt_consent() {
    let app = oidc_app(vec![confidential("thirdparty", "")]).await;
    let login = person(&app, "consent").await;
    let b = browser();
    let url = authorize_url(&app, "thirdparty", CB, "openid profile", &[]);
    // Log in: the consent page follows, naming the client.
    let (status, location, _) = get(&b, &url).await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    let authz = query_param(&location, "authz").unwrap();
    let (_, _, html) = get(&b, &location).await;
    let res = post_login(
        &app,
        &b,
        &authz,
        &extract_lt(&html).unwrap(),
        &login,
        GOOD_PASSWORD,
    )
    .await;
    assert_eq!(res.status(), 303);
    let (status, location, consent_page) =
        get(&b, res.headers()["location"].to_str().unwrap()).await;
    assert_eq!((status, location), (200, None));
    assert!(consent_page.contains("authorize/consent"));
    assert!(consent_page.contains("App thirdparty"));
    // Deny: back to the client with access_denied and the state, no code.
    let res = post_consent(&app, &b, &consent_page, "deny").await;
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(CB), "{location}");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
    assert_eq!(
        query_param(&location, "iss").as_deref(),
        Some(app.address.as_str())
    );
    assert!(query_param(&location, "code").is_none());
    // The refused request is gone: the same form cannot be turned into an allow.
    let res = post_consent(&app, &b, &consent_page, "allow").await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    // prompt=none with a session but no consent.
    let none = authorize_url(
        &app,
        "thirdparty",
        CB,
        "openid profile",
        &[("prompt", "none")],
    );
    let (status, location, _) = get(&b, &none).await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.starts_with(CB));
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("consent_required")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
    // Allow; then it is remembered, prompt=none included.
    let location = run_browser(&app, &b, &url, None, true, CB).await;
    assert!(query_param(&location, "code").is_some());
    let location = run_browser(&app, &b, &url, None, false, CB).await;
    assert!(query_param(&location, "code").is_some());
    let (_, location, _) = get(&b, &none).await;
    assert!(query_param(&location.unwrap(), "code").is_some());
    // prompt=consent asks again even so; a forged csrf is refused, the real one works.
    let again = authorize_url(
        &app,
        "thirdparty",
        CB,
        "openid profile",
        &[("prompt", "consent")],
    );
    let (status, location, html) = get(&b, &again).await;
    assert_eq!((status, location), (200, None));
    assert!(html.contains("authorize/consent"));
    let res = b
        .post(format!("{}/authorize/consent", app.address))
        .form(&[
            ("authz", hidden_field(&html, "authz").unwrap().as_str()),
            ("csrf", "0".repeat(64).as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("location").is_none());
    let res = post_consent(&app, &b, &html, "allow").await;
    let location = res.headers()["location"].to_str().unwrap();
    assert!(query_param(location, "code").is_some());
    // A scope beyond the consent given asks again.
    let wider = authorize_url(&app, "thirdparty", CB, "openid profile email", &[]);
    let (status, _, html) = get(&b, &wider).await;
    assert_eq!(status, 200);
    assert!(html.contains("authorize/consent"));
}

// ----- 5. RP-initiated logout (A37) ------------------------------------------------------

fn logout_client() -> OidcClient {
    confidential(
        "portal",
        &format!("first_party = true\npost_logout_redirect_uris = [\"{BYE}\"]"),
    )
}

fn logout_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&format!("{}/logout", app.address)).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.into()
}

#[tokio::test]
async fn logout_with_a_hint_for_this_session_ends_it_and_redirects_to_a_registered_uri() {
    let app = oidc_app(vec![logout_client()]).await;
    let login = person(&app, "rpl").await;
    let b = browser();
    let tokens = tokens_for(&app, &b, "portal", &login, "openid profile").await;
    let access = str_of(&tokens, "access_token");
    let url = logout_url(
        &app,
        &[
            ("id_token_hint", str_of(&tokens, "id_token")),
            ("post_logout_redirect_uri", BYE),
            ("state", "bye-1"),
        ],
    );
    let (status, location, _) = get(&b, &url).await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(format!("{BYE}?state=bye-1").as_str())
    );
    // The session is over: its tokens die, and /authorize needs the login page again.
    assert_eq!(userinfo_status(&app, access).await, 401);
    let (status, _) = refresh(&app, "portal", str_of(&tokens, "refresh_token"), None).await;
    assert_eq!(status, 400);
    assert!(!session_alive(&app, &b, "portal").await);
    let (status, location, _) = get(&b, &authorize_url(&app, "portal", CB, "openid", &[])).await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    assert!(location.contains("/cas/login?authz="), "{location}");
    assert!(
        !location.contains("renew=true"),
        "nobody is logged in: {location}"
    );
    // The same request once logged out: nothing to confirm, straight to the client.
    let (status, location, _) = get(&b, &url).await;
    assert_eq!(status, 303);
    assert_eq!(
        location.as_deref(),
        Some(format!("{BYE}?state=bye-1").as_str())
    );
}

#[tokio::test]
async fn a37_logout_never_redirects_to_an_unregistered_uri_nor_on_a_foreign_keys_hint() {
    let app = oidc_app(vec![logout_client()]).await;
    let login = person(&app, "rpl").await;
    let b = browser();
    let tokens = tokens_for(&app, &b, "portal", &login, "openid").await;
    let hint = str_of(&tokens, "id_token");
    for uri in [
        "https://evil.example.net/bye",
        "https://app.example.org/bye/",
        "https://app.example.org/bye?x=1",
        CB,
    ] {
        for params in [
            vec![("id_token_hint", hint), ("post_logout_redirect_uri", uri)],
            vec![("client_id", "portal"), ("post_logout_redirect_uri", uri)],
        ] {
            let (status, location, _) = get(&b, &logout_url(&app, &params)).await;
            assert_eq!((status, location), (400, None), "{uri}");
        }
    }
    // A registered URI with the genuine claims re-signed by a key that is not Sesame's: the
    // hint is ignored, so no redirect and the person is asked; nothing ends.
    let (foreign, _) = jwt_client("x");
    let forged = foreign
        .sign(SigningAlg::ES256, "JWT", &jwt_payload(hint))
        .unwrap();
    let params = [
        ("id_token_hint", forged.as_str()),
        ("post_logout_redirect_uri", BYE),
    ];
    let (status, location, html) = get(&b, &logout_url(&app, &params)).await;
    assert_eq!((status, location), (200, None));
    assert!(html.contains("logout-confirm"), "{html}");
    assert!(session_alive(&app, &b, "portal").await);
    assert_eq!(
        userinfo_status(&app, str_of(&tokens, "access_token")).await,
        200
    );
}

#[tokio::test]
async fn logout_without_a_hint_asks_to_confirm_and_the_form_ends_the_session() {
    let app = oidc_app(vec![logout_client()]).await;
    let login = person(&app, "confirm").await;
    let b = browser();
    let tokens = tokens_for(&app, &b, "portal", &login, "openid").await;
    let access = str_of(&tokens, "access_token");
    let (status, location, html) = get(&b, &format!("{}/logout", app.address)).await;
    assert_eq!((status, location), (200, None));
    // The form posts to /logout (the action is relative to Sesame's base).
    assert!(
        html.contains("action=\"/logout\"")
            || html.contains(&format!("action=\"{}/logout\"", app.address)),
        "{html}"
    );
    assert!(html.contains("method=\"post\""));
    let csrf = hidden_field(&html, "csrf").unwrap();
    assert!(session_alive(&app, &b, "portal").await);
    assert_eq!(userinfo_status(&app, access).await, 200);
    // A post without the right token only shows the page again.
    let res = b
        .post(format!("{}/logout", app.address))
        .form(&[("csrf", "0".repeat(64).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("name=\"csrf\""));
    assert!(session_alive(&app, &b, "portal").await);
    // The form as served ends the session.
    let res = b
        .post(format!("{}/logout", app.address))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("location").is_none());
    assert!(!session_alive(&app, &b, "portal").await);
    assert_eq!(userinfo_status(&app, access).await, 401);
}

#[tokio::test]
async fn a37_a_hint_for_another_session_gets_the_confirmation_page_not_a_logout() {
    let app = oidc_app(vec![logout_client()]).await;
    let login = person(&app, "other").await;
    let first = browser();
    let first_tokens = tokens_for(&app, &first, "portal", &login, "openid").await;
    let second = browser();
    let second_tokens = tokens_for(&app, &second, "portal", &login, "openid").await;
    // The second browser presents the first session's ID token.
    let url = logout_url(
        &app,
        &[
            ("id_token_hint", str_of(&first_tokens, "id_token")),
            ("post_logout_redirect_uri", BYE),
            ("state", "s-2"),
        ],
    );
    let (status, location, html) = get(&second, &url).await;
    assert_eq!((status, location), (200, None));
    assert!(html.contains("App portal"));
    assert!(session_alive(&app, &first, "portal").await);
    assert!(session_alive(&app, &second, "portal").await);
    // Confirming the form, hidden fields and all, ends the second session only, and then
    // the registered URI is followed.
    let form: Vec<(String, String)> = ["csrf", "client_id", "post_logout_redirect_uri", "state"]
        .iter()
        .map(|n| ((*n).to_owned(), hidden_field(&html, n).unwrap()))
        .collect();
    assert_eq!(form[1].1, "portal");
    let res = second
        .post(format!("{}/logout", app.address))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("{BYE}?state=s-2")
    );
    assert!(!session_alive(&app, &second, "portal").await);
    assert_eq!(
        userinfo_status(&app, str_of(&second_tokens, "access_token")).await,
        401
    );
    assert!(session_alive(&app, &first, "portal").await);
    assert_eq!(
        userinfo_status(&app, str_of(&first_tokens, "access_token")).await,
        200
    );
}

// ----- 6. UserInfo -------------------------------------------------------------------------

#[tokio::test]
async fn userinfo_takes_one_bearer_token_by_header_or_form() {
    let app = oidc_app(vec![
        confidential("portal", "first_party = true"),
        confidential("api", "first_party = true\nclient_credentials = true"),
    ])
    .await;
    let login = person(&app, "ui").await;
    let tokens = tokens_for(&app, &browser(), "portal", &login, "openid profile").await;
    let access = str_of(&tokens, "access_token");
    let endpoint = format!("{}/userinfo", app.address);
    let www_authenticate = |res: &reqwest::Response| {
        res.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    // No token: 401 with a bare Bearer challenge (RFC 6750 §3.1: no error code).
    let res = http_client().get(&endpoint).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let challenge = www_authenticate(&res);
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");
    // A token in the query string is not looked at (RFC 6750 §2.3 is not supported).
    let res = http_client()
        .get(format!("{endpoint}?access_token={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Garbage, and a well-formed token that was never issued.
    for token in ["garbage!", &random::alphanumeric(43)] {
        let res = userinfo(&app, token).await;
        assert_eq!(res.status(), 401, "{token}");
        let challenge = www_authenticate(&res);
        assert!(challenge.starts_with("Bearer"), "{challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }
    // The form field of a POST works.
    let res = http_client()
        .post(&endpoint)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let info: Value = res.json().await.unwrap();
    assert_eq!(info["preferred_username"], login.as_str());
    assert_eq!(info["sub"], jwt_payload(str_of(&tokens, "id_token"))["sub"]);
    // Header and form field at once: malformed.
    let res = http_client()
        .post(&endpoint)
        .bearer_auth(access)
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    // A token without a person behind it (client credentials): insufficient_scope.
    let (status, cc) = token_request(
        &app,
        &[("grant_type", "client_credentials"), ("scope", "profile")],
        Some(("api", SECRET)),
    )
    .await;
    assert_eq!(status, 200);
    let res = userinfo(&app, str_of(&cc, "access_token")).await;
    assert_eq!(res.status(), 403);
    assert!(www_authenticate(&res).contains("insufficient_scope"));
}

// ----- 7. two instances --------------------------------------------------------------------
//
// `spawn_sibling` shares the database, the store and the clock, but gives the sibling its
// own public URL, hence its own issuer. In production every instance has the same public URL,
// so nothing here compares the `iss` of a token issued by one instance with the other, and
// /authorize, the login page and RP-initiated logout (whose id_token_hint must carry the
// instance's own issuer) are only driven at the first instance. On SQLite each instance has
// its own in-process store, so codes and tokens cannot cross: these tests only mean something
// on the production backend and return early on the embedded one.

fn shared_store() -> bool {
    sesame_tests::backend() == sesame_tests::Backend::Production
}

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let doc: Value = http_client()
        .get(format!("{}/jwks", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut kids: Vec<String> = doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect();
    kids.sort();
    kids
}

#[tokio::test]
async fn two_instances_redeem_each_others_codes_and_accept_each_others_tokens() {
    if !shared_store() {
        return;
    }
    let a = oidc_app(vec![confidential("portal", "first_party = true")]).await;
    let b = a.spawn_sibling().await;
    let login = person(&a, "twin").await;
    let browser_a = browser();
    let url = authorize_url(&a, "portal", CB, "openid profile", &[]);
    let location = run_browser(
        &a,
        &browser_a,
        &url,
        Some((&login, GOOD_PASSWORD)),
        false,
        CB,
    )
    .await;
    // A's code at B.
    let (status, at_b) = exchange(&b, &code_of(&location), "portal").await;
    assert_eq!(status, 200, "{at_b}");
    // Both publish the same keys (they live in the database), and B signed with one of them.
    let kids = jwks_kids(&a).await;
    assert_eq!(kids, jwks_kids(&b).await);
    assert!(kids.contains(&jwt_kid(str_of(&at_b, "id_token"))));
    assert_eq!(
        userinfo_claims(&a, str_of(&at_b, "access_token")).await["preferred_username"],
        login.as_str()
    );
    // A's token at B.
    let location = run_browser(&a, &browser_a, &url, None, false, CB).await;
    let code = code_of(&location);
    let (status, at_a) = exchange(&a, &code, "portal").await;
    assert_eq!(status, 200);
    let access_a = str_of(&at_a, "access_token");
    assert_eq!(
        userinfo_claims(&b, access_a).await["preferred_username"],
        login.as_str()
    );
    // The code replayed at B: refused, and what A gave for it is revoked on both.
    let (status, body) = exchange(&b, &code, "portal").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(userinfo_status(&a, access_a).await, 401);
    assert_eq!(userinfo_status(&b, access_a).await, 401);
    // Logging out at A ends the tokens B issued.
    assert_eq!(
        userinfo_status(&b, str_of(&at_b, "access_token")).await,
        200
    );
    let res = browser_a
        .get(format!("{}/cas/logout", a.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        userinfo_status(&b, str_of(&at_b, "access_token")).await,
        401
    );
}

#[tokio::test]
async fn two_instances_share_refresh_rotation_and_reuse_detection() {
    if !shared_store() {
        return;
    }
    let a = oidc_app(vec![confidential("portal", "first_party = true")]).await;
    let b = a.spawn_sibling().await;
    let login = person(&a, "twinrt").await;
    let tokens = tokens_for(&a, &browser(), "portal", &login, "openid profile").await;
    let r1 = str_of(&tokens, "refresh_token");
    // A's refresh token rotates at B.
    let (status, rotated) = refresh(&b, "portal", r1, None).await;
    assert_eq!(status, 200, "{rotated}");
    let r2 = str_of(&rotated, "refresh_token");
    let access2 = str_of(&rotated, "access_token");
    assert_ne!(r1, r2);
    assert_eq!(userinfo_status(&a, access2).await, 200);
    // The old one comes back at A: the family dies on both instances.
    let (status, _) = refresh(&a, "portal", r1, None).await;
    assert_eq!(status, 400);
    let (status, _) = refresh(&b, "portal", r2, None).await;
    assert_eq!(status, 400);
    assert_eq!(userinfo_status(&a, access2).await, 401);
    assert_eq!(userinfo_status(&b, access2).await, 401);
}

#[tokio::test]
async fn two_instances_share_the_replay_cache_of_client_assertions() {
    if !shared_store() {
        return;
    }
    let (keys, registered) = jwt_client("signer");
    let a = oidc_app(vec![registered]).await;
    let b = a.spawn_sibling().await;
    let login = person(&a, "twinjwt").await;
    let browser_a = browser();
    let url = authorize_url(&a, "signer", CB, "openid", &[]);
    let first = code_of(
        &run_browser(
            &a,
            &browser_a,
            &url,
            Some((&login, GOOD_PASSWORD)),
            false,
            CB,
        )
        .await,
    );
    let second = code_of(&run_browser(&a, &browser_a, &url, None, false, CB).await);
    // One assertion whose audience names both token endpoints (the harness gives each
    // instance its own URL; in production they share one).
    let now = a.clock.now().unix_timestamp();
    let both = json!([
        format!("{}/token", a.address),
        format!("{}/token", b.address)
    ]);
    let once = assertion(&keys, "signer", both, now + 60);
    let (status, body) = code_with_assertion(&a, &first, &once).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = code_with_assertion(&b, &second, &once).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

// ----- 8. scopes (A33, A34) ----------------------------------------------------------------

fn narrow_client() -> OidcClient {
    client(
        "narrow",
        CB,
        &format!(
            "{}\nfirst_party = true\nscopes = [\"profile\", \"email\"]",
            secret_line()
        ),
    )
}

const PROFILE_CLAIMS: [&str; 5] = [
    "name",
    "given_name",
    "family_name",
    "preferred_username",
    "locale",
];

#[tokio::test]
async fn a34_scopes_the_client_is_not_registered_for_are_dropped() {
    let app = oidc_app(vec![narrow_client()]).await;
    let login = person(&app, "scopes").await;
    let tokens = tokens_for(
        &app,
        &browser(),
        "narrow",
        &login,
        "openid profile groups phone offline_access",
    )
    .await;
    assert_eq!(tokens["scope"], "openid profile");
    let id_token = jwt_payload(str_of(&tokens, "id_token"));
    // The methods come from the session the code was issued from: a password login.
    assert_eq!(id_token["amr"], serde_json::json!(["pwd"]));
    let info = userinfo_claims(&app, str_of(&tokens, "access_token")).await;
    for claims in [&id_token, &info] {
        assert_eq!(claims["preferred_username"], login.as_str());
        assert_eq!(claims["name"], "Test Person");
        for absent in ["groups", "eduperson_affiliation", "email", "phone_number"] {
            assert!(claims.get(absent).is_none(), "{absent} in {claims}");
        }
    }
}

#[tokio::test]
async fn a34_the_email_scope_alone_releases_no_profile_claims() {
    let app = oidc_app(vec![narrow_client()]).await;
    let login = person(&app, "mail").await;
    let tokens = tokens_for(&app, &browser(), "narrow", &login, "openid email").await;
    assert_eq!(tokens["scope"], "openid email");
    let id_token = jwt_payload(str_of(&tokens, "id_token"));
    let info = userinfo_claims(&app, str_of(&tokens, "access_token")).await;
    for claims in [&id_token, &info] {
        assert_eq!(
            claims["email"],
            format!("{login}@univ.example.org").as_str()
        );
        assert_eq!(claims["email_verified"], true);
        for absent in PROFILE_CLAIMS {
            assert!(claims.get(absent).is_none(), "{absent} in {claims}");
        }
    }
}

#[tokio::test]
async fn a33_a_refresh_may_not_widen_the_scope() {
    let app = oidc_app(vec![confidential("portal", "first_party = true")]).await;
    let login = person(&app, "widen").await;
    let tokens = tokens_for(&app, &browser(), "portal", &login, "openid profile").await;
    let (status, body) = refresh(
        &app,
        "portal",
        str_of(&tokens, "refresh_token"),
        Some("openid profile email"),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a33_a_refresh_refused_for_a_wider_scope_leaves_the_refresh_token_usable() {
    let app = oidc_app(vec![confidential("portal", "first_party = true")]).await;
    let login = person(&app, "keep").await;
    let tokens = tokens_for(&app, &browser(), "portal", &login, "openid profile").await;
    let r1 = str_of(&tokens, "refresh_token");
    let (status, _) = refresh(&app, "portal", r1, Some("openid profile email")).await;
    assert_eq!(status, 400);
    // The refused request must not have spent the token.
    let (status, body) = refresh(&app, "portal", r1, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        userinfo_status(&app, str_of(&tokens, "access_token")).await,
        200
    );
}

#[tokio::test]
async fn a33_a_narrowed_refresh_reports_the_narrower_scope() {
    let app = oidc_app(vec![confidential("portal", "first_party = true")]).await;
    let login = person(&app, "narrowrt").await;
    let tokens = tokens_for(&app, &browser(), "portal", &login, "openid profile email").await;
    let (status, narrowed) = refresh(
        &app,
        "portal",
        str_of(&tokens, "refresh_token"),
        Some("openid email"),
    )
    .await;
    assert_eq!(status, 200, "{narrowed}");
    assert_eq!(narrowed["scope"], "openid email");
    let info = userinfo_claims(&app, str_of(&narrowed, "access_token")).await;
    assert_eq!(info["email"], format!("{login}@univ.example.org").as_str());
}

#[tokio::test]
async fn a34_a_narrowed_refresh_releases_only_the_claims_of_the_narrower_scope() {
    let app = oidc_app(vec![confidential("portal", "first_party = true")]).await;
    let login = person(&app, "narrowci").await;
    let tokens = tokens_for(&app, &browser(), "portal", &login, "openid profile email").await;
    let (status, narrowed) = refresh(
        &app,
        "portal",
        str_of(&tokens, "refresh_token"),
        Some("openid email"),
    )
    .await;
    assert_eq!(status, 200, "{narrowed}");
    let info = userinfo_claims(&app, str_of(&narrowed, "access_token")).await;
    for absent in PROFILE_CLAIMS {
        assert!(info.get(absent).is_none(), "{absent} in {info}");
    }
}

// ----- password reset (A49) -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a49_a_password_reset_revokes_every_refresh_token_offline_ones_included() {
    use crate::recovery::{
        ask_reset, field as form_field, give_recovery_email, open_link, post_reset, reset_links,
        NEW_PASSWORD,
    };
    let app = oidc_app(vec![confidential("portal", "first_party = true")]).await;
    let login = person(&app, "resetrt").await;
    let account = app
        .services
        .accounts
        .get(&sesame_core::ids::LoginName::parse(&login).unwrap())
        .await
        .unwrap();
    let recovery = give_recovery_email(&app, &account).await;
    let b = browser();
    let tokens = tokens_for(&app, &b, "portal", &login, "openid offline_access").await;
    let (status, _) = refresh(&app, "portal", str_of(&tokens, "refresh_token"), None).await;
    assert_eq!(status, 200, "the refresh token works before the reset");
    let tokens = tokens_for(&app, &b, "portal", &login, "openid offline_access").await;

    let person_browser = browser();
    ask_reset(&app, &person_browser, &login, "mail").await;
    let link = reset_links(&app, &recovery).await.remove(0);
    let (_, form) = open_link(&app, &person_browser, &link).await;
    let (status, _) = post_reset(
        &app,
        &person_browser,
        &form_field(&form, "token"),
        NEW_PASSWORD,
        NEW_PASSWORD,
    )
    .await;
    assert_eq!(status, 200);

    let (status, body) = refresh(&app, "portal", str_of(&tokens, "refresh_token"), None).await;
    assert_eq!(
        status, 400,
        "an offline refresh token dies with the reset: {body}"
    );
    assert_eq!(
        userinfo_status(&app, str_of(&tokens, "access_token")).await,
        401
    );
    assert!(!session_alive(&app, &b, "portal").await);
}

// ----- CORS for public clients ---------------------------------------------------------

/// The CORS headers of a response: `Access-Control-Allow-Origin`, `…-Allow-Credentials`.
fn cors_of(res: &reqwest::Response) -> (Option<String>, Option<String>) {
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    (
        header("access-control-allow-origin"),
        header("access-control-allow-credentials"),
    )
}

#[tokio::test]
async fn token_revoke_and_userinfo_answer_cors_for_the_origins_of_public_clients_only() {
    let app = oidc_app(vec![public_client("spa"), confidential("portal", "")]).await;
    let spa = "http://127.0.0.1:8765";
    let login = person(&app, "cors").await;
    let b = browser();
    let verifier = random::alphanumeric(64);
    let challenge = s256_challenge(&verifier);
    let url = authorize_url(
        &app,
        "spa",
        SPA_CB,
        "openid profile offline_access",
        &[
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    );
    let code =
        code_of(&run_browser(&app, &b, &url, Some((&login, GOOD_PASSWORD)), false, SPA_CB).await);
    let post = |path: &str, origin: &str, form: Vec<(&'static str, String)>| {
        http_client()
            .post(format!("{}{path}", app.address))
            .header("Origin", origin)
            .form(&form)
    };

    // The SPA redeems its code from the browser: the answer names its origin, no credentials.
    let res = post(
        "/token",
        spa,
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code),
            ("redirect_uri", SPA_CB.to_owned()),
            ("client_id", "spa".to_owned()),
            ("code_verifier", verifier),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(cors_of(&res), (Some(spa.to_owned()), None));
    assert!(res.headers()["vary"].to_str().unwrap().contains("Origin"));
    let tokens: Value = res.json().await.unwrap();
    let access = str_of(&tokens, "access_token").to_owned();
    let refresh_token = str_of(&tokens, "refresh_token").to_owned();

    // An error is readable too (the application must see invalid_grant).
    let res = post(
        "/token",
        spa,
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", "forged".to_owned()),
            ("redirect_uri", SPA_CB.to_owned()),
            ("client_id", "spa".to_owned()),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(cors_of(&res).0.as_deref(), Some(spa));

    // UserInfo with a bearer token: preflight, then the answer.
    let preflight = |path: &str, origin: &str, method: &str| {
        http_client()
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.address))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", "authorization")
            .send()
    };
    let res = preflight("/userinfo", spa, "GET").await.unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(cors_of(&res), (Some(spa.to_owned()), None));
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allowed.contains("authorization"), "{allowed}");
    let res = http_client()
        .get(format!("{}/userinfo", app.address))
        .header("Origin", spa)
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(cors_of(&res).0.as_deref(), Some(spa));
    let res = http_client()
        .get(format!("{}/userinfo", app.address))
        .header("Origin", spa)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(cors_of(&res).0.as_deref(), Some(spa));
    assert_eq!(
        res.headers()["access-control-expose-headers"],
        "WWW-Authenticate"
    );

    // Other origins (a confidential client's, a stranger's, "null"): no CORS header at all.
    for origin in ["https://app.example.org", "https://evil.example", "null"] {
        for path in ["/token", "/revoke", "/userinfo"] {
            let res = preflight(path, origin, "POST").await.unwrap();
            assert_eq!(res.status(), 403, "{origin} {path}");
            assert_eq!(cors_of(&res), (None, None), "{origin} {path}");
        }
        let res = post("/token", origin, vec![("grant_type", "x".to_owned())])
            .send()
            .await
            .unwrap();
        assert_eq!(cors_of(&res), (None, None), "{origin}");
    }
    // Other endpoints: no CORS header, even for the SPA's origin.
    let res = post("/introspect", spa, vec![("token", access.clone())])
        .send()
        .await
        .unwrap();
    assert_eq!(cors_of(&res), (None, None));
    for path in ["/cas/login", "/authorize", "/account"] {
        let res = http_client()
            .get(format!("{}{path}", app.address))
            .header("Origin", spa)
            .send()
            .await
            .unwrap();
        assert_eq!(cors_of(&res), (None, None), "{path}");
    }
    // (Discovery and the JWKS are public documents, open to every origin with `*` and no
    // credentials, as before: a single-page application reads them first.)
    for path in ["/jwks", "/.well-known/openid-configuration"] {
        let res = http_client()
            .get(format!("{}{path}", app.address))
            .header("Origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(cors_of(&res), (Some("*".to_owned()), None), "{path}");
    }
    // A method the endpoint does not take is not offered.
    let res = preflight("/token", spa, "DELETE").await.unwrap();
    assert_eq!(res.status(), 403);

    // The SPA revokes its refresh token from the browser.
    let res = post(
        "/revoke",
        spa,
        vec![("token", refresh_token), ("client_id", "spa".to_owned())],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(cors_of(&res), (Some(spa.to_owned()), None));
}
