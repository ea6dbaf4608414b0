//! The SAML end of the pipeline (Web Browser SSO profile, SAML 2.0 profiles §4.1): an
//! `AuthnRequest` checked, then answered from the session, or parked while the person logs in
//! and completed by the login made for it.
//!
//! Checks before anything is sent anywhere (security spec A80–A85): the issuer is a
//! registered service provider (exact entity ID); its signature, if it signs, verifies with
//! its metadata's keys; the `Destination`, if any, is this SSO endpoint; the request is
//! recent; its ID was not seen before from that SP; the consumer service is one of the SP's
//! metadata with the POST binding. A request failing them gets an
//! error page and no redirect. A request that passes but cannot be satisfied (`IsPassive`
//! without a session, a `NameID` format or an authentication context Sesame does not issue)
//! gets a signed failure status posted to the SP, as the profile says.
//!
//! Parked requests live in the store for 30 minutes under a random id; the login URL
//! (`/cas/login?saml=…`) carries that id. The SSO cookie is `SameSite=Lax`, so a request
//! posted by an SP's page arrives without it: it is parked and the browser goes to the login
//! URL, whose top-level GET carries the cookie, and an open session answers there.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use sesame_core::account::{Account, AccountProfile};
use sesame_core::i18n::Lang;
use sesame_core::login::methods::Assurance;
use sesame_core::login::requirement::{AuthnRequirement, Verdict};
use sesame_core::login::transaction::Continuation;
use sesame_core::random;
use sesame_core::session::{session_handle, SsoSession};
use sesame_protocol::issuer::{IssueError, Issuer, IssuingSession};
use sesame_protocol::saml::issuer::{
    needs_profile, GarRelease, IssuedAssertion, SamlIssuer, SamlRequest,
    PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA,
};
use sesame_protocol::saml::providers::{NameIdFormat, SamlServiceProvider};
use sesame_protocol::saml::redirect_signature::{self, RedirectSignature};
use sesame_protocol::saml::request::{post_xml, redirect_xml, AuthnRequest};
use sesame_protocol::saml::verify::verify_signed_message;
use sesame_protocol::saml::{SpMessage, BINDING_POST, STATUS_REQUESTER, STATUS_RESPONDER};

use super::issue::browser_response;
use super::step_up;
use crate::services::SamlServices;
use crate::web::AppState;

/// How long a parked request waits for the person.
const PENDING_TTL: Duration = Duration::from_secs(30 * 60);
/// How long a request ID is remembered against replay: longer than a request is accepted.
const SEEN_TTL: Duration = Duration::from_secs(20 * 60);
/// How old a request may be (its `IssueInstant`) when it arrives.
const MAX_REQUEST_AGE: time::Duration = time::Duration::minutes(10);
/// How far ahead of our clock a request's `IssueInstant` may be.
const CLOCK_SKEW: time::Duration = time::Duration::minutes(3);
/// Longest `RelayState` given back (SAML 2.0 bindings §3.4.3, §3.5.3: 80 bytes).
pub(crate) const MAX_RELAY_STATE: usize = 80;

/// Second-level status codes (SAML 2.0 core §3.2.2.2).
const NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
const INVALID_NAME_ID_POLICY: &str = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy";
const NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";

/// A request waiting for the person, as parked.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    /// The SP's entity ID.
    sp: String,
    /// The request's ID (`InResponseTo`); `None` for an unsolicited login.
    request_id: Option<String>,
    /// Where the response goes (one of the SP's metadata, checked when parked).
    consumer_url: String,
    relay_state: Option<String>,
    force_authn: bool,
    /// The `NameID` format to issue.
    persistent: bool,
    /// REFEDS MFA was asked.
    mfa: bool,
}

/// How a request arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// HTTP-Redirect: `SAMLRequest` is base64 of DEFLATE.
    Redirect,
    /// HTTP-POST: `SAMLRequest` is base64.
    Post,
}

fn pending_key(id: &str) -> String {
    format!("saml:pending:{}", random::sha256_hex(id))
}

fn is_pending_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

