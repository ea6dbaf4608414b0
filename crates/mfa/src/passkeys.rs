//! Passkeys and security keys (WebAuthn Level 2/3, ADR 0014): registration on the account
//! page, and the two ways a key opens a login: as the second factor after the password, and
//! alone ("Se connecter avec une clé d'accès"), where the authenticator's user verification
//! (PIN, fingerprint, face) is the second factor.
//!
//! The ceremonies are `webauthn_rp`'s (pure Rust, no OpenSSL): this module keeps their state
//! between the two requests of a ceremony, and the credentials in the database.
//!
//! - Every key is registered as a discoverable credential with user verification required
//!   (`PublicKeyCredentialCreationOptions::passkey`), so the same key serves both ways.
//! - The user handle is the account's identifier (16 bytes, no personal data), so a
//!   passwordless assertion names its account; the credential must then be one of that
//!   account's, and its public key must verify the signature.
//! - A ceremony's state is kept in the ephemeral store for its five minutes, under the
//!   SHA-256 of a random id the page holds, and taken (deleted) by the answer: an answer is
//!   checked once, whichever instance gets it.
//! - The signature counter is enforced (a cloned authenticator whose counter goes back is
//!   refused) when the authenticator keeps one; the counter and flags are saved after each use.
//! - Origin: exactly the public URL's origin; RP ID: its host.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sesame_core::clock::Clock;
use sesame_core::error::{RepoError, StoreError};
use sesame_core::ids::AccountId;
use sesame_core::ports::EphemeralStore;
use sesame_core::random;
use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::auth::AuthenticationVerificationOptions;
use webauthn_rp::request::register::{
    PublicKeyCredentialUserEntity, RegistrationVerificationOptions, UserHandle16,
};
use webauthn_rp::request::{AsciiDomain, DomainOrigin, PublicKeyCredentialDescriptor, RpId};
use webauthn_rp::response::register::{CompressedPubKey, DynamicState, StaticState};
use webauthn_rp::response::{AuthenticatorAttachment, Backup, CredentialId};
use webauthn_rp::{
    AuthenticatedCredential, DiscoverableAuthentication16, DiscoverableAuthenticationServerState,
    DiscoverableCredentialRequestOptions, PublicKeyCredentialCreationOptions, Registration,
    RegistrationServerState,
};

use crate::factors::{clean_label, FactorKind, SecondFactorRecord, SecondFactorRepo};

/// How long a begun ceremony waits for the authenticator's answer (the options' own timeout).
pub const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);

/// A registered key, as stored (beside its [`SecondFactorRecord`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// The credential id, base64url without padding.
    pub credential_id: String,
    /// The factor it belongs to (its name, dates; removing the factor removes the key).
    pub factor_id: String,
    /// Whose key it is.
    pub account_id: AccountId,
    /// The public key and static extensions, as `webauthn_rp` encodes them, base64.
    pub public_key: String,
    /// Signature counter, flags and attachment, as `webauthn_rp` encodes them, base64.
    pub state: String,
}

/// Why a key ceremony failed.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The begun ceremony is unknown, expired or already answered.
    #[error("the key ceremony expired or was already answered")]
    CeremonyExpired,
    /// The authenticator's answer is not valid JSON of the expected shape.
    #[error("malformed authenticator answer: {0}")]
    Malformed(String),
    /// The answer does not verify (signature, challenge, origin, flags, counter).
    #[error("the key's answer was refused: {0}")]
    Refused(String),
    /// The key is not registered, or not to this account.
    #[error("unknown key")]
    UnknownKey,
    /// The key is already registered.
    #[error("this key is already registered")]
    AlreadyRegistered,
    /// The relying party settings are unusable (a public URL without a domain host).
    #[error("passkeys are not available: {0}")]
    NotAvailable(String),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The ephemeral store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A begun ceremony, as the page needs it.
#[derive(Debug, Clone)]
pub struct BegunCeremony {
    /// The ceremony's id (the page's hidden field; single-use).
    pub id: String,
    /// The options for `navigator.credentials.create|get`, in the WebAuthn Level 3 JSON form
    /// (what `PublicKeyCredential.parse*OptionsFromJSON` reads).
    pub options_json: String,
}

/// A key that opened a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLogin {
    /// Whose key.
    pub account_id: AccountId,
    /// The factor (for its last use).
    pub factor_id: String,
    /// Whether the authenticator verified the person (PIN, biometrics): then the key alone
    /// is two factors.
    pub user_verified: bool,
    /// Whether the key may be copied to other devices (a synced passkey: a key kept by
    /// software, `swk`; otherwise a key kept by hardware, `hwk`).
    pub synced: bool,
}

