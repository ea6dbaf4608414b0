//! The end-to-end harness: spawns the real Sesame application on a random port against a
//! fresh database (SQLite file, or a PostgreSQL schema) and store (in-process, or Redis with
//! a random key prefix), and drives it over HTTP.
//!
//! `TEST_BACKEND=sqlite` (default) or `TEST_BACKEND=postgres` (with `TEST_DATABASE_URL`,
//! `TEST_REDIS_URL`) picks the backend; the whole suite runs on both in CI.

pub mod oidc;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use sesame_core::account::{Account, AccountState, NewAccount};
use sesame_core::clock::ManualClock;
use sesame_core::credentials::Password;
use sesame_core::ids::{Affiliation, Email, LoginName};
use sesame_server::config::saml::SamlServiceProviderSetting;
use sesame_server::config::Settings;
use sesame_server::services::{Overrides, Services};
use sesame_server::Application;

/// Which storage the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite + in-process store (the embedded default).
    Embedded,
    /// PostgreSQL + Redis (production).
    Production,
}

/// The backend chosen by `TEST_BACKEND`.
pub fn backend() -> Backend {
    match std::env::var("TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Production,
        _ => Backend::Embedded,
    }
}

/// PostgreSQL for the production backend.
pub fn test_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Redis for the production backend.
pub fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Process-wide test setup (TLS provider, logging); idempotent.
pub fn init_test_process() {
    LazyLock::force(&TRACING);
}

/// Test logs go to stderr with `TEST_LOG=1`; otherwise to `target/test-logs/e2e-<pid>.log`,
/// which `tests/check-log-hygiene.sh` searches for secrets after the suite (security spec A59).
static TRACING: LazyLock<()> = LazyLock::new(|| {
    // Two TLS back ends are linked (reqwest and fantoccini pull in both): pick one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let level = std::env::var("TEST_LOG_LEVEL").unwrap_or_else(|_| "info,sesame=debug".to_owned());
    let filter = tracing_subscriber::EnvFilter::new(level);
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-logs");
    let file = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::File::create(dir.join(format!("e2e-{}.log", std::process::id()))));
    if let Ok(file) = file {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(Mutex::new(file))
            .try_init();
    }
});

/// Cheap argon2 so the suite is fast; production parameters have their own tests.
pub fn fast_settings() -> Settings {
    let mut s = Settings::default();
    s.password_hashing.memory_kib = 256;
    s.password_hashing.iterations = 1;
    s.password_hashing.parallelism = 1;
    s.server.listen = "127.0.0.1:0".to_owned();
    s.server.workers = 2;
    s.server.shutdown_timeout_secs = 1;
    s.database.max_connections = 4;
    // Growing delays before the lock have their own test.
    s.lockout.failure_delay_ms = 0;
    s.lifecycle.activation.failure_delay_ms = 0;
    // Off: tests run in parallel and would all want port 9090; the metrics tests turn it on
    // at port 0 (`TestApp::metrics_address`).
    s.metrics.listen = String::new();
    // Second factors on, as an institution that offers them: a key of the tests' own.
    s.mfa.sealing_key = sesame_server::config::Secret::from(TEST_MFA_SEALING_KEY);
    s
}

/// The tests' `[mfa] sealing_key`: the id `test`, 32 bytes of 0x2a in base64.
pub const TEST_MFA_SEALING_KEY: &str = "test:KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

/// Keeps the per-test database alive for the test's duration and removes it after.
#[derive(Debug)]
pub enum DbGuard {
    /// A temporary SQLite file.
    Sqlite(sesame_store::testing::SqliteFileGuard),
    /// A PostgreSQL schema.
    Postgres(sesame_store::testing::PgSchemaGuard),
}

/// A running Sesame.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The bound port.
    pub port: u16,
    /// A browser-like client: cookies kept, redirects not followed.
    pub client: reqwest::Client,
    /// The clock the app reads; move it with `advance`.
    pub clock: Arc<ManualClock>,
    /// The app's services (same database and store).
    pub services: Services,
    /// The settings it runs with.
    pub settings: Settings,
    /// `http://127.0.0.1:<port>` of the metrics listener, when `metrics.listen` is set.
    pub metrics_address: Option<String>,
    /// The LDAP listener's port, when `ldap.listen` is set.
    pub ldap_port: Option<u16>,
    /// The LDAPS listener's port, when `ldap.listen_tls` is set.
    pub ldaps_port: Option<u16>,
    _db: Arc<DbGuard>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        // The per-test outbox made by `spawn` (a sibling recreates it if it still sends).
        let outbox = std::path::Path::new(&self.settings.mail.outbox_dir);
        if outbox.starts_with(std::env::temp_dir())
            && outbox
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("sesame-outbox-"))
        {
            let _ = std::fs::remove_dir_all(outbox);
        }
    }
}

