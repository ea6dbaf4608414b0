//! `GET|POST /logout`: OpenID Connect RP-Initiated Logout 1.0.
//!
//! * `post_logout_redirect_uri` is followed only when it is registered, byte for byte, for
//!   the client named by `id_token_hint` (or `client_id`, which must then agree).
//! * Without a valid `id_token_hint` for the browser's current session, the person is asked
//!   to confirm (§2: a request from anywhere must not silently log someone out); the form
//!   carries a token derived from the session cookie. A hint that does not verify (alg
//!   `none`, HMAC, foreign key, wrong issuer) is ignored and disables the redirect.
//! * Ending the session is the same as `/cas/logout`: CAS services and OIDC clients with a
//!   back-channel URI are told, grants are revoked.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use sesame_core::random;
use sesame_protocol::oidc::claims::IdTokenClaims;
use sesame_protocol::oidc::keys::VerifyOptions;
use sesame_protocol::oidc::tokens::session_id;

use super::FormParams;
use crate::pipeline::end::end_session;
use crate::pipeline::session::current_session;
use crate::web::csrf::FormPurpose;
use crate::web::AppState;

/// `GET /logout`
pub async fn end_session_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let params = FormParams::parse(req.query_string().as_bytes());
    handle(&state, &req, &params, false).await
}

/// `POST /logout` (also the confirmation form).
pub async fn end_session_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let params = FormParams::parse(&body);
    handle(&state, &req, &params, true).await
}

fn bad_request(state: &AppState, req: &HttpRequest) -> HttpResponse {
    let lang = state.lang(req, None);
    state.error_page(
        StatusCode::BAD_REQUEST,
        lang,
        req,
        "oidc_bad_request_title",
        "oidc_logout_bad_request_text",
    )
}

async fn handle(
    state: &AppState,
    req: &HttpRequest,
    params: &FormParams,
    posted: bool,
) -> HttpResponse {
    if params.malformed().is_some() {
        return bad_request(state, req);
    }
    let oidc = &state.services.oidc;
    // The hint may have expired (§2): its signature and issuer are what count. A hint that
    // does not verify is ignored, and then nothing is trusted: no redirect, the person is
    // asked (A37).
    let mut hint_refused = false;
    let hint = params.one("id_token_hint").and_then(|raw| {
        let options = VerifyOptions {
            issuer: state.base().to_owned(),
            audience: None,
            check_exp: false,
        };
        let verified = oidc
            .tokens
            .keys()
            .key_set()
            .verify::<IdTokenClaims>(raw, &options)
            .ok();
        hint_refused = verified.is_none();
        verified
    });
    let client_id = match (
        hint.as_ref().map(|h| h.aud.as_str()),
        params.one("client_id"),
    ) {
        (Some(a), Some(b)) if a != b => return bad_request(state, req),
        (Some(a), _) | (None, Some(a)) => Some(a.to_owned()),
        (None, None) => None,
    };
    let client = client_id.as_deref().and_then(|id| oidc.clients.get(id));
    let redirect = match params.one("post_logout_redirect_uri") {
        Some(_) if hint_refused => None,
        Some(uri) => match client {
            Some(c) if c.has_post_logout_redirect_uri(uri) => {
                let Ok(mut url) = url::Url::parse(uri) else {
                    return bad_request(state, req);
                };
                if let Some(s) = params.one("state") {
                    url.query_pairs_mut().append_pair("state", s);
                }
                Some(url.to_string())
            }
            // Never redirect to an address not registered for the client (no open redirect).
            _ => return bad_request(state, req),
        },
        None => None,
    };
    let session = current_session(state, req).await;
    if let Some((cookie, _)) = &session {
        let hinted_this_session = hint.as_ref().is_some_and(|h| {
            h.sid.as_deref().is_some_and(|sid| {
                random::constant_time_eq(
                    sid,
                    &session_id(&sesame_core::session::session_handle(cookie)),
                )
            })
        });
        let confirmed = posted && FormPurpose::Logout.accepts(cookie, params.one("csrf"));
        if !hinted_this_session && !confirmed {
            let lang = state.lang(req, params.one("ui_locales"));
            return state.page(
                StatusCode::OK,
                "logout_confirm.html",
                lang,
                req,
                minijinja::context! {
                    csrf => FormPurpose::Logout.token(cookie),
                    client_name => client.map(|c| c.name.clone()),
                    client_id => client_id,
                    // Carried only when it will be honoured after confirmation.
                    post_logout_redirect_uri => redirect.as_ref().and(params.one("post_logout_redirect_uri")),
                    state => redirect.as_ref().and(params.one("state")),
                },
            );
        }
    }
    // Back to the client's registered URI once the applications are told (SAML SPs through
    // the browser first, if any).
    end_session(state, req, None, redirect.as_deref()).await
}
