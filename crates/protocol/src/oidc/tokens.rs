//! What the token endpoint hands out, and how the other endpoints recognise it (OpenID
//! Connect Core 1.0 §3.1.3, RFC 6749 §5.1, RFC 6750, RFC 7662, RFC 7009).
//!
//! * **Access tokens are opaque** 256-bit random strings, kept in the shared store under
//!   their SHA-256 (`oidc:at:<hash>`) with what they grant. Resource servers check them at
//!   the introspection endpoint, and the UserInfo endpoint reads them with one store round
//!   trip. Why not JWTs (RFC 9068): an opaque token is revoked the moment it is revoked (a
//!   JWT stays valid until it expires), it carries no personal data to every API it is sent
//!   to, and issuing one costs a store write instead of an RSA signature, which keeps the
//!   `client_credentials` and `refresh_token` grants fast.
//! * **ID tokens** are JWTs signed with the client's algorithm (`RS256` by default) by the
//!   current key of [`SigningKeys`]; they carry `at_hash` when issued with an access token.
//! * **Refresh tokens** are [`Grants`]' business (rotation and reuse detection).
//! * Revoking a grant (code reuse, refresh-token reuse, logout) kills its access tokens
//!   too: reading an access token checks its grant's revocation marker.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sesame_core::clock::Clock;
use sesame_core::error::StoreError;
use sesame_core::ids::AccountId;
use sesame_core::ports::{linked_value, EphemeralStore};
use sesame_core::random;

use super::claims::{IdTokenClaims, LogoutTokenClaims};
use super::clients::OidcClient;
use super::grants::{revoked_grant_key, Grant, Grants};
use super::keys::{at_hash, KeyError, SigningKeys};

/// Characters of an access token (43 × log2(62) ≈ 256 bits).
pub const ACCESS_TOKEN_CHARS: usize = 43;

/// Longest string looked up as an access token; longer input costs no store round trip.
pub const MAX_TOKEN_CHARS: usize = 512;

/// Lifetime of a logout token, seconds (Back-Channel Logout 1.0 §2.4 wants it short).
pub const LOGOUT_TOKEN_TTL_SECS: i64 = 120;

/// What an access token stands for, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessTokenRecord {
    /// The grant it was issued under.
    pub grant_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The person, for tokens issued on a login (none for `client_credentials`).
    pub account_id: Option<AccountId>,
    /// The person's login.
    pub login: Option<String>,
    /// Scopes it carries.
    pub scopes: Vec<String>,
    /// The claims UserInfo releases (already limited to the scopes).
    pub claims: Map<String, Value>,
    /// The OpenID Connect session id (`sid`), for tokens issued on a login.
    pub sid: Option<String>,
    /// Issued at, unix seconds.
    pub issued_at: i64,
    /// Expires at, unix seconds.
    pub expires_at: i64,
}

impl AccessTokenRecord {
    /// The `sub` of the token: the account, or the client itself for `client_credentials`.
    pub fn subject(&self) -> String {
        self.account_id
            .map_or_else(|| self.client_id.clone(), |id| id.to_string())
    }
}

/// Why a token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Signing failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// An access token made but not yet stored ([`TokenService::prepare_access_token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedAccessToken {
    /// The token to hand out (raw: only its hash is stored).
    pub token: String,
    /// Its store key.
    pub key: String,
    /// Its stored record.
    pub value: String,
    /// Its lifetime in the store.
    pub ttl: Duration,
}

/// Issues and recognises tokens.
#[derive(Debug, Clone)]
pub struct TokenService {
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    keys: Arc<SigningKeys>,
    grants: Grants,
    issuer: String,
    access_token_ttl: Duration,
    id_token_ttl: Duration,
}

/// The settings of a [`TokenService`].
#[derive(Debug, Clone)]
pub struct TokenServiceParts {
    /// Shared store.
    pub store: Arc<dyn EphemeralStore>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Signing keys.
    pub keys: Arc<SigningKeys>,
    /// Refresh tokens and grant revocation.
    pub grants: Grants,
    /// The issuer (the public URL).
    pub issuer: String,
    /// Lifetime of an access token.
    pub access_token_ttl: Duration,
    /// Lifetime of an ID token.
    pub id_token_ttl: Duration,
}

