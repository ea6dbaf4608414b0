//! Prometheus metrics on their own listener (security spec A60): counters move by exactly
//! what happened, and `/metrics` is not on the public port.
//!
//! The exporter is process-wide (the `metrics` facade has one recorder per process); the
//! suite runs under cargo-nextest, one process per test, so the deltas below see only this
//! test's traffic.

use std::collections::BTreeMap;

use serde_json::Value;
use sesame_protocol::oidc::clients::OidcClient;
use sesame_tests::{browser, cas_service, extract_lt, unique_login, TestApp, GOOD_PASSWORD};

const SERVICE: &str = "https://app.example.org/moodle/";
const SECRET: &str = "metrics-test-secret-0123456789abcdefghijklmnopqrstuv";

/// One scrape: `name{label="value",…}` (labels sorted) → value.
#[derive(Debug)]
struct Scrape {
    series: BTreeMap<String, f64>,
    text: String,
}

impl Scrape {
    /// The value of `name` with exactly these labels; 0 when the series does not exist yet.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.series
            .get(&series_key(name, labels))
            .copied()
            .unwrap_or(0.0)
    }
}

fn series_key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    labels.sort();
    if labels.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

async fn scrape(app: &TestApp) -> Scrape {
    let address = app
        .metrics_address
        .as_deref()
        .expect("the metrics listener is on");
    let res = reqwest::get(format!("{address}/metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = res.text().await.unwrap();
    let mut series = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (key, value) = line.rsplit_once(' ').expect("`series value`");
        let key = match key.split_once('{') {
            Some((name, labels)) => {
                let labels: Vec<(&str, &str)> = labels
                    .trim_end_matches('}')
                    .split("\",")
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let (k, v) = l.split_once('=').expect("label=value");
                        (k, v.trim_matches('"'))
                    })
                    .collect();
                series_key(name, &labels)
            }
            None => key.to_owned(),
        };
        series.insert(key, value.parse().expect("a number"));
    }
    Scrape { series, text }
}

