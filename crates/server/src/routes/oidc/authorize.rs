//! `GET|POST /authorize`, its return from the login page (`/authorize/continue`) and the
//! consent form (`POST /authorize/consent`).
//!
//! A request that needs the person (no session, `prompt=login`, `max_age` passed, consent
//! missing) is parked in the store under a random id for 30 minutes; the login page and the
//! consent form carry that id, and the request is parsed and checked again when it resumes.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::i18n::Lang;
use sesame_core::ports::Consent;
use sesame_core::random;
use sesame_core::session::{session_handle, SsoSession};
use sesame_protocol::oidc::authorize::{AuthorizationRequest, AuthorizeError, AuthorizeErrorCode};
use sesame_protocol::oidc::clients::OidcClient;
use sesame_protocol::oidc::codes::CodeGrant;
use sesame_protocol::oidc::tokens::released_claims;
use sesame_protocol::oidc::OPENID_SCOPE;

use super::FormParams;
use crate::oidc_flow::OidcAttachment;
use crate::routes::login::current_session;
use crate::web::csrf::FormPurpose;
use crate::web::AppState;

/// How long a parked request waits for the person.
const PENDING_TTL: Duration = Duration::from_secs(30 * 60);

/// A parked authorization request.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    params: Vec<(String, String)>,
    /// When the request first arrived (unix seconds), for `max_age`.
    requested_at: i64,
    /// The session opened by a login made for this request (its handle): what satisfies
    /// `prompt=login`. Timestamps in whole seconds could not tell a login made just before
    /// the request from one made for it.
    #[serde(default)]
    fresh_login: Option<String>,
}

fn pending_key(id: &str) -> String {
    format!("oidc:pending:{}", random::sha256_hex(id))
}

/// Whether `id` has the shape of a parked-request id (so junk costs no store round trip).
pub fn is_pending_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// What the login page shows for a parked request: the client's name, and the
/// `login_hint` to prefill the login field with.
pub async fn pending_display(state: &AppState, id: &str) -> Option<(String, Option<String>)> {
    if !is_pending_id(id) {
        return None;
    }
    let raw = state.services.store.get(&pending_key(id)).await.ok()??;
    let pending: Pending = serde_json::from_str(&raw).ok()?;
    let param = |name: &str| {
        pending
            .params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let client = state.services.oidc.clients.get(param("client_id")?)?;
    let hint = param("login_hint")
        .filter(|h| h.chars().count() <= 256 && !h.chars().any(char::is_control))
        .map(str::to_owned);
    Some((client.name.clone(), hint))
}

/// `GET /authorize`
pub async fn authorize_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let params = FormParams::parse(req.query_string().as_bytes());
    start(&state, &req, params.pairs().to_vec()).await
}

/// `POST /authorize` (OpenID Connect Core §3.1.2.1: form-encoded body).
pub async fn authorize_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let params = FormParams::parse(&body);
    start(&state, &req, params.pairs().to_vec()).await
}

fn request_lang(state: &AppState, req: &HttpRequest, request: &AuthorizationRequest) -> Lang {
    let explicit = request
        .ui_locales
        .iter()
        .find_map(|l| Lang::from_tag(l).map(|_| l.as_str()));
    state.lang(req, explicit)
}

/// Parses a request; answers the error page or error redirect when it is invalid.
fn parse(
    state: &AppState,
    req: &HttpRequest,
    params: &[(String, String)],
) -> Result<AuthorizationRequest, Box<HttpResponse>> {
    match AuthorizationRequest::parse(params, &state.services.oidc.clients) {
        Ok(r) => Ok(r),
        Err(AuthorizeError::NoRedirect(e)) => {
            // The client or its redirect URI cannot be trusted: an error page, no redirect.
            tracing::info!(reason = %e, "authorization request refused");
            let lang = state.lang(req, None);
            Err(Box::new(state.error_page(
                StatusCode::BAD_REQUEST,
                lang,
                req,
                "oidc_bad_request_title",
                "oidc_bad_request_text",
            )))
        }
        Err(AuthorizeError::Redirect(e)) => {
            tracing::info!(error = e.error.as_str(), "authorization request refused");
            Err(Box::new(found(&e.redirect_url(state.base()))))
        }
    }
}

