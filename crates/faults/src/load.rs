//! The steady load mix the faults are injected under (security spec F: 60 % CAS login and
//! validation, 30 % OIDC code flow with refresh, 10 % discovery and keys), sent by a few
//! workers through a "load balancer" (the list of instances in rotation). Every answer is
//! classified; a success that must not happen (a ticket or code accepted twice, a ticket
//! validated while the store is down) is a false success.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use sesame_bench::http::{Conn, Reply};
use sesame_bench::scenarios::{login_of, Site, PASSWORD};
use url::form_urlencoded;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx or 3xx as the flow expects.
    Ok,
    /// 503, with or without `Retry-After`.
    Unavailable {
        /// Whether `Retry-After` was set.
        retry_after: bool,
    },
    /// A 4xx (e.g. the SSO session was lost and the login page came back).
    Refused(u16),
    /// Any other 5xx: a bug under faults.
    ServerError(u16),
    /// No answer (connection refused or reset, timeout).
    Transport,
}

/// One request of the load.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was sent.
    pub at: Instant,
    /// Which step: `login`, `cas.mint`, `cas.validate`, `oidc.code`, `oidc.token`,
    /// `oidc.refresh`, `discovery`.
    pub op: &'static str,
    /// Which instance it went to.
    pub instance: SocketAddr,
    /// How it ended.
    pub outcome: Outcome,
    /// How long it took.
    pub latency: Duration,
}

/// State shared by the workers and the rows.
#[derive(Debug)]
pub struct Shared {
    /// Instances in rotation.
    pub targets: Mutex<Vec<SocketAddr>>,
    /// Set while Redis is down: a ticket validated then is a false success.
    pub redis_down: AtomicBool,
    /// Every request.
    pub samples: Mutex<Vec<Sample>>,
    /// What should never have succeeded, and did.
    pub false_successes: Mutex<Vec<String>>,
    /// Service tickets validated once (the last few hundred), for replays.
    pub consumed: Mutex<Vec<String>>,
    /// ID tokens issued, for the key rotation row.
    pub id_tokens: Mutex<Vec<String>>,
    /// SSO sessions that were lost while a worker held them (login page instead of a ticket).
    pub sessions_lost: AtomicU64,
    stop: AtomicBool,
    site: Arc<Site>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// No instance in rotation yet.
    pub fn new(site: Arc<Site>) -> Arc<Self> {
        Arc::new(Self {
            targets: Mutex::new(Vec::new()),
            redis_down: AtomicBool::new(false),
            samples: Mutex::new(Vec::new()),
            false_successes: Mutex::new(Vec::new()),
            consumed: Mutex::new(Vec::new()),
            id_tokens: Mutex::new(Vec::new()),
            sessions_lost: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            site,
        })
    }

    /// Puts `addr` in rotation.
    pub fn add_target(&self, addr: SocketAddr) {
        let mut t = lock(&self.targets);
        if !t.contains(&addr) {
            t.push(addr);
        }
    }

    /// Takes `addr` out of rotation.
    pub fn remove_target(&self, addr: SocketAddr) {
        lock(&self.targets).retain(|a| *a != addr);
    }

    /// Records a false success.
    pub fn false_success(&self, what: String) {
        lock(&self.false_successes).push(what);
    }

    /// How many false successes so far.
    pub fn false_success_count(&self) -> usize {
        lock(&self.false_successes).len()
    }

    /// The samples sent in `[from, to)`.
    pub fn window(&self, from: Instant, to: Instant) -> Vec<Sample> {
        lock(&self.samples)
            .iter()
            .filter(|s| s.at >= from && s.at < to)
            .cloned()
            .collect()
    }

    /// The tickets consumed so far.
    pub fn consumed(&self) -> Vec<String> {
        lock(&self.consumed).clone()
    }

    /// The ID tokens issued so far.
    pub fn id_tokens(&self) -> Vec<String> {
        lock(&self.id_tokens).clone()
    }

    /// Stops the workers after their current step.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn record(&self, op: &'static str, instance: SocketAddr, at: Instant, outcome: Outcome) {
        lock(&self.samples).push(Sample {
            at,
            op,
            instance,
            outcome,
            latency: at.elapsed(),
        });
    }

    fn pick(&self, n: usize) -> Option<SocketAddr> {
        let t = lock(&self.targets);
        if t.is_empty() {
            None
        } else {
            Some(t[n % t.len()])
        }
    }
}

