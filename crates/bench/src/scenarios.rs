//! The workloads: Sesame's flows as a browser and a relying party drive them, and the plain
//! GET the ceiling servers answer. Every answer is checked; a wrong one is an error.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{bail, ensure, Context};
use base64::Engine as _;
use hyper::StatusCode;
use url::form_urlencoded;

use crate::gen::{Scenario, Step};
use crate::http::{Conn, Reply};

/// The password every seeded account has.
pub const PASSWORD: &str = "violet tramway under the harbour";

/// The login of seeded account `n` (1-based).
pub fn login_of(n: u32) -> String {
    format!("bench.{n:07}")
}

/// What the generated configuration registered: the CAS service and the OIDC clients.
#[derive(Debug, Clone)]
pub struct Site {
    /// The CAS `service` URL (matches the registered prefix; attributes released).
    pub service: String,
    /// Confidential relying party (authorization code, refresh).
    pub rp_id: String,
    /// Its secret.
    pub rp_secret: String,
    /// Its registered redirect URI.
    pub rp_redirect: String,
    /// Confidential service client allowed `client_credentials`.
    pub svc_id: String,
    /// Its secret.
    pub svc_secret: String,
    /// The LDAP service account's secret (`crate::ldap::SERVICE`).
    pub ldap_secret: String,
}

impl Site {
    /// Random client secrets.
    pub fn new() -> Self {
        Self {
            service: "https://moodle.bench.example/login/index.php".to_owned(),
            rp_id: "bench-rp".to_owned(),
            rp_secret: random_secret(),
            rp_redirect: "https://rp.bench.example/callback".to_owned(),
            svc_id: "bench-provisioning".to_owned(),
            svc_secret: random_secret(),
            ldap_secret: random_secret(),
        }
    }

    fn basic(id: &str, secret: &str) -> String {
        let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", encode(id), encode(secret));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }

    /// `Authorization` of the relying party.
    pub fn rp_basic(&self) -> String {
        Self::basic(&self.rp_id, &self.rp_secret)
    }

    /// `Authorization` of the service client.
    pub fn svc_basic(&self) -> String {
        Self::basic(&self.svc_id, &self.svc_secret)
    }
}

impl Default for Site {
    fn default() -> Self {
        Self::new()
    }
}

fn random_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text.get(from..)?.find(end)?;
    text.get(from..from + len)
}

/// The value of query parameter `name` in a URL.
fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn expect_status(reply: &Reply, want: &[StatusCode], what: &str) -> anyhow::Result<()> {
    if want.contains(&reply.status) {
        Ok(())
    } else {
        bail!("{what}: HTTP {} {}", reply.status, reply.snippet())
    }
}