/// A change to the settings, applied before the app starts.
type SettingsTweak = Box<dyn FnOnce(&mut Settings) + Send>;

/// Builds a [`TestApp`].
pub struct TestAppBuilder {
    tweaks: Vec<SettingsTweak>,
    host: &'static str,
}

impl Default for TestAppBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TestAppBuilder {
    /// No tweaks yet.
    pub fn new() -> Self {
        Self {
            tweaks: Vec::new(),
            host: "127.0.0.1",
        }
    }

    /// Serves the app as `http://HOST:port` (it still listens on 127.0.0.1): `localhost` for
    /// the passkey tests, since an address cannot be a WebAuthn RP ID (passkeys are off on
    /// `127.0.0.1`, the other tests' host).
    #[must_use]
    pub fn on_host(mut self, host: &'static str) -> Self {
        self.host = host;
        self
    }

    /// Turns the LDAP interface on, on a random loopback port, with base
    /// [`LDAP_BASE`] (the other `[ldap]` settings as `tweak` leaves them).
    #[must_use]
    pub fn with_ldap(self) -> Self {
        self.with(|s| {
            s.ldap.listen = "127.0.0.1:0".to_owned();
            s.ldap.base_dn = LDAP_BASE.to_owned();
        })
    }

    /// Turns the SAML identity provider on (scope `univ.example.org`, a test salt) with the
    /// service provider `sp` (see [`saml_service_provider`]).
    #[must_use]
    pub fn with_saml(self, sp: SamlServiceProviderSetting) -> Self {
        self.with(move |s| {
            s.saml.enabled = true;
            s.saml.scope = "univ.example.org".to_owned();
            s.saml.pairwise_salt = "a test salt of enough bytes".into();
            s.saml.service_providers.push(sp);
        })
    }

    /// Changes settings before the app starts.
    #[must_use]
    pub fn with(mut self, tweak: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Starts the app on a fresh database and store.
    ///
    /// # Panics
    /// When the backend cannot be reached: the test must fail, not pass vacuously.
    pub async fn spawn(self) -> TestApp {
        LazyLock::force(&TRACING);
        let mut settings = fast_settings();
        let guard = match backend() {
            Backend::Embedded => {
                let (url, guard) = sesame_store::testing::fresh_sqlite();
                settings.database.url = url.into();
                settings.store.url = "memory://".into();
                DbGuard::Sqlite(guard)
            }
            Backend::Production => {
                let (url, guard) = sesame_store::testing::fresh_postgres(&test_database_url())
                    .await
                    .expect("PostgreSQL must be reachable for TEST_BACKEND=postgres");
                settings.database.url = url.into();
                settings.store.url = test_redis_url().into();
                settings.store.key_prefix = sesame_store::testing::random_prefix();
                DbGuard::Postgres(guard)
            }
        };
        // Each test reads its own outbox (see `TestApp::outbox`).
        settings.mail.outbox_dir = std::env::temp_dir()
            .join(format!(
                "sesame-outbox-{}",
                sesame_core::random::alphanumeric(12)
            ))
            .display()
            .to_string();
        settings.mail.from = "Université Exemple <no-reply@univ.example.org>".to_owned();
        for tweak in self.tweaks {
            tweak(&mut settings);
        }
        start(
            settings,
            Arc::new(guard),
            Arc::new(ManualClock::starting_now()),
            self.host,
        )
        .await
    }
}

async fn start(
    mut settings: Settings,
    db: Arc<DbGuard>,
    clock: Arc<ManualClock>,
    host: &str,
) -> TestApp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a random port");
    let port = listener.local_addr().expect("local addr").port();
    let scheme = if settings.server.public_url.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    settings.server.public_url = format!("{scheme}://{host}:{port}");
    let overrides = Overrides {
        clock: Some(clock.clone()),
    };
    let app = Application::build_with_listener(settings.clone(), overrides, listener)
        .await
        .expect("the application starts");
    let services = app.services().clone();
    let metrics_address = app
        .metrics_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    let ldap_port = app.ldap_port();
    let ldaps_port = app.ldaps_port();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://{host}:{port}"),
        port,
        client: browser(),
        clock,
        services,
        settings,
        metrics_address,
        ldap_port,
        ldaps_port,
        _db: db,
        server,
    }
}

