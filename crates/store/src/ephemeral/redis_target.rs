//! What the Redis store connects to: one server named by a URL (`redis://`, or `rediss://` for
//! TLS), or the primary that Redis Sentinel names (docs/several-instances.md); and the TLS
//! material for `rediss://` (a CA, optionally a client certificate for mutual TLS).
//!
//! TLS is rustls (ring), never OpenSSL. Without a CA file, the server's certificate must chain to
//! the Mozilla roots compiled into Sesame (webpki-roots), as for SMTP and CAS proxy callbacks:
//! the same trust on every machine and in the container image, whatever the host's store holds.
//! Certificate checks cannot be turned off: a `#insecure` URL is refused.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    ClientTlsConfig, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisError,
    RedisResult, TlsCertificates, TlsMode,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Shortest pause between two questions to the sentinels after failures, so that an outage
/// does not turn every failed request into a Sentinel round trip.
const SENTINEL_RECHECK_INTERVAL: Duration = Duration::from_millis(250);

/// One of the TLS files, to say which one is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsFile {
    /// The CA that signed the server's certificate.
    Ca,
    /// The client certificate (mutual TLS).
    ClientCert,
    /// The client certificate's private key (mutual TLS).
    ClientKey,
}

/// Why the TLS material for Redis could not be loaded. Never shows a file's content.
#[derive(Debug, thiserror::Error)]
pub enum RedisTlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Unreadable {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
        /// Why.
        error: io::Error,
    },
    /// A certificate file holds no PEM certificate.
    #[error("{path} holds no PEM certificate")]
    NoCertificate {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: PathBuf,
    },
    /// The key file holds no PEM private key (PKCS#8, PKCS#1 or SEC1).
    #[error("{path} holds no PEM private key")]
    NoPrivateKey {
        /// Its path.
        path: PathBuf,
    },
    /// A client key was given without the client certificate.
    #[error("a client key needs its client certificate")]
    KeyWithoutCertificate,
    /// A client certificate was given without its key.
    #[error("a client certificate needs its private key")]
    CertificateWithoutKey,
}

impl RedisTlsError {
    /// The file at fault: the key file for a missing certificate or key names the other one.
    pub fn file(&self) -> TlsFile {
        match self {
            Self::Unreadable { file, .. } | Self::NoCertificate { file, .. } => *file,
            Self::NoPrivateKey { .. } | Self::KeyWithoutCertificate => TlsFile::ClientKey,
            Self::CertificateWithoutKey => TlsFile::ClientCert,
        }
    }
}

/// TLS material for `rediss://`: PEM contents, read once at start.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// The CA certificates trusted for the server instead of the compiled-in roots.
    ca_pem: Option<Vec<u8>>,
    /// Certificate chain and private key presented to a server that asks for one.
    client_identity: Option<ClientIdentity>,
}

#[derive(Clone)]
struct ClientIdentity {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The private key is a secret: only whether there is one.
        f.debug_struct("RedisTls")
            .field("ca", &self.ca_pem.is_some())
            .field("client_certificate", &self.client_identity.is_some())
            .finish()
    }
}

impl RedisTls {
    /// Reads and checks the TLS files: `ca` (PEM certificates of the CA that signed the
    /// server's certificate; none: the compiled-in Mozilla roots), and the client certificate
    /// and key for mutual TLS (both or neither).
    ///
    /// # Errors
    /// [`RedisTlsError`] naming the file at fault.
    pub fn from_files(
        ca: Option<&Path>,
        client_cert: Option<&Path>,
        client_key: Option<&Path>,
    ) -> Result<Self, RedisTlsError> {
        let ca_pem = ca
            .map(|path| read_certificates(TlsFile::Ca, path))
            .transpose()?;
        let client_identity = match (client_cert, client_key) {
            (None, None) => None,
            (Some(_), None) => return Err(RedisTlsError::CertificateWithoutKey),
            (None, Some(_)) => return Err(RedisTlsError::KeyWithoutCertificate),
            (Some(cert), Some(key)) => Some(ClientIdentity {
                cert_pem: read_certificates(TlsFile::ClientCert, cert)?,
                key_pem: read_private_key(key)?,
            }),
        };
        Ok(Self {
            ca_pem,
            client_identity,
        })
    }

    /// Whether there is nothing beyond the defaults (no CA file, no client certificate).
    pub fn is_default(&self) -> bool {
        self.ca_pem.is_none() && self.client_identity.is_none()
    }