/// The SSO cookie (`name=value`) a login response set.
fn sso_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("sesame_tgc=") || c.starts_with("__Host-sesame_tgc="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// The login page, then the form posted with its fresh login ticket: the SSO cookie.
pub async fn log_in(conn: &mut Conn, login: &str) -> anyhow::Result<String> {
    let page = conn.get("/cas/login", None).await?;
    expect_status(&page, &[StatusCode::OK], "GET /cas/login")?;
    let lt = between(page.text(), "name=\"lt\" value=\"", "\"")
        .context("the login page has no login ticket")?;
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("lt", lt)
        .append_pair("username", login)
        .append_pair("password", PASSWORD)
        .finish();
    let reply = conn.post_form("/cas/login", form, None).await?;
    expect_status(&reply, &[StatusCode::SEE_OTHER], "POST /cas/login")?;
    sso_cookie(&reply).context("the login set no SSO cookie")
}

/// The TOTP secret of every seeded TOTP account (20 bytes, as authenticator applications
/// get them).
pub const TOTP_SECRET: [u8; 20] = *b"sesame-bench-totp-20";

/// The login of seeded TOTP account `n` (1-based).
pub fn totp_login_of(n: u32) -> String {
    format!("bench.totp.{n:06}")
}

/// The RFC 6238 code of [`TOTP_SECRET`] at unix time `unix` (HMAC-SHA-1, 30 s, 6 digits),
/// written here from the RFC rather than taken from Sesame.
pub fn totp_code(unix: u64) -> String {
    totp_code_of(&TOTP_SECRET, unix)
}

fn totp_code_of(secret: &[u8], unix: u64) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = aws_lc_rs::hmac::sign(&key, &(unix / 30).to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    format!("{:06}", word % 1_000_000)
}

/// The login transaction's cookie (`name=value`) a password answer set.
fn login_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("sesame_login=") || c.starts_with("__Host-sesame_login="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// Password then TOTP code: the login page, the form (→ the second-factor step), the code
/// (→ the SSO cookie). Accounts are taken in turn, so none is asked twice within a code's
/// 30 s (a code is accepted once: RFC 6238 § 5.2).
#[derive(Debug)]
pub struct TotpLogin {
    /// TOTP accounts 1..=accounts exist.
    pub accounts: u32,
    /// The next account.
    pub next: Arc<std::sync::atomic::AtomicU32>,
}

impl Scenario for TotpLogin {
    type Conn = Conn;
    type State = ();
    fn state(&self, _index: usize) {}
    async fn op(&self, conn: &mut Conn, (): &mut ()) -> anyhow::Result<Step> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % self.accounts + 1;
        let page = conn.get("/cas/login", None).await?;
        expect_status(&page, &[StatusCode::OK], "GET /cas/login")?;
        let lt = between(page.text(), "name=\"lt\" value=\"", "\"")
            .context("the login page has no login ticket")?;
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("lt", lt)
            .append_pair("username", &totp_login_of(n))
            .append_pair("password", PASSWORD)
            .finish();
        let reply = conn.post_form("/cas/login", form, None).await?;
        expect_status(&reply, &[StatusCode::SEE_OTHER], "POST /cas/login")?;
        ensure!(
            reply
                .header("location")
                .is_some_and(|l| l.ends_with("/login/second-factor")),
            "the password of a TOTP account did not lead to the second factor"
        );
        let tx = login_cookie(&reply).context("no login transaction cookie")?;
        #[expect(
            clippy::disallowed_methods,
            reason = "the code is the authenticator application's: it reads the real time, as Sesame does"
        )]
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &totp_code(now))
            .finish();
        let reply = conn
            .post_form_with_cookie("/login/second-factor", form, &tx)
            .await?;
        expect_status(
            &reply,
            &[StatusCode::SEE_OTHER],
            "POST /login/second-factor",
        )?;
        sso_cookie(&reply).context("the code opened no session")?;
        Ok(Step::Done)
    }
}

/// A cheap xorshift generator: which account logs in next.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        u32::try_from(self.0 % u64::from(n.max(1))).unwrap_or(0)
    }
}

/// Password login of a random account among `accounts`: GET the form, POST it.
#[derive(Debug)]
pub struct PasswordLogin {
    /// Accounts 1..=accounts exist.
    pub accounts: u32,
}

impl Scenario for PasswordLogin {
    type Conn = Conn;
    type State = Rng;
    fn state(&self, index: usize) -> Rng {
        Rng::new(index as u64 + 1)
    }
    async fn op(&self, conn: &mut Conn, rng: &mut Rng) -> anyhow::Result<Step> {
        let n = rng.below(self.accounts) + 1;
        log_in(conn, &login_of(n)).await?;
        Ok(Step::Done)
    }
}

/// SSO cookies of logged-in browsers, one per connection.
fn session_of(sessions: &[String], index: usize) -> String {
    sessions
        .get(index % sessions.len().max(1))
        .cloned()
        .unwrap_or_default()
}

