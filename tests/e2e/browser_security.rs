//! Security rows that only a real browser shows, in headless Chromium: a token in a page's
//! address never leaves in a `Referer` (A49), and a single-page application of a public
//! client reads the token and UserInfo answers from its own origin, a stranger's page does
//! not (CORS).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::Locator;
use sesame_tests::oidc::query_param;
use sesame_tests::{browser, unique_login, RecordingServer, TestApp, GOOD_PASSWORD};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser::{connect, driver_or_skip};
use crate::recovery::{ask_reset, field, give_recovery_email, reset_links, NEW_PASSWORD};

/// What the proxy saw of one request.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    referer: Option<String>,
}

/// A reverse proxy in front of the app, as a site's front end or a corporate proxy would
/// be: it records the path and `Referer` of every request a browser makes through it (what
/// such a proxy would log), and forwards it.
struct RecordingProxy {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl RecordingProxy {
    async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&seen);
        let upstream = upstream.to_owned();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = Arc::clone(&sink);
                let upstream = upstream.clone();
                tokio::spawn(async move { forward(stream, &upstream, &sink).await });
            }
        });
        Self { base, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }
}

/// Serves one request of `stream` through `upstream`, then closes the connection.
async fn forward(mut stream: tokio::net::TcpStream, upstream: &str, sink: &Mutex<Vec<Seen>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or("GET").to_owned();
    let target = first.next().unwrap_or("/").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    sink.lock().unwrap().push(Seen {
        target: target.clone(),
        referer: headers
            .iter()
            .find(|(k, _)| k == "referer")
            .map(|(_, v)| v.clone()),
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{upstream}{target}"),
    );
    for (name, value) in &headers {
        if !matches!(
            name.as_str(),
            "host" | "connection" | "content-length" | "accept-encoding"
        ) {
            request = request.header(name, value);
        }
    }
    let Ok(res) = request.body(buf[head_end..].to_vec()).send().await else {
        return;
    };
    let mut out = format!("HTTP/1.1 {}\r\n", res.status());
    for (name, value) in res.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "content-length" | "transfer-encoding"
        ) {
            out.push_str(&format!(
                "{name}: {}\r\n",
                value.to_str().unwrap_or_default()
            ));
        }
    }
    let body = res.bytes().await.unwrap_or_default();
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let _ = stream.write_all(out.as_bytes()).await;
    let _ = stream.write_all(&body).await;
}

