//! Authorization codes over the shared store: issued at `/authorize` (RFC 6749 §4.1.2,
//! OpenID Connect Core 1.0 §3.1.2.5), redeemed at the token endpoint (RFC 6749 §4.1.3,
//! OpenID Connect Core §3.1.3.2, RFC 7636 §4.6; security decisions 4 and 9, rows A24–A30).
//!
//! * A code is [`CODE_CHARS`] characters `[A-Za-z0-9]` from the OS CSPRNG (≈ 256 bits).
//! * The store holds `oidc:code:<sha256(code)>` → [`CodeGrant`] as JSON: a store dump yields
//!   no usable code.
//! * A code lives [`CODE_TTL_SECS`] (60 s, decision 4) by the [`Clock`]; the store's TTL is a
//!   few seconds longer and only collects garbage.
//! * Redemption takes the code with the store's atomic `take` before any check, so each
//!   attempt burns it whatever the outcome: of any number of concurrent redemptions at most
//!   one succeeds. Taking it leaves a marker `oidc:code-redeemed:<sha256(code)>` → grant id
//!   for [`REDEEMED_MARKER_TTL_SECS`]; a later presentation of the code gets
//!   [`TokenError::CodeReused`] with that grant id, and the caller must revoke every token
//!   issued from the grant (decision 9, A26). A redemption racing the first one may see
//!   neither code nor marker and gets a plain `invalid_grant`.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sesame_core::clock::Clock;
use sesame_core::error::StoreError;
use sesame_core::ids::AccountId;
use sesame_core::ports::{linked_value, EphemeralStore};
use sesame_core::random;
use sesame_core::session::session_store_key;
use time::OffsetDateTime;

use super::pkce;

/// Characters of an authorization code (43 × log2(62) ≈ 256 bits, decision 7).
pub const CODE_CHARS: usize = 43;

/// Longest string looked up as a code; longer or non-alphanumeric input is refused without a
/// store round trip (A27).
pub const MAX_CODE_CHARS: usize = 128;

/// Lifetime of a code, in seconds (decision 4, A30).
pub const CODE_TTL_SECS: i64 = 60;

/// How long a redeemed code is remembered to detect reuse, in seconds: longer than any
/// access token lives, so that reuse is caught while the first tokens still matter.
pub const REDEEMED_MARKER_TTL_SECS: u64 = 3600;

/// Added to the code's lifetime for the store TTL, which only collects garbage.
pub const STORE_TTL_MARGIN: Duration = Duration::from_secs(5);

/// The error codes of the token endpoint (RFC 6749 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenErrorCode {
    /// Missing, repeated or malformed parameter.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The code (or refresh token) is invalid, expired, revoked, reused, or bound to another
    /// client, redirect URI or PKCE verifier.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// The scope is invalid or wider than granted.
    InvalidScope,
}

impl TokenErrorCode {
    /// The code as RFC 6749 spells it, e.g. `invalid_grant`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
        }
    }
}

impl std::fmt::Display for TokenErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token-endpoint failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenError {
    /// An error response with this code and description (never containing the code).
    #[error("{code}: {description}")]
    Rejected {
        /// The RFC 6749 §5.2 code.
        code: TokenErrorCode,
        /// The `error_description`.
        description: &'static str,
    },
    /// The code was already taken: answer `invalid_grant` **and** revoke every token issued
    /// from grant `grant_id` (decision 9).
    #[error("invalid_grant: authorization code already used")]
    CodeReused {
        /// The grant whose tokens must be revoked.
        grant_id: String,
    },
    /// The store failed: answer 500 (`server_error`), never a success.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TokenError {
    /// The RFC 6749 code to answer with; `None` for store faults (HTTP 500).
    pub fn code(&self) -> Option<TokenErrorCode> {
        match self {
            Self::Rejected { code, .. } => Some(*code),
            Self::CodeReused { .. } => Some(TokenErrorCode::InvalidGrant),
            Self::Store(_) => None,
        }
    }

    /// The `error` value: the code's name, or `server_error` for store faults.
    pub fn as_str(&self) -> &'static str {
        self.code().map_or("server_error", TokenErrorCode::as_str)
    }

    fn invalid_grant(description: &'static str) -> Self {
        Self::Rejected {
            code: TokenErrorCode::InvalidGrant,
            description,
        }
    }
}

