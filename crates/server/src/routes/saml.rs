//! `GET /saml/metadata` (the identity provider's signed metadata), `GET|POST /saml/sso`
//! (an `AuthnRequest` over HTTP-Redirect or HTTP-POST) and `GET /saml/unsolicited` (a login
//! the SP did not ask for). What a request does is the
//! pipeline's SAML end (`crate::pipeline::saml`). 404 for all of them while `saml.enabled` is
//! off.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_protocol::saml::metadata::{idp_metadata, IdpDescription};
use time::OffsetDateTime;

use crate::pipeline::saml::{self, Binding};
use crate::pipeline::saml_logout::{self, SloMessage};
use crate::pipeline::session::current_session_with_account;
use crate::web::AppState;

/// How long a signed metadata document is served before it is made again (signing costs an
/// RSA signature; the document changes only with the keys and the day).
const METADATA_CACHE: time::Duration = time::Duration::hours(1);

/// The parameters of the bindings (SAML 2.0 bindings §3.4.4, §3.5.4).
#[derive(Debug, Deserialize)]
pub struct SsoParams {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
}

/// `GET /saml/sso` (HTTP-Redirect binding).
pub async fn sso_redirect(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Ok(params) = web::Query::<SsoParams>::from_query(req.query_string()) else {
        return saml::start(&state, &req, Binding::Redirect, None, None, None).await;
    };
    let session = current_session_with_account(&state, &req).await;
    saml::start(
        &state,
        &req,
        Binding::Redirect,
        params.saml_request.as_deref(),
        params.relay_state.as_deref(),
        session,
    )
    .await
}

/// `POST /saml/sso` (HTTP-POST binding). The body is read as bytes: a request may be larger
/// than the form extractor's default limit (requests are bounded by the pipeline).
pub async fn sso_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let (request, relay, _) = binding_fields(&body);
    let session = current_session_with_account(&state, &req).await;
    saml::start(
        &state,
        &req,
        Binding::Post,
        request.as_deref(),
        relay.as_deref(),
        session,
    )
    .await
}

/// `GET /saml/slo` (a logout request over HTTP-Redirect).
pub async fn slo_redirect(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let params = web::Query::<SsoParams>::from_query(req.query_string()).ok();
    let message = SloMessage {
        request: params.as_ref().and_then(|p| p.saml_request.as_deref()),
        response: params.as_ref().and_then(|p| p.saml_response.as_deref()),
        relay_state: params.as_ref().and_then(|p| p.relay_state.as_deref()),
    };
    saml_logout::logout(&state, &req, Binding::Redirect, message).await
}

/// `POST /saml/slo` (a logout request over HTTP-POST).
pub async fn slo_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let (request, relay, response) = binding_fields(&body);
    let message = SloMessage {
        request: request.as_deref(),
        response: response.as_deref(),
        relay_state: relay.as_deref(),
    };
    saml_logout::logout(&state, &req, Binding::Post, message).await
}

/// `SAMLRequest`, `RelayState` and `SAMLResponse` of a form posted by the HTTP-POST binding.
fn binding_fields(body: &[u8]) -> (Option<String>, Option<String>, Option<String>) {
    let mut request = None;
    let mut relay = None;
    let mut response = None;
    for (name, value) in url::form_urlencoded::parse(body) {
        match name.as_ref() {
            "SAMLRequest" => request = Some(value.into_owned()),
            "RelayState" => relay = Some(value.into_owned()),
            "SAMLResponse" => response = Some(value.into_owned()),
            _ => {}
        }
    }
    (request, relay, response)
}

/// The parameters of an unsolicited login (Shibboleth's names, which portals already use).
#[derive(Debug, Deserialize)]
pub struct UnsolicitedParams {
    #[serde(rename = "providerId")]
    provider_id: Option<String>,
    shire: Option<String>,
    target: Option<String>,
}

/// `GET /saml/unsolicited?providerId=…[&shire=…][&target=…]` (IdP-initiated login).
pub async fn unsolicited(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let params = web::Query::<UnsolicitedParams>::from_query(req.query_string()).ok();
    let session = current_session_with_account(&state, &req).await;
    let param = |f: fn(&UnsolicitedParams) -> &Option<String>| {
        params.as_ref().and_then(|p| f(p).as_deref())
    };
    saml::unsolicited(
        &state,
        &req,
        param(|p| &p.provider_id),
        param(|p| &p.shire),
        param(|p| &p.target),
        session,
    )
    .await
}

/// `GET /saml/metadata`
pub async fn metadata(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let Some(saml) = &state.services.saml else {
        let lang = state.lang(&req, None);
        return state.error_page(
            StatusCode::NOT_FOUND,
            lang,
            &req,
            "error_title",
            "saml_bad_request_text",
        );
    };
    let now = state.services.clock.now();
    if let Some(body) = saml.cached_metadata(now, METADATA_CACHE) {
        return metadata_response(body);
    }
    let keys = saml.keys.key_set();
    let Some(current) = keys.current(now) else {
        tracing::error!("no SAML key may sign: metadata not served");
        return state.unavailable(&req, state.lang(&req, None));
    };
    let others: Vec<_> = keys
        .published(now)
        .into_iter()
        .filter(|k| k.kid != current.kid)
        .map(|k| &k.key)
        .collect();
    let sso_url = saml::sso_url(&state);
    let slo_url = saml::slo_url(&state);
    let institution = state.settings.ui.institution_name.as_str();
    let settings = &state.settings.saml;
    fn some(value: &str) -> Option<&str> {
        Some(value).filter(|v| !v.is_empty())
    }
    let contacts: Vec<(&str, &str)> = [
        ("technical", &settings.technical_contact),
        ("support", &settings.support_contact),
        ("administrative", &settings.administrative_contact),
    ]
    .into_iter()
    .filter(|(_, address)| !address.is_empty())
    .map(|(kind, address)| (kind, address.as_str()))
    .collect();
    let valid_until: OffsetDateTime =
        now + time::Duration::days(i64::from(state.settings.saml.metadata_valid_days));
    let description = IdpDescription {
        entity_id: &saml.entity_id,
        sso_url: &sso_url,
        slo_url: &slo_url,
        scope: &saml.scope,
        display_names: &[("fr", institution), ("en", institution)],
        valid_until,
        logo: some(&settings.logo_url).map(|url| (url, settings.logo_width, settings.logo_height)),
        information_url: some(&settings.information_url),
        organization: Some((
            institution,
            some(&settings.organization_url).unwrap_or(state.settings.public_base()),
        )),
        contacts: &contacts,
    };
    match idp_metadata(&description, &current.key, &others) {
        Ok(xml) => metadata_response(saml.cache_metadata(now, xml)),
        Err(e) => {
            tracing::error!(error = %e, "could not sign the SAML metadata");
            state.unavailable(&req, state.lang(&req, None))
        }
    }
}

fn metadata_response(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/samlmetadata+xml")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(body)
}