fn found(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", location.to_owned()))
        .finish()
}

async fn start(state: &AppState, req: &HttpRequest, params: Vec<(String, String)>) -> HttpResponse {
    let request = match parse(state, req, &params) {
        Ok(r) => r,
        Err(res) => return *res,
    };
    let requested_at = state.services.clock.now().unix_timestamp();
    proceed(state, req, &request, params, requested_at, None, None).await
}

/// Records that the session `handle` was opened by a login made for parked request `id`.
pub async fn note_fresh_login(state: &AppState, id: &str, handle: &str) {
    let Ok(Some(mut pending)) = load_pending(state, id).await else {
        return;
    };
    pending.fresh_login = Some(handle.to_owned());
    match serde_json::to_string(&pending) {
        Ok(raw) => {
            if let Err(e) = state
                .services
                .store
                .put(&pending_key(id), &raw, PENDING_TTL)
                .await
            {
                tracing::warn!(error = %e, "could not note a login on a parked authorization request");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not encode a parked authorization request"),
    }
}

/// Whether the session may answer this request without asking for credentials again.
fn session_suffices(
    state: &AppState,
    request: &AuthorizationRequest,
    session: &SsoSession,
    cookie: &str,
    fresh_login: Option<&str>,
) -> bool {
    if request.prompt.login
        && !fresh_login.is_some_and(|f| random::constant_time_eq(f, &session_handle(cookie)))
    {
        return false;
    }
    let authenticated_at = session.authenticated_at.unix_timestamp();
    if let Some(max_age) = request.max_age {
        let age = state.services.clock.now().unix_timestamp() - authenticated_at;
        if u64::try_from(age).unwrap_or(0) > max_age {
            return false;
        }
    }
    true
}

async fn park(
    state: &AppState,
    params: Vec<(String, String)>,
    requested_at: i64,
    existing: Option<&str>,
) -> Result<String, ()> {
    let id = existing.map_or_else(|| random::alphanumeric(43), str::to_owned);
    // A parked request waits for a new login: any earlier one no longer counts.
    let raw = serde_json::to_string(&Pending {
        params,
        requested_at,
        fresh_login: None,
    })
    .map_err(|_| ())?;
    state
        .services
        .store
        .put(&pending_key(&id), &raw, PENDING_TTL)
        .await
        .map_err(|e| tracing::error!(error = %e, "could not park an authorization request"))?;
    Ok(id)
}

async fn proceed(
    state: &AppState,
    req: &HttpRequest,
    request: &AuthorizationRequest,
    params: Vec<(String, String)>,
    requested_at: i64,
    pending_id: Option<&str>,
    fresh_login: Option<&str>,
) -> HttpResponse {
    let lang = request_lang(state, req, request);
    let session = current_session(state, req).await;
    let usable = session
        .as_ref()
        .filter(|(c, s)| session_suffices(state, request, s, c, fresh_login));
    let Some((cookie, session)) = usable else {
        if request.prompt.none {
            return found(
                &request
                    .error_redirect(AuthorizeErrorCode::LoginRequired, "the person must log in")
                    .redirect_url(state.base()),
            );
        }
        let Ok(id) = park(state, params, requested_at, pending_id).await else {
            return state.unavailable(req, lang);
        };
        let mut login = url::Url::parse(&format!("{}/cas/login", state.base()))
            .unwrap_or_else(|_| unreachable_base());
        {
            let mut q = login.query_pairs_mut();
            q.append_pair("authz", &id);
            if session.is_some() {
                q.append_pair("renew", "true");
            }
            q.append_pair("lang", lang.tag());
        }
        return found(login.as_str());
    };
    let Some(client) = state.services.oidc.clients.get(&request.client_id) else {
        return state.unavailable(req, lang);
    };
    let wanted = consent_scopes(request);
    if !client.first_party {
        let consent = match state
            .services
            .oidc
            .consents
            .find_consent(session.account_id, &client.client_id)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "database unavailable while reading a consent");
                return state.unavailable(req, lang);
            }
        };
        let covered = consent.is_some_and(|c| wanted.iter().all(|s| c.scopes.contains(s)));
        if request.prompt.consent || !covered {
            if request.prompt.none {
                return found(
                    &request
                        .error_redirect(
                            AuthorizeErrorCode::ConsentRequired,
                            "the person must consent",
                        )
                        .redirect_url(state.base()),
                );
            }
            let Ok(id) = park(state, params, requested_at, pending_id).await else {
                return state.unavailable(req, lang);
            };
            return consent_page(state, req, lang, client, &wanted, cookie, &id);
        }
    }
    issue_code(
        state, req, lang, request, client, cookie, session, pending_id,
    )
    .await
}

