//! Temporary lockout after repeated failures (security spec decision 1, ADR 0012).
//!
//! Two counters guard every password check: one per client address (against spraying one
//! password over many logins), and one for the attempt's origin. A browser that has logged in
//! to the account before (a *known device*, [`crate::devices`]) counts on its own counter and
//! its failures lock only itself; every other browser counts on the login string's counter
//! (whether or not an account bears it, so the lock reveals nothing), whose lock refuses
//! unknown devices only. So an attacker, who does not hold the person's browser, cannot lock
//! the person out of it. An attempt is *reserved* on the counters before argon2 runs,
//! atomically in the shared store, so of 500 simultaneous wrong passwords from unknown devices
//! exactly `threshold` reach the hasher (C01, C02) and a correct password only succeeds if it
//! was among them (C03).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::fold_identifier;

/// Lockout settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LockoutPolicy {
    /// Failures on one counter within `window` that lock it (default 5): a login string's
    /// counter (browsers not known for the account) or a known device's own.
    pub threshold: u32,
    /// Counting window, in seconds (default 900).
    pub window_secs: u64,
    /// Lock duration, in seconds (default 900).
    pub lock_secs: u64,
    /// Failures from one client address within `ip_window_secs` before that address is
    /// throttled (default 100: a school's NAT puts many honest people behind one address).
    pub ip_threshold: u32,
    /// Per-address window and throttle duration, in seconds (default 900).
    pub ip_window_secs: u64,
    /// Delay before answering the second failure in a window, in milliseconds; it doubles
    /// with each further failure (default 500: 0.5 s, 1 s, 2 s… before the lock).
    pub failure_delay_ms: u64,
    /// Longest such delay, in milliseconds (default 4000).
    pub max_failure_delay_ms: u64,
    /// How long a browser stays a known device after its last login, in days: the lifetime
    /// of its device cookie (default 365).
    pub known_device_days: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            window_secs: 900,
            lock_secs: 900,
            ip_threshold: 100,
            ip_window_secs: 900,
            failure_delay_ms: 500,
            max_failure_delay_ms: 4000,
            known_device_days: 365,
        }
    }
}

impl LockoutPolicy {
    /// Checks the values; the error names the field.
    ///
    /// # Errors
    /// A message naming the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.threshold == 0 {
            return Err("threshold must be at least 1".to_owned());
        }
        if self.ip_threshold == 0 {
            return Err("ip_threshold must be at least 1".to_owned());
        }
        if self.known_device_days == 0 || self.known_device_days > 3650 {
            return Err("known_device_days must be between 1 and 3650".to_owned());
        }
        for (name, v) in [
            ("window_secs", self.window_secs),
            ("lock_secs", self.lock_secs),
            ("ip_window_secs", self.ip_window_secs),
        ] {
            if v == 0 || v > 30 * 24 * 3600 {
                return Err(format!("{name} must be between 1 and 2592000 seconds"));
            }
        }
        Ok(())
    }

    /// How long to wait before answering the `attempt`-th failure of a window: nothing for
    /// the first, then `failure_delay_ms` doubling each time, at most `max_failure_delay_ms`
    /// (security spec decision 1, "growing delays"). The wait holds no hashing slot.
    pub fn failure_delay(&self, attempt: u32) -> Duration {
        if attempt < 2 || self.failure_delay_ms == 0 {
            return Duration::ZERO;
        }
        let factor = 1u64 << (attempt - 2).min(16);
        Duration::from_millis(
            self.failure_delay_ms
                .saturating_mul(factor)
                .min(self.max_failure_delay_ms),
        )
    }

    /// The per-login counting window.
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }

    /// The per-address window.
    pub fn ip_window(&self) -> Duration {
        Duration::from_secs(self.ip_window_secs)
    }

    /// When a lock taken at `now` ends.
    pub fn lock_until(&self, now: OffsetDateTime) -> OffsetDateTime {
        now + Duration::from_secs(self.lock_secs)
    }

    /// How long a browser stays a known device after its last login.
    pub fn known_device_lifetime(&self) -> Duration {
        Duration::from_secs(u64::from(self.known_device_days) * 24 * 3600)
    }

    /// When a throttle taken at `now` ends.
    pub fn ip_throttle_until(&self, now: OffsetDateTime) -> OffsetDateTime {
        now + Duration::from_secs(self.ip_window_secs)
    }
}

/// The store key of the per-login counter: the folded login, so `Alice`, `ALICE ` and the
/// full-width spelling share one counter (A04).
pub fn login_key(raw_login: &str) -> String {
    format!("lockout:login:{}", fold_identifier(raw_login))
}

/// The store key of a known device's own counter for one account (`token_hash`: the SHA-256
/// of its cookie's token).
pub fn device_key(account_id: crate::ids::AccountId, token_hash: &str) -> String {
    format!("lockout:device:{account_id}:{token_hash}")
}

/// The store key of the per-address counter.
pub fn ip_key(ip: std::net::IpAddr) -> String {
    format!("lockout:ip:{ip}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_of_a_login_share_one_counter() {
        assert_eq!(login_key("Alice"), login_key(" alice "));
        assert_eq!(login_key("ALICE"), login_key("\u{ff41}lice"));
    }

    #[test]
    fn defaults_follow_the_security_spec() {
        let p = LockoutPolicy::default();
        assert_eq!((p.threshold, p.window_secs, p.lock_secs), (5, 900, 900));
        assert!(p.validate().is_ok());
        assert!(LockoutPolicy { threshold: 0, ..p }.validate().is_err());
    }

    #[test]
    fn failure_delays_grow_and_are_capped() {
        let p = LockoutPolicy::default();
        let ms = |n| p.failure_delay(n).as_millis();
        assert_eq!(
            [ms(1), ms(2), ms(3), ms(4), ms(5), ms(40)],
            [0, 500, 1000, 2000, 4000, 4000]
        );
        let off = LockoutPolicy {
            failure_delay_ms: 0,
            ..p
        };
        assert_eq!(off.failure_delay(4), Duration::ZERO);
    }
}