    fn certificates(&self) -> TlsCertificates {
        TlsCertificates {
            client_tls: self.client_identity.as_ref().map(|id| ClientTlsConfig {
                client_cert: id.cert_pem.clone(),
                client_key: id.key_pem.clone(),
            }),
            root_cert: self.ca_pem.clone(),
        }
    }
}

fn read_file(file: TlsFile, path: &Path) -> Result<Vec<u8>, RedisTlsError> {
    std::fs::read(path).map_err(|error| RedisTlsError::Unreadable {
        file,
        path: path.to_owned(),
        error,
    })
}

fn read_certificates(file: TlsFile, path: &Path) -> Result<Vec<u8>, RedisTlsError> {
    let pem = read_file(file, path)?;
    let certificates: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|_| RedisTlsError::NoCertificate {
            file,
            path: path.to_owned(),
        })?;
    if certificates.is_empty() {
        return Err(RedisTlsError::NoCertificate {
            file,
            path: path.to_owned(),
        });
    }
    Ok(pem)
}

fn read_private_key(path: &Path) -> Result<Vec<u8>, RedisTlsError> {
    let pem = read_file(TlsFile::ClientKey, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| RedisTlsError::NoPrivateKey {
        path: path.to_owned(),
    })?;
    Ok(pem)
}

/// The sentinels to ask for the primary of `service`.
#[derive(Clone)]
struct Sentinels {
    /// `redis://[user:password@]host:port` (or `rediss://`) of each sentinel.
    nodes: Vec<String>,
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> …`).
    service: String,
}

/// Where the store connects, and how.
#[derive(Clone)]
pub struct RedisTarget {
    /// `redis://…` or `rediss://…`; through sentinels, only its scheme (TLS or not),
    /// credentials and database number are used.
    url: String,
    tls: RedisTls,
    sentinels: Option<Sentinels>,
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // URLs may hold passwords: not shown.
        f.debug_struct("RedisTarget")
            .field("tls", &self.tls)
            .field(
                "sentinel_service",
                &self.sentinels.as_ref().map(|s| &s.service),
            )
            .finish_non_exhaustive()
    }
}

impl From<&str> for RedisTarget {
    fn from(url: &str) -> Self {
        Self::url(url)
    }
}

impl From<&String> for RedisTarget {
    fn from(url: &String) -> Self {
        Self::url(url.as_str())
    }
}

impl From<String> for RedisTarget {
    fn from(url: String) -> Self {
        Self::url(url)
    }
}

impl RedisTarget {
    /// The server at `url` (`redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS).
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            tls: RedisTls::default(),
            sentinels: None,
        }
    }

    /// With this TLS material (used by `rediss://` URLs; refused with `redis://`).
    #[must_use]
    pub fn with_tls(mut self, tls: RedisTls) -> Self {
        self.tls = tls;
        self
    }

    /// The primary that `sentinels` (`redis://[user:password@]host:port` each, `rediss://`
    /// for TLS) name for `service`, asked again when the primary stops answering or turns
    /// read-only (a failover). The URL then only gives the scheme, credentials and database.
    #[must_use]
    pub fn through_sentinels(mut self, sentinels: Vec<String>, service: impl Into<String>) -> Self {
        self.sentinels = Some(Sentinels {
            nodes: sentinels,
            service: service.into(),
        });
        self
    }

    /// Whether any connection of this target uses TLS.
    pub(super) fn uses_tls(&self) -> bool {
        let tls_url = |url: &str| url.starts_with("rediss://");
        tls_url(&self.url)
            || self
                .sentinels
                .as_ref()
                .is_some_and(|s| s.nodes.iter().any(|n| tls_url(n)))
    }
}

/// A configuration error of the redis crate's kind, so setup reports it like a bad URL.
fn invalid(message: &'static str) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, message))
}

/// Parses a URL of the target, refusing `#insecure` (no certificate check).
fn parse_url(url: &str) -> RedisResult<ConnectionInfo> {
    let info = url.into_connection_info()?;
    if let ConnectionAddr::TcpTls { insecure: true, .. } = info.addr {
        return Err(invalid(
            "rediss:// with #insecure (no certificate check) is refused: trust a private CA with store.tls_ca_file instead",
        ));
    }
    Ok(info)
}

