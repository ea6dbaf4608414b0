//! The OpenID Connect end of the pipeline: an authorization request (`/authorize`) either
//! answered from the session, or parked while the person logs in or consents, and completed
//! by the login that was made for it.
//!
//! A request that needs the person (no session, `prompt=login`, `max_age` passed, consent
//! missing) is parked in the store under a random id for 30 minutes (`entry::park`); the
//! login URL (`/cas/login?authz=…`) and the consent form carry that id, and the request is
//! parsed and checked again when it resumes. The login made for it completes it directly
//! ([`complete_after_login`]): that login is the fresh one `prompt=login` and `max_age` ask
//! for, with no marker kept on the parked request.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::i18n::Lang;
use sesame_core::login::requirement::{AuthnRequirement, Verdict};
use sesame_core::ports::Consent;
use sesame_core::session::{session_handle, SsoSession};
use sesame_protocol::issuer::{BrowserResponse, Issuer, IssuingSession};
use sesame_protocol::oidc::authorize::{AuthorizationRequest, AuthorizeError, AuthorizeErrorCode};
use sesame_protocol::oidc::clients::OidcClient;
use sesame_protocol::oidc::issuer::{consent_scopes, OidcIssuer, OidcRequest};

use sesame_core::ids::AccountId;
use sesame_core::login::methods::Assurance;
use sesame_core::login::steps::{AccountFacts, LoginPlan};
use sesame_core::login::transaction::{Continuation, LoginTransaction};

use super::entry::{load_pending, park, pending_key, Pending};
use super::step_up;
use super::transaction::{to_current_step, transactions, without_cookie, Parked};
use crate::web::csrf::FormPurpose;
use crate::web::AppState;

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

/// An authorization request as it arrives (`GET|POST /authorize`), with this browser's
/// session if it has one.
pub async fn start(
    state: &AppState,
    req: &HttpRequest,
    params: Vec<(String, String)>,
    session: Option<(String, SsoSession)>,
) -> HttpResponse {
    let request = match parse(state, req, &params) {
        Ok(r) => r,
        Err(res) => return *res,
    };
    let requested_at = state.services.clock.now().unix_timestamp();
    proceed(
        state,
        req,
        &request,
        params,
        requested_at,
        None,
        session,
        false,
    )
    .await
}

/// Completes the parked request `request_id` with the session a login made for it has just
/// opened: a code (the consent, if one was needed, was a step of the login), or the expired
/// page when the request is gone (expired, or already answered in another tab).
pub(crate) async fn complete_after_login(
    state: &AppState,
    req: &HttpRequest,
    request_id: &str,
    cookie: &str,
    session: &SsoSession,
) -> HttpResponse {
    let session = Some((cookie.to_owned(), session.clone()));
    answer_parked(state, req, request_id, session, true).await
}

/// The parked request a login transaction is for, parsed again: its id, as parked, and the
/// request. `Ok(None)` for a login that is not for one, or whose request is gone or no
/// longer valid (the end of the login answers those).
async fn request_of(
    state: &AppState,
    continuation: &Continuation,
) -> Result<Option<(String, Pending, AuthorizationRequest)>, ()> {
    let Continuation::Oidc { request_id, .. } = continuation else {
        return Ok(None);
    };
    let Some(pending) = load_pending(state, request_id).await? else {
        return Ok(None);
    };
    Ok(
        AuthorizationRequest::parse(&pending.params, &state.services.oidc.clients)
            .ok()
            .map(|r| (request_id.clone(), pending, r)),
    )
}

/// The consent form of a login transaction's consent step; `seed` is the transaction's id,
/// to which the form's token is bound.
pub(crate) async fn consent_step_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    continuation: &Continuation,
    seed: &str,
) -> HttpResponse {
    match request_of(state, continuation).await {
        Ok(Some((_, _, request))) => match state.services.oidc.clients.get(&request.client_id) {
            Some(client) => {
                let wanted = consent_scopes(&request);
                consent_page(state, req, lang, client, &wanted, seed, "")
            }
            None => expired_page(state, req),
        },
        Ok(None) => expired_page(state, req),
        Err(()) => state.unavailable(req, lang),
    }
}