/// `GET /cas/login?service=…` with the SSO cookie: the service ticket.
async fn mint_service_ticket(conn: &mut Conn, site: &Site, cookie: &str) -> anyhow::Result<String> {
    let reply = conn
        .get(
            &format!("/cas/login?service={}", enc(&site.service)),
            Some(cookie),
        )
        .await?;
    expect_status(
        &reply,
        &[StatusCode::FOUND, StatusCode::SEE_OTHER],
        "GET /cas/login?service",
    )?;
    reply
        .header("location")
        .and_then(|l| query_param(l, "ticket"))
        .filter(|t| t.starts_with("ST-"))
        .context("the redirect carries no service ticket")
}

async fn validate(
    conn: &mut Conn,
    site: &Site,
    endpoint: &str,
    ticket: &str,
    marker: &str,
) -> anyhow::Result<()> {
    let reply = conn
        .get(
            &format!(
                "{endpoint}?service={}&ticket={}",
                enc(&site.service),
                enc(ticket)
            ),
            None,
        )
        .await?;
    expect_status(&reply, &[StatusCode::OK], endpoint)?;
    ensure!(
        reply.text().contains("<cas:authenticationSuccess>") && reply.text().contains(marker),
        "{endpoint}: {}",
        reply.snippet()
    );
    Ok(())
}

/// One CAS cycle with the SSO cookie `cookie`: a service ticket, then its validation.
async fn cas_cycle(conn: &mut Conn, site: &Site, cookie: &str) -> anyhow::Result<()> {
    let ticket = mint_service_ticket(conn, site, cookie).await?;
    validate(conn, site, "/cas/serviceValidate", &ticket, "<cas:user>").await
}

/// The CAS cycle: a service ticket minted from the SSO session, then `/cas/serviceValidate`.
#[derive(Debug)]
pub struct CasCycle {
    /// The registered service and clients.
    pub site: Arc<Site>,
    /// SSO cookies.
    pub sessions: Vec<String>,
}

impl Scenario for CasCycle {
    type Conn = Conn;
    type State = String;
    fn state(&self, index: usize) -> String {
        session_of(&self.sessions, index)
    }
    async fn op(&self, conn: &mut Conn, cookie: &mut String) -> anyhow::Result<Step> {
        cas_cycle(conn, &self.site, cookie).await?;
        Ok(Step::Done)
    }
}

/// The CAS cycle over many SSO sessions: each operation takes the next session in turn, so
/// that every session is used as the run goes (`make bench-large`: 100,000 of them).
#[derive(Debug)]
pub struct CasCycleOverSessions {
    /// The registered service and clients.
    pub site: Arc<Site>,
    /// SSO cookies.
    pub sessions: Vec<String>,
    /// The next session's index (and the count of cycles begun).
    pub next: std::sync::atomic::AtomicUsize,
    /// Cycles to run in all, warm-up included: one ticket each.
    pub tickets: usize,
}

impl CasCycleOverSessions {
    /// Tickets issued so far (cycles begun, at most [`Self::tickets`]).
    pub fn issued(&self) -> usize {
        self.next
            .load(std::sync::atomic::Ordering::Relaxed)
            .min(self.tickets)
    }
}

impl Scenario for CasCycleOverSessions {
    type Conn = Conn;
    type State = ();
    fn state(&self, _index: usize) {}
    async fn op(&self, conn: &mut Conn, (): &mut ()) -> anyhow::Result<Step> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n >= self.tickets {
            return Ok(Step::Exhausted);
        }
        let cookie = session_of(&self.sessions, n);
        cas_cycle(conn, &self.site, &cookie).await?;
        Ok(Step::Done)
    }
}

/// The SAML service provider the generated configuration registers (`infra::write_config`).
pub const SAML_SP: &str = "https://sp.bench.example/shibboleth";

