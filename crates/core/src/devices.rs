//! Known devices: the browsers a person has logged in with (security spec decision 1, ADR
//! 0012; OWASP "Slow brute force: device cookies"; NIST SP 800-63B rev 4 §3.2.2).
//!
//! After every successful password login the browser gets a device cookie whose value is a
//! 256-bit random token. The database keeps the token's SHA-256 with the account and when the
//! browser was first and last seen, so the browser becomes a *known device* of that account.
//! One browser (one token) may be known for several accounts: a family computer. The login
//! procedure ([`crate::authn`]) counts a known device's failures on its own counter, which
//! locks only that device for that account, and never refuses it because of the failures of
//! unknown devices: an attacker who does not hold the person's browser cannot lock the person
//! out of it.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::RepoError;
use crate::ids::AccountId;
use crate::lockout::LockoutPolicy;
use crate::ports::{KnownDevice, KnownDeviceRepo};
use crate::random;

/// Characters of a device token ([`random::token`]: about 256 bits).
const TOKEN_LEN: usize = 43;

/// Whether a cookie value can be a device token at all; anything else is ignored (and never
/// looked up).
pub fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN && token.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What the database keeps of a device token.
pub fn token_hash(token: &str) -> String {
    random::sha256_hex(token)
}

/// The devices known for accounts, as the login and reset procedures use them.
#[derive(Debug, Clone)]
pub struct KnownDevices {
    repo: Arc<dyn KnownDeviceRepo>,
    clock: Arc<dyn Clock>,
    lifetime: Duration,
}

/// A device cookie as presented, once recognised: its hash and every account it is known for.
#[derive(Debug, Clone, Default)]
pub struct PresentedDevice {
    /// SHA-256 of the token (`None`: no cookie, or not a token).
    pub token_hash: Option<String>,
    /// The accounts the device is known for.
    pub known_for: Vec<KnownDevice>,
}

impl PresentedDevice {
    /// The device's record for `account`, if it is known for it.
    pub fn known_for(&self, account: AccountId) -> Option<(&str, &KnownDevice)> {
        let hash = self.token_hash.as_deref()?;
        self.known_for
            .iter()
            .find(|d| d.account_id == account)
            .map(|d| (hash, d))
    }
}

impl KnownDevices {
    /// Known devices over their repository; `policy.known_device_days` is how long a device
    /// stays known after its last login.
    pub fn new(
        repo: Arc<dyn KnownDeviceRepo>,
        clock: Arc<dyn Clock>,
        policy: &LockoutPolicy,
    ) -> Self {
        Self {
            repo,
            clock,
            lifetime: policy.known_device_lifetime(),
        }
    }

    /// The repository (the login procedure reads and writes device locks there).
    pub fn repo(&self) -> &Arc<dyn KnownDeviceRepo> {
        &self.repo
    }

    /// How long the device cookie lasts, and a device stays known after its last login.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Looks a presented cookie value up, by its hash alone. A value that is not a token is
    /// not looked up.
    ///
    /// # Errors
    /// Database failures.
    pub async fn recognise(&self, presented: Option<&str>) -> Result<PresentedDevice, RepoError> {
        let Some(hash) = presented.filter(|t| is_well_formed(t)).map(token_hash) else {
            return Ok(PresentedDevice::default());
        };
        let known_for = self.repo.devices_by_token(&hash).await?;
        Ok(PresentedDevice {
            token_hash: Some(hash),
            known_for,
        })
    }

    /// Makes the browser a known device of the account after it proved itself (a password
    /// login, a completed reset by a verified channel). Returns the token its cookie must
    /// hold: the one it presented, if any (a family computer keeps one token for several
    /// accounts), else a new one.
    ///
    /// # Errors
    /// Database failures.
    pub async fn remember(
        &self,
        account_id: AccountId,
        presented: Option<&str>,
    ) -> Result<String, RepoError> {
        let token = presented
            .filter(|t| is_well_formed(t))
            .map_or_else(random::token, str::to_owned);
        self.repo
            .remember_device(&token_hash(&token), account_id, self.clock.now())
            .await?;
        Ok(token)
    }

    /// Forgets the devices not seen for the cookie's lifetime (their cookie has expired).
    ///
    /// # Errors
    /// Database failures.
    pub async fn purge(&self) -> Result<usize, RepoError> {
        self.repo
            .purge_devices(self.clock.now() - self.lifetime)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fresh_tokens_are_well_formed() {
        assert!(is_well_formed(&random::token()));
        assert!(!is_well_formed(""));
        assert!(!is_well_formed(&"a".repeat(42)));
        assert!(!is_well_formed(&format!("{}-", "a".repeat(42))));
        assert_ne!(token_hash("a"), token_hash("b"));
    }
}
