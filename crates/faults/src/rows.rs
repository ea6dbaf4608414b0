//! The rows: each injects one fault under the running load and checks what the security spec
//! says must hold. Phases are short (seconds) so the whole suite fits in CI.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hyper::StatusCode;
use sesame_bench::http::{Conn, Reply};
use sesame_bench::scenarios::{login_of, PASSWORD};
use url::form_urlencoded;

use crate::infra::signal;
use crate::load::{classify, quantile_ms, sso_cookie, Outcome, Tally};
use crate::{Env, RowResult, STORE_TIMEOUT_MS, WORKERS};

/// Longest a 503 for a store outage may take: the store budget plus slack for a shared
/// two-core machine running debug builds.
pub(crate) const UNAVAILABLE_BUDGET: Duration = Duration::from_millis(STORE_TIMEOUT_MS * 4);
/// Longest a 503 for a database outage may take: libpq's connect timeout (2 s, its minimum)
/// or the pool checkout timeout (2 s), plus slack.
const DB_UNAVAILABLE_BUDGET: Duration = Duration::from_millis(3000);

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn query_param(location: &str, name: &str) -> Option<String> {
    let query = location.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> anyhow::Result<Reply> {
    let mut conn = Conn::new(addr)?;
    tokio::time::timeout(Duration::from_secs(15), conn.get(path, cookie))
        .await
        .context("no answer within 15 s")?
}

/// The probe accounts (beyond the load workers').
pub(crate) fn probe_login(n: usize) -> String {
    login_of(u32::try_from(WORKERS + n).unwrap_or(100))
}

/// A login ticket from the login page at `addr`.
pub(crate) async fn login_ticket(addr: SocketAddr) -> anyhow::Result<String> {
    let page = get(addr, "/cas/login", None).await?;
    if page.status != StatusCode::OK {
        bail!("login page: HTTP {}", page.status);
    }
    let text = page.text();
    let start = text
        .find("name=\"lt\" value=\"")
        .context("no login ticket")?
        + "name=\"lt\" value=\"".len();
    let end = text[start..].find('"').context("no login ticket")? + start;
    Ok(text[start..end].to_owned())
}

/// Posts the login form with login ticket `lt`, on a new connection: the answer.
pub(crate) async fn post_credentials(
    addr: SocketAddr,
    lt: &str,
    login: &str,
    password: &str,
) -> anyhow::Result<Reply> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("lt", lt)
        .append_pair("username", login)
        .append_pair("password", password)
        .finish();
    Conn::new(addr)?.post_form("/cas/login", form, None).await
}

/// Logs `login` in at `addr` with `password`: the answer.
async fn post_login(addr: SocketAddr, login: &str, password: &str) -> anyhow::Result<Reply> {
    let lt = login_ticket(addr).await?;
    post_credentials(addr, &lt, login, password).await
}

/// A fresh SSO session of `login` at `addr`: its cookie.
pub(crate) async fn session(addr: SocketAddr, login: &str) -> anyhow::Result<String> {
    let reply = post_login(addr, login, PASSWORD).await?;
    if reply.status != StatusCode::SEE_OTHER {
        bail!("login: HTTP {} {}", reply.status, reply.snippet());
    }
    sso_cookie(&reply).context("no SSO cookie")
}

/// A service ticket from the session `cookie` at `addr`.
pub(crate) async fn mint(env: &Env, addr: SocketAddr, cookie: &str) -> anyhow::Result<String> {
    let reply = get(
        addr,
        &format!("/cas/login?service={}", enc(&env.site.service)),
        Some(cookie),
    )
    .await?;
    reply
        .header("location")
        .and_then(|l| query_param(l, "ticket"))
        .with_context(|| format!("no ticket: HTTP {} {}", reply.status, reply.snippet()))
}

/// Validates `ticket` at `addr`: whether it succeeded.
pub(crate) async fn validate(env: &Env, addr: SocketAddr, ticket: &str) -> anyhow::Result<bool> {
    let reply = get(
        addr,
        &format!(
            "/cas/p3/serviceValidate?service={}&ticket={}",
            enc(&env.site.service),
            enc(ticket)
        ),
        None,
    )
    .await?;
    Ok(reply.text().contains("<cas:authenticationSuccess>"))
}

/// The whole CAS cycle: log in at `a`, ticket from `a`, validated at `b`.
async fn cycle(env: &Env, a: SocketAddr, b: SocketAddr, login: &str) -> anyhow::Result<()> {
    let cookie = session(a, login).await?;
    let ticket = mint(env, a, &cookie).await?;
    if !validate(env, b, &ticket).await? {
        bail!("a fresh ticket did not validate");
    }
    Ok(())
}

pub(crate) fn addrs(env: &Env) -> (SocketAddr, SocketAddr) {
    (env.instances[0].addr, env.instances[1].addr)
}

