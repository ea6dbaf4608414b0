//! The Redis store: shared by every Sesame instance of a deployment.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{cmd, AsyncConnectionConfig, Cmd, RedisResult, Script};
use sesame_core::error::StoreError;
use sesame_core::ports::{
    split_linked_value, AttemptReservation, EphemeralStore, Linked, MapEntry, Writes,
};
use time::OffsetDateTime;

use super::redis_target::{Primary, RedisTarget};
use super::{
    counter_gc_secs, from_unix, lock_gc_secs, lock_key, now_secs, ttl_millis, until_secs,
    window_secs,
};
use crate::error::{store_error, StoreSetupError};

/// Reconnection attempts per outage cycle before a request sees the failure (the next request
/// starts a new cycle).
const RECONNECT_RETRIES: usize = 3;
/// Longest pause between two reconnection attempts, in milliseconds.
const RECONNECT_MAX_DELAY_MS: u64 = 500;

/// A script that reads or writes tagged records: the tagging prelude, then the script.
macro_rules! tagged_script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/run_tag.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

/// The Lua scripts, loaded once per store and cached by Redis (`EVALSHA`).
struct Scripts {
    reserve_attempt: Script,
    forgive_attempt: Script,
    set_add: Script,
    put: Script,
    put_with_map_entry: Script,
    map_put: Script,
    map_take: Script,
    write_while_live: Script,
    read: Script,
    read_linked: Script,
    take_and_put: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            reserve_attempt: Script::new(include_str!("lua/reserve_attempt.lua")),
            forgive_attempt: Script::new(include_str!("lua/forgive_attempt.lua")),
            set_add: Script::new(concat!(
                include_str!("lua/add_to_set.lua"),
                include_str!("lua/set_add.lua")
            )),
            put: tagged_script!("put.lua"),
            put_with_map_entry: Script::new(concat!(
                include_str!("lua/run_tag.lua"),
                include_str!("lua/put_in_map.lua"),
                include_str!("lua/put_with_map_entry.lua")
            )),
            map_put: Script::new(concat!(
                include_str!("lua/put_in_map.lua"),
                include_str!("lua/map_put.lua")
            )),
            map_take: Script::new(include_str!("lua/map_take.lua")),
            write_while_live: Script::new(concat!(
                include_str!("lua/run_tag.lua"),
                include_str!("lua/add_to_set.lua"),
                include_str!("lua/write_while_live.lua")
            )),
            read: tagged_script!("read.lua"),
            read_linked: tagged_script!("read_linked.lua"),
            take_and_put: tagged_script!("take_and_put.lua"),
        }
    }
}

/// The tag written with every record when records are kept across Redis restarts.
const KEPT_RECORDS_TAG: &str = "kept";

/// Redis connections, one per thread that uses the store.
///
/// A connection's driver task runs on the runtime of the thread that opened (or last reopened)
/// it. actix-web runs each worker on its own single-threaded runtime and stops a worker's
/// runtime as soon as that worker has drained at shutdown, so one connection shared by every
/// worker could die while another worker still had requests in flight on it (security spec
/// F11). With a connection per thread, a runtime only ever carries its own thread's
/// connection; it is also one cross-thread hop less per round trip.
///
/// Each connection is to the primary of some generation: through Redis Sentinel, a failover
/// names a new primary (a new generation) and each thread's connection to an older one is
/// replaced at its next use.
struct Connections {
    primary: Primary,
    config: ConnectionManagerConfig,
    by_thread: Mutex<HashMap<ThreadId, (u64, ConnectionManager)>>,
}