pub(crate) fn bad_request(
    state: &AppState,
    req: &HttpRequest,
    why: &dyn std::fmt::Display,
) -> HttpResponse {
    tracing::info!(reason = %why, "SAML request refused");
    let lang = state.lang(req, None);
    state.error_page(
        StatusCode::BAD_REQUEST,
        lang,
        req,
        "saml_bad_request_title",
        "saml_bad_request_text",
    )
}

pub(crate) fn not_found(state: &AppState, req: &HttpRequest) -> HttpResponse {
    let lang = state.lang(req, None);
    state.error_page(
        StatusCode::NOT_FOUND,
        lang,
        req,
        "error_title",
        "saml_bad_request_text",
    )
}

/// A message from an SP as it arrives at `endpoint`: decoded for its binding and read, its SP
/// found by exact entity ID (A80), its signature checked against the SP's metadata keys (A83,
/// A85): a bad one is refused whatever the SP requires, and an SP that signs gets nothing
/// unsigned (over HTTP-POST the signature is inside the XML,
/// `verify::verify_signed_message`); then addressed to `endpoint` (A84) and issued within the
/// accepted window (A82). `Err` is the page to answer.
pub(crate) fn inbound<T: SpMessage>(
    state: &AppState,
    req: &HttpRequest,
    saml: &SamlServices,
    binding: Binding,
    encoded: Option<&str>,
    endpoint: &str,
) -> Result<(T, Arc<SamlServiceProvider>), Box<HttpResponse>> {
    let refuse = |why: &dyn std::fmt::Display| Box::new(bad_request(state, req, why));
    let encoded = encoded.ok_or_else(|| refuse(&"no SAMLRequest"))?;
    let xml = match binding {
        Binding::Redirect => redirect_xml(encoded),
        Binding::Post => post_xml(encoded),
    }
    .map_err(|e| refuse(&e))?;
    let message = T::read(&xml).map_err(|e| refuse(&e))?;
    let sp = saml
        .providers
        .get(message.issuer())
        .ok_or_else(|| refuse(&format!("unknown service provider {:?}", message.issuer())))?;
    let signature = match binding {
        Binding::Redirect => {
            redirect_signature::verify(req.query_string(), &sp.metadata.signing_certificates)
        }
        Binding::Post => verify_signed_message(&xml, &sp.metadata.signing_certificates),
    }
    .map_err(|e| refuse(&e))?;
    if sp.require_signed_requests && signature != RedirectSignature::Verified {
        return Err(refuse(
            &"the service provider signs its requests: an unsigned one is refused",
        ));
    }
    if message.destination().is_some_and(|d| d != endpoint) {
        return Err(refuse(&"Destination is not this endpoint"));
    }
    let now = state.services.clock.now();
    let issued = message.issue_instant();
    if issued < now - MAX_REQUEST_AGE || issued > now + CLOCK_SKEW {
        return Err(refuse(&"IssueInstant outside the accepted window"));
    }
    Ok((message, sp))
}

/// The SSO endpoint's URL.
pub fn sso_url(state: &AppState) -> String {
    format!("{}/saml/sso", state.base())
}

/// The single logout endpoint's URL.
pub fn slo_url(state: &AppState) -> String {
    format!("{}/saml/slo", state.base())
}