/// The person's answer to the consent step of `parked`, a transaction whose step is the
/// consent, after the caller checked the form's token; `session` is this browser's. Allowed,
/// the request is completed as the login made for it would have been (the transaction is
/// taken: one answer per step); refused, the client gets `access_denied`. Either way the
/// person stays logged in, as with a consent asked of a logged-in browser.
pub(crate) async fn answer_consent_step(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    parked: &Parked,
    session: Option<(String, SsoSession)>,
    allowed: bool,
) -> HttpResponse {
    let transactions = transactions(state);
    // The session must still be the login's: not ended, not another person's since.
    let Some((cookie, session)) =
        session.filter(|(_, s)| Some(s.account_id) == parked.tx.identified)
    else {
        if let Err(e) = transactions.discard(&parked.id).await {
            tracing::warn!(error = %e, "could not drop a login transaction");
        }
        return without_cookie(state, expired_page(state, req));
    };
    let (id, pending, request) = match request_of(state, &parked.tx.continuation).await {
        Ok(Some(r)) => r,
        Ok(None) => return without_cookie(state, expired_page(state, req)),
        Err(()) => return state.unavailable(req, lang),
    };
    let Some(client) = state.services.oidc.clients.get(&request.client_id) else {
        return without_cookie(state, expired_page(state, req));
    };
    // Taken before anything is recorded: of two submissions, one answers.
    let taken = match transactions.take(&parked.id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while answering a consent");
            return state.unavailable(req, lang);
        }
    };
    if taken.is_none() {
        return without_cookie(state, expired_page(state, req));
    }
    if let Err(answer) = record_decision(
        state,
        req,
        lang,
        session.login.as_str(),
        session.account_id,
        &request,
        client,
        &id,
        allowed,
    )
    .await
    {
        return without_cookie(state, answer);
    }
    // The request as read above: the consent just recorded now covers it.
    let response = proceed(
        state,
        req,
        &request,
        pending.params,
        pending.requested_at,
        Some(&id),
        Some((cookie, session)),
        true,
    )
    .await;
    without_cookie(state, response)
}

/// The consent step after a login made for the parked request `request_id`: the session is
/// open; a transaction records that it was opened for this request (what `prompt=login` and
/// `max_age` then accept) and the browser goes to the consent page.
async fn start_consent_step(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    session: &SsoSession,
    request_id: String,
    params: Vec<(String, String)>,
    requested_at: i64,
) -> HttpResponse {
    let now = state.services.clock.now();
    let continuation = Continuation::Oidc {
        request_id,
        params,
        requested_at: time::OffsetDateTime::from_unix_timestamp(requested_at).unwrap_or(now),
    };
    let mut tx = LoginTransaction::new(continuation, now);
    tx.identified = Some(session.account_id);
    tx.factors.clone_from(&session.methods.records);
    let facts = AccountFacts {
        consent_pending: true,
        ..AccountFacts::default()
    };
    tx.steps_due = LoginPlan::after_session()
        .due(&facts, &tx)
        .unwrap_or_default();
    let started = match transactions(state).start(&tx).await {
        Ok(id) => to_current_step(state, &tx, id).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    started.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot keep a login transaction");
        state.unavailable(req, lang)
    })
}

/// Whether the session may answer this request without asking for credentials again.
async fn session_verdict(
    state: &AppState,
    request: &AuthorizationRequest,
    session: &SsoSession,
    fresh: bool,
) -> Verdict {
    let asked = state
        .services
        .oidc
        .clients
        .get(&request.client_id)
        .and_then(|client| request.assurance_asked(client));
    // An affiliation that requires a factor, once its grace is over, asks it of every client.
    let by_policy = asked.is_none()
        && state.services.mfa_policy.any_required()
        && match state
            .services
            .accounts_repo
            .find_by_id(session.account_id)
            .await
        {
            Ok(Some(account)) => step_up::policy_requires_mfa(state, &account).await,
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, "database unavailable while reading an account");
                true
            }
        };
    let requirement = AuthnRequirement {
        fresh: request.prompt.login,
        max_age_secs: request.max_age,
        assurance: asked.or(by_policy.then_some(Assurance::MultiFactor)),
    };
    // A login made for this very request is the fresh one `prompt=login` asks for.
    let requirement = if fresh {
        requirement.after_fresh_login()
    } else {
        requirement
    };
    requirement.evaluate(&session.methods, state.services.clock.now())
}