async fn metrics_app() -> TestApp {
    let client: OidcClient = toml::from_str(&format!(
        "client_id = \"api\"\nname = \"API\"\nredirect_uris = [\"https://api.example.org/cb\"]\nscopes = [\"profile\"]\nfirst_party = true\nclient_credentials = true\nclient_secret_sha256 = \"{}\"\n",
        sesame_core::random::sha256_hex(SECRET)
    ))
    .unwrap();
    TestApp::builder()
        .with(move |s| {
            s.metrics.listen = "127.0.0.1:0".to_owned();
            s.lockout.threshold = 3;
            s.cas.services.push(cas_service("moodle", SERVICE, ""));
            s.oidc.clients.push(client);
        })
        .spawn()
        .await
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Logs in at `/cas/login?service=…` and returns the service ticket of the redirect.
async fn cas_login(app: &TestApp, login: &str) -> String {
    let client = browser();
    let url = format!("{}/cas/login?service={}", app.address, enc(SERVICE));
    let page = client.get(&url).send().await.unwrap().text().await.unwrap();
    let lt = extract_lt(&page).expect("a login form");
    let res = client
        .post(&url)
        .form(&[
            ("lt", lt.as_str()),
            ("username", login),
            ("password", GOOD_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let location = res.headers()["location"].to_str().unwrap();
    let url = url::Url::parse(location).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "ticket")
        .expect("a ticket")
        .1
        .into_owned()
}

async fn validate(app: &TestApp, ticket: &str) -> String {
    reqwest::get(format!(
        "{}/cas/p3/serviceValidate?service={}&ticket={ticket}",
        app.address,
        enc(SERVICE)
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
}

#[tokio::test]
async fn counters_move_by_exactly_the_logins_tickets_and_tokens_that_happened() {
    let app = metrics_app().await;
    let login = unique_login("metrics");
    app.create_user(&login, GOOD_PASSWORD).await;
    let before = scrape(&app).await;
    // Every fixed series exists at zero before its first event.
    for outcome in ["success", "invalid_credentials", "locked"] {
        assert!(
            before
                .text
                .contains(&format!("sesame_logins_total{{outcome=\"{outcome}\"}} 0")),
            "{}",
            before.text
        );
    }
    assert!(before.text.contains("# TYPE sesame_lockouts_total counter"));

    // One failed and one successful login, one ticket issued, validated once and replayed.
    let failed = app.login(&login, "not the password at all").await;
    assert_eq!(failed.status(), 401);
    let ticket = cas_login(&app, &login).await;
    assert!(validate(&app, &ticket)
        .await
        .contains("<cas:authenticationSuccess>"));
    assert!(validate(&app, &ticket).await.contains("INVALID_TICKET"));
    // One token.
    let res = reqwest::Client::new()
        .post(format!("{}/token", app.address))
        .basic_auth("api", Some(SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", "profile")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let _: Value = res.json().await.unwrap();

    let after = scrape(&app).await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    assert_eq!(
        delta("sesame_logins_total", &[("outcome", "invalid_credentials")]),
        1.0
    );
    assert_eq!(delta("sesame_logins_total", &[("outcome", "success")]), 1.0);
    assert_eq!(delta("sesame_logins_total", &[("outcome", "locked")]), 0.0);
    assert_eq!(delta("sesame_lockouts_total", &[]), 0.0);
    assert_eq!(delta("sesame_tickets_issued_total", &[("kind", "st")]), 1.0);
    assert_eq!(
        delta("sesame_tickets_issued_total", &[("kind", "pgt")]),
        0.0
    );
    assert_eq!(
        delta("sesame_tickets_validated_total", &[("outcome", "success")]),
        1.0
    );
    assert_eq!(
        delta(
            "sesame_tickets_validated_total",
            &[("outcome", "INVALID_TICKET")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "sesame_tokens_issued_total",
            &[("grant", "client_credentials")]
        ),
        1.0
    );
    assert_eq!(
        delta(
            "sesame_tokens_issued_total",
            &[("grant", "authorization_code")]
        ),
        0.0
    );
    // HTTP requests are counted by route pattern, method and status.
    assert_eq!(
        delta(
            "sesame_http_requests_total",
            &[
                ("route", "/cas/p3/serviceValidate"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        2.0
    );
    assert_eq!(
        delta(
            "sesame_http_requests_total",
            &[("route", "/token"), ("method", "POST"), ("status", "200")]
        ),
        1.0
    );
    assert!(
        after.get(
            "sesame_http_request_duration_seconds_count",
            &[("route", "/cas/login"), ("method", "POST")]
        ) >= 2.0,
        "{}",
        after.text
    );
    // The hashing pool was used and is idle again; the stores were timed.
    assert!(after.get("sesame_hashing_wait_seconds_count", &[]) >= 2.0);
    assert_eq!(after.get("sesame_hashing_queue_depth", &[]), 0.0);
    assert!(after.get("sesame_db_op_seconds_count", &[]) > 0.0);
    assert_eq!(delta("sesame_db_errors_total", &[]), 0.0);
    if sesame_tests::backend() == sesame_tests::Backend::Production {
        assert!(after.get("sesame_store_op_seconds_count", &[]) > 0.0);
        assert_eq!(delta("sesame_store_errors_total", &[]), 0.0);
    }
    // No login, ticket or query string ever becomes a label.
    assert!(!after.text.contains(&login), "{}", after.text);
    assert!(!after.text.contains(&ticket), "{}", after.text);
    assert!(!after.text.contains("ticket="), "{}", after.text);
}

#[tokio::test]
async fn a_new_lock_counts_once_in_lockouts_and_refusals_count_as_locked() {
    let app = metrics_app().await;
    let login = unique_login("metrics.lock");
    app.create_user(&login, GOOD_PASSWORD).await;
    let before = scrape(&app).await;
    // threshold = 3: the third failure locks; the fourth attempt is refused while locked.
    for _ in 0..4 {
        let res = app.login(&login, "not the password at all").await;
        assert_eq!(res.status(), 401);
    }
    let after = scrape(&app).await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    assert_eq!(delta("sesame_lockouts_total", &[]), 1.0);
    assert_eq!(
        delta("sesame_logins_total", &[("outcome", "invalid_credentials")]),
        2.0
    );
    assert_eq!(delta("sesame_logins_total", &[("outcome", "locked")]), 2.0);
}

#[tokio::test]
async fn a60_metrics_are_only_on_their_own_listener() {
    let app = metrics_app().await;
    // The public listener answers /metrics like any unknown path (A60).
    for path in ["/metrics", "/metrics/", "/cas/metrics"] {
        let res = reqwest::get(format!("{}{path}", app.address))
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("sesame_logins_total"), "{path}: {body}");
    }
    // The metrics listener serves nothing else.
    let metrics = app.metrics_address.clone().unwrap();
    for path in ["/", "/cas/login", "/health/ready"] {
        let res = reqwest::get(format!("{metrics}{path}")).await.unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
    // With the key empty (the harness's default) there is no metrics listener at all.
    let off = TestApp::spawn().await;
    assert!(off.metrics_address.is_none());
    let res = reqwest::get(format!("{}/metrics", off.address))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