/// An `AuthnRequest` as it arrives (`GET|POST /saml/sso`): `SAMLRequest`, `RelayState`; for
/// the Redirect binding the raw query string carries its signature, if any. `session` is
/// this browser's, with its account, if it has one.
pub async fn start(
    state: &AppState,
    req: &HttpRequest,
    binding: Binding,
    saml_request: Option<&str>,
    relay_state: Option<&str>,
    session: Option<(String, SsoSession, Account)>,
) -> HttpResponse {
    let Some(saml) = &state.services.saml else {
        return not_found(state, req);
    };
    let (request, sp) =
        match inbound::<AuthnRequest>(state, req, saml, binding, saml_request, &sso_url(state)) {
            Ok(found) => found,
            Err(page) => return *page,
        };
    if request
        .protocol_binding
        .as_deref()
        .is_some_and(|b| b != BINDING_POST)
    {
        return bad_request(
            state,
            req,
            &"only the HTTP-POST binding is offered for responses",
        );
    }
    let consumer = match sp
        .metadata
        .consumer_for(request.consumer_url.as_deref(), request.consumer_index)
    {
        Ok(c) => c.location.clone(),
        Err(e) => return bad_request(state, req, &e),
    };
    let relay_state = relay_state.map(str::to_owned);
    if relay_state
        .as_deref()
        .is_some_and(|r| r.len() > MAX_RELAY_STATE)
    {
        return bad_request(state, req, &"RelayState beyond 80 bytes");
    }
    // One use per request ID and SP: a request captured and played again gets nothing.
    let seen = format!(
        "saml:seen:{}",
        random::sha256_hex(&format!("{}\n{}", sp.metadata.entity_id, request.id))
    );
    match state.services.store.put_new(&seen, "1", SEEN_TTL).await {
        Ok(true) => {}
        Ok(false) => return bad_request(state, req, &"request ID already used"),
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while checking a SAML request");
            return state.unavailable(req, state.lang(req, None));
        }
    }
    let mut pending = Pending {
        sp: sp.metadata.entity_id.clone(),
        request_id: Some(request.id.clone()),
        consumer_url: consumer,
        relay_state,
        force_authn: request.force_authn,
        persistent: sp.name_id_format == NameIdFormat::Persistent,
        mfa: false,
    };
    // From here on, what cannot be satisfied is said to the SP in a signed response.
    match request
        .name_id_format
        .as_deref()
        .map(NameIdFormat::from_uri)
    {
        None | Some(Some(None)) => {}
        Some(Some(Some(format))) => pending.persistent = format == NameIdFormat::Persistent,
        Some(None) => {
            return refuse(
                state,
                req,
                saml,
                &sp,
                &pending,
                STATUS_REQUESTER,
                INVALID_NAME_ID_POLICY,
            )
        }
    }
    if !request.requested_contexts.is_empty() {
        let known = [PASSWORD_PROTECTED_TRANSPORT, REFEDS_MFA];
        if !request
            .requested_contexts
            .iter()
            .any(|c| known.contains(&c.as_str()))
        {
            return refuse(
                state,
                req,
                saml,
                &sp,
                &pending,
                STATUS_RESPONDER,
                NO_AUTHN_CONTEXT,
            );
        }
        // Every class asked is acceptable ("exact" by default): MFA only when nothing less is.
        pending.mfa = request.requested_contexts.iter().all(|c| c == REFEDS_MFA);
    }
    proceed(state, req, saml, &sp, &pending, session, request.is_passive).await
}

/// Answers a checked request (or an unsolicited login): from `session` when it suffices, else
/// after a login or a step-up, for which the request is parked; `IsPassive` never shows a page.
async fn proceed(
    state: &AppState,
    req: &HttpRequest,
    saml: &SamlServices,
    sp: &SamlServiceProvider,
    pending: &Pending,
    session: Option<(String, SsoSession, Account)>,
    is_passive: bool,
) -> HttpResponse {
    let session = session.filter(|_| !pending.force_authn);
    if let Some((cookie, session, account)) = session {
        match verdict(state, pending, &session, &account, false).await {
            Verdict::Satisfied => {
                return issue(
                    state, req, saml, sp, pending, &cookie, &session, &account, false,
                )
                .await
            }
            Verdict::StepUp if !is_passive => {
                let Ok(id) = park(state, pending).await else {
                    return state.unavailable(req, state.lang(req, None));
                };
                let lang = state.lang(req, None);
                return step_up::step_up(
                    state,
                    req,
                    lang,
                    &session,
                    Continuation::Saml { request_id: id },
                )
                .await;
            }
            _ => {}
        }
    }
    if is_passive {
        return refuse(state, req, saml, sp, pending, STATUS_RESPONDER, NO_PASSIVE);
    }
    let Ok(id) = park(state, pending).await else {
        return state.unavailable(req, state.lang(req, None));
    };
    let mut login = format!("{}/cas/login?saml={id}", state.base());
    if pending.force_authn {
        login.push_str("&renew=true");
    }
    HttpResponse::SeeOther()
        .insert_header(("Location", login))
        .finish()
}