fn access_key(hash: &str) -> String {
    format!("oidc:at:{hash}")
}

/// The OpenID Connect `sid` of an SSO session: derived from its store handle, from which
/// neither the cookie nor the handle can be recovered.
pub fn session_id(session_handle: &str) -> String {
    let digest = random::sha256_hex(&format!("oidc-sid:{session_handle}"));
    digest.chars().take(32).collect()
}

impl TokenService {
    /// A token service.
    pub fn new(parts: TokenServiceParts) -> Self {
        Self {
            store: parts.store,
            clock: parts.clock,
            keys: parts.keys,
            grants: parts.grants,
            issuer: parts.issuer,
            access_token_ttl: parts.access_token_ttl,
            id_token_ttl: parts.id_token_ttl,
        }
    }

    /// The refresh-token service.
    pub fn grants(&self) -> &Grants {
        &self.grants
    }

    /// The signing keys.
    pub fn keys(&self) -> &Arc<SigningKeys> {
        &self.keys
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Lifetime of `client`'s access tokens, in seconds (the `expires_in` of token
    /// responses).
    pub fn access_token_ttl_secs(&self, client: &OidcClient) -> u64 {
        client
            .access_token_ttl_secs
            .unwrap_or(self.access_token_ttl.as_secs())
    }

    /// Issues an access token for `grant`, releasing `claims` at UserInfo.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails; no token exists then.
    pub async fn issue_access_token(
        &self,
        client: &OidcClient,
        grant: &Grant,
        claims: Map<String, Value>,
    ) -> Result<String, StoreError> {
        let prepared = self.prepare_access_token(client, grant, claims)?;
        if !self
            .store
            .put_new(&prepared.key, &prepared.value, prepared.ttl)
            .await?
        {
            return Err(StoreError::Corrupt("access token collision".to_owned()));
        }
        Ok(prepared.token)
    }

    /// A new access token for `grant` as [`TokenService::issue_access_token`] would store
    /// it, not yet stored: for a caller that stores it in the same step as something else
    /// (the refresh-token rotation, [`Grants::rotate_refresh_token_with_session`]).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record cannot be written as JSON.
    pub fn prepare_access_token(
        &self,
        client: &OidcClient,
        grant: &Grant,
        claims: Map<String, Value>,
    ) -> Result<PreparedAccessToken, StoreError> {
        let now = self.clock.now();
        let ttl = client
            .access_token_ttl_secs
            .map_or(self.access_token_ttl, Duration::from_secs);
        let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
        let record = AccessTokenRecord {
            grant_id: grant.grant_id.clone(),
            client_id: grant.client_id.clone(),
            account_id: grant.account_id,
            login: grant.login.clone(),
            scopes: grant.scopes.clone(),
            claims,
            sid: grant.session_handle.as_deref().map(session_id),
            issued_at: now.unix_timestamp(),
            expires_at: now.unix_timestamp().saturating_add(ttl_secs),
        };
        let token = random::alphanumeric(ACCESS_TOKEN_CHARS);
        let hash = random::sha256_hex(&token);
        let raw = serde_json::to_string(&record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // A person's token is linked to its grant's revocation marker, so that reading it is
        // one round trip ([`TokenService::access_token`]).
        let value = if grant.account_id.is_some() {
            linked_value(&[&revoked_grant_key(&grant.grant_id)], &raw)
        } else {
            raw
        };
        Ok(PreparedAccessToken {
            token,
            key: access_key(&hash),
            value,
            ttl,
        })
    }

    /// The live access token `presented`, if it is one.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails (never answered as "inactive").
    pub async fn access_token(
        &self,
        presented: &str,
    ) -> Result<Option<AccessTokenRecord>, StoreError> {
        if presented.is_empty()
            || presented.len() > MAX_TOKEN_CHARS
            || !presented.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Ok(None);
        }
        let Some((raw, linked)) = self
            .store
            .get_linked(&access_key(&random::sha256_hex(presented)))
            .await?
        else {
            return Ok(None);
        };
        let record: AccessTokenRecord =
            serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if record.expires_at <= self.clock.now().unix_timestamp() {
            return Ok(None);
        }
        // A grant is revoked as a whole (code or refresh-token reuse, logout, block): its
        // access tokens die with it, at once. The marker came with the record.
        if record.account_id.is_some() {
            let revoked = match linked.first() {
                Some(marker) => marker.is_some(),
                // A token written before the link existed.
                None => self.grants.is_grant_revoked(&record.grant_id).await?,
            };
            if revoked {
                return Ok(None);
            }
        }
        Ok(Some(record))
    }

    /// Revokes the access token `presented` if it was issued to `client_id` (RFC 7009 §2.1:
    /// a client revokes only its own tokens); `true` if one was revoked.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn revoke_access_token(
        &self,
        presented: &str,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        match self.access_token(presented).await? {
            Some(record) if record.client_id == client_id => {
                self.store
                    .delete(&access_key(&random::sha256_hex(presented)))
                    .await
            }
            _ => Ok(false),
        }
    }