/// Waits until both instances are ready and serve the whole cycle both ways; returns how
/// long that took, or None after `limit`.
pub(crate) async fn recovered(env: &Env, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let (a, b) = addrs(env);
    while started.elapsed() < limit {
        let ready_a = env.instances[0].probe("/health/ready", Duration::from_secs(2));
        let ready_b = env.instances[1].probe("/health/ready", Duration::from_secs(2));
        let (ra, rb) = tokio::join!(ready_a, ready_b);
        if ra == Some(200)
            && rb == Some(200)
            && cycle(env, a, b, &probe_login(1)).await.is_ok()
            && cycle(env, b, a, &probe_login(1)).await.is_ok()
        {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A request that needs the store or the database, timed: (status, Retry-After, latency).
async fn timed(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
) -> (Option<u16>, bool, Duration) {
    let started = Instant::now();
    match get(addr, path, cookie).await {
        Ok(reply) => (
            Some(reply.status.as_u16()),
            reply.header("retry-after").is_some(),
            started.elapsed(),
        ),
        Err(_) => (None, false, started.elapsed()),
    }
}

/// Checks of the load during a fault: no 5xx other than 503, every 503 with Retry-After
/// and within the budget.
pub(crate) fn check_load_window(
    r: &mut RowResult,
    env: &Env,
    (from, to): (Instant, Instant),
    expect_503: bool,
    budget: Duration,
) {
    let window = env.shared.window(from, to);
    let tally = Tally::of(&window);
    r.held.push(format!("load during the fault: {tally}"));
    r.check(
        tally.server_errors == 0,
        format!(
            "no 5xx other than 503 under load ({} seen)",
            tally.server_errors
        ),
    );
    let bare: Vec<String> = window
        .iter()
        .filter(|s| s.outcome == Outcome::Unavailable { retry_after: false })
        .map(|s| format!("{} at :{}", s.op, s.instance.port()))
        .collect();
    r.check(
        bare.is_empty(),
        format!(
            "every 503 carries Retry-After ({} without{})",
            bare.len(),
            if bare.is_empty() {
                String::new()
            } else {
                format!(": {}", bare.join(", "))
            }
        ),
    );
    let unavailable: Vec<_> = window
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Unavailable { .. }))
        .collect();
    if expect_503 {
        r.check(
            !unavailable.is_empty(),
            format!(
                "requests needing the failed server got 503 ({})",
                unavailable.len()
            ),
        );
    }
    if !unavailable.is_empty() {
        let max = quantile_ms(unavailable.iter().copied(), 1.0);
        r.check(
            max <= budget.as_secs_f64() * 1000.0,
            format!(
                "503s answered within {} ms (max {max:.0} ms, p50 {:.0} ms)",
                budget.as_millis(),
                quantile_ms(unavailable.iter().copied(), 0.5)
            ),
        );
    }
}

/// Runs a row, measuring its time and the false successes the load saw meanwhile.
async fn timed_row<F>(env: &mut Env, id: &'static str, name: &'static str, body: F) -> RowResult
where
    F: for<'e> AsyncFnOnce(&'e mut Env, &'e mut RowResult) -> anyhow::Result<()>,
{
    if !env.selected(id) {
        return RowResult::skipped(id, name, "not selected (--rows)");
    }
    let started = Instant::now();
    let before = env.shared.false_success_count();
    let mut r = RowResult::new(id, name);
    println!("== {id} {name}");
    if let Err(e) = body(env, &mut r).await {
        r.failed.push(format!("the row could not complete: {e:#}"));
    }
    r.false_successes += env.shared.false_success_count() - before;
    // Whatever the row did, the next one starts from a healthy pair.
    for proxy in env
        .redis_proxies
        .iter()
        .chain(std::iter::once(&env.pg_proxy))
    {
        proxy.heal();
    }
    if recovered(env, Duration::from_secs(30)).await.is_none() {
        r.failed
            .push("the pair was not healthy 30 s after the row".to_owned());
    }
    r.took = started.elapsed();
    r
}

/// Every row, in order, then the soak (C17) for `soak`.
pub async fn run_all(env: &mut Env, soak: Duration) -> Vec<RowResult> {
    let mut results = Vec::new();
    // F18 rotates first: the new key signs only after the activation delay (≥ 61 s), which
    // the rows in between cover; the row checks the tokens at the end.
    if env.selected("F18") {
        rotate_key(env);
    }
    if env.selected("F01") || env.selected("F02") {
        results.extend(f01_f02(env).await);
    }
    results.push(timed_row(env, "F03", "f03_redis_restart_with_data_loss", f03).await);
    results.push(timed_row(env, "F04", "f04_redis_latency_two_seconds", f04).await);
    results.push(timed_row(env, "F05", "f05_redis_reset_during_consume", f05).await);
    results.push(timed_row(env, "F06", "f06_redis_maxmemory_noeviction", f06).await);
    results.push(timed_row(env, "F07", "f07_postgresql_restart_under_load", f07).await);
    results.push(timed_row(env, "F08", "f08_postgresql_read_only_failover", f08).await);
    results.push(timed_row(env, "F09", "f09_postgresql_latency_five_seconds", f09).await);
    results.push(timed_row(env, "F10", "f10_kill_one_of_two_instances", f10).await);
    results.push(timed_row(env, "F11", "f11_rolling_restart_sigterm", f11).await);
    results.push(timed_row(env, "F12", "f12_clock_skew_between_instances", f12).await);
    results.push(RowResult::skipped(
        "F13",
        "f13_audit_log_disk_full",
        "audit events go to the database in the request's transaction, not to a local file: a full disk is the database failing (F07)",
    ));
    results.push(
        timed_row(
            env,
            "F14",
            "f14_log_reader_stalls_under_load",
            crate::logstall::f14,
        )
        .await,
    );
    results.push(timed_row(env, "F15", "f15_smtp_down_mail_queued_and_delivered", f15).await);
    results.push(RowResult::skipped(
        "F16",
        "f16_sms_gateway_down",
        "the load mix sends no SMS: the gateway-down case is the e2e tests f16_with_the_sms_gateway_down_a_reset_answers_the_same and f16_an_sms_queued_while_the_gateway_is_down_arrives_once_it_is_back_and_its_code_still_ends_on_time (recovery.rs)",
    ));
    results.push(timed_row(env, "F17", "f17_partition_instance_b_from_redis", f17).await);
    results.push(timed_row(env, "F18", "f18_signing_key_rotation_under_load", f18).await);
    results.push(timed_row(env, "F19", "f19_broken_service_registry", f19).await);
    results.push(
        timed_row(
            env,
            "F20",
            "f20_redis_sentinel_failover_under_load",
            crate::failover::f20,
        )
        .await,
    );
    results.push(
        timed_row(
            env,
            "C16",
            "c16_unknown_and_known_logins_stay_indistinguishable_under_load",
            crate::timing::c16,
        )
        .await,
    );
    results.push(
        timed_row(
            env,
            "C17",
            "c17_an_hour_at_nominal_load_keeps_memory_connections_and_p99_flat",
            async |env: &mut Env, r: &mut RowResult| crate::soak::c17(env, r, soak).await,
        )
        .await,
    );
    results
}

async fn f01_f02(env: &mut Env) -> Vec<RowResult> {
    let started = Instant::now();
    let before = env.shared.false_success_count();
    let mut f01 = RowResult::new("F01", "f01_redis_sigkill");
    let mut f02 = RowResult::new("F02", "f02_redis_back_recovery");
    println!("== F01 f01_redis_sigkill, F02 f02_redis_back_recovery");
    let (a, _) = addrs(env);
    let cookie = session(a, &probe_login(2)).await.ok();
    let ticket = match &cookie {
        Some(c) => mint(env, a, c).await.ok(),
        None => None,
    };
    if let Err(e) = env.redis.kill().await {
        f01.failed.push(format!("could not kill Redis: {e:#}"));
    }
    env.shared
        .redis_down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let down_at = Instant::now();
    let mut live_ok = true;
    let mut ready_red = true;
    let mut direct = Vec::new();
    while down_at.elapsed() < Duration::from_secs(5) {
        for inst in &env.instances {
            let live = inst.probe("/health/live", Duration::from_secs(2)).await;
            live_ok &= live == Some(200);
            let ready = inst.probe("/health/ready", Duration::from_secs(3)).await;
            ready_red &= ready == Some(503);
            let path = format!("/cas/login?service={}", enc(&env.site.service));
            direct.push(timed(inst.addr, &path, cookie.as_deref()).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    f01.check(live_ok, "liveness stayed 200 on both instances");
    f01.check(ready_red, "readiness answered 503 on both instances");
    let all_503 = direct.iter().all(|(s, ra, _)| *s == Some(503) && *ra);
    let max = direct.iter().map(|d| d.2).max().unwrap_or_default();
    f01.check(
        all_503,
        format!(
            "a request needing Redis got 503 + Retry-After ({} of {})",
            direct
                .iter()
                .filter(|(s, ra, _)| *s == Some(503) && *ra)
                .count(),
            direct.len()
        ),
    );
    f01.check(
        max <= UNAVAILABLE_BUDGET,
        format!(
            "…within the budget of {} ms (max {} ms)",
            UNAVAILABLE_BUDGET.as_millis(),
            max.as_millis()
        ),
    );
    if let Some(t) = &ticket {
        // Validating while the store is down must not say yes.
        match validate(env, a, t).await {
            Ok(true) => env
                .shared
                .false_success(format!("{t} validated with Redis down")),
            Ok(false) => f01
                .held
                .push("a ticket validation with Redis down failed closed".to_owned()),
            Err(e) => f01.held.push(format!(
                "a ticket validation with Redis down got no answer ({e})"
            )),
        }
    }
    check_load_window(
        &mut f01,
        env,
        (down_at + Duration::from_millis(300), Instant::now()),
        true,
        UNAVAILABLE_BUDGET,
    );
    let panics: usize = env
        .instances
        .iter()
        .map(|i| i.log_lines("panicked").len())
        .sum();
    f01.check(panics == 0, format!("no panic in the logs ({panics})"));
    f01.false_successes = env.shared.false_success_count() - before;
    f01.took = started.elapsed();

    // F02: Redis back (empty), no instance restarted.
    let f02_started = Instant::now();
    env.shared
        .redis_down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    if let Err(e) = env.redis.restart(false).await {
        f02.failed.push(format!("could not restart Redis: {e:#}"));
    }
    let up_at = Instant::now();
    let recovery = recovered(env, Duration::from_secs(30)).await;
    f02.recovery = recovery;
    f02.check(
        recovery.is_some_and(|d| d <= Duration::from_secs(5)),
        format!(
            "both instances serve the whole cycle again within 5 s without a restart ({})",
            recovery.map_or_else(
                || "never".to_owned(),
                |d| format!("{:.2} s", d.as_secs_f64())
            )
        ),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = up_at + recovery.unwrap_or_default();
    let window = env.shared.window(after, Instant::now());
    let tally = Tally::of(&window);
    // Sessions lived in the lost Redis: the workers log in again (a 4xx is not an error).
    let answered = tally.total() - tally.refused;
    #[expect(clippy::cast_precision_loss, reason = "a ratio of small counts")]
    let ratio = if answered == 0 {
        0.0
    } else {
        tally.ok as f64 / answered as f64
    };
    f02.check(
        ratio >= 0.99,
        format!(
            "≥ 99 % of the load succeeds after recovery ({:.1} %: {tally})",
            ratio * 100.0
        ),
    );
    f02.took = f02_started.elapsed();
    vec![f01, f02]
}

async fn f03(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let (a, b) = addrs(env);
    // (1) Restart with no persistence: everything in Redis is lost.
    let consumed = env.shared.consumed();
    let logged_out = session(a, &probe_login(3)).await?;
    get(a, "/cas/logout", Some(&logged_out)).await?;
    // A login locked before the restart (decision 2: the lock is also in the database).
    let locked = probe_login(4);
    for _ in 0..6 {
        post_login(b, &locked, "wrong password, on purpose").await?;
    }
    env.redis.kill().await?;
    env.redis.restart(false).await?;
    recovered(env, Duration::from_secs(15)).await;
    let mut replays = 0;
    for t in consumed.iter().rev().take(60) {
        for addr in [a, b] {
            if validate(env, addr, t).await.unwrap_or(false) {
                replays += 1;
                env.shared
                    .false_success(format!("{t} accepted again after a Redis restart"));
            }
        }
    }
    r.check(
        replays == 0,
        format!(
            "no consumed ticket accepted again after an empty restart ({} replayed, {replays} accepted)",
            consumed.len().min(60) * 2
        ),
    );
    let resurrected = mint(env, a, &logged_out).await.is_ok();
    if resurrected {
        env.shared
            .false_success("a logged-out session minted a ticket after a Redis restart".to_owned());
    }
    r.check(
        !resurrected,
        "a logged-out session stays dead after an empty restart",
    );
    let still_locked = post_login(a, &locked, PASSWORD).await?;
    r.check(
        still_locked.status != StatusCode::SEE_OTHER && sso_cookie(&still_locked).is_none(),
        format!(
            "a login locked before the restart is still locked after it (HTTP {})",
            still_locked.status
        ),
    );

    // (2) Restart from an old snapshot (an RDB taken before the ticket was consumed and the
    // session ended).
    let cookie = session(a, &probe_login(5)).await?;
    let ticket = mint(env, a, &cookie).await?;
    env.redis.command(&["SAVE"]).await?;
    let first = validate(env, b, &ticket).await?;
    r.check(first, "the ticket validates once before the crash");
    get(a, "/cas/logout", Some(&cookie)).await?;
    env.redis.kill().await?;
    env.redis.restart(true).await?;
    recovered(env, Duration::from_secs(15)).await;
    let replayed = validate(env, b, &ticket).await.unwrap_or(false);
    if replayed {
        env.shared.false_success(format!(
            "{ticket} accepted again after Redis came back from an older snapshot"
        ));
    }
    r.check(
        !replayed,
        "a ticket consumed after the snapshot is not accepted again after a restore from it",
    );
    let back = mint(env, a, &cookie).await.is_ok();
    if back {
        env.shared.false_success(
            "a session logged out after the snapshot came back after a restore from it".to_owned(),
        );
    }
    r.check(
        !back,
        "a session logged out after the snapshot stays dead after a restore from it",
    );
    Ok(())
}

async fn f04(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let baseline_from = Instant::now() - Duration::from_secs(3);
    let baseline: Vec<_> = env
        .shared
        .window(baseline_from, Instant::now())
        .into_iter()
        .filter(|s| s.op == "discovery" && s.outcome == Outcome::Ok)
        .collect();
    let base_p99 = quantile_ms(&baseline, 0.99);
    let (a, _) = addrs(env);
    let cookie = session(a, &probe_login(6)).await?;
    let started = Instant::now();
    for p in &env.redis_proxies {
        p.set_latency(Duration::from_secs(2));
    }
    let mut direct = Vec::new();
    let mut live = true;
    while started.elapsed() < Duration::from_secs(5) {
        let path = format!("/cas/login?service={}", enc(&env.site.service));
        direct.push(timed(a, &path, Some(&cookie)).await);
        live &= env.instances[0]
            .probe("/health/live", Duration::from_secs(1))
            .await
            == Some(200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ended = Instant::now();
    for p in &env.redis_proxies {
        p.heal();
    }
    r.check(live, "liveness answered within 1 s throughout");
    let ok_503 = direct
        .iter()
        .filter(|(s, ra, d)| *s == Some(503) && *ra && *d <= UNAVAILABLE_BUDGET)
        .count();
    r.check(
        ok_503 == direct.len(),
        format!(
            "a request needing Redis got 503 + Retry-After within {} ms ({ok_503} of {}; max {} ms)",
            UNAVAILABLE_BUDGET.as_millis(),
            direct.len(),
            direct.iter().map(|d| d.2).max().unwrap_or_default().as_millis()
        ),
    );
    check_load_window(
        r,
        env,
        (started + Duration::from_millis(300), ended),
        true,
        UNAVAILABLE_BUDGET,
    );
    let during: Vec<_> = env
        .shared
        .window(started, ended)
        .into_iter()
        .filter(|s| s.op == "discovery")
        .collect();
    let p99 = quantile_ms(&during, 0.99);
    let fine = during.iter().all(|s| s.outcome == Outcome::Ok);
    r.check(
        fine && p99 <= base_p99 * 3.0 + 100.0,
        format!(
            "discovery and JWKS unaffected (p99 {p99:.0} ms vs {base_p99:.0} ms before; {} requests, all 200: {fine})",
            during.len()
        ),
    );
    Ok(())
}

async fn f05(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let (a, b) = addrs(env);
    let cookie = session(a, &probe_login(7)).await?;
    let mut tickets = Vec::new();
    for i in 0..30 {
        tickets.push(mint(env, if i % 2 == 0 { a } else { b }, &cookie).await?);
    }
    let proxies = env.redis_proxies.clone();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let resetter = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for p in &proxies {
                    p.reset_all();
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let mut successes = Vec::new();
    for t in &tickets {
        let (x, y) = tokio::join!(validate(env, a, t), validate(env, b, t));
        successes.push(usize::from(x.unwrap_or(false)) + usize::from(y.unwrap_or(false)));
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    resetter.await.ok();
    // After the resets: one more try each. A ticket already accepted must stay consumed.
    recovered(env, Duration::from_secs(15)).await;
    for (t, n) in tickets.iter().zip(successes.iter_mut()) {
        if validate(env, a, t).await.unwrap_or(false) {
            *n += 1;
        }
    }
    let twice = successes.iter().filter(|n| **n > 1).count();
    for (t, n) in tickets.iter().zip(&successes) {
        if *n > 1 {
            env.shared
                .false_success(format!("{t} accepted {n} times around connection resets"));
        }
    }
    r.check(
        twice == 0,
        format!(
            "no ticket accepted twice ({} tickets: {} once, {} never: ambiguous consumes failed closed)",
            tickets.len(),
            successes.iter().filter(|n| **n == 1).count(),
            successes.iter().filter(|n| **n == 0).count()
        ),
    );
    let panics: usize = env
        .instances
        .iter()
        .map(|i| i.log_lines("panicked").len())
        .sum();
    r.check(panics == 0, format!("no panic ({panics})"));
    Ok(())
}

fn redis_text(v: &redis::Value) -> String {
    match v {
        redis::Value::Array(items) => items.iter().map(redis_text).collect::<Vec<_>>().join(" "),
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

async fn f06(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let policy = redis_text(
        &env.redis
            .command(&["CONFIG", "GET", "maxmemory-policy"])
            .await?,
    );
    r.check(
        policy.ends_with("noeviction"),
        format!("Redis runs with maxmemory-policy noeviction ({policy})"),
    );
    let warned: usize = env
        .instances
        .iter()
        .map(|i| i.log_lines("maxmemory-policy").len())
        .sum();
    r.check(
        warned == 0,
        "no eviction warning at start (Sesame checks the policy at start)",
    );
    let (a, b) = addrs(env);
    let cookie = session(a, &probe_login(8)).await?;
    let kept = mint(env, a, &cookie).await?;
    let started = Instant::now();
    env.redis
        .command(&["CONFIG", "SET", "maxmemory", "1"])
        .await?;
    let mut direct = Vec::new();
    while started.elapsed() < Duration::from_secs(3) {
        let path = format!("/cas/login?service={}", enc(&env.site.service));
        direct.push(timed(b, &path, Some(&cookie)).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ended = Instant::now();
    env.redis
        .command(&["CONFIG", "SET", "maxmemory", "0"])
        .await?;
    let refused = direct
        .iter()
        .filter(|(s, ra, _)| *s == Some(503) && *ra)
        .count();
    r.check(
        refused == direct.len(),
        format!(
            "a write refused by Redis (OOM) is a 503 + Retry-After ({refused} of {})",
            direct.len()
        ),
    );
    check_load_window(
        r,
        env,
        (started + Duration::from_millis(100), ended),
        true,
        UNAVAILABLE_BUDGET,
    );
    r.check(
        validate(env, b, &kept).await?,
        "a ticket minted before memory ran out was not evicted and validates after",
    );
    Ok(())
}

/// Connections to the suite's database, from `pg_stat_activity`.
/// Runs `sql` on the suite's PostgreSQL as its superuser: the output, or the error.
fn psql(env: &Env, sql: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
        ])
        .arg(sql)
        .args(["-p", &env.pg.port.to_string()])
        .output()
        .context("psql did not run")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `sesame account set-password <login>` at instance `i` with `password` on standard input:
/// whether it succeeded.
fn cli_set_password(env: &Env, i: usize, login: &str, password: &str) -> anyhow::Result<bool> {
    use std::io::Write as _;
    let mut child = env.instances[i]
        .command(&["account", "set-password", login])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("sesame account set-password did not start")?;
    if let Some(mut stdin) = child.stdin.take() {
        writeln!(stdin, "{password}").context("password not written")?;
    }
    Ok(child.wait().context("sesame did not finish")?.success())
}

/// F08: the primary turns read-only, as a demoted primary or a replica promoted late would
/// be: every new transaction is read-only (`default_transaction_read_only`, reloaded).
async fn f08(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let (a, b) = addrs(env);
    let (reader, writer) = (probe_login(12), probe_login(13));
    let cookie = session(a, &reader).await?;
    let started = Instant::now();
    psql(env, "ALTER SYSTEM SET default_transaction_read_only = on")?;
    psql(env, "SELECT pg_reload_conf()")?;
    // Backends pick the setting up at their next command.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let read_only = psql(env, "SHOW default_transaction_read_only")?;
    r.check(
        read_only == "on",
        format!("the database is read-only (default_transaction_read_only = {read_only})"),
    );

    // Reads: an SSO session opened before mints a ticket, validated at the other instance.
    let reads = match mint(env, a, &cookie).await {
        Ok(ticket) => validate(env, b, &ticket).await.unwrap_or(false),
        Err(_) => false,
    };
    r.check(
        reads,
        "reads work: an SSO session opened before mints a ticket that validates at the other instance",
    );
    let discovery = env.instances[1]
        .probe("/.well-known/openid-configuration", Duration::from_secs(2))
        .await;
    r.check(
        discovery == Some(200),
        format!("discovery answers ({discovery:?})"),
    );

    // Writes: a login (which records an audit event) is a success or a 503, never another error.
    let mut logins = Vec::new();
    for _ in 0..3 {
        let reply = post_login(a, &writer, PASSWORD).await;
        logins.push(reply.as_ref().map(classify).ok());
    }
    let clean = logins.iter().all(|o| {
        matches!(
            o,
            Some(Outcome::Ok | Outcome::Unavailable { retry_after: true })
        )
    });
    r.check(
        clean,
        format!("a login answers 303 or 503 + Retry-After, nothing else ({logins:?})"),
    );
    // A password change is refused as a whole.
    let changed = cli_set_password(env, 0, &writer, "Another-password-for-F08-only")?;
    r.check(
        !changed,
        "sesame account set-password fails while the database is read-only",
    );
    let down_until = Instant::now();
    check_load_window(
        r,
        env,
        (started + Duration::from_millis(300), down_until),
        false,
        DB_UNAVAILABLE_BUDGET,
    );

    psql(env, "ALTER SYSTEM RESET default_transaction_read_only")?;
    psql(env, "SELECT pg_reload_conf()")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    r.recovery = recovered(env, Duration::from_secs(10)).await;
    // Nothing half-applied: the old password still works, the one refused does not.
    let old = post_login(a, &writer, PASSWORD).await?;
    let new = post_login(a, &writer, "Another-password-for-F08-only").await?;
    r.check(
        old.status == StatusCode::SEE_OTHER && new.status != StatusCode::SEE_OTHER,
        format!(
            "no half-applied password change: the old password logs in (HTTP {}), the refused one does not (HTTP {})",
            old.status, new.status
        ),
    );
    Ok(())
}

pub(crate) fn pg_connections(env: &Env) -> Option<usize> {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
        ])
        .arg(format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'",
            sesame_bench::infra::DATABASE
        ))
        .args(["-p", &env.pg.port.to_string()])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

async fn f07(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let (a, _) = addrs(env);
    let before = pg_connections(env);
    let started = Instant::now();
    env.pg.stop("fast")?;
    let mut direct = Vec::new();
    while started.elapsed() < Duration::from_secs(3) {
        let started = Instant::now();
        let reply = post_login(a, &probe_login(9), PASSWORD).await;
        direct.push((reply.as_ref().map(classify).ok(), started.elapsed()));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let down_until = Instant::now();
    env.pg.start()?;
    let recovery = recovered(env, Duration::from_secs(30)).await;
    r.recovery = recovery;
    let unavailable = direct
        .iter()
        .filter(|(o, _)| *o == Some(Outcome::Unavailable { retry_after: true }))
        .count();
    r.check(
        unavailable == direct.len(),
        format!(
            "a login during the outage got 503 + Retry-After ({unavailable} of {}; max {} ms)",
            direct.len(),
            direct
                .iter()
                .map(|d| d.1)
                .max()
                .unwrap_or_default()
                .as_millis()
        ),
    );
    check_load_window(
        r,
        env,
        (started + Duration::from_millis(300), down_until),
        true,
        DB_UNAVAILABLE_BUDGET,
    );
    r.check(
        recovery.is_some_and(|d| d <= Duration::from_secs(10)),
        format!(
            "the pools recover within 10 s of PostgreSQL being up ({})",
            recovery.map_or_else(
                || "never".to_owned(),
                |d| format!("{:.2} s", d.as_secs_f64())
            )
        ),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = pg_connections(env);
    r.check(
        after.is_some_and(|n| n <= 2 * 8 + 2),
        format!(
            "no connection leak: {} connections after (before {}; pools of 8 per instance)",
            after.map_or_else(|| "?".to_owned(), |n| n.to_string()),
            before.map_or_else(|| "?".to_owned(), |n| n.to_string())
        ),
    );
    Ok(())
}

async fn f09(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let (a, _) = addrs(env);
    let started = Instant::now();
    env.pg_proxy.set_latency(Duration::from_secs(5));
    let mut logins = Vec::new();
    let mut live = Vec::new();
    while started.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        // Bounded, so a hung login shows as such without stalling the suite.
        let reply = tokio::time::timeout(
            Duration::from_secs(8),
            post_login(a, &probe_login(10), PASSWORD),
        )
        .await;
        logins.push((
            reply.ok().and_then(|r| r.ok()).map(|r| classify(&r)),
            t.elapsed(),
        ));
        let t = Instant::now();
        let ok = env.instances[0]
            .probe("/.well-known/openid-configuration", Duration::from_secs(2))
            .await
            == Some(200);
        live.push((ok, t.elapsed()));
    }
    let ended = Instant::now();
    env.pg_proxy.heal();
    let fast = logins
        .iter()
        .filter(|(o, d)| {
            *o == Some(Outcome::Unavailable { retry_after: true }) && *d <= Duration::from_secs(4)
        })
        .count();
    r.check(
        fast == logins.len(),
        format!(
            "a login needing the slow database got a 503 + Retry-After within 4 s, before the 5 s latency ({fast} of {}; max {} ms, probes cut at 8 s)",
            logins.len(),
            logins.iter().map(|d| d.1).max().unwrap_or_default().as_millis()
        ),
    );
    r.check(
        live.iter().all(|(ok, _)| *ok),
        format!(
            "the instance stayed responsive: discovery answered 200 within 2 s ({} of {})",
            live.iter().filter(|(ok, _)| *ok).count(),
            live.len()
        ),
    );
    check_load_window(r, env, (started, ended), false, DB_UNAVAILABLE_BUDGET);
    Ok(())
}

async fn f10(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let (a, b) = addrs(env);
    let lost_before = env
        .shared
        .sessions_lost
        .load(std::sync::atomic::Ordering::SeqCst);
    let cookie = session(b, &probe_login(11)).await?;
    let ticket = mint(env, b, &cookie).await?;
    let killed_at = Instant::now();
    let pid = env.instances[1]
        .process
        .as_ref()
        .map(sesame_bench::infra::Process::pid)
        .context("instance b runs")?;
    signal(pid, "KILL")?;
    // The load balancer notices at once (a health check would take a few seconds more).
    env.shared.remove_target(b);
    if let Some(mut p) = env.instances[1].process.take() {
        p.exited().await.ok();
    }
    r.check(
        validate(env, a, &ticket).await?,
        "a ticket issued by the killed instance validates at the other",
    );
    r.check(
        mint(env, a, &cookie).await.is_ok(),
        "a session opened at the killed instance keeps single sign-on at the other",
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let window = env
        .shared
        .window(killed_at - Duration::from_secs(15), Instant::now());
    let failed_at_b = window
        .iter()
        .filter(|s| {
            s.instance == b && s.at + s.latency >= killed_at && s.outcome == Outcome::Transport
        })
        .count();
    r.check(
        failed_at_b <= WORKERS,
        format!("only requests in flight at the killed instance failed ({failed_at_b}, at most {WORKERS} workers)"),
    );
    let at_a = Tally::of(
        window
            .iter()
            .filter(|s| s.instance == a && s.at >= killed_at),
    );
    r.check(
        at_a.server_errors + at_a.transport + at_a.unavailable + at_a.unavailable_bare == 0,
        format!("the surviving instance served everything: {at_a}"),
    );
    let lost = env
        .shared
        .sessions_lost
        .load(std::sync::atomic::Ordering::SeqCst)
        - lost_before;
    r.check(lost == 0, format!("no SSO session lost ({lost})"));
    r.lost += usize::try_from(lost).unwrap_or(usize::MAX);
    let restart = env.instances[1].start().await?;
    env.shared.add_target(b);
    r.recovery = Some(restart);
    r.held
        .push(format!("instance b back in {:.1} s", restart.as_secs_f64()));
    Ok(())
}

async fn f11(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    for i in [0, 1] {
        let addr = env.instances[i].addr;
        let name = env.instances[i].name;
        // Drained from the load balancer first, as a rolling restart does, with a second of
        // deregistration delay for the flows under way to move on.
        env.shared.remove_target(addr);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let removed_at = Instant::now();
        // Requests accepted before SIGTERM must complete. Slowed by 300 ms of database latency
        // (the store's 500 ms budget would turn Redis latency into 503s), they are certainly
        // in flight (accepted, not answered) when the signal comes.
        let mut tickets = Vec::new();
        for k in 0..4 {
            tickets.push((probe_login(12 + k), login_ticket(addr).await?));
        }
        env.pg_proxy.set_latency(Duration::from_millis(300));
        let accepted: Vec<_> = tickets
            .into_iter()
            .map(|(login, lt)| {
                tokio::spawn(async move { post_credentials(addr, &lt, &login, PASSWORD).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pid = env.instances[i]
            .process
            .as_ref()
            .map(sesame_bench::infra::Process::pid)
            .context("instance runs")?;
        signal(pid, "TERM")?;
        let term_at = Instant::now();
        let mut errors = Vec::new();
        for h in accepted {
            match h.await {
                Ok(Ok(reply)) if reply.status == StatusCode::SEE_OTHER => {}
                Ok(Ok(reply)) => errors.push(format!("HTTP {}", reply.status.as_u16())),
                Ok(Err(e)) => errors.push(format!("{e:#}")),
                Err(e) => errors.push(e.to_string()),
            }
        }
        env.pg_proxy.heal();
        let exit = match env.instances[i].process.take() {
            Some(mut p) => tokio::time::timeout(Duration::from_secs(15), p.exited())
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        let in_flight: Vec<_> = env
            .shared
            .window(removed_at - Duration::from_secs(15), Instant::now())
            .into_iter()
            .filter(|s| {
                // Sent before SIGTERM (accepted), still running when drained.
                s.instance == addr
                    && s.at < term_at
                    && s.at + s.latency >= removed_at
                    && matches!(
                        s.outcome,
                        Outcome::Transport | Outcome::ServerError(_) | Outcome::Unavailable { .. }
                    )
            })
            .map(|s| format!("{} {:?}", s.op, s.outcome))
            .collect();
        r.check(
            errors.is_empty() && in_flight.is_empty(),
            format!(
                "instance {name}: requests accepted before SIGTERM all completed ({} errors among 4 logins {errors:?}, {} among the load's in-flight {in_flight:?})",
                errors.len(),
                in_flight.len()
            ),
        );
        r.check(
            exit.is_some_and(|s| s.success()),
            format!("instance {name} exited cleanly on SIGTERM ({exit:?})"),
        );
        let took = env.instances[i].start().await?;
        env.shared.add_target(addr);
        r.held.push(format!(
            "instance {name} back in {:.1} s",
            took.as_secs_f64()
        ));
    }
    Ok(())
}

/// Where Debian's `faketime` package puts the library.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// How far ahead instance b's clock runs in F12 (the spec's ±2 minutes).
const F12_SKEW_SECS: i64 = 120;

/// Stops instance `i` (SIGTERM, out of rotation first) and waits for it to exit.
pub(crate) async fn stop_instance(env: &mut Env, i: usize) -> anyhow::Result<()> {
    env.shared.remove_target(env.instances[i].addr);
    let pid = env.instances[i]
        .process
        .as_ref()
        .map(sesame_bench::infra::Process::pid)
        .context("instance runs")?;
    signal(pid, "TERM")?;
    if let Some(mut p) = env.instances[i].process.take() {
        tokio::time::timeout(Duration::from_secs(15), p.exited())
            .await
            .context("instance did not exit within 15 s")??;
    }
    Ok(())
}

/// The last clock offset an instance logged (`clock.offset_ms`), in milliseconds.
fn logged_clock_offset(env: &Env, i: usize) -> Option<i64> {
    let line = env.instances[i].log_lines("clock.offset_ms").pop()?;
    let after = &line[line.find("clock.offset_ms")? + "clock.offset_ms".len()..];
    let digits: String = after
        .trim_start_matches(|c: char| !(c.is_ascii_digit() || c == '-'))
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    digits.parse().ok()
}

/// F12: instance b runs with its clock two minutes ahead (libfaketime). Tickets (10 s) and
/// codes (60 s) live less than the skew, so an instance deciding expiry on its own clock would
/// refuse everything the other issued.
async fn f12(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    if !std::path::Path::new(LIBFAKETIME).exists() {
        bail!("{LIBFAKETIME} is missing (Debian package faketime)");
    }
    stop_instance(env, 1).await?;
    let skew = format!("+{F12_SKEW_SECS}");
    env.instances[1].set_env("LD_PRELOAD", Some(LIBFAKETIME));
    env.instances[1].set_env("FAKETIME", Some(&skew));
    // Timers and budgets run on the monotonic clock, which a real skew leaves alone.
    env.instances[1].set_env("FAKETIME_DONT_FAKE_MONOTONIC", Some("1"));
    let started = env.instances[1].start().await;
    let result = f12_checks(env, r, started.map(|_| ())).await;
    stop_instance(env, 1).await?;
    for key in ["LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC"] {
        env.instances[1].set_env(key, None);
    }
    env.instances[1].start().await?;
    env.shared.add_target(env.instances[1].addr);
    result
}

async fn f12_checks(
    env: &mut Env,
    r: &mut RowResult,
    started: anyhow::Result<()>,
) -> anyhow::Result<()> {
    started.context("instance b did not start with a skewed clock")?;
    env.shared.add_target(env.instances[1].addr);
    let (a, b) = addrs(env);
    let offset = logged_clock_offset(env, 1);
    let expected = -F12_SKEW_SECS * 1000;
    r.check(
        offset.is_some_and(|ms| (ms - expected).abs() < 5_000),
        format!("b's clock is {F12_SKEW_SECS} s ahead and b says so: it logged an offset of {offset:?} ms to Redis's clock"),
    );
    let window_start = Instant::now();
    for (from, to, minted_at, validated_at) in [(a, b, "a", "b"), (b, a, "b", "a")] {
        let cookie = session(from, &probe_login(14)).await?;
        let ticket = mint(env, from, &cookie).await?;
        // Past a ticket's 10 s on b's own clock, not on the deployment's.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let ok = validate(env, to, &ticket).await?;
        r.check(
            ok,
            format!("a ticket minted at {minted_at} validates at {validated_at} two seconds later"),
        );
        let replay = validate(env, from, &ticket).await?;
        if replay {
            env.shared.false_success(format!(
                "F12: a ticket minted at {minted_at} was accepted twice"
            ));
        }
    }
    // Expiry is the same on both: a ticket past its lifetime on the deployment's clock is
    // refused by both instances.
    let cookie = session(a, &probe_login(14)).await?;
    let (t_a, t_b) = (mint(env, a, &cookie).await?, mint(env, a, &cookie).await?);
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (late_a, late_b) = (validate(env, a, &t_a).await?, validate(env, b, &t_b).await?);
    r.check(
        !late_a && !late_b,
        format!("tickets 11 s old are refused by both instances (a: {late_a}, b: {late_b})"),
    );
    if late_a || late_b {
        env.shared
            .false_success("F12: an expired ticket validated".to_owned());
    }
    check_load_window(
        r,
        env,
        (window_start, Instant::now()),
        false,
        DB_UNAVAILABLE_BUDGET,
    );
    Ok(())
}

async fn f15(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let (a, b) = addrs(env);
    env.smtp.stop();
    let started = Instant::now();
    let nonce = sesame_core::random::alphanumeric(6).to_lowercase();
    let recipients: Vec<String> = (0..3)
        .map(|i| format!("f15-{nonce}-{i}@univ.example.org"))
        .collect();
    let mut queued = 0;
    for to in &recipients {
        let out = env.instances[0]
            .command(&["mail", "test", to])
            .output()
            .context("sesame mail test")?;
        // With SMTP down the test mail cannot be delivered now; it stays queued.
        if !out.status.success() {
            queued += 1;
        }
    }
    r.check(
        queued == recipients.len(),
        format!(
            "with SMTP down, delivery failed and the mails stayed queued ({queued} of {})",
            recipients.len()
        ),
    );
    let t = Instant::now();
    let login_ok = cycle(env, a, b, &probe_login(16)).await.is_ok();
    r.check(
        login_ok && t.elapsed() < Duration::from_secs(3),
        format!(
            "logins unaffected while SMTP is down ({} ms)",
            t.elapsed().as_millis()
        ),
    );
    let down_for = started.elapsed();
    env.smtp.resume()?;
    let up_at = Instant::now();
    let mut delivered = Vec::new();
    while up_at.elapsed() < Duration::from_secs(40) {
        let got = env.smtp.recipients();
        delivered = recipients
            .iter()
            .filter(|to| got.iter().any(|g| g.eq_ignore_ascii_case(to)))
            .cloned()
            .collect();
        if delivered.len() == recipients.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    r.recovery = Some(up_at.elapsed());
    let lost = recipients.len() - delivered.len();
    r.lost += lost;
    r.check(
        lost == 0,
        format!(
            "every queued mail was delivered after SMTP came back ({} of {} in {:.1} s; SMTP was down {:.1} s)",
            delivered.len(),
            recipients.len(),
            up_at.elapsed().as_secs_f64(),
            down_for.as_secs_f64()
        ),
    );
    Ok(())
}

async fn f17(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let (a, b) = addrs(env);
    let cookie = session(a, &probe_login(17)).await?;
    env.redis_proxies[1].partition();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let ready_b = env.instances[1]
        .probe("/health/ready", Duration::from_secs(3))
        .await;
    let ready_a = env.instances[0]
        .probe("/health/ready", Duration::from_secs(3))
        .await;
    r.check(
        ready_b == Some(503),
        format!("b, cut from Redis, is not ready ({ready_b:?})"),
    );
    r.check(ready_a == Some(200), format!("a stays ready ({ready_a:?})"));
    // The load balancer follows readiness.
    env.shared.remove_target(b);
    let ticket = mint(env, a, &cookie).await?;
    let at_b = validate(env, b, &ticket).await.unwrap_or(false);
    if at_b {
        env.shared
            .false_success(format!("{ticket} validated by an instance cut from Redis"));
    }
    r.check(
        !at_b,
        "b, cut from Redis, accepts no ticket (no split brain)",
    );
    r.check(
        validate(env, a, &ticket).await?,
        "…and the ticket stays valid for a",
    );
    let path = format!("/cas/login?service={}", enc(&env.site.service));
    let (status, retry_after, took) = timed(b, &path, Some(&cookie)).await;
    r.check(
        status == Some(503) && retry_after,
        format!(
            "b answers 503 + Retry-After to a request needing Redis ({status:?}, {} ms)",
            took.as_millis()
        ),
    );
    env.redis_proxies[1].heal();
    let back = recovered(env, Duration::from_secs(15)).await;
    r.recovery = back;
    env.shared.add_target(b);
    r.check(back.is_some(), "b ready again once the partition heals");
    Ok(())
}

fn jwt_kid(jwt: &str) -> Option<String> {
    use base64::Engine as _;
    let header = jwt.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["kid"].as_str().map(str::to_owned)
}

async fn jwks_kids(addr: SocketAddr) -> anyhow::Result<Vec<String>> {
    let reply = get(addr, "/jwks", None).await?;
    let v: serde_json::Value = serde_json::from_slice(&reply.body)?;
    Ok(v["keys"]
        .as_array()
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k["kid"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// `sesame keys rotate` under load; the row checks the outcome at the end of the run.
fn rotate_key(env: &mut Env) {
    let before = env.shared.id_tokens();
    match env.instances[0].command(&["keys", "rotate"]).output() {
        Ok(out) if out.status.success() => {
            println!(
                "== F18 rotated the signing key under load: {}",
                String::from_utf8_lossy(&out.stdout).trim()
            );
            env.rotation = Some((Instant::now(), before));
        }
        Ok(out) => println!(
            "== F18 sesame keys rotate failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => println!("== F18 sesame keys rotate did not run: {e}"),
    }
}

async fn f18(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let (a, b) = addrs(env);
    let Some((rotated_at, old_tokens)) = env.rotation.clone() else {
        bail!("the key rotation at the start of the run failed");
    };
    // The new key signs once the activation delay (61 s) and a reload (1 s) have passed.
    let activation = Duration::from_secs(64);
    if rotated_at.elapsed() < activation {
        tokio::time::sleep(activation - rotated_at.elapsed()).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let tokens = env.shared.id_tokens();
    let (kids_a, kids_b) = (jwks_kids(a).await?, jwks_kids(b).await?);
    let old_kids: std::collections::BTreeSet<_> =
        old_tokens.iter().filter_map(|t| jwt_kid(t)).collect();
    let new_kids: std::collections::BTreeSet<_> = tokens
        .iter()
        .rev()
        .take(20)
        .filter_map(|t| jwt_kid(t))
        .collect();
    let mut failures = 0;
    for t in old_tokens.iter().chain(tokens.iter()) {
        match jwt_kid(t) {
            Some(kid) if kids_a.contains(&kid) && kids_b.contains(&kid) => {}
            _ => failures += 1,
        }
    }
    r.check(
        failures == 0,
        format!(
            "every ID token issued before and after the rotation names a key both JWKS publish ({} tokens, {failures} failures)",
            old_tokens.len() + tokens.len()
        ),
    );
    r.check(
        !old_kids.is_empty() && old_kids.is_disjoint(&new_kids),
        format!("the new key signs after its activation (before {old_kids:?}, now {new_kids:?})"),
    );
    r.check(
        kids_a.len() >= 2 && kids_a == kids_b,
        format!("both instances publish the old and the new key ({kids_a:?} / {kids_b:?})"),
    );
    Ok(())
}

async fn f19(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let (a, _) = addrs(env);
    let good = std::fs::read_to_string(&env.config_a)?;
    let broken = env.work.join("sesame-broken.toml");
    std::fs::write(
        &broken,
        format!(
            "{good}\n[[cas.services]]\nid = \"broken\"\nname = \"Broken\"\nurl_prefix = \"javascript:alert(1)//\"\n"
        ),
    )?;
    let out = env.instances[0]
        .command_with(&broken, &["config", "check"])
        .output()
        .context("sesame config check")?;
    r.check(
        !out.status.success(),
        "sesame config check refuses a registry with a broken service",
    );
    // The running pair keeps its registry and never falls back to open mode.
    let cookie = session(a, &probe_login(18)).await?;
    let evil = get(
        a,
        &format!("/cas/login?service={}", enc("https://evil.example/")),
        Some(&cookie),
    )
    .await?;
    let redirected = evil.header("location").is_some();
    if redirected {
        env.shared
            .false_success("an unregistered service got a redirect".to_owned());
    }
    r.check(
        !redirected,
        "an unregistered service gets no ticket and no redirect on the running instances",
    );
    r.check(
        mint(env, a, &cookie).await.is_ok(),
        "the registered service still works (last good registry kept)",
    );
    Ok(())
}