/// A SAML service provider's entry as a deployment would write it: its metadata file and
/// the attributes released to it, everything else left at its default (persistent `NameID`,
/// encryption when its metadata has a key).
pub fn saml_service_provider(
    metadata_file: impl Into<String>,
    attributes: &[&str],
) -> SamlServiceProviderSetting {
    SamlServiceProviderSetting {
        metadata_file: metadata_file.into(),
        metadata_source: String::new(),
        entity_id: String::new(),
        name: String::new(),
        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
        name_id_format: "persistent".to_owned(),
        sign_response: false,
        allow_unsolicited: false,
        require_signed_requests: false,
        encrypt_assertions: None,
    }
}

/// A client that keeps cookies and does not follow redirects, as a test browser.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build the HTTP client")
}

/// A file published over HTTP on loopback, as a federation publishes its metadata: the body
/// can be changed while it runs, and each fetch is counted.
#[derive(Clone)]
pub struct Publisher {
    /// Its URL.
    pub url: String,
    body: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
}

impl Publisher {
    /// Serves `body` at a new loopback URL (HTTP/1.1, one request per connection).
    pub async fn start(body: String) -> Self {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the publisher");
        let url = format!(
            "http://{}/metadata.xml",
            listener.local_addr().expect("its address")
        );
        let publisher = Self {
            url,
            body: Arc::new(Mutex::new(body)),
            fetches: Arc::default(),
        };
        let served = publisher.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    served.fetches.fetch_add(1, Ordering::SeqCst);
                    let body = served.body.lock().expect("body").clone();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/samlmetadata+xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes()).await;
                    let _ = stream.write_all(body.as_bytes()).await;
                });
            }
        });
        publisher
    }

    /// Publishes `body` from now on.
    pub fn set(&self, body: String) {
        *self.body.lock().expect("body") = body;
    }

    /// How many times it was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A unique login for this test.
pub fn unique_login(stem: &str) -> String {
    format!(
        "{stem}.{}",
        sesame_core::random::alphanumeric(8).to_lowercase()
    )
}

/// The base DN of the test apps' LDAP trees.
pub const LDAP_BASE: &str = "dc=univ,dc=example,dc=org";

/// A throwaway CA, and a certificate it signed for `names` with its key.
fn throwaway_ca_and_leaf(
    names: Vec<String>,
) -> (rcgen::Certificate, rcgen::Certificate, rcgen::KeyPair) {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Sesame test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf = rcgen::CertificateParams::new(names)
        .expect("leaf params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");
    (ca, leaf, leaf_key)
}

/// An LDAP service account of `scope` for `[[ldap.service_accounts]]`, and its secret.
pub fn ldap_service_account(
    name: &str,
    scope: &str,
) -> (sesame_server::config::ldap::ServiceAccountSetting, String) {
    let secret = sesame_core::random::alphanumeric(48);
    (
        sesame_server::config::ldap::ServiceAccountSetting {
            name: name.to_owned(),
            scope: scope.to_owned(),
            secret_sha256: sesame_core::random::sha256_hex(&secret),
        },
        secret,
    )
}