/// The `url` crate parses our own validated base URL; this is only the type's fallback.
fn unreachable_base() -> url::Url {
    #[expect(clippy::expect_used, reason = "a constant URL")]
    url::Url::parse("http://127.0.0.1/").expect("constant URL")
}

/// Scopes that need consent: all granted ones except `openid`, sorted.
fn consent_scopes(request: &AuthorizationRequest) -> Vec<String> {
    let mut scopes: Vec<String> = request
        .scopes
        .iter()
        .filter(|s| s.as_str() != OPENID_SCOPE)
        .cloned()
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

fn consent_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    client: &OidcClient,
    scopes: &[String],
    cookie: &str,
    pending_id: &str,
) -> HttpResponse {
    let texts = state.renderer.texts(lang);
    let described: Vec<String> = scopes
        .iter()
        .map(|s| {
            texts
                .get(&format!("scope_{s}"))
                .map_or_else(|| s.clone(), |t| t.to_owned())
        })
        .collect();
    state.page(
        StatusCode::OK,
        "consent.html",
        lang,
        req,
        minijinja::context! {
            client_name => client.name,
            scopes => described,
            authz => pending_id,
            csrf => FormPurpose::Consent { pending_id }.token(cookie),
        },
    )
}

#[expect(
    clippy::too_many_arguments,
    reason = "the three paths that end in a code share it"
)]
async fn issue_code(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    request: &AuthorizationRequest,
    client: &OidcClient,
    cookie: &str,
    session: &SsoSession,
    pending_id: Option<&str>,
) -> HttpResponse {
    let account = match state
        .services
        .accounts_repo
        .find_by_id(session.account_id)
        .await
    {
        Ok(Some(a)) => a,
        Ok(None) => {
            return state.error_page(
                StatusCode::FORBIDDEN,
                lang,
                req,
                "error_title",
                "error_disabled",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while issuing a code");
            return state.unavailable(req, lang);
        }
    };
    let handle = session_handle(cookie);
    let grant = CodeGrant {
        grant_id: String::new(),
        client_id: client.client_id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        account_id: session.account_id,
        login: session.login.to_string(),
        scopes: request.scopes.clone(),
        nonce: request.nonce.clone(),
        auth_time: session.authenticated_at,
        amr: vec!["pwd".to_owned()],
        acr: None,
        session_handle: handle.clone(),
        code_challenge: request.code_challenge.clone(),
        issued_at: state.services.clock.now(),
        claims: released_claims(&account, &request.scopes, lang.tag()),
    };
    let code = match state.services.oidc.codes.issue(grant).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "could not issue an authorization code");
            return state.unavailable(req, lang);
        }
    };
    let attachment = OidcAttachment::for_client(&client.client_id);
    if let Err(e) = state
        .services
        .sessions
        .attach(&handle, session, &attachment)
        .await
    {
        tracing::error!(error = %e, "could not record a client for logout");
        return state.unavailable(req, lang);
    }
    if let Some(id) = pending_id {
        if let Err(e) = state.services.store.delete(&pending_key(id)).await {
            tracing::warn!(error = %e, "could not delete a parked authorization request");
        }
    }
    tracing::debug!(client.id = %client.client_id, user.login = ?session.login.as_str(), "authorization code issued");
    let location = request.code_redirect(&code, state.base());
    if req.method() == actix_web::http::Method::POST {
        HttpResponse::SeeOther()
            .insert_header(("Location", location))
            .finish()
    } else {
        found(&location)
    }
}

