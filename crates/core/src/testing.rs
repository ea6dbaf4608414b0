//! A map standing in for the ephemeral store in this crate's unit tests (the product's
//! in-process store lives in `sesame-store`, which depends on this crate). Counters and
//! TTLs are not needed here: they are left unimplemented.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::ports::{AttemptReservation, EphemeralStore, MapEntry};

/// A key-value map and sets, counting calls.
#[derive(Debug, Default)]
pub(crate) struct MapStore {
    values: Mutex<BTreeMap<String, String>>,
    sets: Mutex<BTreeMap<String, BTreeSet<String>>>,
    maps: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    calls: AtomicUsize,
}

impl MapStore {
    /// The keys held, in order.
    pub(crate) fn keys(&self) -> Vec<String> {
        self.values().keys().cloned().collect()
    }

    /// How many store operations were made.
    pub(crate) fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn values(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn sets(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.sets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl MapStore {
    fn maps(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, BTreeMap<String, String>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn unsupported() -> StoreError {
    StoreError::Unavailable("not supported by the test map".to_owned())
}

#[async_trait]
impl EphemeralStore for MapStore {
    async fn put(&self, key: &str, value: &str, _ttl: Duration) -> Result<(), StoreError> {
        self.values().insert(key.to_owned(), value.to_owned());
        Ok(())
    }
    async fn put_new(&self, key: &str, value: &str, _ttl: Duration) -> Result<bool, StoreError> {
        let mut values = self.values();
        if values.contains_key(key) {
            return Ok(false);
        }
        values.insert(key.to_owned(), value.to_owned());
        Ok(true)
    }
    async fn replace(&self, key: &str, value: &str, _ttl: Duration) -> Result<bool, StoreError> {
        let mut values = self.values();
        match values.get_mut(key) {
            Some(v) => {
                value.clone_into(v);
                Ok(true)
            }
            None => Ok(false),
        }
    }
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.values().get(key).cloned())
    }
    async fn take(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.values().remove(key))
    }
    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let value = self.values().remove(key).is_some();
        let set = self.sets().remove(key).is_some();
        let map = self.maps().remove(key).is_some();
        Ok(value || set || map)
    }
    async fn set_add(&self, key: &str, member: &str, _ttl: Duration) -> Result<(), StoreError> {
        self.sets()
            .entry(key.to_owned())
            .or_default()
            .insert(member.to_owned());
        Ok(())
    }
    async fn set_remove(&self, key: &str, member: &str) -> Result<(), StoreError> {
        if let Some(set) = self.sets().get_mut(key) {
            set.remove(member);
        }
        Ok(())
    }
    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .sets()
            .get(key)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default())
    }
    async fn map_put(&self, entry: &MapEntry) -> Result<(), StoreError> {
        let mut maps = self.maps();
        let map = maps.entry(entry.map.clone()).or_default();
        if !map.contains_key(&entry.field) && map.len() >= entry.max_fields {
            if let Some(displaced) = map.keys().next().cloned() {
                map.remove(&displaced);
            }
        }
        map.insert(entry.field.clone(), entry.value.clone());
        Ok(())
    }
    async fn map_take(&self, key: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .maps()
            .remove(key)
            .map(|m| m.into_values().collect())
            .unwrap_or_default())
    }
    async fn reserve_attempt(
        &self,
        _key: &str,
        _now: OffsetDateTime,
        _window: Duration,
    ) -> Result<AttemptReservation, StoreError> {
        Err(unsupported())
    }
    async fn lock_attempts(
        &self,
        _key: &str,
        _until: OffsetDateTime,
        _now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        Err(unsupported())
    }
    async fn clear_attempts(&self, _key: &str) -> Result<(), StoreError> {
        Err(unsupported())
    }
    async fn forgive_attempt(&self, _key: &str) -> Result<(), StoreError> {
        Err(unsupported())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