/// The client of a single server.
fn direct_client(url: &str, tls: &RedisTls) -> RedisResult<redis::Client> {
    let info = parse_url(url)?;
    match info.addr {
        ConnectionAddr::TcpTls { .. } => redis::Client::build_with_tls(info, tls.certificates()),
        _ if !tls.is_default() => Err(invalid(
            "TLS files are set but the URL is redis://, not rediss://",
        )),
        _ => redis::Client::open(info),
    }
}

/// The Sentinel client asking `sentinels` for the primary, which it reaches with the scheme,
/// credentials and database of `url`.
fn sentinel_client(
    url: &str,
    tls: &RedisTls,
    sentinels: &Sentinels,
) -> RedisResult<SentinelClient> {
    let primary = parse_url(url)?;
    let primary_tls = matches!(primary.addr, ConnectionAddr::TcpTls { .. });
    if !primary_tls && !tls.is_default() {
        return Err(invalid(
            "TLS files are set but the URL is redis://, not rediss://",
        ));
    }
    let mut addresses = Vec::with_capacity(sentinels.nodes.len());
    let mut credentials = None;
    let mut sentinel_tls = None;
    for node in &sentinels.nodes {
        let info = parse_url(node)?;
        let this_credentials = (info.redis.username.clone(), info.redis.password.clone());
        if credentials.get_or_insert_with(|| this_credentials.clone()) != &this_credentials {
            return Err(invalid(
                "every sentinel must have the same user and password",
            ));
        }
        let this_tls = matches!(info.addr, ConnectionAddr::TcpTls { .. });
        if *sentinel_tls.get_or_insert(this_tls) != this_tls {
            return Err(invalid(
                "the sentinels must all use rediss:// or all redis://",
            ));
        }
        addresses.push(info.addr);
    }
    if addresses.is_empty() {
        return Err(invalid("at least one sentinel is needed"));
    }
    let mut builder = SentinelClientBuilder::new(
        addresses,
        sentinels.service.clone(),
        SentinelServerType::Master,
    )?
    .set_client_to_redis_db(primary.redis.db);
    if let Some(username) = primary.redis.username {
        builder = builder.set_client_to_redis_username(username);
    }
    if let Some(password) = primary.redis.password {
        builder = builder.set_client_to_redis_password(password);
    }
    if primary_tls {
        builder = builder
            .set_client_to_redis_tls_mode(TlsMode::Secure)
            .set_client_to_redis_certificates(tls.certificates());
    }
    if let Some((username, password)) = credentials {
        if let Some(username) = username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = password {
            builder = builder.set_client_to_sentinel_password(password);
        }
    }
    if sentinel_tls == Some(true) {
        builder = builder
            .set_client_to_sentinel_tls_mode(TlsMode::Secure)
            .set_client_to_sentinel_certificates(tls.certificates());
    }
    builder.build()
}

/// The server the store talks to: fixed, or the primary Sentinel names at the moment.
pub(super) enum Primary {
    /// One server, always the same.
    Fixed(redis::Client),
    /// The primary of a Sentinel-monitored group.
    Sentinel(Box<SentinelPrimary>),
}

/// The current primary of a Sentinel-monitored group, and when to ask the sentinels again.
pub(super) struct SentinelPrimary {
    /// Asks the sentinels (and checks with `ROLE` that the server they name is a primary).
    /// One question at a time.
    sentinels: tokio::sync::Mutex<SentinelClient>,
    current: Mutex<CurrentPrimary>,
}

struct CurrentPrimary {
    /// Bumped at each change of primary: connections of an older generation are replaced.
    generation: u64,
    client: redis::Client,
    /// An operation failed in a way a failover explains: ask the sentinels again.
    suspect: bool,
    last_asked: Instant,
}

impl Primary {
    /// The server of `target`; through sentinels, asks them for the primary first (within
    /// the caller's time budget).
    pub(super) async fn open(target: &RedisTarget) -> RedisResult<Self> {
        let Some(sentinels) = &target.sentinels else {
            return direct_client(&target.url, &target.tls).map(Self::Fixed);
        };
        let mut sentinel = sentinel_client(&target.url, &target.tls, sentinels)?;
        let client = sentinel.async_get_client().await?;
        Ok(Self::Sentinel(Box::new(SentinelPrimary {
            sentinels: tokio::sync::Mutex::new(sentinel),
            current: Mutex::new(CurrentPrimary {
                generation: 0,
                client,
                suspect: false,
                last_asked: Instant::now(),
            }),
        })))
    }