/// What an authorization code stands for; stored (as JSON) under the code's hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    /// Identifies the grant, shared by every token issued from the code; set by
    /// [`AuthorizationCodes::issue`] (whatever the caller puts here is replaced).
    pub grant_id: String,
    /// The client the code was issued to.
    pub client_id: String,
    /// The `redirect_uri` of the authorization request.
    pub redirect_uri: String,
    /// The account authenticated.
    pub account_id: AccountId,
    /// Its login.
    pub login: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The request's `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// When credentials were last entered (`auth_time`; unix seconds in JSON).
    #[serde(with = "time::serde::timestamp")]
    pub auth_time: OffsetDateTime,
    /// Authentication methods (`amr`), e.g. `pwd`.
    pub amr: Vec<String>,
    /// Authentication context class (`acr`), if any.
    pub acr: Option<String>,
    /// The SSO session handle (`sesame_core::session::session_handle`); opaque here.
    pub session_handle: String,
    /// The `S256` `code_challenge`, if the request had one.
    pub code_challenge: Option<String>,
    /// When the code was issued; set by [`AuthorizationCodes::issue`] (unix milliseconds).
    #[serde(with = "time::serde::timestamp::milliseconds_i64")]
    pub issued_at: OffsetDateTime,
    /// The claims released for the granted scopes, read at `/authorize` so that the token
    /// endpoint needs no database read.
    #[serde(default)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// One authorization-code redemption, as the token endpoint received it, after client
/// authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redemption<'a> {
    /// The `code` parameter.
    pub code: &'a str,
    /// The authenticated client's id.
    pub client_id: &'a str,
    /// The `redirect_uri` parameter, if sent.
    pub redirect_uri: Option<&'a str>,
    /// The `code_verifier` parameter, if sent.
    pub code_verifier: Option<&'a str>,
}

/// Issues and redeems authorization codes in the shared store.
#[derive(Debug, Clone)]
pub struct AuthorizationCodes {
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
}

fn code_key(hash: &str) -> String {
    format!("oidc:code:{hash}")
}

fn redeemed_key(hash: &str) -> String {
    format!("oidc:code-redeemed:{hash}")
}