/// Tickets, sessions, counters and locks in Redis, shared by every instance.
///
/// Every key is the deployment's prefix followed by the key the core gives. Every operation is
/// one atomic round trip (a command or a Lua script) bounded by the operation timeout; a timeout
/// or a connection error is [`StoreError::Unavailable`] and is never retried (a `take` whose
/// answer was lost may have consumed the ticket: it counts as failed). The connection is
/// re-established in the background after Redis comes back. Through Redis Sentinel
/// ([`RedisTarget::through_sentinels`]), after an operation fails the way a failover makes it
/// fail, the next ones go to the primary the sentinels then name.
///
/// Redis must be 6.2 or newer and should run with `maxmemory-policy noeviction` (see
/// [`RedisStore::eviction_policy`]): an evicted counter or ticket would silently reset a lockout
/// or break single use.
///
/// Records (tickets, codes, sessions: everything stored with `put`, `put_new` and
/// `take_and_put`) are tagged with the Redis run that wrote them, and a record of an earlier
/// run reads as absent: a Redis restored from an older snapshot cannot bring back a consumed
/// ticket or an ended session (security spec F03). The price is that every restart of Redis
/// ends every session, as a restart without persistence does anyway, unless the deployment
/// keeps records across restarts ([`RedisStore::keep_records_across_restarts`]). Attempt
/// counters, locks and sets are not tagged: the durable lock is in the database (decision 2).
#[derive(Clone)]
pub struct RedisStore {
    connections: Arc<Connections>,
    prefix: Arc<str>,
    op_timeout: Duration,
    scripts: Arc<Scripts>,
    /// `""`: records are tagged with Redis's run id; otherwise this constant tag.
    tag_mode: &'static str,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: not kept, not shown.
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .field("tag_mode", &self.tag_mode)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects to Redis at `target` (a URL `redis://[user:password@]host[:port][/db]`, or
    /// `rediss://` for TLS; or a [`RedisTarget`] with TLS files or sentinels), checks that it
    /// answers and is recent enough, and returns a store whose keys all start with
    /// `key_prefix` (for example `sesame:`) and whose operations each fail after `op_timeout`.
    ///
    /// # Errors
    /// [`StoreSetupError::Redis`] for a bad URL, a refused connection or TLS handshake, or
    /// sentinels that name no primary, [`StoreSetupError::RedisTimeout`] if Redis does not
    /// answer in time (the budget is `op_timeout`, at least 1 s),
    /// [`StoreSetupError::RedisTooOld`] before Redis 6.2.
    pub async fn connect(
        target: impl Into<RedisTarget>,
        key_prefix: &str,
        op_timeout: Duration,
    ) -> Result<Self, StoreSetupError> {
        let target = target.into();
        if target.uses_tls() {
            // The redis crate builds its rustls configuration with the process-wide provider;
            // ring, as for every other TLS client of Sesame. Already installed: kept.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(op_timeout)
            .set_response_timeout(op_timeout)
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(RECONNECT_MAX_DELAY_MS);
        let budget = op_timeout.max(Duration::from_secs(1));
        let setup = async {
            let primary = Primary::open(&target).await?;
            let (_, client) = primary.client(op_timeout).await;
            // One plain attempt first, so a refused connection fails at once instead of after
            // the manager's reconnection retries.
            let probe = AsyncConnectionConfig::new()
                .set_connection_timeout(op_timeout)
                .set_response_timeout(op_timeout);
            drop(
                client
                    .get_multiplexed_async_connection_with_config(&probe)
                    .await?,
            );
            let mut conn = ConnectionManager::new_with_config(client, config.clone()).await?;
            let info: Option<String> = match cmd("INFO").arg("server").query_async(&mut conn).await
            {
                Ok(info) => Some(info),
                // `INFO` disabled (ACL, renamed command): the version cannot be checked.
                Err(e) if refused_by_server(&e) => None,
                Err(e) => return Err(e),
            };
            RedisResult::Ok((primary, conn, info))
        };
        let (primary, conn, info) = tokio::time::timeout(budget, setup)
            .await
            .map_err(|_| StoreSetupError::RedisTimeout(budget))?
            .map_err(|e| StoreSetupError::Redis(Box::new(e)))?;
        if let Some(mode) = info.as_deref().and_then(server_mode) {
            // A Cluster node would refuse the multi-key scripts (CROSSSLOT), a sentinel every
            // command: refused now, with the reason, rather than as 503s later.
            if mode != "standalone" {
                return Err(StoreSetupError::RedisMode(mode));
            }
        }
        if let Some(version) = info.as_deref().and_then(server_version) {
            if !supports_getdel(&version) {
                return Err(StoreSetupError::RedisTooOld(version));
            }
        }
        let (generation, _) = primary.client(op_timeout).await;
        let by_thread = HashMap::from([(std::thread::current().id(), (generation, conn))]);
        Ok(Self {
            connections: Arc::new(Connections {
                primary,
                config,
                by_thread: Mutex::new(by_thread),
            }),
            prefix: Arc::from(key_prefix),
            op_timeout,
            scripts: Arc::new(Scripts::new()),
            tag_mode: "",
        })
    }

    /// Keeps records across Redis restarts (`keep = true`) instead of treating the records of
    /// an earlier Redis run as absent. Only safe when Redis cannot lose a write or roll back:
    /// `appendonly yes` with `appendfsync always`, and never a restore from an older snapshot;
    /// otherwise a consumed ticket or an ended session can come back after a crash.
    #[must_use]
    pub fn keep_records_across_restarts(mut self, keep: bool) -> Self {
        self.tag_mode = if keep { KEPT_RECORDS_TAG } else { "" };
        self
    }

    /// This thread's connection to the current primary, opened on first use and after a
    /// change of primary (see [`Connections`]).
    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let thread = std::thread::current().id();
        let (generation, client) = self.connections.primary.client(self.op_timeout).await;
        let known = self
            .connections
            .by_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&thread)
            .filter(|(known_generation, _)| *known_generation == generation)
            .map(|(_, conn)| conn.clone());
        if let Some(conn) = known {
            return Ok(conn);
        }
        let opened = match tokio::time::timeout(
            self.op_timeout,
            ConnectionManager::new_with_config(client, self.connections.config.clone()),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                self.connections.primary.failed(Some(&e));
                return Err(store_error(&e));
            }
            Err(_) => {
                self.connections.primary.failed(None);
                return Err(self.timed_out("connect"));
            }
        };
        // Two tasks of one thread may both have opened one: the first kept wins, the other
        // connection closes when dropped. A connection to an older primary is replaced.
        let mut by_thread = self
            .connections
            .by_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = by_thread
            .entry(thread)
            .or_insert((generation, opened.clone()));
        if entry.0 < generation {
            *entry = (generation, opened);
        }
        Ok(entry.1.clone())
    }

    /// Redis's `maxmemory-policy`, so the server can warn unless it is `noeviction`; `"unknown"`
    /// if Redis refuses `CONFIG GET` (managed services often disable it).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] if Redis cannot be reached.
    pub async fn eviction_policy(&self) -> Result<String, StoreError> {
        let mut conn = self.conn().await?;
        let mut config = cmd("CONFIG");
        config.arg("GET").arg("maxmemory-policy");
        let answer: RedisResult<HashMap<String, String>> =
            tokio::time::timeout(self.op_timeout, config.query_async(&mut conn))
                .await
                .map_err(|_| self.timed_out("CONFIG GET"))?;
        match answer {
            Ok(values) => Ok(values
                .get("maxmemory-policy")
                .cloned()
                .unwrap_or_else(|| "unknown".to_owned())),
            Err(e) if refused_by_server(&e) => Ok("unknown".to_owned()),
            Err(e) => Err(store_error(&e)),
        }
    }

    /// The full Redis key of `key`.
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn timed_out(&self, what: &str) -> StoreError {
        StoreError::Unavailable(format!(
            "Redis did not answer {what} within {:?}",
            self.op_timeout
        ))
    }

    /// Awaits one Redis round trip within the operation timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        round_trip: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let outcome = match tokio::time::timeout(self.op_timeout, round_trip).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.connections.primary.failed(Some(&e));
                Err(store_error(&e))
            }
            Err(_) => {
                self.connections.primary.failed(None);
                Err(self.timed_out(what))
            }
        };
        sesame_metrics::store_op(started.elapsed(), outcome.is_ok());
        outcome
    }

    /// Sends one command (`what` names it in errors).
    async fn query<T: redis::FromRedisValue>(
        &self,
        what: &str,
        command: Cmd,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn().await?;
        self.bounded(what, command.query_async(&mut conn)).await
    }

    /// `command` (`GET` or `GETDEL`) of the record `key`, untagged (see the type's doc).
    async fn read(&self, key: &str, command: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn().await?;
        let mut invocation = self.scripts.read.key(self.key(key));
        invocation.arg(self.tag_mode).arg(command);
        self.bounded(command, invocation.invoke_async(&mut conn))
            .await
    }

    /// Stores the record `key`, tagged; with `only_new`, only if no live record is there.
    async fn write(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        condition: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let mut invocation = self.scripts.put.key(self.key(key));
        invocation
            .arg(self.tag_mode)
            .arg(value)
            .arg(ttl_millis(ttl))
            .arg(condition);
        let stored: i64 = self
            .bounded("put", invocation.invoke_async(&mut conn))
            .await?;
        Ok(stored == 1)
    }
}