    /// The client of the current primary and its generation. Through sentinels, after a
    /// failure, asks them again (at most every [`SENTINEL_RECHECK_INTERVAL`], within `budget`);
    /// while they cannot name a primary, the last known one is used and fails as it must.
    pub(super) async fn client(&self, budget: Duration) -> (u64, redis::Client) {
        let sentinel = match self {
            Self::Fixed(client) => return (0, client.clone()),
            Self::Sentinel(sentinel) => sentinel,
        };
        {
            let current = sentinel.current();
            if !current.suspect || current.last_asked.elapsed() < SENTINEL_RECHECK_INTERVAL {
                return (current.generation, current.client.clone());
            }
        }
        // Another task is asking: use what is known until it has the answer.
        let Ok(mut sentinels) = sentinel.sentinels.try_lock() else {
            let current = sentinel.current();
            return (current.generation, current.client.clone());
        };
        let answer = tokio::time::timeout(budget, sentinels.async_get_client()).await;
        drop(sentinels);
        let mut current = sentinel.current();
        current.last_asked = Instant::now();
        match answer {
            Ok(Ok(client)) => {
                current.suspect = false;
                if client.get_connection_info().addr != current.client.get_connection_info().addr {
                    tracing::warn!(
                        generation = current.generation + 1,
                        "Redis Sentinel names a new primary; reconnecting to it"
                    );
                    current.generation += 1;
                    current.client = client;
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "Redis Sentinel could not name a primary");
            }
            Err(_) => tracing::warn!("Redis Sentinel did not answer within {budget:?}"),
        }
        (current.generation, current.client.clone())
    }

    /// Notes that an operation failed with `error`: through sentinels, a failure a failover
    /// explains (no connection, no answer, a primary turned read-only replica) makes the
    /// next operation ask the sentinels again.
    pub(super) fn failed(&self, error: Option<&RedisError>) {
        let Self::Sentinel(sentinel) = self else {
            return;
        };
        let failover_like = error.is_none_or(|e| {
            e.kind() == ErrorKind::ReadOnly
                || e.code() == Some("READONLY")
                || e.is_io_error()
                || e.is_connection_refusal()
                || e.is_connection_dropped()
                || e.is_timeout()
                || e.is_unrecoverable_error()
        });
        if failover_like {
            sentinel.current().suspect = true;
        }
    }
}

impl SentinelPrimary {
    fn current(&self) -> std::sync::MutexGuard<'_, CurrentPrimary> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_urls_are_refused() {
        let error = direct_client("rediss://127.0.0.1:6380/#insecure", &RedisTls::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("#insecure"), "{error}");
        assert!(direct_client("rediss://127.0.0.1:6380/", &RedisTls::default()).is_ok());
    }

    #[test]
    fn tls_files_need_a_tls_url() {
        let tls = RedisTls {
            ca_pem: Some(b"pem".to_vec()),
            client_identity: None,
        };
        let error = direct_client("redis://127.0.0.1:6379", &tls)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("rediss://"), "{error}");
    }

    #[test]
    fn a_client_key_needs_its_certificate_and_back() {
        let key = Path::new("/nonexistent/key.pem");
        assert!(matches!(
            RedisTls::from_files(None, None, Some(key)),
            Err(RedisTlsError::KeyWithoutCertificate)
        ));
        assert!(matches!(
            RedisTls::from_files(None, Some(key), None),
            Err(RedisTlsError::CertificateWithoutKey)
        ));
        let unreadable = RedisTls::from_files(Some(key), None, None);
        assert!(
            matches!(
                unreadable,
                Err(RedisTlsError::Unreadable {
                    file: TlsFile::Ca,
                    ..
                })
            ),
            "{unreadable:?}"
        );
    }

    #[test]
    fn debug_never_shows_the_key() {
        let tls = RedisTls {
            ca_pem: None,
            client_identity: Some(ClientIdentity {
                cert_pem: b"CERT".to_vec(),
                key_pem: b"SECRET-KEY".to_vec(),
            }),
        };
        let shown = format!("{:?}", RedisTarget::url("rediss://:pw@h/").with_tls(tls));
        assert!(
            !shown.contains("SECRET") && !shown.contains("pw"),
            "{shown}"
        );
    }
}
