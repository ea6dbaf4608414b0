//! The tokens that forms carry against cross-site request forgery (security spec A41, A42),
//! one module for every form, with the `Origin` check ([`super::origin`]) in front of them.
//!
//! Two kinds, by whether the form is shown inside a session:
//! - **Session-bound** ([`FormPurpose`]): the SHA-256 of the purpose and the session cookie,
//!   which another site does not know. Nothing is stored; each purpose derives its own token,
//!   so one page's token does not open another's forms.
//! - **Single-use** ([`SingleUseForm`]): a random token kept (as its hash) in the ephemeral
//!   store and *taken* when the form comes back, for forms shown before any session (login,
//!   activation, assistance): a replayed or forged form is refused.
//!
//! Every check compares in constant time.

use std::time::Duration;

use sesame_core::error::StoreError;
use sesame_core::ports::EphemeralStore;
use sesame_core::random;

/// What a session-bound token guards.
#[derive(Debug, Clone, Copy)]
pub enum FormPurpose<'a> {
    /// The logout button of the logged-in page, the account page and the end-session
    /// confirmation.
    Logout,
    /// The forms of the account page.
    Account,
    /// Withdrawing an application's consent (`/account/applications`).
    ConsentWithdrawal,
    /// The helpdesk console's forms.
    Helpdesk,
    /// The consent form of one pending authorization request.
    Consent {
        /// The pending request's id.
        pending_id: &'a str,
    },
}

impl FormPurpose<'_> {
    /// The token of this purpose's forms for the session whose cookie is `session_cookie`.
    pub fn token(self, session_cookie: &str) -> String {
        let seed = match self {
            Self::Logout => format!("logout-csrf:{session_cookie}"),
            Self::Account => format!("account-csrf:{session_cookie}"),
            Self::ConsentWithdrawal => format!("consent-revoke-csrf:{session_cookie}"),
            Self::Helpdesk => format!("helpdesk-csrf:{session_cookie}"),
            Self::Consent { pending_id } => format!("consent-csrf:{session_cookie}:{pending_id}"),
        };
        random::sha256_hex(&seed)
    }

    /// Whether `presented` is this purpose's token for the session, compared in constant
    /// time. A missing token is refused.
    pub fn accepts(self, session_cookie: &str, presented: Option<&str>) -> bool {
        presented_matches(presented, &self.token(session_cookie))
    }
}

/// Whether a form presented `expected`, a session-bound token computed once for the page
/// (the helpdesk console keeps its agent's), compared in constant time.
pub fn presented_matches(presented: Option<&str>, expected: &str) -> bool {
    presented.is_some_and(|p| random::constant_time_eq(p, expected))
}

/// A kind of single-use form token: where the store keeps it and for how long.
#[derive(Debug, Clone, Copy)]
pub struct SingleUseForm {
    /// Prefix of the store key (followed by the token's SHA-256).
    prefix: &'static str,
    /// Prefix of the token itself, as the form shows it.
    token_prefix: &'static str,
    /// How long a shown form stays valid.
    ttl: Duration,
}

/// The login form's ticket (`lt`, CAS 2.0 §2.2.2's login ticket).
pub const LOGIN_TICKET: SingleUseForm = SingleUseForm {
    prefix: "lt:",
    token_prefix: "LT-",
    ttl: Duration::from_secs(30 * 60),
};

/// The activation pages' forms that come before a flow exists (`form_token`).
pub const ACTIVATION_FORM: SingleUseForm = SingleUseForm {
    prefix: "act:form:",
    token_prefix: "",
    ttl: Duration::from_secs(30 * 60),
};

/// The assistance form (`token`): people take their time to describe a problem.
pub const ASSISTANCE_FORM: SingleUseForm = SingleUseForm {
    prefix: "assistance-form:",
    token_prefix: "",
    ttl: Duration::from_secs(2 * 3600),
};

/// Longest token looked up: anything longer was not issued here.
const MAX_TOKEN_LEN: usize = 128;

