//! F20: the Redis primary fails over to its replica under Redis Sentinel while the load mix
//! runs (issue 18). Both instances are moved onto a Sentinel-managed pair for the row (a
//! primary, one replica, three sentinels, quorum 2), the primary is killed, and the row checks
//! what `store.keep_records_across_restarts` (default `false`, ADR 0011) says: the promoted
//! replica is another Redis run, so every record written before is void (everyone signs in
//! again, no ticket is accepted twice), and logins are back within the row's budget with no
//! restart of Sesame. Then the old primary comes back and must not be written to.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::infra::Redis;
use crate::rows::{
    addrs, check_load_window, mint, probe_login, recovered, session, stop_instance, validate,
    UNAVAILABLE_BUDGET,
};
use crate::{Env, RowResult};

/// The primary's name in the sentinels' `sentinel monitor`.
const SERVICE: &str = "sesame-faults";
/// From the kill of the primary to logins served both ways again: the sentinels' one second
/// before they call the primary down, their election and the replica's promotion (a few
/// seconds), Sesame asking them again (every 250 ms at most), with slack for a shared
/// two-core machine running debug builds.
const FAILOVER_BUDGET: Duration = Duration::from_secs(20);
/// The environment that puts an instance on the sentinels.
const SENTINEL_ENV: [&str; 2] = ["SESAME_STORE__SENTINELS", "SESAME_STORE__SENTINEL_SERVICE"];

/// The text of a Redis reply, flattened (bulk strings and arrays of them).
fn texts(value: &redis::Value) -> Vec<String> {
    match value {
        redis::Value::BulkString(b) => vec![String::from_utf8_lossy(b).into_owned()],
        redis::Value::SimpleString(s) => vec![s.clone()],
        redis::Value::Int(i) => vec![i.to_string()],
        redis::Value::Array(items) => items.iter().flat_map(texts).collect(),
        _ => Vec::new(),
    }
}

/// The port of the primary the sentinel on `sentinel` names, if it answers.
async fn named_primary(sentinel: &Redis) -> Option<u16> {
    let reply = sentinel
        .command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE])
        .await
        .ok()?;
    texts(&reply).get(1)?.parse().ok()
}

/// Polls `ready` every 100 ms until it holds or `limit` passes: how long it took.
async fn within<F>(limit: Duration, mut ready: F) -> Option<Duration>
where
    F: AsyncFnMut() -> bool,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if ready().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// Restarts both instances, one at a time, with (`Some`) or without (`None`) the sentinels.
async fn move_instances(env: &mut Env, sentinels: Option<(&str, &str)>) -> anyhow::Result<()> {
    for i in 0..2 {
        stop_instance(env, i).await?;
        let values = sentinels.map(|(nodes, service)| [nodes, service]);
        for (n, key) in SENTINEL_ENV.iter().enumerate() {
            env.instances[i].set_env(key, values.map(|v| v[n]));
        }
        env.instances[i].start().await?;
        env.shared.add_target(env.instances[i].addr);
    }
    Ok(())
}

