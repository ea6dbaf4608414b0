//! `GET|POST /authorize`, its return from the login page (`/authorize/continue`) and the
//! consent form (`POST /authorize/consent`).
//!
//! A request that needs the person (no session, `prompt=login`, `max_age` passed, consent
//! missing) is parked in the store under a random id for 30 minutes; the login page and the
//! consent form carry that id, and the request is parsed and checked again when it resumes.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::i18n::Lang;
use sesame_core::login::requirement::{AuthnRequirement, Verdict};
use sesame_core::ports::Consent;
use sesame_core::random;
use sesame_core::session::{session_handle, SsoSession};
use sesame_protocol::issuer::{BrowserResponse, Issuer, IssuingSession};
use sesame_protocol::oidc::authorize::{AuthorizationRequest, AuthorizeError, AuthorizeErrorCode};
use sesame_protocol::oidc::clients::OidcClient;
use sesame_protocol::oidc::issuer::{consent_scopes, OidcIssuer, OidcRequest};

use super::FormParams;
use crate::pipeline::entry::{load_pending, park, pending_key};
use crate::pipeline::session::current_session;
use crate::web::csrf::FormPurpose;
use crate::web::AppState;

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

/// Whether the session may answer this request without asking for credentials again.
fn session_suffices(
    state: &AppState,
    request: &AuthorizationRequest,
    session: &SsoSession,
    cookie: &str,
    fresh_login: Option<&str>,
) -> bool {
    let requirement = AuthnRequirement {
        fresh: request.prompt.login,
        max_age_secs: request.max_age,
        assurance: None,
    };
    // A login made for this very request is the fresh one `prompt=login` asks for.
    let requirement =
        if fresh_login.is_some_and(|f| random::constant_time_eq(f, &session_handle(cookie))) {
            requirement.after_fresh_login()
        } else {
            requirement
        };
    requirement.evaluate(&session.methods, state.services.clock.now()) == Verdict::Satisfied
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
    let needs_consent = match issuer(state)
        .needs_consent(request, client, session.account_id)
        .await
    {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while reading a consent");
            return state.unavailable(req, lang);
        }
    };
    if needs_consent {
        let wanted = consent_scopes(request);
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

/// The OpenID Connect issuer over the application's services.
fn issuer(state: &AppState) -> OidcIssuer<'_> {
    let oidc = &state.services.oidc;
    OidcIssuer::new(
        &oidc.codes,
        oidc.consents.as_ref(),
        &oidc.clients,
        &oidc.tokens,
        state.base(),
    )
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
    let issuing = IssuingSession {
        handle: &handle,
        session,
        from_new_login: false,
    };
    // Consent was checked on the way here (or just given).
    let request_to_issue = OidcRequest {
        request,
        client,
        account: &account,
        locale: lang.tag(),
        consented: true,
    };
    let issued = match issuer(state).issue(issuing, request_to_issue).await {
        Ok(i) => i,
        Err(e) => {
            tracing::error!(error = %e, "could not issue an authorization code");
            return state.unavailable(req, lang);
        }
    };
    if let Err(e) = state
        .services
        .sessions
        .attach(&handle, session, &issued.attachment)
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
    let location = match issued.response {
        BrowserResponse::Redirect(location) => location,
        // OpenID Connect answers with a redirect only (response_mode=query).
        BrowserResponse::AutoPost { .. } => return state.unavailable(req, lang),
    };
    if req.method() == actix_web::http::Method::POST {
        HttpResponse::SeeOther()
            .insert_header(("Location", location))
            .finish()
    } else {
        found(&location)
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