/// How an answer counts.
pub fn classify(reply: &Reply) -> Outcome {
    let status = reply.status.as_u16();
    match status {
        200..=399 => Outcome::Ok,
        503 => Outcome::Unavailable {
            retry_after: reply.header("retry-after").is_some(),
        },
        400..=499 => Outcome::Refused(status),
        _ => Outcome::ServerError(status),
    }
}

/// Longest a load request may take before it counts as unanswered.
const REQUEST_LIMIT: Duration = Duration::from_secs(15);

async fn send(
    shared: &Shared,
    conns: &mut Vec<(SocketAddr, Conn)>,
    instance: SocketAddr,
    op: &'static str,
    request: Request<'_>,
) -> Option<Reply> {
    let at = Instant::now();
    let index = match conns.iter().position(|(a, _)| *a == instance) {
        Some(i) => i,
        None => {
            let conn = Conn::new(instance).ok()?;
            conns.push((instance, conn));
            conns.len() - 1
        }
    };
    let conn = &mut conns[index].1;
    let exchange = async {
        match request {
            Request::Get { path, cookie } => conn.get(path, cookie).await,
            Request::Post {
                path,
                form,
                authorization,
            } => conn.post_form(path, form, authorization).await,
        }
    };
    match tokio::time::timeout(REQUEST_LIMIT, exchange).await {
        Ok(Ok(reply)) => {
            shared.record(op, instance, at, classify(&reply));
            Some(reply)
        }
        _ => {
            // A broken connection is opened again at the next request.
            conns.remove(index);
            shared.record(op, instance, at, Outcome::Transport);
            None
        }
    }
}

/// One request of a flow.
pub enum Request<'a> {
    /// `GET path` with an optional cookie.
    Get {
        /// Path and query.
        path: &'a str,
        /// `Cookie` header.
        cookie: Option<&'a str>,
    },
    /// `POST path` with a form.
    Post {
        /// Path.
        path: &'a str,
        /// The encoded form.
        form: String,
        /// `Authorization` header.
        authorization: Option<&'a str>,
    },
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text.get(from..)?.find(end)?;
    text.get(from..from + len)
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The SSO cookie (`name=value`) a login answer set.
pub fn sso_cookie(reply: &Reply) -> Option<String> {
    reply
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("sesame_tgc=") || c.starts_with("__Host-sesame_tgc="))
        .and_then(|c| c.split(';').next())
        .map(str::to_owned)
}

/// The flows, each a step of a worker; they return false when the SSO session is gone.
struct Worker {
    shared: Arc<Shared>,
    index: usize,
    conns: Vec<(SocketAddr, Conn)>,
    cookie: Option<String>,
}

impl Worker {
    fn site(&self) -> Arc<Site> {
        Arc::clone(&self.shared.site)
    }

    async fn log_in(&mut self, target: SocketAddr) {
        let shared = Arc::clone(&self.shared);
        let Some(page) = send(
            &shared,
            &mut self.conns,
            target,
            "login",
            Request::Get {
                path: "/cas/login",
                cookie: None,
            },
        )
        .await
        else {
            return;
        };
        let Some(lt) = between(page.text(), "name=\"lt\" value=\"", "\"") else {
            return;
        };
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("lt", lt)
            .append_pair(
                "username",
                &login_of(u32::try_from(self.index + 1).unwrap_or(1)),
            )
            .append_pair("password", PASSWORD)
            .finish();
        if let Some(reply) = send(
            &shared,
            &mut self.conns,
            target,
            "login",
            Request::Post {
                path: "/cas/login",
                form,
                authorization: None,
            },
        )
        .await
        {
            if reply.status == StatusCode::SEE_OTHER {
                self.cookie = sso_cookie(&reply);
            }
        }
    }