/// A throwaway CA and a certificate it signed for `localhost`, written as PEM files in a new
/// temporary folder: (CA certificate, certificate, key) paths.
pub fn localhost_certificate() -> (String, String, String) {
    let dir = std::env::temp_dir().join(format!(
        "sesame-tls-{}",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    // OpenLDAP's clients check a `localhost` server against the machine's own name (they
    // replace `localhost` by it), so that name is in the certificate too.
    let mut names = vec!["localhost".to_owned()];
    for args in [&[][..], &["-f"][..]] {
        if let Ok(o) = std::process::Command::new("hostname").args(args).output() {
            let name = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            if o.status.success() && !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
    }
    let (ca, leaf, leaf_key) = throwaway_ca_and_leaf(names);
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write PEM");
        path.display().to_string()
    };
    (
        write("ca.pem", ca.pem()),
        write("cert.pem", leaf.pem()),
        write("key.pem", leaf_key.serialize_pem()),
    )
}

/// A password that passes the default policy.
pub const GOOD_PASSWORD: &str = "violet tramway under the harbour";

impl TestApp {
    /// Starts an app with default test settings.
    pub async fn spawn() -> Self {
        TestAppBuilder::new().spawn().await
    }

    /// A builder, to change settings first.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder::new()
    }

    /// A second instance sharing this one's database, store and clock (meaningful on the
    /// production backend, where they share PostgreSQL and Redis).
    pub async fn spawn_sibling(&self) -> TestApp {
        let mut settings = self.settings.clone();
        settings.server.public_url = "http://127.0.0.1:1".to_owned();
        start(
            settings,
            Arc::clone(&self._db),
            Arc::clone(&self.clock),
            "127.0.0.1",
        )
        .await
    }

    /// Creates an active account with this password (set through the policy).
    pub async fn create_user(&self, login: &str, password: &str) -> Account {
        self.create_user_with(login, password, Affiliation::Staff)
            .await
    }

    /// As `create_user`, with an affiliation.
    pub async fn create_user_with(
        &self,
        login: &str,
        password: &str,
        affiliation: Affiliation,
    ) -> Account {
        let login = LoginName::parse(login).expect("valid login");
        let new = NewAccount {
            email: Some(Email::parse(&format!("{login}@univ.example.org")).expect("valid e-mail")),
            login: login.clone(),
            given_name: "Test".to_owned(),
            family_name: "Person".to_owned(),
            affiliation,
            state: AccountState::Provisioned,
        };
        self.services
            .accounts
            .create(new, "test")
            .await
            .expect("create account");
        self.services
            .accounts
            .set_password(&login, Password::new(password), "test")
            .await
            .expect("set password")
    }

    /// Creates a provisioned account (not activated, no password) of `affiliation`, with a
    /// recovery address when given (`true`: verified), as an operator would.
    pub async fn create_provisioned(
        &self,
        login: &str,
        affiliation: Affiliation,
        recovery: Option<(&str, bool)>,
    ) -> Account {
        let login = LoginName::parse(login).expect("valid login");
        let request = sesame_lifecycle::admin::AccountRequest {
            email: Some(Email::parse(&format!("{login}@univ.example.org")).expect("valid e-mail")),
            login,
            given_name: "Test".to_owned(),
            family_name: "Person".to_owned(),
            affiliation,
            recovery_email: recovery.map(|(a, _)| Email::parse(a).expect("valid e-mail")),
            mobile: None,
            contacts_verified: recovery.is_some_and(|(_, verified)| verified),
        };
        self.services
            .admin
            .create(request, "test")
            .await
            .expect("create account")
            .account
    }

    /// `GET /cas/login` with the app's browser; returns the page and its login ticket.
    pub async fn login_page(&self) -> (reqwest::StatusCode, String, String) {
        get_login_page(&self.client, &self.address).await
    }

    /// Fills and posts the login form with the app's browser.
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.login_with(&self.client, username, password, false)
            .await
    }

    /// Fills and posts the login form with `client`.
    pub async fn login_with(
        &self,
        client: &reqwest::Client,
        username: &str,
        password: &str,
        remember_me: bool,
    ) -> reqwest::Response {
        let (_, _, lt) = get_login_page(client, &self.address).await;
        self.post_login(client, &lt, username, password, remember_me)
            .await
    }

    /// Posts the login form with a given login ticket.
    pub async fn post_login(
        &self,
        client: &reqwest::Client,
        lt: &str,
        username: &str,
        password: &str,
        remember_me: bool,
    ) -> reqwest::Response {
        let mut form = vec![("lt", lt), ("username", username), ("password", password)];
        if remember_me {
            form.push(("remember_me", "true"));
        }
        client
            .post(format!("{}/cas/login", self.address))
            .form(&form)
            .send()
            .await
            .expect("POST /cas/login")
    }

    /// A fresh login ticket, fetched by a cookie-less client.
    pub async fn fresh_lt(&self) -> String {
        get_login_page(&reqwest::Client::new(), &self.address)
            .await
            .2
    }

    /// The audit events of a login, newest first.
    pub async fn audit_kinds(&self, login: &str) -> Vec<String> {
        let folded = sesame_core::ids::fold_identifier(login);
        self.services
            .audit
            .recent(Some(&folded), 10_000)
            .await
            .expect("read audit")
            .into_iter()
            .map(|e| e.kind)
            .collect()
    }
}

