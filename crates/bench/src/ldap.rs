//! An LDAP client for the load generator (the LDAP v3 messages of `ldap3_proto` over one TCP
//! connection, opened by the first operation) and the LDAP scenarios: binds of people,
//! searches by a service account, and WhoAmI, the protocol's floor on the same listener.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use futures::{SinkExt, StreamExt};
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapExtendedRequest, LdapFilter, LdapMsg,
    LdapOp, LdapResultCode, LdapSearchRequest, LdapSearchScope, OID_WHOAMI,
};
use ldap3_proto::LdapCodec;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use crate::gen::{Connection, Scenario, Step};
use crate::scenarios::{login_of, Rng, PASSWORD};

/// The base DN of the bench's LDAP tree.
pub const BASE_DN: &str = "dc=bench,dc=example";
/// The service account the search scenario binds as.
pub const SERVICE: &str = "bench-directory";

/// One LDAP connection.
pub struct LdapConn {
    target: SocketAddr,
    framed: Option<Framed<TcpStream, LdapCodec>>,
    next_id: i32,
}

impl Connection for LdapConn {
    fn open(target: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            target,
            framed: None,
            next_id: 1,
        })
    }
}

impl LdapConn {
    /// Sends `op` and reads every message answering it, the final one last.
    async fn call(&mut self, op: LdapOp) -> anyhow::Result<Vec<LdapMsg>> {
        if self.framed.is_none() {
            let stream = TcpStream::connect(self.target)
                .await
                .context("connecting to the LDAP listener")?;
            stream.set_nodelay(true)?;
            self.framed = Some(Framed::new(stream, LdapCodec::default()));
        }
        let framed = self.framed.as_mut().context("connected")?;
        let msgid = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        framed.send(LdapMsg::new(msgid, op)).await?;
        let mut answers = Vec::new();
        loop {
            let Some(msg) = framed.next().await else {
                self.framed = None;
                bail!("the LDAP server closed the connection");
            };
            let msg = msg?;
            ensure!(msg.msgid == msgid, "an answer to message {}", msg.msgid);
            let last = !matches!(msg.op, LdapOp::SearchResultEntry(_));
            answers.push(msg);
            if last {
                return Ok(answers);
            }
        }
    }

    /// A simple bind: its result code.
    ///
    /// # Errors
    /// When the connection fails or the answer is not a bind response.
    pub async fn bind(&mut self, dn: &str, password: &str) -> anyhow::Result<LdapResultCode> {
        let answers = self
            .call(LdapOp::BindRequest(LdapBindRequest {
                version: 3,
                dn: dn.to_owned(),
                cred: LdapBindCred::Simple(password.to_owned()),
            }))
            .await?;
        match answers.into_iter().next().map(|m| m.op) {
            Some(LdapOp::BindResponse(r)) => Ok(r.res.code),
            other => bail!("not a bind response: {other:?}"),
        }
    }
}

/// The DN of seeded account `n`.
pub fn person_dn(n: u32) -> String {
    format!("uid={},ou=people,{BASE_DN}", login_of(n))
}

/// Binds of random accounts among `accounts` with their password, on persistent connections
/// (as Dovecot checks IMAP logins). A `busy` answer (LDAP's share of the hashing pool is
/// taken) is counted and retried after a short pause, not an error.
#[derive(Debug)]
pub struct LdapBind {
    /// Accounts 1..=accounts exist.
    pub accounts: u32,
    /// `busy` answers seen.
    pub busy: Arc<AtomicU64>,
}

impl Scenario for LdapBind {
    type Conn = LdapConn;
    type State = Rng;
    fn state(&self, index: usize) -> Rng {
        Rng::new(index as u64 + 7)
    }
    async fn op(&self, conn: &mut LdapConn, rng: &mut Rng) -> anyhow::Result<Step> {
        let dn = person_dn(rng.below(self.accounts) + 1);
        for _ in 0..1000 {
            match conn.bind(&dn, PASSWORD).await? {
                LdapResultCode::Success => return Ok(Step::Done),
                LdapResultCode::Busy => {
                    self.busy.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                other => bail!("bind of {dn}: {other:?}"),
            }
        }
        bail!("bind of {dn}: busy 1000 times")
    }
}

/// A service account's search for one random person by `uid` (as Postfix or Nextcloud look
/// a person up), after one bind per connection.
#[derive(Debug)]
pub struct LdapSearch {
    /// Accounts 1..=accounts exist.
    pub accounts: u32,
    /// The service account's secret.
    pub secret: String,
}

impl Scenario for LdapSearch {
    type Conn = LdapConn;
    type State = (Rng, bool);
    fn state(&self, index: usize) -> (Rng, bool) {
        (Rng::new(index as u64 + 11), false)
    }
    async fn op(
        &self,
        conn: &mut LdapConn,
        (rng, bound): &mut (Rng, bool),
    ) -> anyhow::Result<Step> {
        if !*bound {
            let dn = format!("cn={SERVICE},ou=services,{BASE_DN}");
            let code = conn.bind(&dn, &self.secret).await?;
            ensure!(code == LdapResultCode::Success, "service bind: {code:?}");
            *bound = true;
        }
        let login = login_of(rng.below(self.accounts) + 1);
        let answers = conn
            .call(LdapOp::SearchRequest(LdapSearchRequest {
                base: format!("ou=people,{BASE_DN}"),
                scope: LdapSearchScope::Subtree,
                aliases: LdapDerefAliases::Never,
                sizelimit: 0,
                timelimit: 0,
                typesonly: false,
                filter: LdapFilter::Equality("uid".to_owned(), login.clone()),
                attrs: vec![
                    "mail".to_owned(),
                    "cn".to_owned(),
                    "eduPersonAffiliation".to_owned(),
                ],
            }))
            .await?;
        let entries = answers
            .iter()
            .filter(|m| matches!(m.op, LdapOp::SearchResultEntry(_)))
            .count();
        match answers.last().map(|m| &m.op) {
            Some(LdapOp::SearchResultDone(r)) if r.code == LdapResultCode::Success => {}
            other => bail!("search for {login}: {other:?}"),
        }
        ensure!(entries == 1, "search for {login}: {entries} entries");
        Ok(Step::Done)
    }
}

/// WhoAmI (RFC 4532) without a bind: the LDAP listener's answer with no storage behind it.
#[derive(Debug)]
pub struct LdapWhoAmI;

impl Scenario for LdapWhoAmI {
    type Conn = LdapConn;
    type State = ();
    fn state(&self, _index: usize) {}
    async fn op(&self, conn: &mut LdapConn, (): &mut ()) -> anyhow::Result<Step> {
        let answers = conn
            .call(LdapOp::ExtendedRequest(LdapExtendedRequest {
                name: OID_WHOAMI.to_owned(),
                value: None,
            }))
            .await?;
        match answers.last().map(|m| &m.op) {
            Some(LdapOp::ExtendedResponse(r)) if r.res.code == LdapResultCode::Success => {
                Ok(Step::Done)
            }
            other => bail!("whoami: {other:?}"),
        }
    }
}
