//! The identity provider's SAML signing keys, kept with the OpenID Connect keys (the
//! [`SigningKeyRepo`] port, one table) under their own algorithm name, so that every instance
//! signs with the same key and a rotation made by one is seen by all.
//!
//! The rules are the OpenID Connect keys' (`oidc::keys`): a key is published (in the
//! metadata) from its creation until its `publish_until`, and signs from its `active_from`
//! until its `retired_at`; of the keys that may sign, the latest `active_from` signs (ties:
//! the greatest `kid`). A rotation stores the next key with an `active_from` ahead, so that
//! federations' metadata aggregates carry it before it signs (RENATER refreshes its
//! aggregate hourly; a rotation delay of days is usual).
//!
//! A record's `public_jwk` holds the certificate as a JWK's `x5c` (RFC 7517 §4.7), the only
//! public part SAML needs.

use std::sync::{Arc, PoisonError, RwLock};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sesame_core::clock::Clock;
use sesame_core::ports::{SigningKeyRecord, SigningKeyRepo};
use sesame_core::random;
use time::OffsetDateTime;

use super::keys::generate;
use super::signature::SigningKey;
use super::SamlError;

/// The algorithm name SAML keys are stored under (never a JOSE algorithm, so the OpenID
/// Connect key set leaves them alone).
pub const STORED_ALG: &str = "saml:RSA-SHA256";
/// What every SAML key's stored algorithm name starts with.
pub const STORED_PREFIX: &str = "saml:";

/// Characters of a generated `kid`.
const KID_CHARS: usize = 32;

/// One stored key, parsed.
#[derive(Debug)]
pub struct SamlKey {
    /// Its id.
    pub kid: String,
    /// The key and its certificate.
    pub key: SigningKey,
    /// From when it may sign.
    pub active_from: OffsetDateTime,
    /// Since when it no longer signs.
    pub retired_at: Option<OffsetDateTime>,
    /// Until when it is published.
    pub publish_until: Option<OffsetDateTime>,
}

impl SamlKey {
    fn from_record(record: &SigningKeyRecord) -> Result<Self, SamlError> {
        let bad = |why: &str| SamlError::Key(format!("stored key {}: {why}", record.kid));
        let public: serde_json::Value =
            serde_json::from_str(&record.public_jwk).map_err(|_| bad("unreadable x5c"))?;
        let certificate = public
            .get("x5c")
            .and_then(|x| x.get(0))
            .and_then(serde_json::Value::as_str)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .ok_or_else(|| bad("no certificate"))?;
        Ok(Self {
            kid: record.kid.clone(),
            key: SigningKey::from_pkcs8(&record.private_pkcs8_der, certificate)?,
            active_from: record.active_from,
            retired_at: record.retired_at,
            publish_until: record.publish_until,
        })
    }

    fn signs_at(&self, now: OffsetDateTime) -> bool {
        self.active_from <= now && self.retired_at.is_none_or(|r| r > now)
    }
}

/// The SAML keys as loaded.
#[derive(Debug)]
pub struct SamlKeySet {
    keys: Vec<SamlKey>,
}

impl SamlKeySet {
    /// The SAML keys of `records` published at `now`.
    ///
    /// # Errors
    /// [`SamlError::Key`] if a published SAML record cannot be used.
    pub fn new(records: &[SigningKeyRecord], now: OffsetDateTime) -> Result<Self, SamlError> {
        let keys = records
            .iter()
            .filter(|r| r.alg == STORED_ALG && r.publish_until.is_none_or(|u| u > now))
            .map(SamlKey::from_record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { keys })
    }

    /// The key that signs at `now`.
    pub fn current(&self, now: OffsetDateTime) -> Option<&SamlKey> {
        self.keys
            .iter()
            .filter(|k| k.signs_at(now))
            .max_by(|a, b| (a.active_from, &a.kid).cmp(&(b.active_from, &b.kid)))
    }