impl AuthorizationCodes {
    /// Codes in `store`, timed by `clock`.
    pub fn new(store: Arc<dyn EphemeralStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Issues a code for `grant` (its `grant_id` and `issued_at` are set here).
    ///
    /// # Errors
    /// [`StoreError`] if the store fails; no code exists then.
    pub async fn issue(&self, mut grant: CodeGrant) -> Result<String, StoreError> {
        grant.grant_id = random::token();
        grant.issued_at = self.clock.now();
        let code = random::alphanumeric(CODE_CHARS);
        let raw = serde_json::to_string(&grant).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // Linked to its SSO session, so that redeeming it reads the session in the same step.
        let raw = linked_value(&[&session_store_key(&grant.session_handle)], &raw);
        let ttl =
            Duration::from_secs(CODE_TTL_SECS.unsigned_abs()).saturating_add(STORE_TTL_MARGIN);
        if !self
            .store
            .put_new(&code_key(&random::sha256_hex(&code)), &raw, ttl)
            .await?
        {
            return Err(StoreError::Corrupt(
                "authorization code collision".to_owned(),
            ));
        }
        Ok(code)
    }

    /// Redeems a code (RFC 6749 §4.1.3), in this order:
    ///
    /// 1. not `[A-Za-z0-9]{1,128}` ⇒ `invalid_grant` without touching the store (A27);
    /// 2. take it from the store (atomic; burned whatever follows) and mark it redeemed;
    ///    absent but marked ⇒ [`TokenError::CodeReused`] (A26); absent ⇒ `invalid_grant`;
    /// 3. older than [`CODE_TTL_SECS`] by the clock ⇒ `invalid_grant` (A30);
    /// 4. issued to another client ⇒ `invalid_grant` (A28);
    /// 5. `redirect_uri` missing or different ⇒ `invalid_grant` (A29; it is always required,
    ///    since `/authorize` always requires it);
    /// 6. a challenge was sent and the verifier is missing, malformed or wrong ⇒
    ///    `invalid_grant` (A24); no challenge but a verifier ⇒ `invalid_grant` (A25, PKCE
    ///    downgrade, RFC 9700 §4.8.2).
    ///
    /// The caller then checks that the grant's SSO session still lives.
    ///
    /// # Errors
    /// As above; [`TokenError::Store`] if the store fails.
    pub async fn redeem(&self, r: &Redemption<'_>) -> Result<CodeGrant, TokenError> {
        self.redeem_with_session(r).await.map(|(grant, _)| grant)
    }

    /// [`AuthorizationCodes::redeem`], returning also the code's SSO session as the store
    /// held it when the code was taken (`Some(None)`: gone), read in the same step, for
    /// [`sesame_core::session::SessionManager::is_live_record`]; `None` for a code stored
    /// before codes were linked to their session (the caller reads the session then).
    ///
    /// # Errors
    /// As [`AuthorizationCodes::redeem`].
    pub async fn redeem_with_session(
        &self,
        r: &Redemption<'_>,
    ) -> Result<(CodeGrant, Option<Option<String>>), TokenError> {
        if r.code.is_empty()
            || r.code.len() > MAX_CODE_CHARS
            || !r.code.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(TokenError::invalid_grant("invalid authorization code"));
        }
        let hash = random::sha256_hex(r.code);
        let Some((raw, linked)) = self.store.take_linked(&code_key(&hash)).await? else {
            return match self.store.get(&redeemed_key(&hash)).await? {
                Some(grant_id) => Err(TokenError::CodeReused { grant_id }),
                None => Err(TokenError::invalid_grant("invalid authorization code")),
            };
        };
        let grant: CodeGrant =
            serde_json::from_str(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.store
            .put(
                &redeemed_key(&hash),
                &grant.grant_id,
                Duration::from_secs(REDEEMED_MARKER_TTL_SECS),
            )
            .await?;
        let expired = grant
            .issued_at
            .checked_add(time::Duration::seconds(CODE_TTL_SECS))
            .is_none_or(|expires_at| expires_at < self.clock.now());
        if expired {
            return Err(TokenError::invalid_grant("authorization code expired"));
        }
        if grant.client_id != r.client_id {
            return Err(TokenError::invalid_grant(
                "authorization code was issued to another client",
            ));
        }
        if r.redirect_uri != Some(grant.redirect_uri.as_str()) {
            return Err(TokenError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&grant.code_challenge, r.code_verifier) {
            (Some(challenge), Some(verifier)) => {
                if pkce::verify(verifier, challenge).is_err() {
                    return Err(TokenError::invalid_grant("code_verifier does not match"));
                }
            }
            (Some(_), None) => {
                return Err(TokenError::invalid_grant("code_verifier is required"));
            }
            (None, Some(_)) => {
                return Err(TokenError::invalid_grant(
                    "code_verifier sent but the authorization request had no code_challenge",
                ));
            }
            (None, None) => {}
        }
        let session = linked.into_iter().next();
        Ok((grant, session))
    }
}

#[cfg(test)]
mod tests {
    use sesame_core::clock::ManualClock;
    use sesame_store::MemoryStore;
    use time::macros::datetime;

    use super::*;

    const CB: &str = "https://app.example.org/oidc/callback";
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    struct Fixture {
        codes: AuthorizationCodes,
        clock: Arc<ManualClock>,
        store: Arc<MemoryStore>,
    }

    fn fixture() -> Fixture {
        let store = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::starting_at(datetime!(2026-03-02 08:00 UTC)));
        Fixture {
            codes: AuthorizationCodes::new(store.clone(), clock.clone()),
            clock,
            store,
        }
    }

    fn grant(challenge: Option<&str>) -> CodeGrant {
        CodeGrant {
            grant_id: "caller-value".to_owned(),
            client_id: "moodle".to_owned(),
            redirect_uri: CB.to_owned(),
            account_id: AccountId::new_random(),
            login: "alice.martin".to_owned(),
            scopes: vec!["openid".to_owned(), "profile".to_owned()],
            nonce: Some("n-1".to_owned()),
            auth_time: datetime!(2026-03-02 07:59 UTC),
            amr: vec!["pwd".to_owned()],
            acr: None,
            session_handle: "handle".to_owned(),
            code_challenge: challenge.map(str::to_owned),
            issued_at: OffsetDateTime::UNIX_EPOCH,
            claims: serde_json::Map::new(),
        }
    }

    fn redemption<'a>(code: &'a str, verifier: Option<&'a str>) -> Redemption<'a> {
        Redemption {
            code,
            client_id: "moodle",
            redirect_uri: Some(CB),
            code_verifier: verifier,
        }
    }

    fn rejected(result: Result<CodeGrant, TokenError>) -> TokenErrorCode {
        match result {
            Err(e @ TokenError::Rejected { .. }) => e.code().unwrap(),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn code_redeems_once_then_reports_reuse_with_the_grant_id() {
        let f = fixture();
        let code = f.codes.issue(grant(Some(CHALLENGE))).await.unwrap();
        assert_eq!(code.len(), CODE_CHARS);
        assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
        let redeemed = f
            .codes
            .redeem(&redemption(&code, Some(VERIFIER)))
            .await
            .unwrap();
        assert_ne!(redeemed.grant_id, "caller-value");
        assert_eq!(redeemed.grant_id.len(), 43);
        assert_eq!(redeemed.issued_at, f.clock.now());
        assert_eq!(redeemed.login, "alice.martin");
        assert_eq!(redeemed.nonce.as_deref(), Some("n-1"));
        for wait in [0, 30, 600] {
            f.clock.advance(time::Duration::seconds(wait));
            match f.codes.redeem(&redemption(&code, Some(VERIFIER))).await {
                Err(e @ TokenError::CodeReused { .. }) => {
                    assert_eq!(e.as_str(), "invalid_grant");
                    let TokenError::CodeReused { grant_id } = e else {
                        unreachable!()
                    };
                    assert_eq!(grant_id, redeemed.grant_id);
                }
                other => panic!("after {wait} s: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_code_brings_its_session_along_and_an_older_code_says_it_does_not() {
        let f = fixture();
        let code = f.codes.issue(grant(None)).await.unwrap();
        f.store
            .put(
                &session_store_key("handle"),
                "the session",
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        let (_, session) = f
            .codes
            .redeem_with_session(&redemption(&code, None))
            .await
            .unwrap();
        assert_eq!(session, Some(Some("the session".to_owned())));
        // Its session ended: read as gone.
        let code = f.codes.issue(grant(None)).await.unwrap();
        f.store.delete(&session_store_key("handle")).await.unwrap();
        let (_, session) = f
            .codes
            .redeem_with_session(&redemption(&code, None))
            .await
            .unwrap();
        assert_eq!(session, Some(None));
        // A code stored before codes were linked to their session: no session read.
        let older = "older0code0stored0before0links";
        let mut g = grant(None);
        g.grant_id = "g-older".to_owned();
        g.issued_at = f.clock.now();
        f.store
            .put(
                &code_key(&random::sha256_hex(older)),
                &serde_json::to_string(&g).unwrap(),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
        let (redeemed, session) = f
            .codes
            .redeem_with_session(&redemption(older, None))
            .await
            .unwrap();
        assert_eq!((redeemed.grant_id.as_str(), session), ("g-older", None));
    }

    #[tokio::test]
    async fn codes_are_hashed_at_rest() {
        let f = fixture();
        let code = f.codes.issue(grant(None)).await.unwrap();
        assert!(f
            .store
            .get(&format!("oidc:code:{code}"))
            .await
            .unwrap()
            .is_none());
        let raw = f
            .store
            .get(&format!("oidc:code:{}", random::sha256_hex(&code)))
            .await
            .unwrap()
            .unwrap();
        assert!(!raw.contains(&code));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 8)]
    async fn fifty_concurrent_redemptions_succeed_once() {
        let f = fixture();
        let code = f.codes.issue(grant(Some(CHALLENGE))).await.unwrap();
        let codes = Arc::new(f.codes.clone());
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let codes = codes.clone();
            let code = code.clone();
            tasks.push(tokio::spawn(async move {
                codes.redeem(&redemption(&code, Some(VERIFIER))).await
            }));
        }
        let (mut successes, mut reused) = (0, 0);
        let mut grant_id = None;
        for task in tasks {
            match task.await.unwrap() {
                Ok(g) => {
                    successes += 1;
                    grant_id = Some(g.grant_id);
                }
                Err(TokenError::CodeReused { grant_id: id }) => {
                    reused += 1;
                    assert_eq!(id.len(), 43);
                }
                Err(e) => assert_eq!(e.code(), Some(TokenErrorCode::InvalidGrant), "{e}"),
            }
        }
        assert_eq!(successes, 1);
        assert!(grant_id.is_some());
        // The losers that ran after the winner's marker report reuse; the others, plain
        // invalid_grant. Either way, only one set of tokens can exist.
        assert!(reused < 50);
    }

    #[tokio::test]
    async fn a30_code_expires_after_sixty_seconds() {
        let f = fixture();
        let at_limit = f.codes.issue(grant(None)).await.unwrap();
        let past_limit = f.codes.issue(grant(None)).await.unwrap();
        f.clock.advance(time::Duration::seconds(60));
        assert!(f.codes.redeem(&redemption(&at_limit, None)).await.is_ok());
        f.clock.advance(time::Duration::milliseconds(1));
        assert_eq!(
            rejected(f.codes.redeem(&redemption(&past_limit, None)).await),
            TokenErrorCode::InvalidGrant
        );
    }

    #[tokio::test]
    async fn a24_missing_or_wrong_verifier_is_invalid_grant_and_burns_the_code() {
        let f = fixture();
        let wrong = format!("{}A", &VERIFIER[..42]);
        for verifier in [None, Some(wrong.as_str()), Some(CHALLENGE), Some("short")] {
            let code = f.codes.issue(grant(Some(CHALLENGE))).await.unwrap();
            assert_eq!(
                rejected(f.codes.redeem(&redemption(&code, verifier)).await),
                TokenErrorCode::InvalidGrant,
                "{verifier:?}"
            );
            // Burned: the right verifier no longer helps.
            assert!(matches!(
                f.codes.redeem(&redemption(&code, Some(VERIFIER))).await,
                Err(TokenError::CodeReused { .. })
            ));
        }
    }

    #[tokio::test]
    async fn a25_verifier_without_challenge_is_a_downgrade() {
        let f = fixture();
        let code = f.codes.issue(grant(None)).await.unwrap();
        assert_eq!(
            rejected(f.codes.redeem(&redemption(&code, Some(VERIFIER))).await),
            TokenErrorCode::InvalidGrant
        );
    }

    #[tokio::test]
    async fn a28_code_of_another_client_is_invalid_grant() {
        let f = fixture();
        let code = f.codes.issue(grant(None)).await.unwrap();
        let other = Redemption {
            client_id: "evil",
            ..redemption(&code, None)
        };
        assert_eq!(
            rejected(f.codes.redeem(&other).await),
            TokenErrorCode::InvalidGrant
        );
        // The legitimate client then learns the code was taken.
        assert!(matches!(
            f.codes.redeem(&redemption(&code, None)).await,
            Err(TokenError::CodeReused { .. })
        ));
    }

    #[tokio::test]
    async fn a29_redirect_uri_must_be_sent_and_identical() {
        let f = fixture();
        for uri in [
            None,
            Some("https://app.example.org/oidc/callback/"),
            Some(""),
        ] {
            let code = f.codes.issue(grant(None)).await.unwrap();
            let r = Redemption {
                redirect_uri: uri,
                ..redemption(&code, None)
            };
            assert_eq!(
                rejected(f.codes.redeem(&r).await),
                TokenErrorCode::InvalidGrant,
                "{uri:?}"
            );
        }
    }

    #[tokio::test]
    async fn a27_fake_codes_are_invalid_grant() {
        let f = fixture();
        for fake in [
            String::new(),
            "x".repeat(MAX_CODE_CHARS + 1),
            "abc def".to_owned(),
            "abc%00".to_owned(),
            random::alphanumeric(CODE_CHARS),
        ] {
            assert_eq!(
                rejected(f.codes.redeem(&redemption(&fake, None)).await),
                TokenErrorCode::InvalidGrant
            );
        }
        for _ in 0..1000 {
            assert_eq!(
                rejected(
                    f.codes
                        .redeem(&redemption(&random::alphanumeric(CODE_CHARS), None))
                        .await
                ),
                TokenErrorCode::InvalidGrant
            );
        }
    }

    #[test]
    fn error_codes_are_spelled_as_rfc_6749() {
        let all = [
            (TokenErrorCode::InvalidRequest, "invalid_request"),
            (TokenErrorCode::InvalidClient, "invalid_client"),
            (TokenErrorCode::InvalidGrant, "invalid_grant"),
            (TokenErrorCode::UnauthorizedClient, "unauthorized_client"),
            (
                TokenErrorCode::UnsupportedGrantType,
                "unsupported_grant_type",
            ),
            (TokenErrorCode::InvalidScope, "invalid_scope"),
        ];
        for (code, name) in all {
            assert_eq!(code.as_str(), name);
            assert_eq!(code.to_string(), name);
        }
        let store = TokenError::Store(StoreError::Unavailable("down".to_owned()));
        assert_eq!(store.code(), None);
        assert_eq!(store.as_str(), "server_error");
    }
}