    /// A service ticket from the SSO session, validated at `validator`, then replayed.
    async fn cas_cycle(&mut self, target: SocketAddr, validator: SocketAddr) {
        let shared = Arc::clone(&self.shared);
        let site = self.site();
        let cookie = self.cookie.clone().unwrap_or_default();
        let path = format!("/cas/login?service={}", enc(&site.service));
        let Some(reply) = send(
            &shared,
            &mut self.conns,
            target,
            "cas.mint",
            Request::Get {
                path: &path,
                cookie: Some(&cookie),
            },
        )
        .await
        else {
            return;
        };
        if reply.status == StatusCode::OK {
            // The login page: this SSO session is gone.
            shared.sessions_lost.fetch_add(1, Ordering::SeqCst);
            self.cookie = None;
            return;
        }
        let Some(ticket) = reply
            .header("location")
            .and_then(|l| query_param(l, "ticket"))
        else {
            return;
        };
        let validate = format!(
            "/cas/p3/serviceValidate?service={}&ticket={}",
            enc(&site.service),
            enc(&ticket)
        );
        let down_before = shared.redis_down.load(Ordering::SeqCst);
        let Some(first) = send(
            &shared,
            &mut self.conns,
            validator,
            "cas.validate",
            Request::Get {
                path: &validate,
                cookie: None,
            },
        )
        .await
        else {
            return;
        };
        let ok = first.text().contains("<cas:authenticationSuccess>");
        if ok && down_before && shared.redis_down.load(Ordering::SeqCst) {
            shared.false_success(format!("{ticket} validated while Redis was down"));
        }
        if !ok {
            return;
        }
        {
            let mut consumed = lock(&shared.consumed);
            consumed.push(ticket.clone());
            let excess = consumed.len().saturating_sub(500);
            consumed.drain(..excess);
        }
        // The replay, at the other instance: must fail.
        if let Some(replay) = send(
            &shared,
            &mut self.conns,
            target,
            "cas.validate",
            Request::Get {
                path: &validate,
                cookie: None,
            },
        )
        .await
        {
            if replay.text().contains("<cas:authenticationSuccess>") {
                shared.false_success(format!("{ticket} validated twice"));
            }
        }
    }