    /// Every published key, the one that signs first (metadata lists them all: the next key
    /// before it signs, the previous one while responses it signed may still be checked).
    pub fn published(&self, now: OffsetDateTime) -> Vec<&SamlKey> {
        let current = self.current(now).map(|k| k.kid.as_str());
        let mut keys: Vec<&SamlKey> = self
            .keys
            .iter()
            .filter(|k| k.publish_until.is_none_or(|u| u > now))
            .collect();
        keys.sort_by_key(|k| {
            (
                Some(k.kid.as_str()) != current,
                std::cmp::Reverse(k.active_from),
            )
        });
        keys
    }
}

/// A new key record, created at `now`, signing from `active_from`, its certificate naming
/// `host`.
///
/// # Errors
/// [`SamlError::Key`] if generation fails.
pub fn generate_record(
    host: &str,
    now: OffsetDateTime,
    active_from: OffsetDateTime,
) -> Result<SigningKeyRecord, SamlError> {
    let (pkcs8, certificate) = generate(host, now)?;
    Ok(SigningKeyRecord {
        kid: random::alphanumeric(KID_CHARS),
        alg: STORED_ALG.to_owned(),
        private_pkcs8_der: pkcs8,
        public_jwk: serde_json::json!({ "x5c": [STANDARD.encode(&certificate)] }).to_string(),
        created_at: now,
        active_from,
        retired_at: None,
        publish_until: None,
    })
}

async fn generate_blocking(
    host: &str,
    now: OffsetDateTime,
    active_from: OffsetDateTime,
) -> Result<SigningKeyRecord, SamlError> {
    let host = host.to_owned();
    tokio::task::spawn_blocking(move || generate_record(&host, now, active_from))
        .await
        .map_err(|e| SamlError::Key(format!("key generation task failed: {e}")))?
}

fn storage(e: impl std::fmt::Display) -> SamlError {
    SamlError::Key(format!("key storage: {e}"))
}

