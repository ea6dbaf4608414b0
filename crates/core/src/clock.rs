//! Time as an input: every expiry and lockout decision asks a [`Clock`], so tests can move time.

use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// Source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current instant, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place where the real time enters Sesame"
    )]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// The deployment's clock: this machine's clock plus the offset to the clock of the shared
/// store (Redis's `TIME`), measured at start and every few seconds after.
///
/// Every expiry Sesame decides (tickets, codes, sessions, lockout windows) compares a time one
/// instance wrote with the time another instance reads. With each instance on its own clock, an
/// instance two minutes ahead would see every ticket of the others as expired (security spec
/// F12); on the store's clock they all decide alike, whatever their machines say.
#[derive(Debug, Default)]
pub struct DeploymentClock {
    /// Store time minus this machine's time, in nanoseconds.
    offset_nanos: std::sync::atomic::AtomicI64,
}

impl DeploymentClock {
    /// A clock with no offset yet (this machine's time until the first measure).
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a measure: the store said `store_now` at the midpoint of a round trip that this
    /// machine's clock saw start at `sent` and end at `received`.
    pub fn align(&self, sent: OffsetDateTime, store_now: OffsetDateTime, received: OffsetDateTime) {
        let midpoint = sent + (received - sent) / 2;
        let offset: Duration = store_now - midpoint;
        let nanos = i64::try_from(offset.whole_nanoseconds()).unwrap_or(if offset.is_negative() {
            i64::MIN
        } else {
            i64::MAX
        });
        self.offset_nanos
            .store(nanos, std::sync::atomic::Ordering::Relaxed);
    }

    /// Measures the offset to `store`'s clock once and records it: the new offset, or `None`
    /// when the store has no clock of its own (then nothing changes).
    ///
    /// # Errors
    /// [`crate::error::StoreError`] if the store does not answer (the last offset stays).
    pub async fn align_with(
        &self,
        store: &dyn crate::ports::EphemeralStore,
    ) -> Result<Option<Duration>, crate::error::StoreError> {
        let sent = self.machine_now();
        let Some(store_now) = store.server_time().await? else {
            return Ok(None);
        };
        let received = self.machine_now();
        self.align(sent, store_now, received);
        Ok(Some(self.offset()))
    }

    /// Store time minus this machine's time.
    pub fn offset(&self) -> Duration {
        Duration::nanoseconds(self.offset_nanos.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// This machine's time, without the offset (to time a measure).
    pub fn machine_now(&self) -> OffsetDateTime {
        SystemClock.now()
    }
}

impl Clock for DeploymentClock {
    fn now(&self) -> OffsetDateTime {
        let machine = SystemClock.now();
        machine.checked_add(self.offset()).unwrap_or(machine)
    }
}

/// A clock that only moves when told to; used by tests and by `sesame` tooling that replays time.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn starting_at(start: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    /// A manual clock starting at the real current time.
    pub fn starting_now() -> Self {
        Self::starting_at(SystemClock.now())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self
            .now
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod deployment_clock_tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_offset_is_measured_at_the_midpoint_of_the_round_trip() {
        let clock = DeploymentClock::new();
        assert_eq!(clock.offset(), Duration::ZERO);
        // This machine is 2 minutes ahead of the store; the round trip took 10 ms.
        clock.align(
            datetime!(2026-11-27 12:02:00.000 UTC),
            datetime!(2026-11-27 12:00:00.005 UTC),
            datetime!(2026-11-27 12:02:00.010 UTC),
        );
        assert_eq!(clock.offset(), Duration::minutes(-2));
        let drift = (clock.now() - (SystemClock.now() - Duration::minutes(2))).abs();
        assert!(drift < Duration::seconds(1), "{drift}");
    }
}