/// Waits (up to 5 s) until the proxy saw a request for `path`.
async fn wait_for_request(proxy: &RecordingProxy, path: &str) -> Seen {
    for _ in 0..100 {
        if let Some(s) = proxy.seen().into_iter().find(|s| s.target == path) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no request for {path}: {:?}", proxy.seen());
}

#[tokio::test]
async fn a49_pages_with_a_token_in_their_address_never_send_it_on_as_a_referer() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    let login = unique_login("referer");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    // A live reset link.
    ask_reset(&app, &browser(), &login, "email").await;
    let reset = reset_links(&app, &recovery).await.remove(0);
    // A live address-verification link (a new recovery address, asked from the account page).
    let client = browser();
    app.login_with(&client, &login, GOOD_PASSWORD, false).await;
    let page = client
        .get(format!("{}/account", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let new_address = format!("{login}@nouveau.example.net");
    let res = client
        .post(format!("{}/account/recovery-email", app.address))
        .form(&[
            ("csrf", field(&page, "csrf").as_str()),
            ("email", new_address.as_str()),
            ("current", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let verify =
        app.mails_to(&new_address).await[0].link_to(&format!("{}/account/verify", app.address));
    let links = [
        reset,
        verify,
        // An activation link, and a dead reset link (its error page carries it too).
        format!("{}/activation/link?token={}", app.address, "A".repeat(43)),
        format!("{}/password/reset?token={}", app.address, "B".repeat(43)),
    ];

    let proxy = RecordingProxy::start(&app.address).await;
    for link in links {
        let token = query_param(&link, "token").unwrap();
        let path = link.strip_prefix(&app.address).unwrap().to_owned();
        // A fresh browser each time: the style sheet and logo are cached for an hour.
        let c = connect(&driver, 1280).await;
        proxy.clear();
        c.goto(&format!("{}{path}", proxy.base)).await.unwrap();
        let css = wait_for_request(&proxy, "/static/sesame.css").await;
        let logo = wait_for_request(&proxy, "/static/logo.svg").await;
        for sub in [&css, &logo] {
            let referer = sub.referer.clone().unwrap_or_default();
            assert!(!referer.contains(&token), "{path}: {sub:?}");
            // The site's origin only, not nothing: the policy, not luck.
            assert_eq!(referer, format!("{}/", proxy.base), "{path}: {sub:?}");
        }
        // A link followed from the page (the logo, to the login page) carries no token.
        c.find(Locator::Css("a.brand"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        c.wait().for_element(Locator::Id("username")).await.unwrap();
        let referrer = c
            .execute("return document.referrer;", vec![])
            .await
            .unwrap();
        assert_eq!(
            referrer.as_str(),
            Some(format!("{}/", proxy.base).as_str()),
            "{path}"
        );
        for seen in proxy.seen() {
            if seen.target != path {
                assert!(
                    !seen.referer.unwrap_or_default().contains(&token),
                    "{path}: {}",
                    seen.target
                );
            }
        }
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn a49_the_new_password_form_of_a_reset_link_still_posts_in_a_browser() {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    let app = TestApp::spawn().await;
    let login = unique_login("resetform");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let recovery = give_recovery_email(&app, &account).await;
    ask_reset(&app, &browser(), &login, "email").await;
    let link = reset_links(&app, &recovery).await.remove(0);
    let c = connect(&driver, 375).await;
    c.goto(&link).await.unwrap();
    for id in ["password", "confirm"] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(NEW_PASSWORD)
            .await
            .unwrap();
    }
    c.find(Locator::Css("button[type=submit].primary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Posted with its Origin (a no-referrer page would post `Origin: null`, refused).
    c.wait()
        .for_element(Locator::Id("reset-done"))
        .await
        .unwrap_or_else(|_| panic!("not done"));
    c.close().await.unwrap();
    assert_eq!(
        app.login_with(&browser(), &login, NEW_PASSWORD, false)
            .await
            .status(),
        303
    );
}

/// Runs `fetch(url, init)` in the page and returns `status:<n>:<body>` or `blocked:<error>`.
async fn fetch_in_page(c: &fantoccini::Client, url: &str, init: serde_json::Value) -> String {
    let script = "const [url, init, done] = arguments;\
                  fetch(url, init)\
                    .then(r => r.text().then(t => done('status:' + r.status + ':' + t)))\
                    .catch(e => done('blocked:' + e));";
    let out = c
        .execute_async(script, vec![serde_json::json!(url), init])
        .await
        .unwrap();
    out.as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_single_page_application_of_a_public_client_reads_the_token_endpoint_and_a_stranger_cannot(
) {
    let Some(driver) = driver_or_skip() else {
        return;
    };
    // The application's page and a stranger's, each on its own origin.
    let spa = RecordingServer::start().await;
    let stranger = RecordingServer::start().await;
    let client: sesame_protocol::oidc::clients::OidcClient = toml::from_str(&format!(
        "client_id = \"spa\"\nname = \"SPA\"\npublic = true\n\
         token_endpoint_auth_method = \"none\"\nredirect_uris = [\"{}/cb\"]\n",
        spa.base
    ))
    .unwrap();
    let app = sesame_tests::oidc::oidc_app(vec![client]).await;
    let token_body = serde_json::json!({
        "method": "POST",
        "headers": { "Content-Type": "application/x-www-form-urlencoded" },
        "body": format!(
            "grant_type=authorization_code&code=forged&client_id=spa&redirect_uri={}",
            url::form_urlencoded::byte_serialize(format!("{}/cb", spa.base).as_bytes())
                .collect::<String>()
        ),
    });
    let userinfo = serde_json::json!({ "headers": { "Authorization": "Bearer forged" } });
    let c = connect(&driver, 1280).await;

    c.goto(&format!("{}/", spa.base)).await.unwrap();
    let answer = fetch_in_page(&c, &format!("{}/token", app.address), token_body.clone()).await;
    assert!(
        answer.starts_with("status:400:") && answer.contains("invalid_grant"),
        "{answer}"
    );
    // With a bearer token: a preflight first, then the readable 401.
    let answer = fetch_in_page(&c, &format!("{}/userinfo", app.address), userinfo.clone()).await;
    assert!(answer.starts_with("status:401:"), "{answer}");

    c.goto(&format!("{}/", stranger.base)).await.unwrap();
    let answer = fetch_in_page(&c, &format!("{}/token", app.address), token_body).await;
    assert!(answer.starts_with("blocked:"), "{answer}");
    let answer = fetch_in_page(&c, &format!("{}/userinfo", app.address), userinfo).await;
    assert!(answer.starts_with("blocked:"), "{answer}");
    c.close().await.unwrap();
}
