//! "Ne plus demander sur cet appareil": a browser that passed the second factor may be
//! remembered for a number of days (`[mfa] remember_browser_days`, 0 = off, the default), so
//! that the person's next logins there ask for the password only.
//!
//! The browser holds a random 256-bit token in a cookie; the database holds its SHA-256 with
//! the account, a name (the browser and system, from its User-Agent), the dates and the last
//! use. A server-side record rather than a self-contained signed cookie, so that the person
//! sees each remembered browser on the account page and can forget it (and the helpdesk's
//! removal of a lost factor forgets them all), which a signed cookie alone cannot offer.
//!
//! A remembered browser is a key kept in software: the login records `swk` for it (RFC 8176
//! §2), so the session still says two factors (`pwd swk mfa`); it is never issued after a
//! recovery code (the person is then replacing a lost factor, not settling on a device).

use std::sync::Arc;

use async_trait::async_trait;
use sesame_core::clock::Clock;
use sesame_core::error::RepoError;
use sesame_core::ids::AccountId;
use sesame_core::random;
use time::OffsetDateTime;

/// Longest name kept for a remembered browser.
pub const MAX_LABEL_CHARS: usize = 80;

/// A remembered browser, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RememberedBrowser {
    /// Random identifier (the account page's forms name it by this, never by the token).
    pub id: String,
    /// Whose.
    pub account_id: AccountId,
    /// SHA-256 (hex) of the cookie's token.
    pub token_hash: String,
    /// "Firefox · Linux", from the User-Agent when remembered.
    pub label: String,
    /// When remembered.
    pub created_at: OffsetDateTime,
    /// Until when.
    pub expires_at: OffsetDateTime,
    /// When it last stood for the second factor.
    pub last_used_at: Option<OffsetDateTime>,
}

/// Remembered browsers in the database.
#[async_trait]
pub trait RememberedBrowserRepo: Send + Sync + std::fmt::Debug {
    /// Stores one.
    async fn remember_browser(&self, browser: &RememberedBrowser) -> Result<(), RepoError>;

    /// The one whose token has this hash, whoever's.
    async fn remembered_browser(
        &self,
        token_hash: &str,
    ) -> Result<Option<RememberedBrowser>, RepoError>;

    /// The account's, newest first.
    async fn remembered_browsers(
        &self,
        account: AccountId,
    ) -> Result<Vec<RememberedBrowser>, RepoError>;

    /// Records a use.
    async fn touch_remembered_browser(&self, id: &str, at: OffsetDateTime)
        -> Result<(), RepoError>;

    /// Forgets one of the account's; `true` if it existed.
    async fn forget_browser(&self, account: AccountId, id: &str) -> Result<bool, RepoError>;

    /// Forgets every one of the account's; how many there were.
    async fn forget_browsers(&self, account: AccountId) -> Result<usize, RepoError>;
}

/// The remembered browsers of every account.
#[derive(Debug, Clone)]
pub struct RememberedBrowsers {
    repo: Arc<dyn RememberedBrowserRepo>,
    clock: Arc<dyn Clock>,
    days: u32,
}

/// A browser just remembered: the token for its cookie, and how long the cookie lives.
#[derive(Clone)]
pub struct Remembered {
    /// The cookie's value.
    pub token: String,
    /// The cookie's lifetime, in seconds.
    pub max_age_secs: i64,
}

/// The token is a credential: a `{:?}` does not show it.
impl std::fmt::Debug for Remembered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remembered")
            .field("max_age_secs", &self.max_age_secs)
            .finish_non_exhaustive()
    }
}

/// "Firefox · Linux": what the account page names a browser by, from its User-Agent.
pub fn label_from_user_agent(user_agent: &str) -> String {
    let ua = user_agent;
    let browser = if ua.contains("Edg/") {
        "Edge"
    } else if ua.contains("OPR/") {
        "Opera"
    } else if ua.contains("Firefox/") {
        "Firefox"
    } else if ua.contains("Chrome/") || ua.contains("Chromium/") {
        "Chrome"
    } else if ua.contains("Safari/") {
        "Safari"
    } else {
        "Navigateur"
    };
    let system = if ua.contains("Android") {
        "Android"
    } else if ua.contains("iPhone") || ua.contains("iPad") {
        "iOS"
    } else if ua.contains("Windows") {
        "Windows"
    } else if ua.contains("Mac OS X") {
        "macOS"
    } else if ua.contains("CrOS") {
        "ChromeOS"
    } else if ua.contains("Linux") {
        "Linux"
    } else {
        ""
    };
    let label = if system.is_empty() {
        browser.to_owned()
    } else {
        format!("{browser} · {system}")
    };
    label.chars().take(MAX_LABEL_CHARS).collect()
}