/// `/saml/sso?SAMLRequest=…` for a new `AuthnRequest` numbered `n` from [`SAML_SP`], as the
/// HTTP-Redirect binding carries it (issued now: requests older than ten minutes are refused).
pub fn saml_sso_path(n: u64) -> anyhow::Result<String> {
    use std::io::Write as _;
    #[expect(
        clippy::disallowed_methods,
        reason = "the load generator's requests carry the real time, as an SP's do"
    )]
    let now = time::OffsetDateTime::now_utc();
    let instant = now
        .format(&time::format_description::well_known::Rfc3339)
        .context("formatting an instant")?;
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_bench{n:016}" Version="2.0" IssueInstant="{instant}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{SAML_SP}</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent" AllowCreate="true"/></samlp:AuthnRequest>"#
    );
    let mut deflater = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    deflater.write_all(xml.as_bytes())?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(deflater.finish()?);
    let relay = n % 1000;
    Ok(format!(
        "/saml/sso?SAMLRequest={}&RelayState=r{relay}",
        form_urlencoded::byte_serialize(encoded.as_bytes()).collect::<String>()
    ))
}

/// SAML Web Browser SSO with the SSO cookie: a new `AuthnRequest` each time (its own ID) over
/// HTTP-Redirect, answered with the page that posts the signed assertion.
#[derive(Debug)]
pub struct SamlSso {
    /// SSO cookies.
    pub sessions: Vec<String>,
    /// The next request's number (IDs are single-use).
    pub next: std::sync::atomic::AtomicU64,
}

impl Scenario for SamlSso {
    type Conn = Conn;
    type State = String;
    fn state(&self, index: usize) -> String {
        session_of(&self.sessions, index)
    }
    async fn op(&self, conn: &mut Conn, cookie: &mut String) -> anyhow::Result<Step> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let reply = conn.get(&saml_sso_path(n)?, Some(cookie)).await?;
        ensure!(
            reply.status == StatusCode::OK
                && reply
                    .body
                    .windows(b"name=\"SAMLResponse\"".len())
                    .any(|w| w == b"name=\"SAMLResponse\""),
            "SAML SSO: {} {}",
            reply.status,
            String::from_utf8_lossy(&reply.body[..reply.body.len().min(300)])
        );
        Ok(Step::Done)
    }
}

/// A shared queue of minted tickets or codes.
pub type Queue = Arc<Mutex<Vec<String>>>;

fn push(queue: &Queue, item: String) -> usize {
    let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
    q.push(item);
    q.len()
}

fn pop(queue: &Queue) -> Option<String> {
    queue.lock().unwrap_or_else(PoisonError::into_inner).pop()
}

fn len(queue: &Queue) -> usize {
    queue.lock().unwrap_or_else(PoisonError::into_inner).len()
}

/// Mints service tickets into a queue, up to `cap`.
#[derive(Debug)]
pub struct MintServiceTickets {
    /// The registered service and clients.
    pub site: Arc<Site>,
    /// SSO cookies.
    pub sessions: Vec<String>,
    /// Where the tickets go.
    pub out: Queue,
    /// How many at most.
    pub cap: usize,
}

impl Scenario for MintServiceTickets {
    type Conn = Conn;
    type State = String;
    fn state(&self, index: usize) -> String {
        session_of(&self.sessions, index)
    }
    async fn op(&self, conn: &mut Conn, cookie: &mut String) -> anyhow::Result<Step> {
        if len(&self.out) >= self.cap {
            return Ok(Step::Exhausted);
        }
        let ticket = mint_service_ticket(conn, &self.site, cookie).await?;
        push(&self.out, ticket);
        Ok(Step::Done)
    }
}

/// `/cas/p3/serviceValidate` of pre-minted tickets (5 attributes released, captured in the ticket).
#[derive(Debug)]
pub struct ValidateP3 {
    /// The registered service and clients.
    pub site: Arc<Site>,
    /// Pre-minted tickets.
    pub tickets: Queue,
}

impl Scenario for ValidateP3 {
    type Conn = Conn;
    type State = ();
    fn state(&self, _index: usize) {}
    async fn op(&self, conn: &mut Conn, (): &mut ()) -> anyhow::Result<Step> {
        let Some(ticket) = pop(&self.tickets) else {
            return Ok(Step::Exhausted);
        };
        validate(
            conn,
            &self.site,
            "/cas/p3/serviceValidate",
            &ticket,
            "<cas:mail>",
        )
        .await?;
        Ok(Step::Done)
    }
}