/// Answers `request` with `session` (this browser's, or the one a login made for the request
/// has just opened, `fresh`): a code, the consent form, or the login page.
#[expect(
    clippy::too_many_arguments,
    reason = "the request, where it is parked, and the session it is answered with"
)]
async fn proceed(
    state: &AppState,
    req: &HttpRequest,
    request: &AuthorizationRequest,
    params: Vec<(String, String)>,
    requested_at: i64,
    pending_id: Option<&str>,
    session: Option<(String, SsoSession)>,
    fresh: bool,
) -> HttpResponse {
    let lang = request_lang(state, req, request);
    let verdict = match session.as_ref() {
        Some((_, s)) => Some(session_verdict(state, request, s, fresh).await),
        None => None,
    };
    if let (Some((_, known)), Some(Verdict::StepUp)) = (&session, verdict) {
        // Known, with too few factors for this client: a code, not the password again.
        if request.prompt.none {
            return found(
                &request
                    .error_redirect(
                        AuthorizeErrorCode::InteractionRequired,
                        "a second factor is needed",
                    )
                    .redirect_url(state.base()),
            );
        }
        let Ok(id) = park(state, params.clone(), requested_at, pending_id).await else {
            return state.unavailable(req, lang);
        };
        let now = state.services.clock.now();
        let continuation = Continuation::Oidc {
            request_id: id,
            params,
            requested_at: time::OffsetDateTime::from_unix_timestamp(requested_at).unwrap_or(now),
        };
        return step_up::step_up(state, req, lang, known, continuation).await;
    }
    let usable = session
        .as_ref()
        .filter(|_| verdict == Some(Verdict::Satisfied));
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
        let Ok(id) = park(state, params.clone(), requested_at, pending_id).await else {
            return state.unavailable(req, lang);
        };
        if fresh {
            // Right after the login made for this request: the consent is that login's
            // step, so that `prompt=login` and `max_age` stay answered when it is given.
            return start_consent_step(state, req, lang, session, id, params, requested_at).await;
        }
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
        // OpenID Connect records its client against the session after the code is issued.
        sessions: None,
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
    if let Some(item) = &issued.attachment {
        if let Err(e) = state.services.sessions.attach(&handle, session, item).await {
            tracing::error!(error = %e, "could not record a client for logout");
            return state.unavailable(req, lang);
        }
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

/// The page for a parked request that is gone (expired, answered, refused).
pub(crate) fn expired_page(state: &AppState, req: &HttpRequest) -> HttpResponse {
    let lang = state.lang(req, None);
    state.error_page(
        StatusCode::BAD_REQUEST,
        lang,
        req,
        "oidc_expired_title",
        "oidc_expired_text",
    )
}

/// The parked request `id` answered with this browser's session (a login page opened for it
/// while the person was already logged in, say in another tab).
pub(crate) async fn resume(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    session: Option<(String, SsoSession)>,
) -> HttpResponse {
    answer_parked(state, req, id, session, false).await
}

/// The parked request `id`, read and checked again, answered with `session` (`fresh`: opened
/// by a login made for it).
async fn answer_parked(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    session: Option<(String, SsoSession)>,
    fresh: bool,
) -> HttpResponse {
    let pending = match load_pending(state, id).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired_page(state, req),
        Err(()) => {
            let lang = state.lang(req, None);
            return state.unavailable(req, lang);
        }
    };
    let request = match parse(state, req, &pending.params) {
        Ok(r) => r,
        Err(res) => return *res,
    };
    proceed(
        state,
        req,
        &request,
        pending.params,
        pending.requested_at,
        Some(id),
        session,
        fresh,
    )
    .await
}

/// The consent form: `authz` names the parked request of a logged-in browser; empty, the
/// form is a login transaction's consent step.
#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    /// The parked request (empty for a login's consent step).
    pub authz: Option<String>,
    /// The form's token.
    pub csrf: Option<String>,
    /// `allow` or `deny`.
    pub decision: Option<String>,
}