/// Where the keys are used: the public URL.
#[derive(Debug, Clone)]
pub struct RelyingParty {
    rp_id: RpId,
    origin: String,
}

impl RelyingParty {
    /// The relying party of a public URL (`https://sso.univ.example`, or
    /// `http://localhost:8080` in development): RP ID its host, origin its scheme, host and port.
    ///
    /// # Errors
    /// The URL has no domain host (an IP address cannot be an RP ID).
    pub fn from_public_url(public_url: &str) -> Result<Self, PasskeyError> {
        let url = url::Url::parse(public_url)
            .map_err(|e| PasskeyError::NotAvailable(format!("public URL: {e}")))?;
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            _ => {
                return Err(PasskeyError::NotAvailable(
                    "the public URL's host must be a domain name, not an address".to_owned(),
                ))
            }
        };
        let rp_id = RpId::Domain(
            AsciiDomain::try_from(host.clone())
                .map_err(|e| PasskeyError::NotAvailable(format!("RP ID {host}: {e}")))?,
        );
        let origin = url.origin().ascii_serialization();
        Ok(Self { rp_id, origin })
    }

    /// The RP ID (the public URL's host).
    pub fn rp_id(&self) -> &str {
        match &self.rp_id {
            RpId::Domain(d) => d.as_ref(),
            RpId::Url(u) => u.as_ref(),
        }
    }
}

fn ceremony_key(purpose: &str, id: &str) -> String {
    format!("mfa:webauthn:{purpose}:{}", random::sha256_hex(id))
}

fn user_handle(account: AccountId) -> Result<UserHandle16, PasskeyError> {
    UserHandle16::decode(*account.0.as_bytes())
        .map_err(|e| PasskeyError::Malformed(format!("user handle: {e}")))
}

/// The options' timeout: the ceremony's lifetime in the store.
fn ceremony_timeout() -> std::num::NonZeroU32 {
    u32::try_from(CEREMONY_TTL.as_millis())
        .ok()
        .and_then(std::num::NonZeroU32::new)
        .unwrap_or(std::num::NonZeroU32::MIN)
}

type StoredPublicKey = StaticState<CompressedPubKey<[u8; 32], [u8; 32], [u8; 48], Vec<u8>>>;

/// The keys of every account.
#[derive(Debug, Clone)]
pub struct Passkeys {
    repo: Arc<dyn SecondFactorRepo>,
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    rp: Option<RelyingParty>,
}

impl Passkeys {
    /// Keys over these ports, for relying party `rp` (`None`: the public URL cannot carry
    /// keys, e.g. an IP address; nothing can be registered and [`Self::is_enabled`] is false).
    pub fn new(
        repo: Arc<dyn SecondFactorRepo>,
        store: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
        rp: Option<RelyingParty>,
    ) -> Self {
        Self {
            repo,
            store,
            clock,
            rp,
        }
    }

    /// Whether keys can be registered and used here.
    pub fn is_enabled(&self) -> bool {
        self.rp.is_some()
    }

    fn rp(&self) -> Result<&RelyingParty, PasskeyError> {
        self.rp
            .as_ref()
            .ok_or_else(|| PasskeyError::NotAvailable("no relying party".to_owned()))
    }

    /// Whether `account` has at least one key.
    ///
    /// # Errors
    /// The database failed.
    pub async fn has_keys(&self, account: AccountId) -> Result<bool, PasskeyError> {
        Ok(!self.repo.passkeys(account).await?.is_empty())
    }