/// `GET /authorize` with the SSO cookie (first-party client: no consent): the code.
async fn mint_code(conn: &mut Conn, site: &Site, cookie: &str) -> anyhow::Result<String> {
    let path = format!(
        "/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=s1&nonce=n1",
        enc(&site.rp_id),
        enc(&site.rp_redirect),
        enc("openid profile email"),
    );
    let reply = conn.get(&path, Some(cookie)).await?;
    expect_status(&reply, &[StatusCode::FOUND], "GET /authorize")?;
    reply
        .header("location")
        .filter(|l| l.starts_with(&site.rp_redirect))
        .and_then(|l| query_param(l, "code"))
        .context("the redirect carries no code")
}

/// Mints authorization codes into a queue, up to `cap`.
#[derive(Debug)]
pub struct MintCodes {
    /// The registered service and clients.
    pub site: Arc<Site>,
    /// SSO cookies.
    pub sessions: Vec<String>,
    /// Where the codes go.
    pub out: Queue,
    /// How many at most.
    pub cap: usize,
}

impl Scenario for MintCodes {
    type Conn = Conn;
    type State = String;
    fn state(&self, index: usize) -> String {
        session_of(&self.sessions, index)
    }
    async fn op(&self, conn: &mut Conn, cookie: &mut String) -> anyhow::Result<Step> {
        if len(&self.out) >= self.cap {
            return Ok(Step::Exhausted);
        }
        let code = mint_code(conn, &self.site, cookie).await?;
        push(&self.out, code);
        Ok(Step::Done)
    }
}

async fn token_request(
    conn: &mut Conn,
    authorization: &str,
    form: String,
    must_have: &str,
) -> anyhow::Result<serde_json::Value> {
    let reply = conn.post_form("/token", form, Some(authorization)).await?;
    expect_status(&reply, &[StatusCode::OK], "POST /token")?;
    let body: serde_json::Value =
        serde_json::from_slice(&reply.body).context("the token response is not JSON")?;
    ensure!(
        body.get(must_have)
            .and_then(serde_json::Value::as_str)
            .is_some(),
        "the token response has no {must_have}: {}",
        reply.snippet()
    );
    Ok(body)
}

/// Redeems one code; returns the refresh token.
pub async fn exchange_code(conn: &mut Conn, site: &Site, code: &str) -> anyhow::Result<String> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &site.rp_redirect)
        .finish();
    let body = token_request(conn, &site.rp_basic(), form, "id_token").await?;
    body.get("refresh_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .context("no refresh_token")
}

/// Mints a code and redeems it: a refresh token for the refresh phase.
pub async fn refresh_token_for(
    conn: &mut Conn,
    site: &Site,
    cookie: &str,
) -> anyhow::Result<String> {
    let code = mint_code(conn, site, cookie).await?;
    exchange_code(conn, site, &code).await
}

/// `POST /token`, `grant_type=authorization_code`, of pre-minted codes (ID token signed RS256).
#[derive(Debug)]
pub struct ExchangeCodes {
    /// The registered service and clients.
    pub site: Arc<Site>,
    /// Pre-minted codes.
    pub codes: Queue,
}

impl Scenario for ExchangeCodes {
    type Conn = Conn;
    type State = ();
    fn state(&self, _index: usize) {}
    async fn op(&self, conn: &mut Conn, (): &mut ()) -> anyhow::Result<Step> {
        let Some(code) = pop(&self.codes) else {
            return Ok(Step::Exhausted);
        };
        exchange_code(conn, &self.site, &code).await?;
        Ok(Step::Done)
    }
}

/// `POST /token`, `grant_type=client_credentials`.
#[derive(Debug)]
pub struct ClientCredentials {
    /// `Authorization` header of the service client.
    pub authorization: String,
}

