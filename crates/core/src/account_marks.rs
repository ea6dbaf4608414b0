//! When each account last changed, kept for a few minutes in the shared store.
//!
//! A session keeps the account as a use of it read it from the database
//! ([`crate::session::AccountSnapshot`]), so that ticket after ticket needs no database read.
//! Within [`ACCOUNT_RECHECK`](crate::session::ACCOUNT_RECHECK) the copy is taken as it is. After that, instead of reading the
//! database again, a use asks the store whether the account changed since the copy was read:
//! every write to an account (state, names, addresses, affiliation, password) marks it there
//! once the database has committed it ([`AccountChangeObserver`]). One store read replaces a
//! database read and a session write at each use of a session older than
//! `ACCOUNT_RECHECK`, which is every use of a real session (a person's applications are
//! minutes apart).
//!
//! A mark can be missed (the store failed just after the database committed), so a copy
//! older than [`ACCOUNT_BACKSTOP`] is read again whatever the marks say. Marks are records like
//! any other (ADR 0011): a Redis that restarted voids them together with the sessions whose
//! copies they judge.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::AccountId;
use crate::ports::{AccountChangeObserver, EphemeralStore};
use crate::session::{AccountSnapshot, ACCOUNT_BACKSTOP};

/// How far apart two instances' clocks may be and a mark still be seen: a mark is taken as
/// later than a read that began up to this long after it. Instances share the store's clock
/// (F12), so this only covers what aligning to it leaves.
pub const MARK_CLOCK_MARGIN: Duration = Duration::seconds(2);

/// How long a mark is kept: past [`ACCOUNT_BACKSTOP`] no copy is judged by marks.
const MARK_TTL: StdDuration =
    StdDuration::from_secs(ACCOUNT_BACKSTOP.whole_seconds().unsigned_abs() + 60);

/// The store key of account `id`'s mark.
pub fn mark_key(id: AccountId) -> String {
    format!("acctmark:{id}")
}

/// Writes and reads the accounts' change marks.
#[derive(Debug, Clone)]
pub struct AccountChangeMarks {
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
}

impl AccountChangeMarks {
    /// Marks in `store`, timed by `clock` (the deployment's, shared by every instance).
    pub fn new(store: Arc<dyn EphemeralStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Records that account `id` changed now. Called after the change is committed, so that
    /// the mark is later than any read that could have missed the change.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails.
    pub async fn mark(&self, id: AccountId) -> Result<(), StoreError> {
        let now = self.clock.now().unix_timestamp_nanos();
        self.store
            .put(&mark_key(id), &now.to_string(), MARK_TTL)
            .await
    }

    /// When account `id` last changed, if within the marks' lifetime.
    ///
    /// # Errors
    /// [`StoreError`] if the store fails or the mark is unreadable.
    pub async fn changed_at(&self, id: AccountId) -> Result<Option<OffsetDateTime>, StoreError> {
        let Some(raw) = self.store.get(&mark_key(id)).await? else {
            return Ok(None);
        };
        let nanos: i128 = raw
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("account mark {raw:?}")))?;
        OffsetDateTime::from_unix_timestamp_nanos(nanos)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// The account `snapshot` holds, if it may stand in for the database at `now` for the
    /// session of `account_id`: read less than
    /// [`ACCOUNT_RECHECK`](crate::session::ACCOUNT_RECHECK) ago; or less than
    /// [`ACCOUNT_BACKSTOP`] ago and not marked changed since (with [`MARK_CLOCK_MARGIN`]).
    /// `None` (read the database) when the store cannot say.
    pub async fn current<'s>(
        &self,
        snapshot: &'s AccountSnapshot,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Option<&'s crate::account::Account> {
        if let Some(account) = snapshot.fresh(account_id, now) {
            return Some(account);
        }
        let account = snapshot.usable(account_id, now)?;
        match self.changed_at(account_id).await {
            Ok(None) => Some(account),
            Ok(Some(changed)) if changed + MARK_CLOCK_MARGIN < snapshot.read_at => Some(account),
            Ok(Some(_)) => None,
            Err(e) => {
                tracing::warn!(error = %e, "could not read an account's change mark");
                None
            }
        }
    }
}