/// F20, see the module's documentation.
pub async fn f20(env: &mut Env, r: &mut RowResult) -> anyhow::Result<()> {
    let dir = env.work.join("sentinel");
    let mut primary = Redis::start(&dir.join("primary")).await?;
    let replica = Redis::start_replica(&dir.join("replica"), primary.port).await?;
    let mut sentinels = Vec::new();
    for n in 0..3 {
        sentinels.push(
            Redis::start_sentinel(&dir.join(format!("sentinel-{n}")), SERVICE, primary.port)
                .await?,
        );
    }
    // The replica in sync, and the three sentinels aware of it and of each other (a failover
    // needs a majority of them to elect a leader).
    let set_up = within(Duration::from_secs(30), async || {
        let synced = replica
            .command(&["INFO", "replication"])
            .await
            .map(|v| texts(&v).concat().contains("master_link_status:up"))
            .unwrap_or(false);
        let mut quorum = true;
        for s in &sentinels {
            let ok = s.command(&["SENTINEL", "CKQUORUM", SERVICE]).await.is_ok();
            let knows_replica = s
                .command(&["SENTINEL", "REPLICAS", SERVICE])
                .await
                .map(|v| !texts(&v).is_empty())
                .unwrap_or(false);
            quorum &= ok && knows_replica;
        }
        synced && quorum
    })
    .await;
    if set_up.is_none() {
        bail!(
            "the Sentinel-managed pair was not ready within 30 s (logs in {})",
            dir.display()
        );
    }
    println!(
        "   primary :{}, replica :{}, sentinels :{}",
        primary.port,
        replica.port,
        sentinels
            .iter()
            .map(|s| s.port.to_string())
            .collect::<Vec<_>>()
            .join(", :")
    );
    let nodes = format!(
        "[{}]",
        sentinels
            .iter()
            .map(|s| format!("\"{}\"", s.url()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    move_instances(env, Some((&nodes, SERVICE))).await?;
    let checks = f20_checks(env, r, &mut primary, &replica, &sentinels).await;
    // Whatever happened, the next rows run on the suite's own Redis again.
    move_instances(env, None).await?;
    checks
}

async fn f20_checks(
    env: &mut Env,
    r: &mut RowResult,
    primary: &mut Redis,
    replica: &Redis,
    sentinels: &[Redis],
) -> anyhow::Result<()> {
    let (a, b) = addrs(env);
    let moved = recovered(env, Duration::from_secs(30)).await;
    r.check(
        moved.is_some(),
        "both instances serve the CAS cycle through the sentinels' primary",
    );
    let before = primary.command(&["DBSIZE"]).await.map(|v| texts(&v));
    r.check(
        before
            .as_ref()
            .is_ok_and(|n| n.first().is_some_and(|n| n != "0")),
        format!("the instances write to the primary the sentinels name ({before:?} keys)"),
    );
    // Records of the primary's run: a session, a ticket consumed, a ticket not yet used.
    let cookie = session(a, &probe_login(20)).await?;
    let consumed = mint(env, a, &cookie).await?;
    r.check(
        validate(env, b, &consumed).await?,
        "a ticket minted before the failover validates once",
    );
    let unused = mint(env, a, &cookie).await?;
    // Let the replica receive them: the row is about the failover, not about replication lag.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let killed_at = Instant::now();
    primary.kill().await?;
    let promoted = within(Duration::from_secs(30), async || {
        named_primary(&sentinels[0]).await == Some(replica.port)
    })
    .await;
    r.check(
        promoted.is_some(),
        format!(
            "the sentinels promoted the replica ({})",
            promoted.map_or_else(
                || "not within 30 s".to_owned(),
                |d| format!("{:.1} s after the kill", d.as_secs_f64())
            )
        ),
    );
    let back = recovered(env, Duration::from_secs(40)).await;
    let recovery = back.map(|_| killed_at.elapsed());
    r.recovery = recovery;
    r.check(
        recovery.is_some_and(|d| d <= FAILOVER_BUDGET),
        format!(
            "logins and validations back on both instances within {} s of the kill, without restarting them ({})",
            FAILOVER_BUDGET.as_secs(),
            recovery.map_or_else(|| "never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
        ),
    );
    check_load_window(
        r,
        env,
        (killed_at, Instant::now()),
        true,
        UNAVAILABLE_BUDGET,
    );

    // What the default (keep_records_across_restarts = false) says: the promoted replica is
    // another Redis run, so every record of the old primary's run is void.
    if validate(env, a, &consumed).await? {
        r.false_successes += 1;
        env.shared
            .false_success("F20: a ticket consumed before the failover validated again".to_owned());
    }
    r.check(
        !validate(env, b, &unused).await?,
        "a ticket minted before the failover and never used is void after it (ADR 0011)",
    );
    r.check(
        mint(env, a, &cookie).await.is_err(),
        "an SSO session opened before the failover is void: its browser signs in again",
    );

    // The old primary comes back (empty, as a crashed one without persistence): the sentinels
    // make it a replica of the new primary, and nothing is written to it as a primary.
    primary.restart(false).await?;
    let demoted = within(Duration::from_secs(30), async || {
        primary
            .command(&["ROLE"])
            .await
            .map(|v| texts(&v).first().is_some_and(|role| role == "slave"))
            .unwrap_or(false)
    })
    .await;
    r.check(
        demoted.is_some(),
        "the old primary, back, is turned into a replica of the new one",
    );
    let after_return = recovered(env, Duration::from_secs(20)).await;
    r.check(
        after_return.is_some(),
        "the cycle still works once the old primary is back",
    );
    let role = replica
        .command(&["ROLE"])
        .await
        .map(|v| texts(&v).first().cloned())
        .context("ROLE of the promoted replica")?;
    r.check(
        role.as_deref() == Some("master"),
        format!("the promoted replica is still the primary ({role:?})"),
    );
    Ok(())
}
