//! The LDAP listener: connections, the BER codec (`ldap3_proto`), StartTLS and LDAPS, and the
//! mapping of each operation onto the [`Directory`].
//!
//! One operation at a time per connection (clients such as Dovecot and Postfix open several
//! connections rather than multiplexing). A connection that sends nothing for the idle
//! timeout, or that sends what is not LDAP, gets a notice of disconnection (RFC 4511 §4.4.1)
//! and is closed. Writes (add, modify, delete, rename) are refused: the directory is
//! read-only, its source of truth is Sesame's account database.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures::{SinkExt, StreamExt};
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapExtendedResponse, LdapFilter, LdapMsg, LdapOp, LdapResult,
    LdapResultCode, LdapSearchScope, OID_WHOAMI,
};
use ldap3_proto::LdapCodec;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::{Framed, FramedParts};

use crate::access::Identity;
use crate::directory::{Directory, Search, OID_PAGED_RESULTS};

/// RFC 4511 §4.14: StartTLS.
pub const OID_START_TLS: &str = "1.3.6.1.4.1.1466.20037";

/// Largest LDAP message accepted, in bytes: a bind or a search is far smaller.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Deepest nesting of a message (filters included) accepted.
const MAX_MESSAGE_DEPTH: usize = 32;

/// Where a password bind may arrive without TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleartextBinds {
    /// Nowhere: StartTLS or LDAPS first.
    Never,
    /// Only from the loopback interface (a mail server on the same host).
    Loopback,
    /// From anywhere (a network the operator trusts).
    Always,
}

/// The certificate and key files, reread when they change (a renewed certificate is used
/// from the next handshake on, without a restart).
#[derive(Debug)]
pub struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    loaded: Mutex<(Option<SystemTime>, Option<SystemTime>, Arc<ServerConfig>)>,
}

