//! C17 of the security spec: a soak at the load mix's steady rate, after the faults, checking
//! that nothing grows that should not. `make soak` runs it for an hour; the fault suite in CI
//! runs the same checks for a minute, which catches a key without expiry or a connection leak
//! but not a slow memory leak.

use std::time::{Duration, Instant};

use crate::load::{quantile_ms, Tally};
use crate::{Env, RowResult};

/// One look at the pair during the soak.
#[derive(Debug, Clone, Copy)]
struct Look {
    /// Resident memory of each instance, KiB.
    rss_kib: [u64; 2],
    /// Connections of the instances to PostgreSQL.
    pg_connections: Option<usize>,
    /// p99 latency of the load since the previous look, ms.
    p99_ms: f64,
}

/// Resident memory of process `pid`, KiB (`VmRSS`).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Keys under the instances' prefix that have no expiry (`TTL` = -1), and how many keys there
/// are: `SCAN` in batches, the TTLs of each batch in one pipeline.
async fn keys_without_expiry(env: &Env) -> anyhow::Result<(Vec<String>, usize)> {
    let client = redis::Client::open(env.redis.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    let mut without = Vec::new();
    let mut total = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("faults:*")
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        let mut pipe = redis::pipe();
        for key in &keys {
            pipe.cmd("TTL").arg(key);
        }
        let ttls: Vec<i64> = if keys.is_empty() {
            Vec::new()
        } else {
            pipe.query_async(&mut conn).await?
        };
        total += keys.len();
        without.extend(
            keys.into_iter()
                .zip(ttls)
                .filter(|(_, ttl)| *ttl == -1)
                .map(|(key, _)| key),
        );
        if next == 0 {
            return Ok((without, total));
        }
        cursor = next;
    }
}

/// C17: `duration` of the steady load, looked at six times.
pub async fn c17(env: &mut Env, r: &mut RowResult, duration: Duration) -> anyhow::Result<()> {
    let pids: Vec<u32> = env
        .instances
        .iter()
        .filter_map(|i| i.process.as_ref().map(sesame_bench::infra::Process::pid))
        .collect();
    let [pid_a, pid_b] = <[u32; 2]>::try_from(pids)
        .map_err(|_| anyhow::anyhow!("both instances must run for the soak"))?;
    let step = duration / 6;
    let started = Instant::now();
    let mut looks = Vec::new();
    let mut since = started;
    for _ in 0..6 {
        tokio::time::sleep(step).await;
        let now = Instant::now();
        let window = env.shared.window(since, now);
        looks.push(Look {
            rss_kib: [rss_kib(pid_a).unwrap_or(0), rss_kib(pid_b).unwrap_or(0)],
            pg_connections: crate::rows::pg_connections(env),
            p99_ms: quantile_ms(&window, 0.99),
        });
        since = now;
    }
    let all = env.shared.window(started, Instant::now());
    let tally = Tally::of(&all);
    r.held.push(format!(
        "{:.0} s of load: {tally}",
        started.elapsed().as_secs_f64()
    ));
    r.check(
        tally.server_errors == 0 && tally.unavailable_bare == 0,
        format!(
            "no 5xx under steady load ({} other 5xx, {} bare 503)",
            tally.server_errors, tally.unavailable_bare
        ),
    );
    // The first look is the warm-up (allocator arenas, connection pools filling).
    let (first, last) = (looks[1], looks[looks.len() - 1]);
    for (i, name) in ["a", "b"].iter().enumerate() {
        let (from, to) = (first.rss_kib[i], last.rss_kib[i]);
        r.check(
            from > 0 && to <= from + from / 10 + 4096,
            format!(
                "instance {name}: no memory growth (RSS {} → {} KiB; at most +10 % + 4 MiB; looks {:?})",
                from,
                to,
                looks.iter().map(|l| l.rss_kib[i]).collect::<Vec<_>>()
            ),
        );
    }
    // The pools open and close idle connections as the load's mix moves (an hour-long soak
    // saw 12 to 16): a leak is a count past the pools' bound, or one that ends higher than
    // it started.
    let connections: Vec<usize> = looks.iter().filter_map(|l| l.pg_connections).collect();
    let high = connections.iter().max().copied().unwrap_or(usize::MAX);
    let (start, end) = (
        connections.get(1).copied().unwrap_or(0),
        connections.last().copied().unwrap_or(usize::MAX),
    );
    r.check(
        connections.len() == looks.len() && high <= 2 * 8 + 2 && end <= start + 2,
        format!(
            "no database connection leak ({connections:?}: at most 2 pools of 8 + 2 at every look, the last at most the second + 2)"
        ),
    );
    let p99: Vec<f64> = looks.iter().map(|l| l.p99_ms).collect();
    r.check(
        last.p99_ms <= 2.0 * first.p99_ms + 20.0,
        format!("p99 stable ({p99:.0?} ms per look; the last within 2 × the second + 20 ms)"),
    );
    let (without, total) = keys_without_expiry(env).await?;
    r.check(
        without.is_empty(),
        format!(
            "every Redis key has a TTL ({} of {total} without: {:?})",
            without.len(),
            without.iter().take(5).collect::<Vec<_>>()
        ),
    );
    Ok(())
}