#[async_trait]
impl AccountChangeObserver for AccountChangeMarks {
    async fn account_changed(&self, id: AccountId) {
        if let Err(e) = self.mark(id).await {
            // The change is committed; sessions that keep a copy of the account see it at
            // the latest after `ACCOUNT_BACKSTOP`.
            tracing::warn!(error = %e, account = %id, "could not mark an account changed in the store");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{Account, AccountState};
    use crate::clock::ManualClock;
    use crate::ids::{Affiliation, LoginName};
    use crate::testing::MapStore;

    const T0: OffsetDateTime = time::macros::datetime!(2026-12-07 21:00 UTC);

    fn account(id: AccountId, state: AccountState) -> Account {
        Account {
            id,
            login: LoginName::parse("ada").unwrap(),
            email: None,
            given_name: "Ada".to_owned(),
            family_name: "Lovelace".to_owned(),
            affiliation: Affiliation::Staff,
            state,
            created_at: T0,
            updated_at: T0,
        }
    }

    fn marks() -> (AccountChangeMarks, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::starting_at(T0));
        let store: Arc<dyn EphemeralStore> = Arc::new(MapStore::default());
        (AccountChangeMarks::new(store, clock.clone()), clock)
    }

    #[tokio::test]
    async fn a_copy_is_trusted_until_the_account_is_marked_changed_after_it_was_read() {
        let (marks, clock) = marks();
        let id = AccountId(uuid::Uuid::from_u128(1));
        let snapshot = AccountSnapshot {
            account: account(id, AccountState::Active),
            read_at: T0,
        };
        let at = |secs| T0 + Duration::seconds(secs);
        assert!(
            marks.current(&snapshot, id, at(29)).await.is_some(),
            "fresh"
        );
        assert!(
            marks.current(&snapshot, id, at(200)).await.is_some(),
            "no mark: unchanged"
        );
        assert!(
            marks
                .current(&snapshot, id, T0 + ACCOUNT_BACKSTOP)
                .await
                .is_none(),
            "the backstop reads the database whatever the marks say"
        );

        // A change marked before the copy was read (beyond the margin) leaves it good.
        clock.advance(Duration::seconds(-10));
        marks.mark(id).await.unwrap();
        assert!(marks.current(&snapshot, id, at(60)).await.is_some());

        // One marked after it (or within the margin) sends the use to the database, but
        // not before `ACCOUNT_RECHECK`.
        clock.advance(Duration::seconds(9));
        marks.mark(id).await.unwrap();
        assert!(marks.current(&snapshot, id, at(60)).await.is_none());
        assert!(marks.current(&snapshot, id, at(10)).await.is_some());

        // Another account's mark is not this one's.
        let other = AccountId(uuid::Uuid::from_u128(2));
        let theirs = AccountSnapshot {
            account: account(other, AccountState::Active),
            read_at: T0,
        };
        assert!(marks.current(&theirs, other, at(60)).await.is_some());
        assert!(
            marks.current(&theirs, id, at(10)).await.is_none(),
            "a copy of another account"
        );
        let blocked = AccountSnapshot {
            account: account(id, AccountState::Blocked),
            read_at: T0,
        };
        assert!(
            marks.current(&blocked, id, at(1)).await.is_none(),
            "only an active account"
        );
    }

    #[tokio::test]
    async fn an_unreadable_mark_sends_the_use_to_the_database() {
        let clock = Arc::new(ManualClock::starting_at(T0));
        let store: Arc<dyn EphemeralStore> = Arc::new(MapStore::default());
        let marks = AccountChangeMarks::new(Arc::clone(&store), clock.clone());
        let id = AccountId(uuid::Uuid::from_u128(3));
        store
            .put(&mark_key(id), "not a time", MARK_TTL)
            .await
            .unwrap();
        let snapshot = AccountSnapshot {
            account: account(id, AccountState::Active),
            read_at: T0,
        };
        assert!(marks.changed_at(id).await.is_err());
        assert!(marks
            .current(&snapshot, id, T0 + Duration::seconds(60))
            .await
            .is_none());
    }
}
