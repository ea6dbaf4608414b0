//! The in-process store: the embedded default for a single Sesame instance.

use std::collections::hash_map::Entry as Slot;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sesame_core::error::StoreError;
use sesame_core::ports::{
    split_linked_value, AttemptReservation, EphemeralStore, Linked, MapEntry, Writes,
};
use time::OffsetDateTime;

use super::{
    counter_gc_secs, from_unix, lock_gc_secs, lock_key, now_secs, ttl_millis, until_secs,
    window_secs,
};

/// Fewest operations between two sweeps of expired entries.
const SWEEP_MIN_OPS: usize = 1024;

/// Tickets, sessions, counters and locks in this process's memory.
///
/// Every operation runs under one mutex (never held across an `.await`), so each is atomic.
/// Expired entries are dropped when read, and the whole map is swept every
/// `max(1024, number of entries)` operations, so memory stays bounded by what is alive. Its
/// contents are lost when the process stops and are not shared with other instances: use
/// [`RedisStore`](crate::RedisStore) to run several.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Entries are tickets and sessions: only their number is shown.
        f.debug_struct("MemoryStore")
            .field("entries", &self.lock().entries.len())
            .finish()
    }
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    ops_since_sweep: usize,
}

struct Entry {
    value: Value,
    /// `None`: kept until deleted.
    expires_at: Option<Instant>,
}

enum Value {
    Text(String),
    Set(HashSet<String>),
    Map(HashMap<String, String>),
    /// An attempt counter: window start (unix seconds) and attempts counted in it.
    Counter {
        start: i64,
        count: u32,
    },
    /// A lock: locked until (unix seconds).
    Lock(i64),
}

impl Entry {
    fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Extends the entry's lifetime to `wanted`, never shortening it (`None` = never expires
    /// = longest).
    fn extend_to(&mut self, wanted: Option<Instant>) {
        self.expires_at = match (self.expires_at, wanted) {
            (Some(current), Some(wanted)) => Some(current.max(wanted)),
            _ => None,
        };
    }
}

/// The error for an operation on a key that holds another kind of value (Redis: `WRONGTYPE`).
fn wrong_type() -> StoreError {
    StoreError::Corrupt("operation against a key holding the wrong kind of value".to_owned())
}

/// `now + ttl`, or `None` (never) if that is beyond what `Instant` can represent.
fn deadline(now: Instant, ttl: Duration) -> Option<Instant> {
    now.checked_add(ttl)
}