    /// Begins registering a key for `account` (`login` and `display_name` are what the
    /// authenticator shows in its list of keys).
    ///
    /// # Errors
    /// Not available, or storage failures.
    pub async fn begin_registration(
        &self,
        account: AccountId,
        login: &str,
        display_name: &str,
    ) -> Result<BegunCeremony, PasskeyError> {
        let rp = self.rp()?;
        let handle = user_handle(account)?;
        let existing = self.repo.passkeys(account).await?;
        let mut exclude = Vec::with_capacity(existing.len());
        for key in &existing {
            let bytes = URL_SAFE_NO_PAD
                .decode(&key.credential_id)
                .map_err(|e| PasskeyError::Malformed(format!("stored credential id: {e}")))?;
            exclude.push(PublicKeyCredentialDescriptor {
                id: CredentialId::decode(bytes)
                    .map_err(|e| PasskeyError::Malformed(format!("stored credential id: {e}")))?,
                // No transport hint kept: the browser tries every way to reach the key.
                transports: webauthn_rp::response::AuthTransports::decode(0)
                    .map_err(|e| PasskeyError::Malformed(format!("transports: {e}")))?,
            });
        }
        let name = login
            .try_into()
            .map_err(|e| PasskeyError::Malformed(format!("user name: {e}")))?;
        // A display name the Nickname profile refuses (RFC 8266) falls back to the login.
        let display = display_name.try_into().ok();
        let user = PublicKeyCredentialUserEntity {
            name,
            id: &handle,
            display_name: display,
        };
        let mut options = PublicKeyCredentialCreationOptions::passkey(&rp.rp_id, user, exclude);
        // No credProtect demanded of the authenticator: CTAP 2.0 keys and some platform
        // authenticators lack it, and would fail the registration. What it would protect
        // (a key used without its PIN) is refused here anyway: every login with a key
        // requires user verification, checked on the answer's flags.
        options.extensions.cred_protect = webauthn_rp::request::register::CredProtect::None;
        options.timeout = ceremony_timeout();
        let (server, client) = options
            .start_ceremony()
            .map_err(|e| PasskeyError::NotAvailable(format!("registration options: {e}")))?;
        let options_json = serde_json::to_string(&client)
            .map_err(|e| PasskeyError::Malformed(format!("registration options: {e}")))?;
        let encoded = server
            .encode()
            .map_err(|e| PasskeyError::Malformed(format!("registration state: {e}")))?;
        let id = random::token();
        self.store
            .put(
                &ceremony_key(&format!("reg:{account}"), &id),
                &STANDARD.encode(encoded),
                CEREMONY_TTL,
            )
            .await?;
        Ok(BegunCeremony { id, options_json })
    }