async fn load_pending(state: &AppState, id: &str) -> Result<Option<Pending>, ()> {
    if !is_pending_id(id) {
        return Ok(None);
    }
    match state.services.store.get(&pending_key(id)).await {
        Ok(Some(raw)) => Ok(serde_json::from_str(&raw).ok()),
        Ok(None) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while reading an authorization request");
            Err(())
        }
    }
}

/// Query of `/authorize/continue`.
#[derive(Debug, Deserialize)]
pub struct ContinueQuery {
    authz: Option<String>,
}

fn expired_page(state: &AppState, req: &HttpRequest) -> HttpResponse {
    let lang = state.lang(req, None);
    state.error_page(
        StatusCode::BAD_REQUEST,
        lang,
        req,
        "oidc_expired_title",
        "oidc_expired_text",
    )
}

/// `GET /authorize/continue?authz=…`: back from the login page.
pub async fn resume(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<ContinueQuery>,
) -> HttpResponse {
    let id = query.authz.as_deref().unwrap_or_default();
    let pending = match load_pending(&state, id).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired_page(&state, &req),
        Err(()) => {
            let lang = state.lang(&req, None);
            return state.unavailable(&req, lang);
        }
    };
    let request = match parse(&state, &req, &pending.params) {
        Ok(r) => r,
        Err(res) => return *res,
    };
    proceed(
        &state,
        &req,
        &request,
        pending.params,
        pending.requested_at,
        Some(id),
        pending.fresh_login.as_deref(),
    )
    .await
}

/// The consent form.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    authz: Option<String>,
    csrf: Option<String>,
    decision: Option<String>,
}

/// `POST /authorize/consent`
pub async fn consent(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<ConsentForm>,
) -> HttpResponse {
    let id = form.authz.as_deref().unwrap_or_default();
    let lang = state.lang(&req, None);
    let pending = match load_pending(&state, id).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired_page(&state, &req),
        Err(()) => return state.unavailable(&req, lang),
    };
    let request = match parse(&state, &req, &pending.params) {
        Ok(r) => r,
        Err(res) => return *res,
    };
    let Some((cookie, session)) = current_session(&state, &req).await else {
        // The session ended while the form was shown: log in again, then consent.
        return proceed(
            &state,
            &req,
            &request,
            pending.params,
            pending.requested_at,
            Some(id),
            pending.fresh_login.as_deref(),
        )
        .await;
    };
    let purpose = FormPurpose::Consent { pending_id: id };
    if !purpose.accepts(&cookie, form.csrf.as_deref()) {
        return state.form_expired(&req, lang);
    }
    let Some(client) = state.services.oidc.clients.get(&request.client_id) else {
        return expired_page(&state, &req);
    };
    let now = state.services.clock.now();
    let scopes = consent_scopes(&request);
    let allowed = form.decision.as_deref() == Some("allow");
    let event = AuditEvent::new(
        if allowed {
            AuditKind::ConsentGranted
        } else {
            AuditKind::ConsentRefused
        },
        now,
        "self",
    )
    .login(session.login.as_str())
    .account(session.account_id)
    .ip(state.client_ip(&req))
    .detail(serde_json::json!({ "client_id": client.client_id, "scopes": scopes }));
    if let Err(e) = state.services.audit.record(event).await {
        tracing::error!(error = %e, "could not record a consent decision");
        return state.unavailable(&req, lang);
    }
    if !allowed {
        if let Err(e) = state.services.store.delete(&pending_key(id)).await {
            tracing::warn!(error = %e, "could not delete a parked authorization request");
        }
        return HttpResponse::SeeOther()
            .insert_header((
                "Location",
                request
                    .error_redirect(AuthorizeErrorCode::AccessDenied, "the person refused")
                    .redirect_url(state.base()),
            ))
            .finish();
    }
    let saved = state
        .services
        .oidc
        .consents
        .save_consent(Consent {
            account_id: session.account_id,
            client_id: client.client_id.clone(),
            scopes,
            granted_at: now,
        })
        .await;
    if let Err(e) = saved {
        tracing::error!(error = %e, "could not record a consent");
        return state.unavailable(&req, lang);
    }
    issue_code(
        &state,
        &req,
        lang,
        &request,
        client,
        &cookie,
        &session,
        Some(id),
    )
    .await
}