/// `GET /cas/login` with `client`; returns status, body and the login ticket.
pub async fn get_login_page(
    client: &reqwest::Client,
    address: &str,
) -> (reqwest::StatusCode, String, String) {
    let res = client
        .get(format!("{address}/cas/login"))
        .send()
        .await
        .expect("GET /cas/login");
    let status = res.status();
    let body = res.text().await.expect("body");
    let lt = extract_lt(&body).unwrap_or_default();
    (status, body, lt)
}

/// The login ticket of a login page.
pub fn extract_lt(html: &str) -> Option<String> {
    let start = html.find("name=\"lt\" value=\"")? + "name=\"lt\" value=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_owned())
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

/// One HTTP request received by a [`RecordingServer`].
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// `GET`, `POST`…
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The body, as text.
    pub body: String,
}

/// A tiny HTTP server standing for a relying application: it answers 200 to everything and
/// records what it received (single-logout POSTs, proxy callbacks).
#[derive(Debug, Clone)]
pub struct RecordingServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl RecordingServer {
    /// Starts one on a random port.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Starts one on `port` of the loopback (0: a random one), e.g. a port a test kept closed
    /// until now to play a provider that was down.
    pub async fn start_on(port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let base = format!(
            "http://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = Arc::clone(&sink);
                tokio::spawn(async move {
                    if let Some(r) = read_request(stream).await {
                        sink.lock().expect("lock").push(r);
                    }
                });
            }
        });
        Self { base, requests }
    }

    /// Starts one serving https on `localhost` with a certificate from a throwaway CA;
    /// returns the server (its base is `https://localhost:<port>`) and the CA's PEM.
    pub async fn start_tls() -> (Self, String) {
        init_test_process();
        let (ca, leaf, leaf_key) = throwaway_ca_and_leaf(vec!["localhost".to_owned()]);
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .expect("TLS config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!(
            "https://localhost:{}",
            listener.local_addr().expect("addr").port()
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = Arc::clone(&sink);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    if let Some(r) = read_request(tls).await {
                        sink.lock().expect("lock").push(r);
                    }
                });
            }
        });
        (Self { base, requests }, ca.pem())
    }

    /// What it received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("lock").clone()
    }

    /// Waits (up to 5 s) until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<RecordedRequest> {
        for _ in 0..100 {
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.requests()
    }
}

async fn read_request<S>(mut stream: S) -> Option<RecordedRequest>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.lines();
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nOK")
        .await;
    Some(RecordedRequest {
        method,
        target,
        body,
    })
}

/// A registered CAS service matching `url_prefix`, from its TOML form.
pub fn cas_service(
    id: &str,
    url_prefix: &str,
    extra_toml: &str,
) -> sesame_protocol::services::RegisteredService {
    let text =
        format!("id = \"{id}\"\nname = \"{id}\"\nurl_prefix = \"{url_prefix}\"\n{extra_toml}\n");
    toml::from_str(&text).expect("valid service definition")
}

/// A mail found in the outbox, parsed.
#[derive(Debug, Clone)]
pub struct OutboxMail {
    /// The file's name without `.eml`: the mail's id.
    pub id: String,
    /// The recipient's address.
    pub to: String,
    /// The sender's address.
    pub from: String,
    /// The decoded subject.
    pub subject: String,
    /// The text body.
    pub text: String,
    /// The HTML body, if any.
    pub html: Option<String>,
    /// The message as written.
    pub raw: Vec<u8>,
}

impl OutboxMail {
    /// Every `http(s)://` link of the text body, in order.
    pub fn links(&self) -> Vec<String> {
        self.text
            .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '(' | ')'))
            .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
            .map(|w| w.trim_end_matches(['.', ',', ';']).to_owned())
            .collect()
    }

    /// The one link of the text body that starts with `prefix` (e.g. the app's address),
    /// checked to point to this test's server before a test follows it.
    ///
    /// # Panics
    /// If there is none or more than one.
    pub fn link_to(&self, prefix: &str) -> String {
        let links: Vec<_> = self
            .links()
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect();
        assert_eq!(links.len(), 1, "links to {prefix} in {:?}", self.text);
        links.into_iter().next().unwrap_or_default()
    }
}