impl RedisStore {
    /// `command` (`GET` or `GETDEL`) of `key`, and `MGET` of the keys its value links to, in
    /// one script.
    async fn read_linked(&self, key: &str, command: &str) -> Result<Option<Linked>, StoreError> {
        let mut conn = self.conn().await?;
        let mut invocation = self.scripts.read_linked.key(self.key(key));
        invocation
            .arg(self.tag_mode)
            .arg(&*self.prefix)
            .arg(command);
        let answer: Option<Vec<Option<String>>> = self
            .bounded("read_linked", invocation.invoke_async(&mut conn))
            .await?;
        let Some(mut answer) = answer else {
            return Ok(None);
        };
        if answer.is_empty() {
            return Err(StoreError::Corrupt(
                "empty answer to read_linked".to_owned(),
            ));
        }
        let Some(value) = answer.remove(0) else {
            return Err(StoreError::Corrupt("no value in read_linked".to_owned()));
        };
        let (_, payload) = split_linked_value(&value);
        Ok(Some((payload.to_owned(), answer)))
    }
}

/// Whether Redis answered with an error (command renamed away, ACL `NOPERM`) rather than not
/// answering at all.
fn refused_by_server(error: &redis::RedisError) -> bool {
    matches!(
        error.kind(),
        redis::ErrorKind::ResponseError | redis::ErrorKind::ExtensionError
    )
}

