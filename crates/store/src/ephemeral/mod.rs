//! The ticket/session/counter store ([`EphemeralStore`](sesame_core::ports::EphemeralStore)):
//! in-process ([`MemoryStore`], the embedded default) or shared in Redis ([`RedisStore`]). Both
//! pass the same test suite.
//!
//! Attempt counters follow the port's contract: a counter is a window start and a count, a lock
//! is a "locked until" time, both in unix seconds. Decisions use the caller's `now`; expiry in
//! the store only collects garbage and always outlasts the logical lifetime by [`GC_MARGIN_SECS`].

mod memory;
mod redis_store;
mod redis_target;

use std::time::Duration;

use time::OffsetDateTime;

pub use self::memory::MemoryStore;
pub use self::redis_store::RedisStore;
pub use self::redis_target::{RedisTarget, RedisTls, RedisTlsError, TlsFile};

/// How much longer than logically needed counters and locks are kept.
const GC_MARGIN_SECS: i64 = 60;

/// Longest TTL accepted (about 100 years); longer ones are shortened to this.
const MAX_TTL_MS: u64 = 100 * 366 * 24 * 3600 * 1000;

/// A TTL in whole milliseconds: rounded up, at least 1 ms, at most [`MAX_TTL_MS`].
fn ttl_millis(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(u64::MAX).clamp(1, MAX_TTL_MS)
}

/// A counting window in whole seconds: rounded up, at least 1 s.
fn window_secs(window: Duration) -> i64 {
    let secs = window.as_nanos().div_ceil(1_000_000_000);
    i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .clamp(1, i64::MAX / 4)
}

/// The caller's `now` in unix seconds, rounded down.
fn now_secs(now: OffsetDateTime) -> i64 {
    now.unix_timestamp()
}

/// A lock end in unix seconds, rounded up so a lock never ends early.
fn until_secs(until: OffsetDateTime) -> i64 {
    let secs = until.unix_timestamp();
    if until.nanosecond() > 0 {
        secs + 1
    } else {
        secs
    }
}

/// How long the store keeps a lock ending at `until` (seconds, from `now`).
fn lock_gc_secs(until: i64, now: i64) -> i64 {
    until
        .saturating_sub(now)
        .max(0)
        .saturating_add(GC_MARGIN_SECS)
}

/// How long the store keeps a counter after an attempt (seconds).
fn counter_gc_secs(window: i64) -> i64 {
    window.saturating_add(GC_MARGIN_SECS)
}

/// Converts a stored lock end back into a time.
fn from_unix(secs: i64) -> Result<OffsetDateTime, sesame_core::error::StoreError> {
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| sesame_core::error::StoreError::Corrupt(format!("lock end out of range: {e}")))
}

/// The key of the lock that goes with counter `key` (without the deployment prefix).
fn lock_key(key: &str) -> String {
    format!("{key}:lock")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_and_stay_in_range() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_millis(Duration::from_secs(10)), 10_000);
        assert_eq!(ttl_millis(Duration::MAX), MAX_TTL_MS);
        assert_eq!(window_secs(Duration::from_millis(1)), 1);
        assert_eq!(window_secs(Duration::from_millis(1001)), 2);
        assert_eq!(window_secs(Duration::from_secs(900)), 900);
    }

    #[test]
    fn lock_ends_round_up() {
        let t = time::macros::datetime!(2026-11-22 10:00:00.5 UTC);
        assert_eq!(until_secs(t), now_secs(t) + 1);
        let t = time::macros::datetime!(2026-11-22 10:00:00 UTC);
        assert_eq!(until_secs(t), now_secs(t));
    }
}