impl ConsentForm {
    /// Whether this answers a login transaction's consent step.
    pub fn is_login_step(&self) -> bool {
        self.authz.as_deref().is_none_or(str::is_empty)
    }

    /// Whether the person allowed.
    pub fn allowed(&self) -> bool {
        self.decision.as_deref() == Some("allow")
    }
}

/// The person's answer to the consent form of a logged-in browser (`POST /authorize/consent`
/// with the parked request's id), `session` being this browser's.
pub async fn consent(
    state: &AppState,
    req: &HttpRequest,
    form: &ConsentForm,
    session: Option<(String, SsoSession)>,
) -> HttpResponse {
    let id = form.authz.as_deref().unwrap_or_default();
    let lang = state.lang(req, None);
    let pending = match load_pending(state, id).await {
        Ok(Some(p)) => p,
        Ok(None) => return expired_page(state, req),
        Err(()) => return state.unavailable(req, lang),
    };
    let request = match parse(state, req, &pending.params) {
        Ok(r) => r,
        Err(res) => return *res,
    };
    let Some((cookie, session)) = session else {
        // The session ended while the form was shown: log in again, then consent.
        return proceed(
            state,
            req,
            &request,
            pending.params,
            pending.requested_at,
            Some(id),
            None,
            false,
        )
        .await;
    };
    let purpose = FormPurpose::Consent { pending_id: id };
    if !purpose.accepts(&cookie, form.csrf.as_deref()) {
        return state.form_expired(req, lang);
    }
    let Some(client) = state.services.oidc.clients.get(&request.client_id) else {
        return expired_page(state, req);
    };
    let allowed = form.decision.as_deref() == Some("allow");
    if let Err(answer) = record_decision(
        state,
        req,
        lang,
        session.login.as_str(),
        session.account_id,
        &request,
        client,
        id,
        allowed,
    )
    .await
    {
        return answer;
    }
    issue_code(
        state,
        req,
        lang,
        &request,
        client,
        &cookie,
        &session,
        Some(id),
    )
    .await
}

/// Records a consent decision (audit, and the consent when given). `Err` is the answer to
/// send instead of going on: the refusal's redirect to the client (the parked request `id`
/// dropped), or unavailable.
#[expect(
    clippy::too_many_arguments,
    reason = "who decided, on what request, and the decision"
)]
async fn record_decision(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    login: &str,
    account_id: AccountId,
    request: &AuthorizationRequest,
    client: &OidcClient,
    id: &str,
    allowed: bool,
) -> Result<(), HttpResponse> {
    let now = state.services.clock.now();
    let scopes = consent_scopes(request);
    let event = AuditEvent::new(
        if allowed {
            AuditKind::ConsentGranted
        } else {
            AuditKind::ConsentRefused
        },
        now,
        "self",
    )
    .login(login)
    .account(account_id)
    .ip(state.client_ip(req))
    .detail(serde_json::json!({ "client_id": client.client_id, "scopes": scopes }));
    if let Err(e) = state.services.audit.record(event).await {
        tracing::error!(error = %e, "could not record a consent decision");
        return Err(state.unavailable(req, lang));
    }
    if !allowed {
        if let Err(e) = state.services.store.delete(&pending_key(id)).await {
            tracing::warn!(error = %e, "could not delete a parked authorization request");
        }
        return Err(HttpResponse::SeeOther()
            .insert_header((
                "Location",
                request
                    .error_redirect(AuthorizeErrorCode::AccessDenied, "the person refused")
                    .redirect_url(state.base()),
            ))
            .finish());
    }
    let saved = state
        .services
        .oidc
        .consents
        .save_consent(Consent {
            account_id,
            client_id: client.client_id.clone(),
            scopes,
            granted_at: now,
        })
        .await;
    if let Err(e) = saved {
        tracing::error!(error = %e, "could not record a consent");
        return Err(state.unavailable(req, lang));
    }
    Ok(())
}