    /// Finishes the registration `id` of `account` with the authenticator's answer
    /// (`credential.toJSON()`): the key becomes a factor named `label`. The ceremony is
    /// consumed whatever the outcome.
    ///
    /// # Errors
    /// [`PasskeyError::CeremonyExpired`], [`PasskeyError::Malformed`],
    /// [`PasskeyError::Refused`], [`PasskeyError::AlreadyRegistered`], storage failures.
    pub async fn finish_registration(
        &self,
        account: AccountId,
        id: &str,
        answer_json: &str,
        label: &str,
    ) -> Result<String, PasskeyError> {
        let rp = self.rp()?;
        let encoded = self
            .store
            .take(&ceremony_key(&format!("reg:{account}"), id))
            .await?
            .ok_or(PasskeyError::CeremonyExpired)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| PasskeyError::CeremonyExpired)?;
        let server = RegistrationServerState::<16>::decode(bytes.as_slice())
            .map_err(|_| PasskeyError::CeremonyExpired)?;
        let registration = Registration::from_json_relaxed(answer_json.as_bytes())
            .map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        let origins = [DomainOrigin::try_from(rp.origin.as_str())
            .map_err(|e| PasskeyError::NotAvailable(format!("origin: {e}")))?];
        let options = RegistrationVerificationOptions::<DomainOrigin<'_, '_>, &str> {
            allowed_origins: &origins,
            ..RegistrationVerificationOptions::default()
        };
        let credential = server
            .verify(&rp.rp_id, &registration, &options)
            .map_err(|e| PasskeyError::Refused(e.to_string()))?;
        let credential_id = URL_SAFE_NO_PAD.encode(credential.id().as_ref());
        if self.repo.passkey(&credential_id).await?.is_some() {
            return Err(PasskeyError::AlreadyRegistered);
        }
        let public_key = STANDARD.encode(
            credential
                .static_state()
                .encode()
                .map_err(|e| PasskeyError::Malformed(format!("public key: {e:?}")))?,
        );
        let state = STANDARD.encode(
            credential
                .dynamic_state()
                .encode()
                .map_err(|e| PasskeyError::Malformed(format!("key state: {e:?}")))?,
        );
        let now = self.clock.now();
        let factor = SecondFactorRecord {
            id: random::token(),
            account_id: account,
            kind: FactorKind::Passkey,
            label: clean_label(label, "Clé d'accès"),
            sealed_secret: String::new(),
            created_at: now,
            last_used_at: None,
        };
        let key = StoredPasskey {
            credential_id,
            factor_id: factor.id.clone(),
            account_id: account,
            public_key,
            state,
        };
        self.repo.add_passkey(&factor, &key).await?;
        Ok(factor.id)
    }

    /// Begins a key login: options for any key of this site (discoverable), user
    /// verification required. `purpose` separates the ceremonies of the login page and of a
    /// login transaction's second-factor step, so an answer meant for one is not taken by the
    /// other.
    ///
    /// # Errors
    /// Not available, or the store failed.
    pub async fn begin_login(&self, purpose: &str) -> Result<BegunCeremony, PasskeyError> {
        let rp = self.rp()?;
        let mut options = DiscoverableCredentialRequestOptions::passkey(&rp.rp_id);
        options.0.timeout = ceremony_timeout();
        let (server, client) = options
            .start_ceremony()
            .map_err(|e| PasskeyError::NotAvailable(format!("request options: {e}")))?;
        let options_json = serde_json::to_string(&client)
            .map_err(|e| PasskeyError::Malformed(format!("request options: {e}")))?;
        let encoded = server
            .encode()
            .map_err(|e| PasskeyError::Malformed(format!("login state: {e}")))?;
        let id = random::token();
        self.store
            .put(
                &ceremony_key(&format!("auth:{purpose}"), &id),
                &STANDARD.encode(encoded),
                CEREMONY_TTL,
            )
            .await?;
        Ok(BegunCeremony { id, options_json })
    }

    /// Checks a key login's answer (`credential.toJSON()`) against the begun ceremony `id`
    /// of `purpose`: the key must be registered, to the account its user handle names, and
    /// its signature must verify. The ceremony is consumed whatever the outcome; the key's
    /// counter and last use are saved.
    ///
    /// # Errors
    /// [`PasskeyError::CeremonyExpired`], [`PasskeyError::Malformed`],
    /// [`PasskeyError::UnknownKey`], [`PasskeyError::Refused`], storage failures.
    pub async fn finish_login(
        &self,
        purpose: &str,
        id: &str,
        answer_json: &str,
    ) -> Result<KeyLogin, PasskeyError> {
        let rp = self.rp()?;
        let encoded = self
            .store
            .take(&ceremony_key(&format!("auth:{purpose}"), id))
            .await?
            .ok_or(PasskeyError::CeremonyExpired)?;
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| PasskeyError::CeremonyExpired)?;
        let server = DiscoverableAuthenticationServerState::decode(bytes.as_slice())
            .map_err(|_| PasskeyError::CeremonyExpired)?;
        let answer = DiscoverableAuthentication16::from_json_relaxed(answer_json.as_bytes())
            .map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        let credential_id = URL_SAFE_NO_PAD.encode(answer.raw_id().as_ref());
        let stored = self
            .repo
            .passkey(&credential_id)
            .await?
            .ok_or(PasskeyError::UnknownKey)?;
        let handle = user_handle(stored.account_id)?;
        let public_key = STANDARD
            .decode(&stored.public_key)
            .map_err(|e| PasskeyError::Malformed(format!("stored public key: {e}")))?;
        let public_key = StoredPublicKey::decode(public_key.as_slice())
            .map_err(|e| PasskeyError::Malformed(format!("stored public key: {e}")))?;
        let state: [u8; 7] = STANDARD
            .decode(&stored.state)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| PasskeyError::Malformed("stored key state".to_owned()))?;
        let state = DynamicState::decode(state)
            .map_err(|e| PasskeyError::Malformed(format!("stored key state: {e}")))?;
        let raw_id = answer.raw_id();
        let mut credential = AuthenticatedCredential::new(raw_id, &handle, public_key, state)
            .map_err(|e| PasskeyError::Malformed(format!("stored key: {e}")))?;
        let origins = [DomainOrigin::try_from(rp.origin.as_str())
            .map_err(|e| PasskeyError::NotAvailable(format!("origin: {e}")))?];
        let options = AuthenticationVerificationOptions::<DomainOrigin<'_, '_>, &str> {
            allowed_origins: &origins,
            update_uv: true,
            ..AuthenticationVerificationOptions::default()
        };
        // A user handle naming another account than the key's is refused by the library
        // (UserHandleMismatch): a key of one account cannot open another.
        server
            .verify(&rp.rp_id, &answer, &mut credential, &options)
            .map_err(|e| PasskeyError::Refused(e.to_string()))?;
        let after = credential.dynamic_state();
        let new_state = STANDARD.encode(
            after
                .encode()
                .map_err(|e| PasskeyError::Malformed(format!("key state: {e:?}")))?,
        );
        let now = self.clock.now();
        self.repo
            .update_passkey(&credential_id, &new_state, now)
            .await?;
        let synced = !matches!(after.backup, Backup::NotEligible)
            && !matches!(
                after.authenticator_attachment,
                AuthenticatorAttachment::CrossPlatform
            );
        Ok(KeyLogin {
            account_id: stored.account_id,
            factor_id: stored.factor_id,
            // The ceremony required verification (the library refuses an answer without it)
            // and `update_uv` copies the answer's flag into the state.
            user_verified: after.user_verified,
            synced,
        })
    }
}