impl RememberedBrowsers {
    /// Remembered browsers over this port, for `days` days (0: off).
    pub fn new(repo: Arc<dyn RememberedBrowserRepo>, clock: Arc<dyn Clock>, days: u32) -> Self {
        Self { repo, clock, days }
    }

    /// Whether browsers may be remembered.
    pub fn is_enabled(&self) -> bool {
        self.days > 0
    }

    /// For how many days.
    pub fn days(&self) -> u32 {
        self.days
    }

    /// Remembers this browser for `account` (`label` from [`label_from_user_agent`]).
    /// `None` when the feature is off.
    ///
    /// # Errors
    /// The database failed.
    pub async fn remember(
        &self,
        account: AccountId,
        label: &str,
    ) -> Result<Option<Remembered>, RepoError> {
        if !self.is_enabled() {
            return Ok(None);
        }
        let now = self.clock.now();
        let lifetime = time::Duration::days(i64::from(self.days));
        let token = random::token();
        self.repo
            .remember_browser(&RememberedBrowser {
                id: random::token(),
                account_id: account,
                token_hash: random::sha256_hex(&token),
                label: label.chars().take(MAX_LABEL_CHARS).collect(),
                created_at: now,
                expires_at: now + lifetime,
                last_used_at: None,
            })
            .await?;
        Ok(Some(Remembered {
            token,
            max_age_secs: lifetime.whole_seconds(),
        }))
    }

    /// Whether the browser's `token` is a live remembered browser of `account` (then its use
    /// is recorded). Off, expired, another account's, or unknown: `false`.
    ///
    /// # Errors
    /// The database failed (the caller asks for the factor: fail closed).
    pub async fn recognises(&self, account: AccountId, token: &str) -> Result<bool, RepoError> {
        if !self.is_enabled() || token.is_empty() || token.len() > 128 {
            return Ok(false);
        }
        let Some(found) = self
            .repo
            .remembered_browser(&random::sha256_hex(token))
            .await?
        else {
            return Ok(false);
        };
        let now = self.clock.now();
        if found.account_id != account || found.expires_at <= now {
            return Ok(false);
        }
        self.repo.touch_remembered_browser(&found.id, now).await?;
        Ok(true)
    }

    /// The account's live remembered browsers, newest first.
    ///
    /// # Errors
    /// The database failed.
    pub async fn list(&self, account: AccountId) -> Result<Vec<RememberedBrowser>, RepoError> {
        let now = self.clock.now();
        Ok(self
            .repo
            .remembered_browsers(account)
            .await?
            .into_iter()
            .filter(|b| b.expires_at > now)
            .collect())
    }

    /// Forgets one of the account's remembered browsers.
    ///
    /// # Errors
    /// The database failed.
    pub async fn forget(&self, account: AccountId, id: &str) -> Result<bool, RepoError> {
        self.repo.forget_browser(account, id).await
    }

    /// Forgets all of the account's (its factors were removed, or the person asked).
    ///
    /// # Errors
    /// The database failed.
    pub async fn forget_all(&self, account: AccountId) -> Result<usize, RepoError> {
        self.repo.forget_browsers(account).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_is_named_by_its_kind_and_system_only() {
        let chrome_linux = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        assert_eq!(label_from_user_agent(chrome_linux), "Chrome · Linux");
        let firefox_win =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0";
        assert_eq!(label_from_user_agent(firefox_win), "Firefox · Windows");
        let safari_iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1";
        assert_eq!(label_from_user_agent(safari_iphone), "Safari · iOS");
        assert_eq!(label_from_user_agent("curl/8"), "Navigateur");
        assert_eq!(
            label_from_user_agent(&"x".repeat(10_000)).chars().count(),
            "Navigateur".len()
        );
    }
}