/// An unsolicited login (IdP-initiated; Shibboleth's `providerId`, `shire`, `target`): the
/// person is sent, logged in if need be, to the SP `provider_id` with an assertion answering
/// no request. Only for SPs that allow it (`allow_unsolicited`); the consumer service is one
/// of the SP's metadata (`shire`, else its default); `target` is the `RelayState`.
pub async fn unsolicited(
    state: &AppState,
    req: &HttpRequest,
    provider_id: Option<&str>,
    shire: Option<&str>,
    target: Option<&str>,
    session: Option<(String, SsoSession, Account)>,
) -> HttpResponse {
    let Some(saml) = &state.services.saml else {
        return not_found(state, req);
    };
    let Some(sp) = provider_id.and_then(|id| saml.providers.get(id)) else {
        return bad_request(state, req, &"unknown service provider");
    };
    if !sp.allow_unsolicited {
        return bad_request(
            state,
            req,
            &"this service provider does not accept unsolicited logins",
        );
    }
    let consumer = match sp.metadata.consumer_for(shire, None) {
        Ok(c) => c.location.clone(),
        Err(e) => return bad_request(state, req, &e),
    };
    if target.is_some_and(|t| t.len() > MAX_RELAY_STATE) {
        return bad_request(state, req, &"target beyond 80 bytes");
    }
    let pending = Pending {
        sp: sp.metadata.entity_id.clone(),
        request_id: None,
        consumer_url: consumer,
        relay_state: target.map(str::to_owned),
        force_authn: false,
        persistent: sp.name_id_format == NameIdFormat::Persistent,
        mfa: false,
    };
    proceed(state, req, saml, &sp, &pending, session, false).await
}

/// Whether `session` may answer `pending` without the person (`fresh`: it was opened by a
/// login made for it, which is the fresh one `ForceAuthn` asks for).
async fn verdict(
    state: &AppState,
    pending: &Pending,
    session: &SsoSession,
    account: &Account,
    fresh: bool,
) -> Verdict {
    let mfa = pending.mfa || step_up::policy_requires_mfa(state, account).await;
    let requirement = AuthnRequirement {
        fresh: pending.force_authn,
        assurance: mfa.then_some(Assurance::MultiFactor),
        ..AuthnRequirement::any()
    };
    let requirement = if fresh {
        requirement.after_fresh_login()
    } else {
        requirement
    };
    requirement.evaluate(&session.methods, state.services.clock.now())
}

async fn park(state: &AppState, pending: &Pending) -> Result<String, ()> {
    let id = random::alphanumeric(43);
    let raw = serde_json::to_string(pending).map_err(|_| ())?;
    state
        .services
        .store
        .put(&pending_key(&id), &raw, PENDING_TTL)
        .await
        .map_err(|e| tracing::error!(error = %e, "could not park a SAML request"))?;
    Ok(id)
}

/// The parked request `id` (taken: a request is answered once).
async fn take_pending(state: &AppState, id: &str) -> Result<Option<Pending>, ()> {
    if !is_pending_id(id) {
        return Ok(None);
    }
    match state.services.store.take(&pending_key(id)).await {
        Ok(Some(raw)) => Ok(serde_json::from_str(&raw).ok()),
        Ok(None) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while reading a SAML request");
            Err(())
        }
    }
}

/// The name of the SP the parked request `id` is for, for the login page.
pub(crate) async fn display_name(state: &AppState, id: &str) -> Option<String> {
    let saml = state.services.saml.as_ref()?;
    if !is_pending_id(id) {
        return None;
    }
    let raw = state.services.store.get(&pending_key(id)).await.ok()??;
    let pending: Pending = serde_json::from_str(&raw).ok()?;
    saml.providers.get(&pending.sp).map(|sp| sp.name.clone())
}