/// Parses an `.eml` file's bytes.
///
/// # Panics
/// If it is not a mail.
pub fn parse_mail(id: &str, raw: Vec<u8>) -> OutboxMail {
    let message = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("the outbox holds a parseable mail");
    let address = |a: Option<&mail_parser::Address<'_>>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .unwrap_or_default()
            .to_owned()
    };
    OutboxMail {
        id: id.to_owned(),
        to: address(message.to()),
        from: address(message.from()),
        subject: message.subject().unwrap_or_default().to_owned(),
        text: message
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default(),
        html: message.body_html(0).map(|h| h.into_owned()),
        raw: raw.clone(),
    }
}

impl TestApp {
    /// Delivers every mail due now (one pass of the app's mail worker, which the app also
    /// runs by itself when a mail is queued), and returns what it did.
    ///
    /// # Panics
    /// If the queue fails.
    pub async fn deliver_mail(&self) -> sesame_mail::worker::DeliveryReport {
        self.services
            .mail
            .worker
            .run_once()
            .await
            .expect("the mail queue answers")
    }

    /// Every mail in this app's outbox, oldest first (call [`TestApp::deliver_mail`] first).
    pub fn outbox(&self) -> Vec<OutboxMail> {
        let dir = std::path::Path::new(&self.settings.mail.outbox_dir);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        // Ids are UUIDv7: by name is by creation.
        files.sort();
        files
            .into_iter()
            .map(|p| {
                let id = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                parse_mail(&id, std::fs::read(&p).expect("read the outbox"))
            })
            .collect()
    }

    /// Delivers due mail, then returns the mails in the outbox sent to `address`.
    pub async fn mails_to(&self, address: &str) -> Vec<OutboxMail> {
        self.deliver_mail().await;
        self.outbox()
            .into_iter()
            .filter(|m| m.to.eq_ignore_ascii_case(address))
            .collect()
    }
}

/// A real SMTP server (aiosmtpd, `crates/mail/tests/smtp_server.py`) that keeps every
/// message it accepts as `NNNN.eml` with its envelope as `NNNN.json`. Stopped when dropped.
#[derive(Debug)]
pub struct SmtpCatcher {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// Where it writes the messages.
    pub dir: std::path::PathBuf,
    child: std::process::Child,
}

impl SmtpCatcher {
    /// Starts one, requiring SMTP AUTH with `auth` (`user:password`) if given. `None` when
    /// aiosmtpd is not installed, outside CI (in CI its absence fails the test).
    ///
    /// # Panics
    /// If the server does not start.
    pub fn start(auth: Option<&str>) -> Option<Self> {
        use std::io::BufRead;
        let available = std::process::Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !available {
            assert!(
                std::env::var("CI").is_err(),
                "aiosmtpd must be installed in CI (pip install aiosmtpd)"
            );
            eprintln!("skipped: aiosmtpd is not installed (pip install aiosmtpd)");
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "sesame-e2e-smtp-{}",
            sesame_core::random::alphanumeric(10)
        ));
        std::fs::create_dir_all(&dir).expect("create the SMTP server's directory");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../crates/mail/tests/smtp_server.py"
        );
        let mut command = std::process::Command::new("python3");
        command.arg(script).arg(&dir);
        if let Some(auth) = auth {
            command.args(["--auth", auth]);
        }
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the SMTP server");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("its standard output"))
            .read_line(&mut line)
            .expect("read READY <port>");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .expect("the server says READY <port>");
        Some(Self { port, dir, child })
    }

    /// The messages accepted so far, in order, each with its envelope.
    pub fn messages(&self) -> Vec<(serde_json::Value, OutboxMail)> {
        let mut out = Vec::new();
        for n in 1.. {
            let base = self.dir.join(format!("{n:04}"));
            let (Ok(envelope), Ok(eml)) = (
                std::fs::read_to_string(base.with_extension("json")),
                std::fs::read(base.with_extension("eml")),
            ) else {
                break;
            };
            let envelope = serde_json::from_str(&envelope).expect("the envelope is JSON");
            out.push((envelope, parse_mail(&format!("{n:04}"), eml)));
        }
        out
    }
}

impl Drop for SmtpCatcher {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