/// This instance's SAML keys: stored through [`SigningKeyRepo`], cached in memory; call
/// [`SamlKeys::reload`] periodically so that a rotation made elsewhere is seen.
pub struct SamlKeys {
    repo: Arc<dyn SigningKeyRepo>,
    clock: Arc<dyn Clock>,
    host: String,
    cache: RwLock<Arc<SamlKeySet>>,
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for SamlKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlKeys")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

impl SamlKeys {
    /// Loads the stored keys and, when none may sign, generates one that signs at once
    /// (its certificate naming `host`). Two instances starting together may both create one;
    /// both are kept, and [`SamlKeySet::current`] picks the same everywhere.
    ///
    /// # Errors
    /// [`SamlError::Key`] if the storage fails, a stored key is unusable or generation fails.
    pub async fn load_or_create(
        repo: Arc<dyn SigningKeyRepo>,
        clock: Arc<dyn Clock>,
        host: &str,
    ) -> Result<Self, SamlError> {
        let now = clock.now();
        let mut set = SamlKeySet::new(&repo.signing_keys().await.map_err(storage)?, now)?;
        if set.current(now).is_none() {
            let record = generate_blocking(host, now, now).await?;
            repo.insert_signing_key(record).await.map_err(storage)?;
            set = SamlKeySet::new(&repo.signing_keys().await.map_err(storage)?, now)?;
        }
        Ok(Self {
            repo,
            clock,
            host: host.to_owned(),
            cache: RwLock::new(Arc::new(set)),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    /// The keys as last loaded (ask them which signs at the clock's time: a key loaded
    /// before its activation signs from then on without a reload).
    pub fn key_set(&self) -> Arc<SamlKeySet> {
        Arc::clone(&self.cache.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The clock's time, to ask the key set with.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Rereads the keys from storage.
    ///
    /// # Errors
    /// [`SamlError::Key`] if the storage fails or a stored key is unusable; the previous
    /// keys stay.
    pub async fn reload(&self) -> Result<(), SamlError> {
        let _one_at_a_time = self.reloading.lock().await;
        let records = self.repo.signing_keys().await.map_err(storage)?;
        let set = SamlKeySet::new(&records, self.clock.now())?;
        *self.cache.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(set);
        Ok(())
    }

    /// Rotates: stores a key that signs from now + `activation_delay`, and retires the others
    /// at that instant, published `retired_publish_for` longer. Returns the new `kid`.
    ///
    /// # Errors
    /// [`SamlError::Key`] if generation or storage fails, or a duration is out of range.
    pub async fn rotate(
        &self,
        activation_delay: std::time::Duration,
        retired_publish_for: std::time::Duration,
    ) -> Result<String, SamlError> {
        let out_of_range = || SamlError::Key("duration out of range".to_owned());
        let now = self.clock.now();
        let activation = time::Duration::try_from(activation_delay)
            .ok()
            .and_then(|d| now.checked_add(d))
            .ok_or_else(out_of_range)?;
        let publish_until = time::Duration::try_from(retired_publish_for)
            .ok()
            .and_then(|d| activation.checked_add(d))
            .ok_or_else(out_of_range)?;
        let record = generate_blocking(&self.host, now, activation).await?;
        let kid = record.kid.clone();
        self.repo
            .insert_signing_key(record)
            .await
            .map_err(storage)?;
        self.repo
            .retire_signing_keys(STORED_ALG, &kid, activation, publish_until)
            .await
            .map_err(storage)?;
        self.reload().await?;
        Ok(kid)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use sesame_core::clock::ManualClock;
    use time::macros::datetime;

    use super::*;
    use crate::oidc::clients::SigningAlg;
    use crate::oidc::keys::tests::MemRepo;
    use crate::oidc::keys::SigningKeys;

    const T0: OffsetDateTime = datetime!(2030-01-01 00:00 UTC);

    #[tokio::test]
    async fn the_first_start_makes_one_key_and_the_next_start_reuses_it() {
        let repo = Arc::new(MemRepo::default());
        let clock = Arc::new(ManualClock::starting_at(T0));
        let first = SamlKeys::load_or_create(repo.clone(), clock.clone(), "idp.test")
            .await
            .unwrap();
        let kid = first.key_set().current(T0).unwrap().kid.clone();
        let again = SamlKeys::load_or_create(repo.clone(), clock.clone(), "idp.test")
            .await
            .unwrap();
        assert_eq!(again.key_set().current(T0).unwrap().kid, kid);
        assert_eq!(repo.signing_keys().await.unwrap().len(), 1);
        // The OpenID Connect keys share the table and leave the SAML key alone.
        let oidc = SigningKeys::load_or_create(repo.clone(), clock, &[SigningAlg::RS256])
            .await
            .unwrap();
        assert_eq!(oidc.key_set().published().len(), 1);
        assert!(oidc.key_set().jwks_json().find(&kid).is_none());
        assert_eq!(repo.signing_keys().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_rotated_key_is_published_before_it_signs_and_the_old_one_after() {
        let repo = Arc::new(MemRepo::default());
        let clock = Arc::new(ManualClock::starting_at(T0));
        let keys = SamlKeys::load_or_create(repo.clone(), clock.clone(), "idp.test")
            .await
            .unwrap();
        let old = keys.key_set().current(T0).unwrap().kid.clone();
        let day = StdDuration::from_secs(86_400);
        let new = keys.rotate(day * 7, day).await.unwrap();
        let set = keys.key_set();
        // Published at once (current first), signing only after the delay.
        let published: Vec<&str> = set.published(T0).iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(published, [old.as_str(), new.as_str()]);
        assert_eq!(set.current(T0).unwrap().kid, old);
        let activation = T0 + time::Duration::days(7);
        assert_eq!(set.current(activation).unwrap().kid, new);
        assert_eq!(
            set.published(activation + time::Duration::hours(1))
                .iter()
                .map(|k| k.kid.as_str())
                .collect::<Vec<_>>(),
            [new.as_str(), old.as_str()]
        );
        assert_eq!(
            set.published(activation + time::Duration::days(2)).len(),
            1,
            "the old key leaves the metadata a day after the new one signs"
        );
    }

    #[test]
    fn a_stored_key_without_its_certificate_is_refused() {
        let mut record = generate_record("idp.test", T0, T0).unwrap();
        record.public_jwk = "{}".to_owned();
        assert!(SamlKeySet::new(&[record], T0).is_err());
    }
}