fn request_of<'a>(
    pending: &'a Pending,
    sp: &'a SamlServiceProvider,
    account: &'a Account,
    profile: Option<&'a AccountProfile>,
) -> SamlRequest<'a> {
    SamlRequest {
        sp,
        consumer_url: &pending.consumer_url,
        in_response_to: pending.request_id.as_deref(),
        relay_state: pending.relay_state.as_deref(),
        name_id_format: if pending.persistent {
            NameIdFormat::Persistent
        } else {
            NameIdFormat::Transient
        },
        account,
        profile,
    }
}

fn issuer<'a>(
    state: &AppState,
    saml: &'a SamlServices,
    keys: &'a sesame_protocol::saml::key_store::SamlKeySet,
) -> SamlIssuer<'a> {
    SamlIssuer {
        entity_id: &saml.entity_id,
        scope: &saml.scope,
        keys,
        pairwise_salt: &saml.pairwise_salt,
        entitlements: &saml.entitlements,
        assurance: &saml.assurance,
        establishment: &saml.establishment,
        gar: GarRelease {
            ent_id: &saml.gar_ent_id,
            person_identifier: saml.gar_person_identifier,
        },
        now: state.services.clock.now(),
    }
}

/// A signed failure status posted to the SP.
fn refuse(
    state: &AppState,
    req: &HttpRequest,
    saml: &SamlServices,
    sp: &SamlServiceProvider,
    pending: &Pending,
    status: &str,
    sub_status: &str,
) -> HttpResponse {
    tracing::info!(sp = %sp.metadata.entity_id, status = sub_status, "SAML request answered with a failure");
    let keys = saml.keys.key_set();
    let lang = state.lang(req, None);
    match issuer(state, saml, &keys).refuse(
        &sp.name,
        &pending.consumer_url,
        pending.request_id.as_deref(),
        pending.relay_state.as_deref(),
        status,
        sub_status,
    ) {
        Ok(response) => browser_response(state, req, lang, response, false),
        Err(e) => {
            tracing::error!(error = %e, "could not sign a SAML response");
            state.unavailable(req, lang)
        }
    }
}

/// The assertion for `pending` from `session`, recorded against the session.
#[expect(
    clippy::too_many_arguments,
    reason = "the request, the SP, and the session it is answered from"
)]
async fn issue(
    state: &AppState,
    req: &HttpRequest,
    saml: &SamlServices,
    sp: &SamlServiceProvider,
    pending: &Pending,
    cookie: &str,
    session: &SsoSession,
    account: &Account,
    after_post: bool,
) -> HttpResponse {
    let lang = state.lang(req, None);
    let handle = session_handle(cookie);
    let keys = saml.keys.key_set();
    let issuing = IssuingSession {
        handle: &handle,
        session,
        from_new_login: after_post,
        sessions: Some(&state.services.sessions),
    };
    let issuer = issuer(state, saml, &keys);
    // Only the SPs released attributes of the profile cost a read of it.
    let profile = if needs_profile(&sp.attributes, &issuer.gar) {
        match state.services.profiles.find_with_profile(account.id).await {
            Ok(found) => found.map(|f| f.profile),
            Err(e) => {
                tracing::error!(error = %e, "could not read the profile for a SAML assertion");
                return state.unavailable(req, lang);
            }
        }
    } else {
        None
    };
    let issued = match issuer
        .issue(issuing, request_of(pending, sp, account, profile.as_ref()))
        .await
    {
        Ok(i) => i,
        Err(e @ IssueError::Signing(_)) => {
            tracing::error!(error = %e, "could not sign a SAML assertion");
            return state.unavailable(req, lang);
        }
        Err(e) => {
            tracing::error!(error = %e, "could not issue a SAML assertion");
            return state.unavailable(req, lang);
        }
    };
    if let Some(item) = &issued.attachment {
        if let Err(e) = state.services.sessions.attach(&handle, session, item).await {
            tracing::error!(error = %e, "could not record a SAML service provider for single logout");
            return state.unavailable(req, lang);
        }
        if let Err(()) = index_for_logout(state, sp, item, session, &handle).await {
            return state.unavailable(req, lang);
        }
    }
    tracing::debug!(sp = %sp.metadata.entity_id, user.login = ?session.login.as_str(), "SAML assertion issued");
    browser_response(state, req, lang, issued.response, after_post)
}