    /// Revokes a whole grant: its refresh tokens and every access token issued under it.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn revoke_grant(&self, grant_id: &str) -> Result<(), StoreError> {
        self.grants.revoke_grant(grant_id).await
    }

    /// Revokes the grants made from an SSO session that ended, except `offline_access` ones.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails.
    pub async fn revoke_session(&self, session_handle: &str) -> Result<(), StoreError> {
        self.grants
            .revoke_session_grants(session_handle)
            .await
            .map(|_| ())
    }

    /// Signs an ID token for `grant` (OpenID Connect Core §2, §3.1.3.6), with `at_hash`
    /// when `access_token` is given.
    ///
    /// # Errors
    /// [`KeyError`] when no key of the client's algorithm is current.
    pub fn id_token(
        &self,
        client: &OidcClient,
        grant: &Grant,
        nonce: Option<&str>,
        access_token: Option<&str>,
        claims: Map<String, Value>,
    ) -> Result<String, KeyError> {
        let now = self.clock.now().unix_timestamp();
        let ttl_secs = client
            .id_token_ttl_secs
            .unwrap_or(self.id_token_ttl.as_secs());
        let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX);
        let alg = client.id_token_signed_response_alg;
        let claims = IdTokenClaims {
            iss: self.issuer.clone(),
            sub: grant
                .account_id
                .map_or_else(|| client.client_id.clone(), |id| id.to_string()),
            aud: client.client_id.clone(),
            exp: now.saturating_add(ttl),
            iat: now,
            auth_time: grant.auth_time.map(time::OffsetDateTime::unix_timestamp),
            nonce: nonce.map(str::to_owned),
            acr: grant.acr.clone(),
            amr: grant.amr.clone(),
            at_hash: access_token.map(|t| at_hash(t, alg)),
            sid: grant.session_handle.as_deref().map(session_id),
            azp: Some(client.client_id.clone()),
            extra: claims,
        };
        self.keys.key_set().sign(alg, "JWT", &claims)
    }

    /// Signs a Back-Channel Logout 1.0 logout token for `client` about account `sub` and
    /// session `sid`.
    ///
    /// # Errors
    /// [`KeyError`] when no key of the client's algorithm is current.
    pub fn logout_token(
        &self,
        client: &OidcClient,
        sub: &str,
        sid: &str,
    ) -> Result<String, KeyError> {
        let now = self.clock.now().unix_timestamp();
        let claims = LogoutTokenClaims::new(
            self.issuer.clone(),
            Some(sub.to_owned()),
            client.client_id.clone(),
            now,
            now.saturating_add(LOGOUT_TOKEN_TTL_SECS),
            random::token(),
            Some(sid.to_owned()),
        );
        self.keys
            .key_set()
            .sign(client.id_token_signed_response_alg, "logout+jwt", &claims)
    }
}