/// Why the certificate or key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or parsed.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the pair.
    #[error("certificate and key: {0}")]
    Config(String),
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn load(cert: &PathBuf, key: &PathBuf) -> Result<Arc<ServerConfig>, TlsError> {
    let file_error = |path: &PathBuf, reason: String| TlsError::File {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error(cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(cert, "no certificate in the file".into()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| file_error(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(Arc::new(config))
}

impl TlsFiles {
    /// Loads `cert` (PEM chain) and `key` (PEM private key).
    ///
    /// # Errors
    /// [`TlsError`] when either cannot be read or they do not form a usable pair.
    pub fn load(cert: PathBuf, key: PathBuf) -> Result<Self, TlsError> {
        let config = load(&cert, &key)?;
        let stamps = (modified(&cert), modified(&key));
        Ok(Self {
            loaded: Mutex::new((stamps.0, stamps.1, config)),
            cert,
            key,
        })
    }

    /// The acceptor for the next handshake: the files are reread if they changed since they
    /// were last read; a pair that no longer loads keeps the previous one in use.
    pub fn acceptor(&self) -> TlsAcceptor {
        let stamps = (modified(&self.cert), modified(&self.key));
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if (loaded.0, loaded.1) != stamps {
            match load(&self.cert, &self.key) {
                Ok(config) => {
                    tracing::info!(cert = %self.cert.display(), "LDAP TLS certificate reloaded");
                    *loaded = (stamps.0, stamps.1, config);
                }
                Err(e) => {
                    tracing::error!(error = %e, "LDAP TLS certificate not reloaded; the previous one stays in use");
                    // Not retried at every handshake: only once the files change again.
                    loaded.0 = stamps.0;
                    loaded.1 = stamps.1;
                }
            }
        }
        TlsAcceptor::from(Arc::clone(&loaded.2))
    }
}

/// The listener's settings.
#[derive(Debug)]
pub struct ServerOptions {
    /// Certificate and key, for StartTLS and LDAPS.
    pub tls: Option<Arc<TlsFiles>>,
    /// Where password binds may arrive without TLS.
    pub cleartext_binds: CleartextBinds,
    /// Servers that bind on behalf of many people (a mail server): their binds count on the
    /// login's counter only, not on their address's (which would throttle everyone).
    pub relaying_peers: Vec<(IpAddr, u8)>,
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// A connection silent for this long is closed.
    pub idle_timeout: Duration,
}

/// The LDAP server: the directory behind its listeners.
#[derive(Debug, Clone)]
pub struct LdapServer {
    directory: Directory,
    options: Arc<ServerOptions>,
    connections: Arc<Semaphore>,
}

/// What a connection does next.
enum Next<S> {
    Close,
    StartTls(S),
}

/// One connection's state.
struct Connection {
    peer: SocketAddr,
    identity: Identity,
    tls: bool,
}

fn in_network(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(bits.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(bits.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn result(code: LdapResultCode, message: &str) -> LdapResult {
    LdapResult {
        code,
        matcheddn: String::new(),
        message: message.to_owned(),
        referral: Vec::new(),
    }
}

/// The metric label of a result code.
fn code_label(code: &LdapResultCode) -> &'static str {
    match code {
        LdapResultCode::Success => "success",
        LdapResultCode::InvalidCredentials => "invalid_credentials",
        LdapResultCode::Busy => "busy",
        LdapResultCode::Unavailable => "unavailable",
        LdapResultCode::SizeLimitExceeded => "size_limit_exceeded",
        LdapResultCode::TimeLimitExceeded => "time_limit_exceeded",
        LdapResultCode::AdminLimitExceeded => "admin_limit_exceeded",
        LdapResultCode::NoSuchObject => "no_such_object",
        LdapResultCode::InsufficentAccessRights => "insufficient_access_rights",
        LdapResultCode::UnwillingToPerform => "unwilling_to_perform",
        LdapResultCode::ConfidentialityRequired => "confidentiality_required",
        LdapResultCode::ProtocolError => "protocol_error",
        LdapResultCode::CompareTrue => "compare_true",
        LdapResultCode::CompareFalse => "compare_false",
        _ => "other",
    }
}

impl LdapServer {
    /// A server for `directory`.
    pub fn new(directory: Directory, options: ServerOptions) -> Self {
        let connections = Arc::new(Semaphore::new(options.max_connections.max(1)));
        Self {
            directory,
            options: Arc::new(options),
            connections,
        }
    }

    /// Accepts connections on `listener` until `shutdown` turns true; `implicit_tls` for
    /// LDAPS (TLS from the first byte).
    pub async fn serve(
        &self,
        listener: TcpListener,
        implicit_tls: bool,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => return,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "LDAP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = Arc::clone(&self.connections).try_acquire_owned() else {
                tracing::warn!(client.ip = %peer.ip(), "LDAP connection refused: too many open connections");
                drop(stream);
                continue;
            };
            let server = self.clone();
            tokio::spawn(async move {
                sesame_metrics::ldap_connection_opened();
                server.connection(stream, peer, implicit_tls).await;
                sesame_metrics::ldap_connection_closed();
                drop(permit);
            });
        }
    }

    async fn connection(&self, stream: TcpStream, peer: SocketAddr, implicit_tls: bool) {
        let _ = stream.set_nodelay(true);
        let mut conn = Connection {
            peer,
            identity: Identity::Anonymous,
            tls: implicit_tls,
        };
        if implicit_tls {
            let Some(tls) = &self.options.tls else { return };
            match tokio::time::timeout(self.options.idle_timeout, tls.acceptor().accept(stream))
                .await
            {
                Ok(Ok(s)) => {
                    let framed = Framed::new(s, codec());
                    let _ = self.run(framed, &mut conn).await;
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, client.ip = %peer.ip(), "LDAPS handshake failed")
                }
                Err(_) => tracing::debug!(client.ip = %peer.ip(), "LDAPS handshake timed out"),
            }
            return;
        }
        let framed = Framed::new(stream, codec());
        if let Next::StartTls(stream) = self.run(framed, &mut conn).await {
            let Some(tls) = &self.options.tls else { return };
            match tokio::time::timeout(self.options.idle_timeout, tls.acceptor().accept(stream))
                .await
            {
                Ok(Ok(s)) => {
                    conn.tls = true;
                    let framed = Framed::new(s, codec());
                    let _ = self.run(framed, &mut conn).await;
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, client.ip = %peer.ip(), "StartTLS handshake failed")
                }
                Err(_) => tracing::debug!(client.ip = %peer.ip(), "StartTLS handshake timed out"),
            }
        }
    }

    /// Serves messages on `framed` until the client leaves, fails, or asks for StartTLS.
    async fn run<S>(&self, mut framed: Framed<S, LdapCodec>, conn: &mut Connection) -> Next<S>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            let next = tokio::time::timeout(self.options.idle_timeout, framed.next()).await;
            let msg = match next {
                Err(_) => {
                    let _ = framed
                        .send(notice(LdapResultCode::Other, "idle timeout"))
                        .await;
                    return Next::Close;
                }
                Ok(None) => return Next::Close,
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, client.ip = %conn.peer.ip(), "LDAP: not an LDAP message");
                    let _ = framed
                        .send(notice(LdapResultCode::ProtocolError, "malformed message"))
                        .await;
                    return Next::Close;
                }
                Ok(Some(Ok(msg))) => msg,
            };
            let msgid = msg.msgid;
            match msg.op {
                LdapOp::UnbindRequest => return Next::Close,
                LdapOp::AbandonRequest(_) => {}
                LdapOp::ExtendedRequest(ext) if ext.name == OID_START_TLS => {
                    let refusal = if conn.tls {
                        Some((LdapResultCode::OperationsError, "TLS is already in use"))
                    } else if self.options.tls.is_none() {
                        Some((LdapResultCode::ProtocolError, "StartTLS is not available"))
                    } else {
                        None
                    };
                    let code = refusal
                        .as_ref()
                        .map_or(LdapResultCode::Success, |r| r.0.clone());
                    sesame_metrics::ldap_operation("starttls", code_label(&code));
                    let response = LdapMsg::new(
                        msgid,
                        LdapOp::ExtendedResponse(LdapExtendedResponse {
                            res: result(code, refusal.as_ref().map_or("", |r| r.1)),
                            name: Some(OID_START_TLS.to_owned()),
                            value: None,
                        }),
                    );
                    if framed.send(response).await.is_err() {
                        return Next::Close;
                    }
                    if refusal.is_none() {
                        let parts: FramedParts<S, LdapCodec> = framed.into_parts();
                        // Anything sent after the request and before the handshake would be
                        // cleartext smuggled into the protected session.
                        if !parts.read_buf.is_empty() {
                            return Next::Close;
                        }
                        return Next::StartTls(parts.io);
                    }
                }
                op => {
                    let responses = self.operation(conn, msgid, op, msg.ctrl).await;
                    // A notice of disconnection (message id 0) ends the connection.
                    let disconnect = responses.iter().any(|r| r.msgid == 0);
                    for r in responses {
                        if framed.feed(r).await.is_err() {
                            return Next::Close;
                        }
                    }
                    if framed.flush().await.is_err() || disconnect {
                        return Next::Close;
                    }
                }
            }
        }
    }

    /// The responses to one operation.
    async fn operation(
        &self,
        conn: &mut Connection,
        msgid: i32,
        op: LdapOp,
        controls: Vec<LdapControl>,
    ) -> Vec<LdapMsg> {
        let critical_unknown = controls.iter().any(|c| {
            matches!(
                c,
                LdapControl::Unknown {
                    criticality: true,
                    ..
                }
            ) || matches!(
                c,
                LdapControl::SyncRequest {
                    criticality: true,
                    ..
                }
            )
        });
        match op {
            LdapOp::BindRequest(bind) => {
                let (code, message) = match (bind.version, bind.cred) {
                    (3, LdapBindCred::Simple(password)) => {
                        let cleartext_ok = match self.options.cleartext_binds {
                            CleartextBinds::Always => true,
                            CleartextBinds::Loopback => conn.peer.ip().is_loopback(),
                            CleartextBinds::Never => false,
                        };
                        if !conn.tls && !cleartext_ok && !password.is_empty() {
                            conn.identity = Identity::Anonymous;
                            (
                                LdapResultCode::ConfidentialityRequired,
                                "a password is only accepted over TLS: use StartTLS or LDAPS"
                                    .to_owned(),
                            )
                        } else {
                            let ip = conn.peer.ip();
                            let relayed = self
                                .options
                                .relaying_peers
                                .iter()
                                .any(|n| in_network(ip, *n));
                            let outcome = self
                                .directory
                                .bind(&bind.dn, &password, (!relayed).then_some(ip))
                                .await;
                            conn.identity = outcome.identity;
                            (outcome.code, outcome.message)
                        }
                    }
                    (3, _) => {
                        conn.identity = Identity::Anonymous;
                        (
                            LdapResultCode::AuthMethodNotSupported,
                            "only simple binds are supported".to_owned(),
                        )
                    }
                    _ => (
                        LdapResultCode::ProtocolError,
                        "only LDAP version 3 is supported".to_owned(),
                    ),
                };
                sesame_metrics::ldap_operation("bind", code_label(&code));
                tracing::info!(
                    client.ip = %conn.peer.ip(),
                    ldap.identity = conn.identity.kind(),
                    ldap.result = code_label(&code),
                    "LDAP bind"
                );
                vec![LdapMsg::new(
                    msgid,
                    LdapOp::BindResponse(LdapBindResponse {
                        res: result(code, &message),
                        saslcreds: None,
                    }),
                )]
            }
            LdapOp::SearchRequest(req) => {
                if critical_unknown {
                    sesame_metrics::ldap_operation("search", "other");
                    return vec![LdapMsg::new(
                        msgid,
                        LdapOp::SearchResultDone(result(
                            LdapResultCode::UnavailableCriticalExtension,
                            "unsupported critical control",
                        )),
                    )];
                }
                let paged = controls.iter().find_map(|c| match c {
                    LdapControl::SimplePagedResults { size, cookie } => {
                        Some((*size, cookie.clone()))
                    }
                    _ => None,
                });
                tracing::debug!(base = %req.base, attrs = ?req.attrs, "LDAP search");
                let search = Search {
                    base: req.base,
                    scope: req.scope,
                    filter: req.filter,
                    attrs: req.attrs,
                    size_limit: req.sizelimit,
                    time_limit: req.timelimit,
                    types_only: req.typesonly,
                    paged,
                };
                let outcome = self.directory.search(&conn.identity, &search).await;
                sesame_metrics::ldap_operation("search", code_label(&outcome.code));
                let mut out: Vec<LdapMsg> = outcome
                    .entries
                    .into_iter()
                    .map(|e| LdapMsg::new(msgid, LdapOp::SearchResultEntry(e)))
                    .collect();
                let done = LdapResult {
                    code: outcome.code,
                    matcheddn: outcome.matched_dn,
                    message: outcome.message,
                    referral: Vec::new(),
                };
                let ctrl = outcome
                    .cookie
                    .map(|cookie| vec![LdapControl::SimplePagedResults { size: 0, cookie }])
                    .unwrap_or_default();
                out.push(LdapMsg::new_with_ctrls(
                    msgid,
                    LdapOp::SearchResultDone(done),
                    ctrl,
                ));
                out
            }
            LdapOp::CompareRequest(cmp) => {
                let code = self.compare(conn, &cmp.dn, &cmp.atype, &cmp.val).await;
                sesame_metrics::ldap_operation("compare", code_label(&code));
                vec![LdapMsg::new(msgid, LdapOp::CompareResult(result(code, "")))]
            }
            LdapOp::ExtendedRequest(ext) if ext.name == OID_WHOAMI => {
                sesame_metrics::ldap_operation("whoami", "success");
                vec![LdapMsg::new(
                    msgid,
                    LdapOp::ExtendedResponse(LdapExtendedResponse {
                        res: result(LdapResultCode::Success, ""),
                        name: None,
                        value: Some(conn.identity.authz_id().into_bytes()),
                    }),
                )]
            }
            LdapOp::ExtendedRequest(_) => {
                sesame_metrics::ldap_operation("extended", "protocol_error");
                vec![LdapMsg::new(
                    msgid,
                    LdapOp::ExtendedResponse(LdapExtendedResponse {
                        res: result(
                            LdapResultCode::ProtocolError,
                            "unsupported extended operation",
                        ),
                        name: None,
                        value: None,
                    }),
                )]
            }
            op => {
                let read_only = result(
                    LdapResultCode::UnwillingToPerform,
                    "the directory is read-only: change accounts in Sesame",
                );
                let response = match op {
                    LdapOp::AddRequest(_) => LdapOp::AddResponse(read_only),
                    LdapOp::ModifyRequest(_) => LdapOp::ModifyResponse(read_only),
                    LdapOp::DelRequest(_) => LdapOp::DelResponse(read_only),
                    LdapOp::ModifyDNRequest(_) => LdapOp::ModifyDNResponse(read_only),
                    _ => {
                        sesame_metrics::ldap_operation("other", "protocol_error");
                        return vec![notice(LdapResultCode::ProtocolError, "unexpected message")];
                    }
                };
                sesame_metrics::ldap_operation("write", "unwilling_to_perform");
                vec![LdapMsg::new(msgid, response)]
            }
        }
    }

    /// A compare (RFC 4511 §4.10), answered as a base search with an equality filter would be,
    /// so it reveals nothing a search would not.
    async fn compare(
        &self,
        conn: &Connection,
        dn: &str,
        attr: &str,
        value: &[u8],
    ) -> LdapResultCode {
        let Ok(value) = std::str::from_utf8(value) else {
            return LdapResultCode::CompareFalse;
        };
        let exists = Search {
            base: dn.to_owned(),
            scope: LdapSearchScope::Base,
            filter: LdapFilter::Present("objectClass".to_owned()),
            attrs: vec!["1.1".to_owned()],
            size_limit: 1,
            time_limit: 0,
            types_only: true,
            paged: None,
        };
        let found = self.directory.search(&conn.identity, &exists).await;
        if found.code != LdapResultCode::Success {
            return found.code;
        }
        if found.entries.is_empty() {
            return LdapResultCode::NoSuchObject;
        }
        let equal = Search {
            filter: LdapFilter::Equality(attr.to_owned(), value.to_owned()),
            ..exists
        };
        let outcome = self.directory.search(&conn.identity, &equal).await;
        match (outcome.code, outcome.entries.is_empty()) {
            (LdapResultCode::Success, false) => LdapResultCode::CompareTrue,
            (LdapResultCode::Success, true) => LdapResultCode::CompareFalse,
            (code, _) => code,
        }
    }
}

