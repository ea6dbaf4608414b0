//! `rediss://`: the Redis store over TLS against a real `redis-server --tls-port` and a CA made
//! for the test (rcgen): a ticket and a session go through, a server certificate from another
//! CA is refused, and a server that requires client certificates accepts Sesame's and refuses
//! a connection without one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sesame_core::ports::EphemeralStore;
use sesame_store::testing::random_prefix;
use sesame_store::{RedisStore, RedisTarget, RedisTls, StoreSetupError};

use crate::redis_servers::{free_port, redis_server_available, RedisServer, TempDir};

const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// A CA and the PEM files it signed, in a temporary directory.
struct Pki {
    dir: TempDir,
    ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// Another CA, which signed nothing the server presents.
    other_ca: PathBuf,
}

fn new_ca(name: &str) -> (rcgen::Issuer<'static, rcgen::KeyPair>, String) {
    let key = rcgen::KeyPair::generate().expect("CA key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let pem = params.self_signed(&key).expect("CA certificate").pem();
    (rcgen::Issuer::new(params, key), pem)
}

/// A certificate for `names` signed by `issuer`: (certificate PEM, key PEM).
fn leaf(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    names: &[&str],
    usage: rcgen::ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .expect("leaf params");
    params.extended_key_usages = vec![usage];
    let cert = params.signed_by(&key, issuer).expect("leaf certificate");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    fn new() -> Self {
        let dir = TempDir::new("redis-tls");
        let (ca, ca_pem) = new_ca("Sesame test Redis CA");
        let (_, other_ca_pem) = new_ca("Some other CA");
        let (server_cert, server_key) = leaf(
            &ca,
            &["localhost", "127.0.0.1"],
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert, client_key) = leaf(
            &ca,
            &["sesame-client"],
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        );
        Self {
            ca: dir.write("ca.pem", &ca_pem),
            server_cert: dir.write("server.pem", &server_cert),
            server_key: dir.write("server.key", &server_key),
            client_cert: dir.write("client.pem", &client_cert),
            client_key: dir.write("client.key", &client_key),
            other_ca: dir.write("other-ca.pem", &other_ca_pem),
            dir,
        }
    }

    /// Starts a TLS-only Redis; `auth_clients` is `optional` or `yes` (client certificates).
    fn server(&self, auth_clients: &str) -> RedisServer {
        let port = free_port();
        let path = |p: &PathBuf| p.display().to_string();
        let args: Vec<String> = [
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &path(&self.server_cert),
            "--tls-key-file",
            &path(&self.server_key),
            "--tls-ca-cert-file",
            &path(&self.ca),
            "--tls-auth-clients",
            auth_clients,
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        RedisServer::start(self.dir.path(), port, &args)
    }

    fn tls(&self, ca: &Path, client: bool) -> RedisTls {
        let (cert, key) = if client {
            (
                Some(self.client_cert.as_path()),
                Some(self.client_key.as_path()),
            )
        } else {
            (None, None)
        };
        RedisTls::from_files(Some(ca), cert, key).expect("TLS files")
    }
}

fn target(server: &RedisServer, tls: RedisTls) -> RedisTarget {
    RedisTarget::url(format!("rediss://localhost:{}", server.port)).with_tls(tls)
}

async fn connect(target: RedisTarget) -> Result<RedisStore, StoreSetupError> {
    RedisStore::connect(target, &random_prefix(), OP_TIMEOUT).await
}

/// A ticket is issued and consumed once, a session is stored and read back.
async fn ticket_and_session_round_trip(store: &RedisStore) {
    let ttl = Duration::from_secs(60);
    store
        .put("ticket:ST-1", "alice", ttl)
        .await
        .expect("put ticket");
    assert_eq!(
        store
            .take("ticket:ST-1")
            .await
            .expect("take ticket")
            .as_deref(),
        Some("alice")
    );
    assert_eq!(store.take("ticket:ST-1").await.expect("take again"), None);
    assert!(store
        .put_new("session:s1", "alice|2026", ttl)
        .await
        .expect("put session"));
    assert_eq!(
        store
            .get("session:s1")
            .await
            .expect("get session")
            .as_deref(),
        Some("alice|2026")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_stores_tickets_and_sessions_with_the_configured_ca() {
    if !redis_server_available() {
        return;
    }
    let pki = Pki::new();
    let server = pki.server("optional");
    let store = connect(target(&server, pki.tls(&pki.ca, false)))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log_text()));
    ticket_and_session_round_trip(&store).await;
    // The IP address in the URL is checked against the certificate too (it names 127.0.0.1).
    let by_ip = RedisTarget::url(format!("rediss://127.0.0.1:{}", server.port))
        .with_tls(pki.tls(&pki.ca, false));
    ticket_and_session_round_trip(&connect(by_ip).await.expect("by IP address")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_refuses_a_server_certificate_from_another_ca() {
    if !redis_server_available() {
        return;
    }
    let pki = Pki::new();
    let server = pki.server("optional");
    let error = connect(target(&server, pki.tls(&pki.other_ca, false)))
        .await
        .expect_err("a certificate from another CA must be refused");
    let message = error.to_string();
    eprintln!("another CA: {message}");
    assert!(
        matches!(error, StoreSetupError::Redis(_)) && message.contains("certificate"),
        "the error should say the certificate is not trusted: {message}"
    );
    // Without a CA file, only the compiled-in public roots are trusted: refused as well.
    let error = connect(RedisTarget::url(format!(
        "rediss://localhost:{}",
        server.port
    )))
    .await
    .expect_err("a private CA is not a public root");
    assert!(error.to_string().contains("certificate"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_refuses_insecure_urls() {
    let error = connect(RedisTarget::url("rediss://localhost:6380/#insecure"))
        .await
        .expect_err("#insecure must be refused");
    assert!(error.to_string().contains("#insecure"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_works_with_the_client_certificate_and_fails_without() {
    if !redis_server_available() {
        return;
    }
    let pki = Pki::new();
    let server = pki.server("yes");
    let store = connect(target(&server, pki.tls(&pki.ca, true)))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log_text()));
    ticket_and_session_round_trip(&store).await;
    let refused = connect(target(&server, pki.tls(&pki.ca, false))).await;
    if let Err(e) = &refused {
        eprintln!("without a client certificate: {e}");
    }
    assert!(
        refused.is_err(),
        "a server requiring client certificates must refuse a connection without one"
    );
}
