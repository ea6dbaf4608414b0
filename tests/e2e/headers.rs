//! Security headers on every route (security spec A45): set once, by middleware, and checked
//! here on each endpoint, HTML and JSON alike, over https (so HSTS is expected too).

use sesame_tests::TestApp;

/// Every route of `routes::configure`, with a request that reaches its handler (whatever
/// the handler answers, the headers must be there).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/cas/login"),
    ("POST", "/cas/login"),
    ("GET", "/cas/logout"),
    ("POST", "/cas/logout"),
    ("GET", "/cas/validate?service=x&ticket=ST-x"),
    ("GET", "/cas/serviceValidate?service=x&ticket=ST-x"),
    ("GET", "/cas/proxyValidate?service=x&ticket=ST-x"),
    ("GET", "/cas/p3/serviceValidate?service=x&ticket=ST-x"),
    ("GET", "/cas/p3/proxyValidate?service=x&ticket=ST-x"),
    ("GET", "/cas/proxy?pgt=PGT-x&targetService=x"),
    ("POST", "/cas/samlValidate?TARGET=x"),
    ("GET", "/authorize?client_id=nobody"),
    ("POST", "/authorize"),
    ("GET", "/authorize/continue?authz=x"),
    ("POST", "/authorize/consent"),
    ("POST", "/token"),
    ("GET", "/userinfo"),
    ("POST", "/userinfo"),
    ("POST", "/introspect"),
    ("POST", "/revoke"),
    ("GET", "/logout"),
    ("POST", "/logout"),
    ("GET", "/account/applications"),
    ("POST", "/account/applications/revoke"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/static/sesame.css"),
    ("GET", "/no/such/page"),
];

#[tokio::test]
async fn a45_every_route_carries_the_security_headers() {
    let app = TestApp::builder()
        .with(|s| s.server.public_url = "https://127.0.0.1".to_owned())
        .spawn()
        .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in ROUTES {
        let url = format!("http://127.0.0.1:{}{path}", app.port);
        let req = match *method {
            "GET" => http.get(&url),
            _ => http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(""),
        };
        let res = req.send().await.unwrap();
        let h = res.headers();
        let what = format!("{method} {path} ({})", res.status());
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{what}: no CSP"))
            .to_str()
            .unwrap();
        for directive in [
            "frame-ancestors 'none'",
            "object-src 'none'",
            "base-uri 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{what}: {directive} missing in {csp}"
            );
        }
        assert_eq!(h["x-content-type-options"], "nosniff", "{what}");
        assert_eq!(h["x-frame-options"], "DENY", "{what}");
        assert_eq!(h["referrer-policy"], "same-origin", "{what}");
        let hsts = h["strict-transport-security"].to_str().unwrap();
        let max_age: u64 = hsts
            .split(';')
            .find_map(|p| p.trim().strip_prefix("max-age="))
            .and_then(|v| v.parse().ok())
            .unwrap();
        assert!(max_age >= 31_536_000, "{what}: {hsts}");
        // Static assets may be cached; everything else (pages, tickets, tokens) must not.
        if !path.starts_with("/static/") {
            assert_eq!(h["cache-control"], "no-store", "{what}");
        }
    }
}

#[tokio::test]
async fn a45_token_and_userinfo_answers_are_never_cached() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    for path in ["/token", "/introspect", "/revoke"] {
        let res = http
            .post(format!("{}{path}", app.address))
            .form(&[("grant_type", "authorization_code")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
        assert_eq!(res.headers()["pragma"], "no-cache", "{path}");
    }
}