fn codec() -> LdapCodec {
    LdapCodec::new(Some(MAX_MESSAGE_BYTES), Some(MAX_MESSAGE_DEPTH))
}

/// A notice of disconnection (RFC 4511 §4.4.1).
fn notice(code: LdapResultCode, message: &str) -> LdapMsg {
    LdapMsg::new(
        0,
        LdapOp::ExtendedResponse(LdapExtendedResponse {
            res: result(code, message),
            name: Some("1.3.6.1.4.1.1466.20036".to_owned()),
            value: None,
        }),
    )
}

/// The paged results control's OID, for the root DSE.
pub const PAGED_RESULTS: &str = OID_PAGED_RESULTS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_match_by_prefix() {
        let net = |s: &str, bits| (s.parse::<IpAddr>().unwrap(), bits);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_network(ip("10.1.2.3"), net("10.0.0.0", 8)));
        assert!(!in_network(ip("11.1.2.3"), net("10.0.0.0", 8)));
        assert!(in_network(ip("127.0.0.1"), net("127.0.0.1", 32)));
        assert!(in_network(ip("1.2.3.4"), net("0.0.0.0", 0)));
        assert!(in_network(ip("::1"), net("::1", 128)));
        assert!(!in_network(ip("::1"), net("127.0.0.1", 32)));
    }
}