    /// A code from the SSO session, redeemed, replayed (must fail), then a refresh.
    async fn oidc_cycle(&mut self, target: SocketAddr, redeemer: SocketAddr) {
        let shared = Arc::clone(&self.shared);
        let site = self.site();
        let cookie = self.cookie.clone().unwrap_or_default();
        let path = format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=s1&nonce=n1",
            enc(&site.rp_id),
            enc(&site.rp_redirect),
            enc("openid profile email"),
        );
        let Some(reply) = send(
            &shared,
            &mut self.conns,
            target,
            "oidc.code",
            Request::Get {
                path: &path,
                cookie: Some(&cookie),
            },
        )
        .await
        else {
            return;
        };
        let Some(location) = reply.header("location").map(str::to_owned) else {
            return;
        };
        let Some(code) = query_param(&location, "code") else {
            if !location.starts_with(&site.rp_redirect) {
                // Sent to the login page: the SSO session is gone.
                shared.sessions_lost.fetch_add(1, Ordering::SeqCst);
                self.cookie = None;
            }
            return;
        };
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", &code)
            .append_pair("redirect_uri", &site.rp_redirect)
            .finish();
        let basic = site.rp_basic();
        let Some(tokens) = send(
            &shared,
            &mut self.conns,
            redeemer,
            "oidc.token",
            Request::Post {
                path: "/token",
                form: form.clone(),
                authorization: Some(&basic),
            },
        )
        .await
        else {
            return;
        };
        if tokens.status != StatusCode::OK {
            return;
        }
        let body: serde_json::Value = serde_json::from_slice(&tokens.body).unwrap_or_default();
        if let Some(id_token) = body["id_token"].as_str() {
            let mut kept = lock(&shared.id_tokens);
            kept.push(id_token.to_owned());
            let excess = kept.len().saturating_sub(200);
            kept.drain(..excess);
        }
        if let Some(replay) = send(
            &shared,
            &mut self.conns,
            target,
            "oidc.token",
            Request::Post {
                path: "/token",
                form,
                authorization: Some(&basic),
            },
        )
        .await
        {
            if replay.status == StatusCode::OK {
                shared.false_success(format!(
                    "code {}… redeemed twice",
                    &code[..8.min(code.len())]
                ));
            }
        }
    }

    async fn refresh_cycle(&mut self, target: SocketAddr) {
        let shared = Arc::clone(&self.shared);
        let site = self.site();
        let cookie = self.cookie.clone().unwrap_or_default();
        let path = format!(
            "/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=s1&nonce=n1",
            enc(&site.rp_id),
            enc(&site.rp_redirect),
            enc("openid profile email"),
        );
        let Some(reply) = send(
            &shared,
            &mut self.conns,
            target,
            "oidc.code",
            Request::Get {
                path: &path,
                cookie: Some(&cookie),
            },
        )
        .await
        else {
            return;
        };
        let Some(code) = reply
            .header("location")
            .and_then(|l| query_param(l, "code"))
        else {
            return;
        };
        let basic = site.rp_basic();
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", &code)
            .append_pair("redirect_uri", &site.rp_redirect)
            .finish();
        let Some(tokens) = send(
            &shared,
            &mut self.conns,
            target,
            "oidc.token",
            Request::Post {
                path: "/token",
                form,
                authorization: Some(&basic),
            },
        )
        .await
        else {
            return;
        };
        let body: serde_json::Value = serde_json::from_slice(&tokens.body).unwrap_or_default();
        let Some(refresh) = body["refresh_token"].as_str() else {
            return;
        };
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh)
            .finish();
        send(
            &shared,
            &mut self.conns,
            target,
            "oidc.refresh",
            Request::Post {
                path: "/token",
                form,
                authorization: Some(&basic),
            },
        )
        .await;
    }

    async fn discovery(&mut self, target: SocketAddr) {
        let shared = Arc::clone(&self.shared);
        for path in ["/.well-known/openid-configuration", "/jwks"] {
            send(
                &shared,
                &mut self.conns,
                target,
                "discovery",
                Request::Get { path, cookie: None },
            )
            .await;
        }
    }

    async fn run(mut self) {
        let mut step: usize = 0;
        while !self.shared.stop.load(Ordering::SeqCst) {
            step += 1;
            let Some(target) = self.shared.pick(self.index + step) else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let other = self.shared.pick(self.index + step + 1).unwrap_or(target);
            if self.cookie.is_none() {
                self.log_in(target).await;
                if self.cookie.is_none() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            }
            match step % 10 {
                0..=5 => self.cas_cycle(target, other).await,
                6 | 7 => self.oidc_cycle(target, other).await,
                8 => self.refresh_cycle(target).await,
                _ => self.discovery(target).await,
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
    }
}

/// Starts `workers` workers (accounts 1..=workers); they run until [`Shared::stop`].
pub fn start(shared: &Arc<Shared>, workers: usize) -> Vec<tokio::task::JoinHandle<()>> {
    (0..workers)
        .map(|index| {
            let worker = Worker {
                shared: Arc::clone(shared),
                index,
                conns: Vec::new(),
                cookie: None,
            };
            tokio::spawn(worker.run())
        })
        .collect()
}

/// A counter of outcomes over samples.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Successes.
    pub ok: usize,
    /// 503 with Retry-After.
    pub unavailable: usize,
    /// 503 without Retry-After.
    pub unavailable_bare: usize,
    /// 4xx.
    pub refused: usize,
    /// Other 5xx.
    pub server_errors: usize,
    /// No answer.
    pub transport: usize,
}

impl Tally {
    /// Counts `samples`.
    pub fn of<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Self {
        let mut t = Self::default();
        for s in samples {
            match s.outcome {
                Outcome::Ok => t.ok += 1,
                Outcome::Unavailable { retry_after: true } => t.unavailable += 1,
                Outcome::Unavailable { retry_after: false } => t.unavailable_bare += 1,
                Outcome::Refused(_) => t.refused += 1,
                Outcome::ServerError(_) => t.server_errors += 1,
                Outcome::Transport => t.transport += 1,
            }
        }
        t
    }

    /// All requests.
    pub fn total(&self) -> usize {
        self.ok
            + self.unavailable
            + self.unavailable_bare
            + self.refused
            + self.server_errors
            + self.transport
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests: {} ok, {} 503+Retry-After, {} 503 bare, {} 4xx, {} other 5xx, {} unanswered",
            self.total(),
            self.ok,
            self.unavailable,
            self.unavailable_bare,
            self.refused,
            self.server_errors,
            self.transport
        )
    }
}

/// The `q` quantile of the latencies of `samples`, in milliseconds.
pub fn quantile_ms<'a>(samples: impl IntoIterator<Item = &'a Sample>, q: f64) -> f64 {
    let mut v: Vec<f64> = samples
        .into_iter()
        .map(|s| s.latency.as_secs_f64() * 1000.0)
        .collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short vector"
    )]
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}