/// `now + secs` seconds (negative counts as zero).
fn deadline_secs(now: Instant, secs: i64) -> Option<Instant> {
    deadline(now, Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

impl Inner {
    /// The live entry of `key`, dropping it first if it has expired.
    fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key).is_some_and(|e| e.is_expired(now)) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    /// Removes the live entry of `key`; `true` if there was one.
    fn remove_live(&mut self, key: &str, now: Instant) -> bool {
        self.entries
            .remove(key)
            .is_some_and(|entry| !entry.is_expired(now))
    }

    /// Drops expired entries when enough operations have passed since the last sweep.
    fn maybe_sweep(&mut self, now: Instant) {
        self.ops_since_sweep += 1;
        if self.ops_since_sweep >= SWEEP_MIN_OPS.max(self.entries.len()) {
            self.entries.retain(|_, entry| !entry.is_expired(now));
            self.ops_since_sweep = 0;
        }
    }

    fn put(&mut self, key: &str, value: &str, ttl: Duration, now: Instant) {
        self.entries.insert(
            key.to_owned(),
            Entry {
                value: Value::Text(value.to_owned()),
                expires_at: deadline(now, ttl),
            },
        );
    }

    /// Adds `member` to the set `key`, its lifetime extended to at least `ttl`.
    fn set_add(
        &mut self,
        key: &str,
        member: &str,
        ttl: Duration,
        now: Instant,
    ) -> Result<(), StoreError> {
        if self.entries.get(key).is_some_and(|e| e.is_expired(now)) {
            self.entries.remove(key);
        }
        let wanted = deadline(now, ttl);
        match self.entries.entry(key.to_owned()) {
            Slot::Vacant(slot) => {
                slot.insert(Entry {
                    value: Value::Set(HashSet::from([member.to_owned()])),
                    expires_at: wanted,
                });
            }
            Slot::Occupied(mut slot) => {
                let entry = slot.get_mut();
                let Value::Set(members) = &mut entry.value else {
                    return Err(wrong_type());
                };
                members.insert(member.to_owned());
                entry.extend_to(wanted);
            }
        }
        Ok(())
    }

    /// Removes and returns the text under `key`.
    fn take_text(&mut self, key: &str, now: Instant) -> Result<Option<String>, StoreError> {
        match self.live(key, now).map(|e| &e.value) {
            None => return Ok(None),
            Some(Value::Text(_)) => {}
            Some(_) => return Err(wrong_type()),
        }
        match self.entries.remove(key).map(|e| e.value) {
            Some(Value::Text(value)) => Ok(Some(value)),
            _ => Ok(None),
        }
    }

    /// The payload of `value` and the texts of the entries it links to.
    fn read_links(&mut self, value: &str, now: Instant) -> Result<Linked, StoreError> {
        let (links, payload) = split_linked_value(value);
        let mut linked = Vec::with_capacity(links.len());
        for link in links {
            linked.push(match self.live(link, now).map(|e| &e.value) {
                None => None,
                Some(Value::Text(text)) => Some(text.clone()),
                Some(_) => return Err(wrong_type()),
            });
        }
        Ok((payload.to_owned(), linked))
    }

    fn reserve_attempt(
        &mut self,
        key: &str,
        now_s: i64,
        window: i64,
        now: Instant,
    ) -> Result<AttemptReservation, StoreError> {
        let lock = lock_key(key);
        if let Some(entry) = self.live(&lock, now) {
            let Value::Lock(until) = entry.value else {
                return Err(wrong_type());
            };
            if until > now_s {
                return Ok(AttemptReservation {
                    attempt: 0,
                    locked_until: Some(from_unix(until)?),
                });
            }
            // The lock has ended: forget it and the attempts that led to it.
            self.entries.remove(&lock);
            self.entries.remove(key);
        }
        let (mut start, mut count) = match self.live(key, now).map(|e| &e.value) {
            None => (now_s, 0),
            Some(Value::Counter { start, count }) => (*start, *count),
            Some(_) => return Err(wrong_type()),
        };
        if now_s.saturating_sub(start) >= window {
            start = now_s;
            count = 0;
        }
        count = count.saturating_add(1);
        self.entries.insert(
            key.to_owned(),
            Entry {
                value: Value::Counter { start, count },
                expires_at: deadline_secs(now, counter_gc_secs(window)),
            },
        );
        Ok(AttemptReservation {
            attempt: count,
            locked_until: None,
        })
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No operation can leave the map half-changed, so a panic elsewhere does not poison it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `op` under the lock, after an occasional sweep.
    fn with<T>(&self, op: impl FnOnce(&mut Inner, Instant) -> T) -> T {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.maybe_sweep(now);
        op(&mut inner, now)
    }
}

#[async_trait]
impl EphemeralStore for MemoryStore {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let ttl = Duration::from_millis(ttl_millis(ttl));
        self.with(|inner, now| inner.put(key, value, ttl, now));
        Ok(())
    }

    async fn put_new(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ttl = Duration::from_millis(ttl_millis(ttl));
        Ok(self.with(|inner, now| {
            if inner.live(key, now).is_some() {
                return false;
            }
            inner.put(key, value, ttl, now);
            true
        }))
    }

    async fn replace(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ttl = Duration::from_millis(ttl_millis(ttl));
        Ok(self.with(|inner, now| {
            if !matches!(inner.live(key, now).map(|e| &e.value), Some(Value::Text(_))) {
                return false;
            }
            inner.put(key, value, ttl, now);
            true
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|inner, now| match inner.live(key, now).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Text(value)) => Ok(Some(value.clone())),
            Some(_) => Err(wrong_type()),
        })
    }

    async fn take(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.with(|inner, now| {
            match inner.live(key, now).map(|e| &e.value) {
                None => return Ok(None),
                Some(Value::Text(_)) => {}
                Some(_) => return Err(wrong_type()),
            }
            match inner.entries.remove(key).map(|e| e.value) {
                Some(Value::Text(value)) => Ok(Some(value)),
                _ => Ok(None),
            }
        })
    }

    async fn take_linked(&self, key: &str) -> Result<Option<Linked>, StoreError> {
        self.with(|inner, now| {
            let Some(value) = inner.take_text(key, now)? else {
                return Ok(None);
            };
            inner.read_links(&value, now).map(Some)
        })
    }

    async fn get_linked(&self, key: &str) -> Result<Option<Linked>, StoreError> {
        self.with(|inner, now| {
            let value = match inner.live(key, now).map(|e| &e.value) {
                None => return Ok(None),
                Some(Value::Text(value)) => value.clone(),
                Some(_) => return Err(wrong_type()),
            };
            inner.read_links(&value, now).map(Some)
        })
    }

    async fn take_and_put(
        &self,
        key: &str,
        puts: &[(&str, &str, Duration)],
    ) -> Result<Option<String>, StoreError> {
        self.with(|inner, now| {
            let Some(value) = inner.take_text(key, now)? else {
                return Ok(None);
            };
            for (put_key, put_value, ttl) in puts {
                inner.put(put_key, put_value, *ttl, now);
            }
            Ok(Some(value))
        })
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.with(|inner, now| inner.remove_live(key, now)))
    }

    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError> {
        let ttl = Duration::from_millis(ttl_millis(ttl));
        self.with(|inner, now| inner.set_add(key, member, ttl, now))
    }

    async fn write_while_live(&self, guard: &str, writes: &Writes) -> Result<bool, StoreError> {
        self.with(|inner, now| {
            match inner.live(guard, now).map(|e| &e.value) {
                None => return Ok(false),
                Some(Value::Text(_)) => {}
                Some(_) => return Err(wrong_type()),
            }
            for (key, value, ttl) in &writes.puts {
                inner.put(key, value, Duration::from_millis(ttl_millis(*ttl)), now);
            }
            for m in &writes.members {
                inner.set_add(
                    &m.set,
                    &m.member,
                    Duration::from_millis(ttl_millis(m.ttl)),
                    now,
                )?;
            }
            Ok(true)
        })
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        self.with(|inner, now| {
            let Some(entry) = inner.live(key, now) else {
                return Ok(());
            };
            let Value::Set(members) = &mut entry.value else {
                return Err(wrong_type());
            };
            members.remove(member);
            if members.is_empty() {
                inner.entries.remove(key);
            }
            Ok(())
        })
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.with(|inner, now| match inner.live(key, now).map(|e| &e.value) {
            None => Ok(Vec::new()),
            Some(Value::Set(members)) => Ok(members.iter().cloned().collect()),
            Some(_) => Err(wrong_type()),
        })
    }

    async fn map_put(&self, entry: &MapEntry) -> Result<(), StoreError> {
        let ttl = Duration::from_millis(ttl_millis(entry.ttl));
        self.with(|inner, now| {
            if inner
                .entries
                .get(&entry.map)
                .is_some_and(|e| e.is_expired(now))
            {
                inner.entries.remove(&entry.map);
            }
            let wanted = deadline(now, ttl);
            let stored = inner
                .entries
                .entry(entry.map.clone())
                .or_insert_with(|| Entry {
                    value: Value::Map(HashMap::new()),
                    expires_at: wanted,
                });
            let Value::Map(fields) = &mut stored.value else {
                return Err(wrong_type());
            };
            if !fields.contains_key(&entry.field) && fields.len() >= entry.max_fields {
                if let Some(displaced) = fields.keys().next().cloned() {
                    fields.remove(&displaced);
                }
            }
            fields.insert(entry.field.clone(), entry.value.clone());
            stored.extend_to(wanted);
            Ok(())
        })
    }

    async fn map_take(&self, key: &str) -> Result<Vec<String>, StoreError> {
        self.with(|inner, now| {
            match inner.live(key, now).map(|e| &e.value) {
                None => return Ok(Vec::new()),
                Some(Value::Map(_)) => {}
                Some(_) => return Err(wrong_type()),
            }
            match inner.entries.remove(key).map(|e| e.value) {
                Some(Value::Map(fields)) => Ok(fields.into_values().collect()),
                _ => Ok(Vec::new()),
            }
        })
    }

    async fn reserve_attempt(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
    ) -> Result<AttemptReservation, StoreError> {
        let (now_s, window) = (now_secs(now), window_secs(window));
        self.with(|inner, instant| inner.reserve_attempt(key, now_s, window, instant))
    }

    async fn lock_attempts(
        &self,
        key: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let (until, now_s) = (until_secs(until), now_secs(now));
        self.with(|inner, instant| {
            inner.entries.insert(
                lock_key(key),
                Entry {
                    value: Value::Lock(until),
                    expires_at: deadline_secs(instant, lock_gc_secs(until, now_s)),
                },
            );
        });
        Ok(())
    }

    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError> {
        self.with(|inner, _| {
            inner.entries.remove(key);
            inner.entries.remove(&lock_key(key));
        });
        Ok(())
    }

    async fn forgive_attempt(&self, key: &str) -> Result<(), StoreError> {
        self.with(
            |inner, now| match inner.live(key, now).map(|e| &mut e.value) {
                None => Ok(()),
                Some(Value::Counter { count, .. }) => {
                    *count = count.saturating_sub(1);
                    Ok(())
                }
                Some(_) => Err(wrong_type()),
            },
        )
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_entries_are_swept_without_being_read() {
        let store = MemoryStore::new();
        for i in 0..100 {
            store
                .put(&format!("k{i}"), "v", Duration::from_millis(1))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        for _ in 0..SWEEP_MIN_OPS {
            store.get("other").await.unwrap();
        }
        assert_eq!(store.lock().entries.len(), 0);
    }

    #[test]
    fn debug_output_shows_no_values() {
        let store = MemoryStore::new();
        store.with(|inner, now| inner.put("ticket", "secret-value", Duration::from_secs(9), now));
        let shown = format!("{store:?}");
        assert!(
            !shown.contains("secret") && !shown.contains("ticket"),
            "{shown}"
        );
    }
}
