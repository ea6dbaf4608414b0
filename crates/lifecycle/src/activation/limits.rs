//! How many wrong identity checks and activation codes are allowed, and from where (security
//! spec A47 and decision 1; ADR 0012).
//!
//! An HR number or a `prenom.nom` login is easy to learn, so a counter per identifier alone
//! lets anyone block a person's activation with a handful of wrong tries. Failures count
//! instead:
//! - per identifier **and source** (a client address; an IPv6 client by its /64, which one
//!   subscriber holds whole): `max_failures_per_identifier` per `failure_window_secs`, and
//!   `max_daily_failures_per_identifier_and_address` per day. This is what a person's own
//!   typing mistakes meet, and one source cannot use up another's;
//! - per identifier from **all sources** together: `max_daily_failures_per_identifier` per
//!   day. A ceiling on distributed guessing, high enough that a handful of sources cannot
//!   reach it (each gives at most its daily allowance);
//! - per source across identifiers: `max_failures_per_ip` per window (one source trying
//!   many people).
//!
//! Each failure after the first from one source on one identifier is answered after a
//! growing delay. A success gives the attempts back. Every count is reserved atomically
//! before anything is compared, so parallel tries get no more than the allowance.

use std::net::IpAddr;
use std::time::Duration;

use sesame_core::ports::EphemeralStore;
use time::OffsetDateTime;

use super::error::ActivationError;
use super::settings::ActivationPolicy;

/// The day of the daily counts.
const DAY: Duration = Duration::from_secs(24 * 3600);
/// Longest delay before answering a failure.
const MAX_FAILURE_DELAY: Duration = Duration::from_secs(4);

/// The source of an attempt, as counted: the address itself, or an IPv6 address's /64.
pub fn source_of(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        None => "unknown".to_owned(),
    }
}

/// The counters one attempt on one identifier counts on.
#[derive(Debug, Clone)]
pub struct FailureCounters {
    /// Per source, across identifiers (`None` without a client address).
    per_source: Option<String>,
    /// Per identifier and source, in the short window.
    identifier_and_source: String,
    /// Per identifier and source, per day.
    identifier_and_source_daily: String,
    /// Per identifier, all sources together, per day.
    identifier_daily: String,
}

/// What a reservation gives: the attempt's rank from its source on its identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    /// 1 for the first attempt of the window.
    pub rank: u32,
}

impl FailureCounters {
    /// The counters of an attempt on `identifier_digest` (a SHA-256, never the identifier
    /// itself) by `what` (`identity`, `code`), from `ip`.
    pub fn new(what: &str, identifier_digest: &str, ip: Option<IpAddr>) -> Self {
        let source = source_of(ip);
        let source_digest = sesame_core::random::sha256_hex(&source);
        Self {
            per_source: ip.map(|_| format!("act:ip:{source_digest}")),
            identifier_and_source: format!("act:{what}:{identifier_digest}:src:{source_digest}"),
            identifier_and_source_daily: format!(
                "act:{what}:{identifier_digest}:srcday:{source_digest}"
            ),
            identifier_daily: format!("act:{what}:{identifier_digest}:day"),
        }
    }

    /// Reserves one attempt on every counter, the narrowest first (so that a source already
    /// refused does not move the identifier's ceiling).
    ///
    /// # Errors
    /// [`ActivationError::Throttled`] when a counter is over its allowance (with when it
    /// ends); [`ActivationError::Unavailable`] if the store fails.
    pub async fn reserve(
        &self,
        store: &dyn EphemeralStore,
        policy: &ActivationPolicy,
        now: OffsetDateTime,
    ) -> Result<Reserved, ActivationError> {
        let window = Duration::from_secs(policy.failure_window_secs);
        if let Some(key) = &self.per_source {
            count(store, key, policy.max_failures_per_ip, window, now).await?;
        }
        let rank = count(
            store,
            &self.identifier_and_source,
            policy.max_failures_per_identifier,
            window,
            now,
        )
        .await?;
        count(
            store,
            &self.identifier_and_source_daily,
            policy.max_daily_failures_per_identifier_and_address,
            DAY,
            now,
        )
        .await?;
        count(
            store,
            &self.identifier_daily,
            policy.max_daily_failures_per_identifier,
            DAY,
            now,
        )
        .await?;
        Ok(Reserved { rank })
    }

    /// After a success: the source's attempt back, its counts on the identifier cleared, and
    /// the identifier's ceiling given back this attempt (not cleared: a success does not
    /// undo what others tried).
    ///
    /// # Errors
    /// [`ActivationError::Unavailable`] if the store fails.
    pub async fn forgive(&self, store: &dyn EphemeralStore) -> Result<(), ActivationError> {
        if let Some(key) = &self.per_source {
            store.forgive_attempt(key).await?;
        }
        store.clear_attempts(&self.identifier_and_source).await?;
        store
            .clear_attempts(&self.identifier_and_source_daily)
            .await?;
        store.forgive_attempt(&self.identifier_daily).await?;
        Ok(())
    }
}

/// How long to wait before answering the failure of rank `rank` from one source: nothing for
/// the first, then `failure_delay_ms` doubling each time, at most 4 s.
pub fn failure_delay(policy: &ActivationPolicy, rank: u32) -> Duration {
    if rank < 2 || policy.failure_delay_ms == 0 {
        return Duration::ZERO;
    }
    let factor = 1u64 << (rank - 2).min(16);
    Duration::from_millis(policy.failure_delay_ms.saturating_mul(factor)).min(MAX_FAILURE_DELAY)
}

/// Counts one attempt on `key`: its rank, or [`ActivationError::Throttled`] past `max`.
async fn count(
    store: &dyn EphemeralStore,
    key: &str,
    max: u32,
    window: Duration,
    now: OffsetDateTime,
) -> Result<u32, ActivationError> {
    let r = store.reserve_attempt(key, now, window).await?;
    if let Some(until) = r.locked_until {
        return Err(ActivationError::Throttled { until });
    }
    if r.attempt > max {
        let until = now + window;
        store.lock_attempts(key, until, now).await?;
        return Err(ActivationError::Throttled { until });
    }
    Ok(r.attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_source_is_its_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::7".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_of(Some(a)), source_of(Some(b)));
        assert_ne!(source_of(Some(a)), source_of(Some(c)));
        assert_eq!(source_of(Some("192.0.2.7".parse().unwrap())), "192.0.2.7");
    }

    #[test]
    fn delays_grow_from_the_second_failure_and_are_capped() {
        let policy = ActivationPolicy::default();
        let ms = |rank| failure_delay(&policy, rank).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(5), ms(30)],
            [0, 500, 1000, 4000, 4000]
        );
    }

    #[test]
    fn a_handful_of_sources_cannot_reach_the_ceiling_in_a_day() {
        let p = ActivationPolicy::default();
        assert!(
            p.max_daily_failures_per_identifier_and_address * 5
                <= p.max_daily_failures_per_identifier
        );
    }
}