/// Where an SP's logout request finds the session it names: under the SP and the
/// `SessionIndex` it was given, the account, the session's handle and the `NameID` given.
/// (A request posted by the SP's page arrives without the SSO cookie, `SameSite=Lax`.)
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LogoutIndex {
    pub(crate) account: sesame_core::ids::AccountId,
    pub(crate) login: String,
    pub(crate) handle: String,
    pub(crate) name_id: String,
}

pub(crate) fn logout_index_key(sp: &str, session_index: &str) -> String {
    format!(
        "saml:logout:{}",
        random::sha256_hex(&format!("{sp}\n{session_index}"))
    )
}

async fn index_for_logout(
    state: &AppState,
    sp: &SamlServiceProvider,
    attachment: &sesame_core::session::Attachment,
    session: &SsoSession,
    handle: &str,
) -> Result<(), ()> {
    let Ok(given) = serde_json::from_str::<IssuedAssertion>(&attachment.payload) else {
        return Err(());
    };
    let record = LogoutIndex {
        account: session.account_id,
        login: session.login.as_str().to_owned(),
        handle: handle.to_owned(),
        name_id: given.name_id,
    };
    let now = state.services.clock.now();
    let ttl = Duration::from_secs(
        u64::try_from((session.expires_at - now).whole_seconds())
            .unwrap_or(0)
            .max(60),
    );
    let raw = serde_json::to_string(&record).map_err(|_| ())?;
    state
        .services
        .store
        .put(
            &logout_index_key(&sp.metadata.entity_id, &given.session_index),
            &raw,
            ttl,
        )
        .await
        .map_err(|e| tracing::error!(error = %e, "could not record a SAML session for logout"))
}

/// Completes the parked request `id` with `session`: the one a login made for it has just
/// opened (`fresh`), or this browser's (the request was posted without the cookie, or is
/// answered in another tab). A request gone (expired, answered) gets the expired page.
#[expect(
    clippy::too_many_arguments,
    reason = "the parked request, and the session and account it is answered from"
)]
pub(crate) async fn complete(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    id: &str,
    cookie: &str,
    session: &SsoSession,
    account: &Account,
    fresh: bool,
) -> HttpResponse {
    let Some(saml) = &state.services.saml else {
        return not_found(state, req);
    };
    let pending = match take_pending(state, id).await {
        Ok(Some(p)) => p,
        Ok(None) => return super::transaction::expired(state, req, lang),
        Err(()) => return state.unavailable(req, lang),
    };
    // The registry may have changed while the person was logging in.
    let Some(sp) = saml.providers.get(&pending.sp) else {
        return bad_request(state, req, &"service provider no longer registered");
    };
    match verdict(state, &pending, session, account, fresh).await {
        Verdict::Satisfied => {
            issue(
                state, req, saml, &sp, &pending, cookie, session, account, fresh,
            )
            .await
        }
        // Asked for a second factor the person could not give (none enrolled): the SP is
        // told, and decides.
        _ if fresh => refuse(
            state,
            req,
            saml,
            &sp,
            &pending,
            STATUS_RESPONDER,
            NO_AUTHN_CONTEXT,
        ),
        Verdict::StepUp => {
            let Ok(id) = park(state, &pending).await else {
                return state.unavailable(req, lang);
            };
            step_up::step_up(
                state,
                req,
                lang,
                session,
                Continuation::Saml { request_id: id },
            )
            .await
        }
        Verdict::Login => {
            let Ok(id) = park(state, &pending).await else {
                return state.unavailable(req, lang);
            };
            HttpResponse::SeeOther()
                .insert_header((
                    "Location",
                    format!("{}/cas/login?saml={id}&renew=true", state.base()),
                ))
                .finish()
        }
    }
}