/// `redis_version` from the answer to `INFO server`.
fn server_version(info: &str) -> Option<String> {
    info.lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(|v| v.trim().to_owned())
}

/// `redis_mode` from the answer to `INFO server`: `standalone`, `cluster` or `sentinel`.
fn server_mode(info: &str) -> Option<String> {
    info.lines()
        .find_map(|line| line.strip_prefix("redis_mode:"))
        .map(|v| v.trim().to_owned())
}

/// Whether a Redis version has `GETDEL` (6.2 or newer).
fn supports_getdel(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major, minor) >= (6, 2)
}

#[async_trait]
impl EphemeralStore for RedisStore {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        self.write(key, value, ttl, "").await.map(|_| ())
    }

    async fn put_new(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.write(key, value, ttl, "NX").await
    }

    async fn replace(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.write(key, value, ttl, "XX").await
    }

    async fn put_new_with_map_entry(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        also: &MapEntry,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let mut invocation = self.scripts.put_with_map_entry.key(self.key(key));
        invocation
            .key(self.key(&also.map))
            .arg(self.tag_mode)
            .arg(value)
            .arg(ttl_millis(ttl))
            .arg(&also.field)
            .arg(&also.value)
            .arg(ttl_millis(also.ttl))
            .arg(also.max_fields);
        let stored: i64 = self
            .bounded("put_with_map_entry", invocation.invoke_async(&mut conn))
            .await?;
        Ok(stored == 1)
    }

    async fn write_while_live(&self, guard: &str, writes: &Writes) -> Result<bool, StoreError> {
        let mut conn = self.conn().await?;
        let mut invocation = self.scripts.write_while_live.key(self.key(guard));
        invocation.arg(self.tag_mode).arg(writes.puts.len());
        for (key, value, ttl) in &writes.puts {
            invocation
                .key(self.key(key))
                .arg(value)
                .arg(ttl_millis(*ttl));
        }
        for m in &writes.members {
            invocation
                .key(self.key(&m.set))
                .arg(&m.member)
                .arg(ttl_millis(m.ttl));
        }
        let written: i64 = self
            .bounded("write_while_live", invocation.invoke_async(&mut conn))
            .await?;
        Ok(written == 1)
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(key, "GET").await
    }

    async fn take(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.read(key, "GETDEL").await
    }

    async fn take_linked(&self, key: &str) -> Result<Option<Linked>, StoreError> {
        self.read_linked(key, "GETDEL").await
    }

    async fn get_linked(&self, key: &str) -> Result<Option<Linked>, StoreError> {
        self.read_linked(key, "GET").await
    }

    async fn take_and_put(
        &self,
        key: &str,
        puts: &[(&str, &str, Duration)],
    ) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn().await?;
        let mut invocation = self.scripts.take_and_put.key(self.key(key));
        invocation.arg(self.tag_mode);
        for (put_key, put_value, ttl) in puts {
            invocation
                .key(self.key(put_key))
                .arg(*put_value)
                .arg(ttl_millis(*ttl));
        }
        self.bounded("take_and_put", invocation.invoke_async(&mut conn))
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut command = cmd("DEL");
        command.arg(self.key(key));
        let deleted: i64 = self.query("DEL", command).await?;
        Ok(deleted > 0)
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut invocation = self.scripts.set_add.key(self.key(key));
        invocation.arg(member).arg(ttl_millis(ttl));
        self.bounded("set_add", invocation.invoke_async::<()>(&mut conn))
            .await
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        let mut command = cmd("SREM");
        command.arg(self.key(key)).arg(member);
        let _removed: i64 = self.query("SREM", command).await?;
        Ok(())
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let mut command = cmd("SMEMBERS");
        command.arg(self.key(key));
        self.query("SMEMBERS", command).await
    }

    async fn map_put(&self, entry: &MapEntry) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let mut invocation = self.scripts.map_put.key(self.key(&entry.map));
        invocation
            .arg(&entry.field)
            .arg(&entry.value)
            .arg(ttl_millis(entry.ttl))
            .arg(entry.max_fields);
        self.bounded("map_put", invocation.invoke_async::<()>(&mut conn))
            .await
    }

    async fn map_take(&self, key: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn().await?;
        let invocation = self.scripts.map_take.key(self.key(key));
        self.bounded("map_take", invocation.invoke_async(&mut conn))
            .await
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
    ) -> Result<AttemptReservation, StoreError> {
        let window = window_secs(window);
        let mut conn = self.conn().await?;
        let mut invocation = self.scripts.reserve_attempt.key(self.key(key));
        invocation
            .key(self.key(&lock_key(key)))
            .arg(now_secs(now))
            .arg(window)
            .arg(counter_gc_secs(window));
        let (locked, value): (i64, i64) = self
            .bounded("reserve_attempt", invocation.invoke_async(&mut conn))
            .await?;
        if locked == 1 {
            return Ok(AttemptReservation {
                attempt: 0,
                locked_until: Some(from_unix(value)?),
            });
        }
        let attempt = u32::try_from(value)
            .map_err(|_| StoreError::Corrupt(format!("attempt counter out of range: {value}")))?;
        Ok(AttemptReservation {
            attempt,
            locked_until: None,
        })
    }

    async fn lock_attempts(
        &self,
        key: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let until = until_secs(until);
        // One command, so atomic: the lock ends at `until`, the key a margin later.
        let mut command = cmd("SET");
        command
            .arg(self.key(&lock_key(key)))
            .arg(until)
            .arg("EX")
            .arg(lock_gc_secs(until, now_secs(now)));
        self.query("SET", command).await
    }

    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        // A multi-key DEL is atomic: counter and lock go together.
        let mut command = cmd("DEL");
        command.arg(self.key(key)).arg(self.key(&lock_key(key)));
        let _deleted: i64 = self.query("DEL", command).await?;
        Ok(())
    }

    async fn forgive_attempt(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.conn().await?;
        let invocation = self.scripts.forgive_attempt.key(self.key(key));
        self.bounded("forgive_attempt", invocation.invoke_async::<()>(&mut conn))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _pong: String = self.query("PING", cmd("PING")).await?;
        Ok(())
    }

    async fn server_time(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let (secs, micros): (i64, i64) = self.query("TIME", cmd("TIME")).await?;
        let nanos = i128::from(secs) * 1_000_000_000 + i128::from(micros) * 1_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("Redis TIME out of range: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_6_2_lack_getdel() {
        for (version, ok) in [
            ("7.0.15", true),
            ("6.2.0", true),
            ("6.0.16", false),
            ("5.0.7", false),
            ("10.1", true),
        ] {
            assert_eq!(supports_getdel(version), ok, "{version}");
        }
        assert_eq!(
            server_version("# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"),
            Some("7.0.15".to_owned())
        );
        assert_eq!(
            server_mode("# Server\r\nredis_version:7.0.15\r\nredis_mode:cluster\r\n"),
            Some("cluster".to_owned())
        );
    }
}