impl SingleUseForm {
    fn key(self, token: &str) -> String {
        format!("{}{}", self.prefix, random::sha256_hex(token))
    }

    /// A new token for a form about to be shown.
    ///
    /// # Errors
    /// The store is unavailable.
    pub async fn issue(self, store: &dyn EphemeralStore) -> Result<String, StoreError> {
        let token = format!("{}{}", self.token_prefix, random::token());
        store.put_new(&self.key(&token), "1", self.ttl).await?;
        Ok(token)
    }

    /// Takes the token a form came back with: `Ok(true)` the first time an issued token is
    /// presented, `Ok(false)` when it is missing, unknown, expired or already used. The store
    /// finds it by its hash, so no comparison of the secret happens here.
    ///
    /// # Errors
    /// The store is unavailable.
    pub async fn take(
        self,
        store: &dyn EphemeralStore,
        presented: Option<&str>,
    ) -> Result<bool, StoreError> {
        let Some(token) = presented.filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN) else {
            return Ok(false);
        };
        Ok(store.take(&self.key(token)).await?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_token_opens_its_own_purpose_only() {
        let cookie = "TGC-abc";
        let account = FormPurpose::Account.token(cookie);
        assert!(FormPurpose::Account.accepts(cookie, Some(&account)));
        assert!(!FormPurpose::Account.accepts("TGC-other", Some(&account)));
        assert!(!FormPurpose::Helpdesk.accepts(cookie, Some(&account)));
        assert!(!FormPurpose::Logout.accepts(cookie, Some(&account)));
        assert!(!FormPurpose::Account.accepts(cookie, None));
        assert!(!FormPurpose::Account.accepts(cookie, Some("")));
        let consent = FormPurpose::Consent { pending_id: "p1" };
        assert!(consent.accepts(cookie, Some(&consent.token(cookie))));
        assert!(!FormPurpose::Consent { pending_id: "p2" }
            .accepts(cookie, Some(&consent.token(cookie))));
    }

    #[test]
    fn session_tokens_are_derived_as_before() {
        // Pages already open in browsers keep working across an upgrade.
        assert_eq!(
            FormPurpose::Logout.token("c"),
            random::sha256_hex("logout-csrf:c")
        );
        assert_eq!(
            FormPurpose::Consent { pending_id: "p" }.token("c"),
            random::sha256_hex("consent-csrf:c:p")
        );
    }

    #[test]
    fn single_use_keys_are_the_stores_keys_of_before() {
        assert_eq!(
            LOGIN_TICKET.key("t"),
            format!("lt:{}", random::sha256_hex("t"))
        );
        assert_eq!(
            ACTIVATION_FORM.key("t"),
            format!("act:form:{}", random::sha256_hex("t"))
        );
        assert_eq!(
            ASSISTANCE_FORM.key("t"),
            format!("assistance-form:{}", random::sha256_hex("t"))
        );
    }

    #[tokio::test]
    async fn a_single_use_token_is_accepted_once() {
        let store = sesame_store::MemoryStore::new();
        let token = ASSISTANCE_FORM.issue(&store).await.unwrap();
        let ticket = LOGIN_TICKET.issue(&store).await.unwrap();
        assert!(ticket.starts_with("LT-"), "{ticket}");
        assert!(LOGIN_TICKET.take(&store, Some(&ticket)).await.unwrap());
        assert!(!ACTIVATION_FORM.take(&store, Some(&token)).await.unwrap());
        assert!(ASSISTANCE_FORM.take(&store, Some(&token)).await.unwrap());
        assert!(!ASSISTANCE_FORM.take(&store, Some(&token)).await.unwrap());
        assert!(!ASSISTANCE_FORM.take(&store, None).await.unwrap());
        assert!(!ASSISTANCE_FORM
            .take(&store, Some(&"x".repeat(129)))
            .await
            .unwrap());
    }
}