#[cfg(test)]
mod tests {
    use crate::attributes::{claims_for_scopes, oidc_claims};
    use sesame_core::account::AccountState;
    use sesame_core::clock::ManualClock;
    use sesame_core::ids::{Affiliation, Email, LoginName};
    use sesame_core::ports::SigningKeyRepo;
    use sesame_store::{Database, MemoryStore};
    use time::macros::datetime;

    use super::super::clients::tests::confidential;
    use super::super::clients::SigningAlg;
    use super::super::grants::TokenPolicy;
    use super::*;

    fn account() -> sesame_core::account::Account {
        sesame_core::account::Account {
            id: AccountId::new_random(),
            login: LoginName::parse("jean.dupont").unwrap(),
            email: Some(Email::parse("jean.dupont@univ.example.org").unwrap()),
            given_name: "Jean".to_owned(),
            family_name: "Dupont".to_owned(),
            affiliation: Affiliation::Student,
            state: AccountState::Active,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            updated_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn scopes(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a34_claims_follow_the_granted_scopes_only() {
        let a = account();
        let none = oidc_claims(&a, &scopes(&["openid"]), "fr");
        assert!(none.is_empty());
        let email = oidc_claims(&a, &scopes(&["openid", "email"]), "fr");
        assert_eq!(email["email"], "jean.dupont@univ.example.org");
        assert_eq!(email["email_verified"], true);
        assert!(!email.contains_key("name"));
        let all = oidc_claims(&a, &scopes(&["openid", "profile", "email", "groups"]), "en");
        assert_eq!(all["name"], "Jean Dupont");
        assert_eq!(all["preferred_username"], "jean.dupont");
        assert_eq!(all["locale"], "en");
        assert_eq!(all["groups"], serde_json::json!(["student"]));
        let narrowed = claims_for_scopes(&all, &scopes(&["openid", "email"]));
        assert_eq!(narrowed, email);
    }

    #[test]
    fn the_session_id_reveals_nothing_of_the_handle_and_is_stable() {
        let sid = session_id("handle-1");
        assert_eq!(sid, session_id("handle-1"));
        assert_ne!(sid, session_id("handle-2"));
        assert_eq!(sid.len(), 32);
        assert!(!sid.contains("handle"));
    }

    async fn service(
        clock: Arc<ManualClock>,
    ) -> (TokenService, sesame_store::testing::SqliteFileGuard) {
        let (url, guard) = sesame_store::testing::fresh_sqlite();
        let db = Database::connect(&url, 1).await.unwrap();
        db.run_migrations().await.unwrap();
        let repo: Arc<dyn SigningKeyRepo> = Arc::new(db);
        let keys = SigningKeys::load_or_create(repo, clock.clone(), &[SigningAlg::RS256])
            .await
            .unwrap();
        let store: Arc<dyn EphemeralStore> = Arc::new(MemoryStore::new());
        let grants = Grants::new(store.clone(), clock.clone(), TokenPolicy::default());
        let service = TokenService::new(TokenServiceParts {
            store,
            clock,
            keys: Arc::new(keys),
            grants,
            issuer: "https://sso.example.org".to_owned(),
            access_token_ttl: Duration::from_secs(300),
            id_token_ttl: Duration::from_secs(300),
        });
        (service, guard)
    }

    fn grant(account_id: Option<AccountId>) -> Grant {
        Grant {
            grant_id: random::token(),
            client_id: "app".to_owned(),
            account_id,
            login: account_id.map(|_| "jean.dupont".to_owned()),
            scopes: scopes(&["openid", "email"]),
            auth_time: None,
            amr: Vec::new(),
            acr: None,
            session_handle: account_id.map(|_| "handle".to_owned()),
            offline: false,
            issued_at: datetime!(2026-03-02 08:00 UTC),
            claims: Map::new(),
        }
    }

    #[tokio::test]
    async fn access_tokens_expire_are_revoked_by_their_client_only_and_die_with_their_grant() {
        let clock = Arc::new(ManualClock::starting_at(datetime!(2026-03-02 08:00 UTC)));
        let (tokens, _guard) = service(clock.clone()).await;
        let client = confidential("app");
        let g = grant(Some(AccountId::new_random()));
        let token = tokens
            .issue_access_token(&client, &g, Map::new())
            .await
            .unwrap();
        assert_eq!(token.len(), ACCESS_TOKEN_CHARS);
        let record = tokens.access_token(&token).await.unwrap().unwrap();
        assert_eq!(record.client_id, "app");
        assert_eq!(record.sid.as_deref(), Some(session_id("handle").as_str()));
        // Malformed input costs nothing and finds nothing.
        assert!(tokens.access_token("").await.unwrap().is_none());
        assert!(tokens
            .access_token(&"x".repeat(600))
            .await
            .unwrap()
            .is_none());
        assert!(tokens.access_token("a.b-c").await.unwrap().is_none());
        // Another client cannot revoke it.
        assert!(!tokens.revoke_access_token(&token, "other").await.unwrap());
        assert!(tokens.access_token(&token).await.unwrap().is_some());
        // Its grant's revocation kills it.
        tokens.revoke_grant(&g.grant_id).await.unwrap();
        assert!(tokens.access_token(&token).await.unwrap().is_none());
        // Expiry by the clock, with a per-client lifetime.
        let short = OidcClient {
            access_token_ttl_secs: Some(30),
            ..confidential("app")
        };
        let g2 = grant(Some(AccountId::new_random()));
        let token = tokens
            .issue_access_token(&short, &g2, Map::new())
            .await
            .unwrap();
        assert_eq!(tokens.access_token_ttl_secs(&short), 30);
        clock.advance(time::Duration::seconds(29));
        assert!(tokens.access_token(&token).await.unwrap().is_some());
        clock.advance(time::Duration::seconds(1));
        assert!(tokens.access_token(&token).await.unwrap().is_none());
        // The client revokes its own.
        let cc = grant(None);
        let token = tokens
            .issue_access_token(&client, &cc, Map::new())
            .await
            .unwrap();
        assert_eq!(
            tokens
                .access_token(&token)
                .await
                .unwrap()
                .unwrap()
                .subject(),
            "app"
        );
        assert!(tokens.revoke_access_token(&token, "app").await.unwrap());
        assert!(tokens.access_token(&token).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn id_tokens_carry_the_core_claims_and_verify_with_the_published_keys() {
        let clock = Arc::new(ManualClock::starting_at(datetime!(2026-03-02 08:00 UTC)));
        let (tokens, _guard) = service(clock).await;
        let client = confidential("app");
        let mut g = grant(Some(AccountId::new_random()));
        g.auth_time = Some(datetime!(2026-03-02 07:59 UTC));
        g.amr = vec!["pwd".to_owned()];
        let jwt = tokens
            .id_token(&client, &g, Some("n-0S6"), Some("access"), Map::new())
            .unwrap();
        let claims: IdTokenClaims = tokens
            .keys()
            .key_set()
            .verify(
                &jwt,
                &super::super::keys::VerifyOptions {
                    issuer: "https://sso.example.org".to_owned(),
                    audience: Some("app".to_owned()),
                    check_exp: true,
                },
            )
            .unwrap();
        assert_eq!(claims.sub, g.account_id.unwrap().to_string());
        assert_eq!(claims.nonce.as_deref(), Some("n-0S6"));
        assert_eq!(claims.exp - claims.iat, 300);
        assert_eq!(
            claims.auth_time,
            Some(datetime!(2026-03-02 07:59 UTC).unix_timestamp())
        );
        assert_eq!(claims.at_hash, Some(at_hash("access", SigningAlg::RS256)));
        assert_eq!(claims.sid, Some(session_id("handle")));
        assert_eq!(claims.amr, vec!["pwd".to_owned()]);
    }
}