impl Scenario for ClientCredentials {
    type Conn = Conn;
    type State = ();
    fn state(&self, _index: usize) {}
    async fn op(&self, conn: &mut Conn, (): &mut ()) -> anyhow::Result<Step> {
        token_request(
            conn,
            &self.authorization,
            "grant_type=client_credentials".to_owned(),
            "access_token",
        )
        .await?;
        Ok(Step::Done)
    }
}

/// `POST /token`, `grant_type=refresh_token`: each connection follows its own rotating chain.
#[derive(Debug)]
pub struct Refresh {
    /// `Authorization` header of the relying party.
    pub authorization: String,
    /// One refresh token per connection.
    pub tokens: Queue,
}

impl Scenario for Refresh {
    type Conn = Conn;
    type State = Option<String>;
    fn state(&self, _index: usize) -> Option<String> {
        pop(&self.tokens)
    }
    async fn op(&self, conn: &mut Conn, token: &mut Option<String>) -> anyhow::Result<Step> {
        let Some(current) = token.take() else {
            return Ok(Step::Exhausted);
        };
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", &current)
            .finish();
        let body = token_request(conn, &self.authorization, form, "access_token").await?;
        // Rotation: the next request uses the new token (a failed one ends this chain).
        *token = body
            .get("refresh_token")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
        Ok(Step::Done)
    }
}

/// A plain `GET` answered 200 with a body containing `marker`.
#[derive(Debug)]
pub struct Get {
    /// Path and query.
    pub path: &'static str,
    /// Text the body must contain.
    pub marker: &'static str,
}

impl Scenario for Get {
    type Conn = Conn;
    type State = ();
    fn state(&self, _index: usize) {}
    async fn op(&self, conn: &mut Conn, (): &mut ()) -> anyhow::Result<Step> {
        let reply = conn.get(self.path, None).await?;
        expect_status(&reply, &[StatusCode::OK], self.path)?;
        ensure!(
            reply.text().contains(self.marker),
            "{}: unexpected body {}",
            self.path,
            reply.snippet()
        );
        Ok(Step::Done)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn totp_codes_are_rfc_6238_s_test_vectors() {
        // RFC 6238 Appendix B, SHA-1 (its 8 digits, of which the last 6).
        let secret = b"12345678901234567890";
        assert_eq!(totp_code_of(secret, 59), "287082");
        assert_eq!(totp_code_of(secret, 1_111_111_109), "081804");
        assert_eq!(totp_code_of(secret, 1_234_567_890), "005924");
        assert_eq!(totp_code_of(secret, 2_000_000_000), "279037");
    }

    use super::*;

    #[test]
    fn tickets_and_codes_are_read_from_redirects() {
        let location =
            "https://rp.bench.example/callback?code=abc%2Bd&state=s1&iss=http%3A%2F%2F127.0.0.1";
        assert_eq!(query_param(location, "code").as_deref(), Some("abc+d"));
        assert_eq!(query_param(location, "nonce"), None);
        assert_eq!(query_param("https://x.example/", "ticket"), None);
    }

    #[test]
    fn the_login_ticket_is_found_in_the_form() {
        let html = r#"<input type="hidden" name="lt" value="LT-123abc"><input name="username">"#;
        assert_eq!(
            between(html, "name=\"lt\" value=\"", "\""),
            Some("LT-123abc")
        );
        assert_eq!(between(html, "name=\"missing\"", "\""), None);
    }

    #[test]
    fn logins_are_zero_padded() {
        assert_eq!(login_of(7), "bench.0000007");
        assert_eq!(login_of(1_000_000), "bench.1000000");
    }

    #[test]
    fn account_choice_stays_in_range() {
        let mut rng = Rng::new(3);
        for _ in 0..10_000 {
            assert!(rng.below(1_000) < 1_000);
        }
        assert_eq!(rng.below(0), 0);
    }

    #[test]
    fn basic_credentials_are_form_encoded_then_base64() {
        let header = Site::basic("bench-rp", "a:b");
        let encoded = header.strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, b"bench-rp:a%3Ab");
    }
}
