//! Redis Sentinel: the store follows a failover of the primary. Real processes: a primary, a
//! replica and one sentinel (quorum 1, `down-after-milliseconds` 1000); the primary is killed
//! and the store must work again, against the promoted replica, within a bounded time.
//!
//! What survives the failover is what `keep_records_across_restarts` says (ADR 0011): the
//! promoted replica is another Redis run, so records tagged with the old primary's run read as
//! absent by default; with the setting, the records the replica had received survive.

use std::time::{Duration, Instant};

use sesame_core::ports::EphemeralStore;
use sesame_store::testing::random_prefix;
use sesame_store::{RedisStore, RedisTarget, StoreSetupError};

use crate::redis_servers::{base_args, free_port, redis_server_available, RedisServer, TempDir};

const OP_TIMEOUT: Duration = Duration::from_millis(500);
const SERVICE: &str = "sesame-test-primary";
/// Kill of the primary to a working store: Sentinel's 1 s down-after, its election and
/// promotion (a few seconds), and the store's next question to the sentinel.
const FAILOVER_BUDGET: Duration = Duration::from_secs(30);

fn query<T: redis::FromRedisValue>(port: u16, command: &redis::Cmd) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
    let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
    command.query(&mut conn)
}

/// Waits until `ready` holds, polling every 100 ms, or panics with `what` after `budget`.
fn wait_until(what: &str, budget: Duration, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < budget, "{what} within {budget:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The port Sentinel names as the primary.
fn primary_port(sentinel: u16) -> Option<u16> {
    let mut command = redis::cmd("SENTINEL");
    command.arg("GET-MASTER-ADDR-BY-NAME").arg(SERVICE);
    let addr: Option<(String, String)> = query(sentinel, &command).ok()?;
    addr.and_then(|(_, port)| port.parse().ok())
}

/// Writes and reads `key` until it works, failing the test past [`FAILOVER_BUDGET`] after
/// `since`.
async fn works_again(store: &RedisStore, key: &str, since: Instant, sentinel: &RedisServer) {
    loop {
        let attempt = async {
            store.put(key, "carol", Duration::from_secs(300)).await?;
            store.get(key).await
        };
        match attempt.await {
            Ok(value) => {
                assert_eq!(value.as_deref(), Some("carol"));
                return;
            }
            Err(e) => assert!(
                since.elapsed() < FAILOVER_BUDGET,
                "the store did not work again within {FAILOVER_BUDGET:?}: {e}\n{}",
                sentinel.log_text()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_follows_a_sentinel_failover_to_the_promoted_replica() {
    if !redis_server_available() {
        return;
    }
    let dir = TempDir::new("redis-sentinel");
    let (primary_port_0, replica_port, sentinel_port) = (free_port(), free_port(), free_port());
    let mut primary = RedisServer::start(dir.path(), primary_port_0, &base_args(primary_port_0));
    let mut replica_args = base_args(replica_port);
    replica_args.extend([
        "--replicaof".to_owned(),
        "127.0.0.1".to_owned(),
        primary_port_0.to_string(),
    ]);
    let replica = RedisServer::start(dir.path(), replica_port, &replica_args);
    wait_until("the replica is in sync", Duration::from_secs(10), || {
        query::<String>(replica_port, redis::cmd("INFO").arg("replication"))
            .is_ok_and(|info| info.contains("master_link_status:up"))
    });
    let config = dir.write(
        "sentinel.conf",
        &format!(
            "port {sentinel_port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {SERVICE} 127.0.0.1 {primary_port_0} 1\n\
             sentinel down-after-milliseconds {SERVICE} 1000\n\
             sentinel failover-timeout {SERVICE} 10000\n\
             sentinel parallel-syncs {SERVICE} 1\n",
            dir = dir.path().display()
        ),
    );
    let sentinel = RedisServer::start(
        dir.path(),
        sentinel_port,
        &[config.display().to_string(), "--sentinel".to_owned()],
    );
    wait_until(
        "the sentinel knows the replica",
        Duration::from_secs(20),
        || {
            let mut command = redis::cmd("SENTINEL");
            command.arg("REPLICAS").arg(SERVICE);
            query::<Vec<std::collections::HashMap<String, String>>>(sentinel_port, &command)
                .is_ok_and(|replicas| {
                    replicas.iter().any(|r| {
                        r.get("port") == Some(&replica_port.to_string())
                            && r.get("flags").is_some_and(|f| f == "slave")
                    })
                })
        },
    );

    // A sentinel's own address in place of Redis's is refused, with the reason.
    let misconfigured = RedisStore::connect(
        format!("redis://127.0.0.1:{sentinel_port}"),
        "p:",
        OP_TIMEOUT,
    )
    .await;
    assert!(
        matches!(&misconfigured, Err(StoreSetupError::RedisMode(mode)) if mode == "sentinel"),
        "{misconfigured:?}"
    );

    let target = RedisTarget::url(format!("redis://{SERVICE}/"))
        .through_sentinels(vec![format!("redis://127.0.0.1:{sentinel_port}")], SERVICE);
    let prefix = random_prefix();
    let run_tagged = RedisStore::connect(target.clone(), &prefix, OP_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sentinel.log_text()));
    let kept = RedisStore::connect(target, &prefix, OP_TIMEOUT)
        .await
        .expect("second store")
        .keep_records_across_restarts(true);
    let ttl = Duration::from_secs(300);
    run_tagged
        .put("session:tagged", "alice", ttl)
        .await
        .expect("write through Sentinel");
    kept.put("session:kept", "bob", ttl).await.expect("write");
    // Replication is asynchronous: wait until the replica has both writes, so that what the
    // failover keeps is decided by the setting alone.
    let acknowledged: i64 =
        query(primary_port_0, redis::cmd("WAIT").arg(1).arg(5000)).expect("WAIT on the primary");
    assert_eq!(acknowledged, 1, "the replica acknowledged the writes");

    primary.kill();
    let killed = Instant::now();
    works_again(&kept, "session:after", killed, &sentinel).await;
    let recovered_in = killed.elapsed();
    eprintln!("store working again {recovered_in:?} after the primary was killed");
    assert_eq!(
        primary_port(sentinel_port),
        Some(replica_port),
        "Sentinel promoted the replica"
    );
    // Each store finds out at its own first failure (a request that fails with 503, as any
    // request on a lost connection), then asks the sentinel.
    works_again(&run_tagged, "session:tagged-after", killed, &sentinel).await;

    // The setting decides what the failover kept: the constant tag survives, the old run's
    // records are void.
    assert_eq!(
        kept.get("session:kept").await.expect("read").as_deref(),
        Some("bob")
    );
    assert_eq!(run_tagged.get("session:tagged").await.expect("read"), None);
    drop(replica);
}
