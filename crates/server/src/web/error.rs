//! How a failure becomes a response, one type per surface, each implementing actix's
//! [`ResponseError`] so that a route can answer a failure with `?`:
//!
//! - [`PageError`]: the HTML pages people see: the themed error page, in their language,
//!   with the right status (503 pages say when to retry).
//! - [`OAuthError`]: the JSON error of OAuth 2.0 and OpenID Connect endpoints (RFC 6749 §5.2).
//! - [`CasFailure`]: CAS validation and proxy failures in XML or JSON (CAS 3.0 §2.5–2.7),
//!   and SAML 1.1 failures of `/samlValidate`.
//!
//! The admin API's problem objects (RFC 9457) are [`super::problem::ApiError`].

use std::fmt;

use actix_web::http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde_json::json;
use sesame_core::i18n::Lang;
use sesame_protocol::cas::response as cas_xml;
use sesame_protocol::cas::tickets::CasErrorCode;
use time::OffsetDateTime;

use super::AppState;

/// What an error page says: its status and the keys of its title and message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageKind {
    status: StatusCode,
    title_key: &'static str,
    message_key: &'static str,
}

impl PageKind {
    /// A page with this status, title and message.
    pub const fn new(
        status: StatusCode,
        title_key: &'static str,
        message_key: &'static str,
    ) -> Self {
        Self {
            status,
            title_key,
            message_key,
        }
    }

    /// 403 "the form has expired": a forged, replayed or cross-site form (A41, A42).
    pub const FORM_EXPIRED: Self =
        Self::new(StatusCode::FORBIDDEN, "error_title", "error_form_expired");
    /// 503 "temporarily unavailable", with `Retry-After`: the store or the database failed.
    pub const UNAVAILABLE: Self = Self::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "error_title",
        "error_unavailable",
    );
    /// 404.
    pub const NOT_FOUND: Self =
        Self::new(StatusCode::NOT_FOUND, "not_found_title", "not_found_text");
}

/// A failure of an HTML page, answered with the themed error page.
pub struct PageError {
    kind: PageKind,
    lang: Lang,
    state: web::Data<AppState>,
    req: HttpRequest,
}

impl PageError {
    /// The page of `kind` for this request, in `lang`.
    pub fn new(state: &web::Data<AppState>, req: &HttpRequest, lang: Lang, kind: PageKind) -> Self {
        Self {
            kind,
            lang,
            state: state.clone(),
            req: req.clone(),
        }
    }

    /// The page of `kind` for this request, in the request's language (`?lang=`, cookie,
    /// `Accept-Language`).
    pub fn for_request(state: &web::Data<AppState>, req: &HttpRequest, kind: PageKind) -> Self {
        let lang = state.lang(req, None);
        Self::new(state, req, lang, kind)
    }
}

impl fmt::Debug for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageError")
            .field("kind", &self.kind)
            .field("lang", &self.lang)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} page ({})", self.kind.message_key, self.kind.status)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.kind.status
    }

    fn error_response(&self) -> HttpResponse {
        render_error_page(&self.state, &self.req, self.lang, self.kind)
    }
}

/// The one place an error page is rendered ([`AppState::error_page`] and
/// [`AppState::unavailable`] come here too).
pub(super) fn render_error_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    kind: PageKind,
) -> HttpResponse {
    let mut res = state.page(
        kind.status,
        "error.html",
        lang,
        req,
        minijinja::context! {
            title => state.renderer.text(lang, kind.title_key),
            message => state.renderer.text(lang, kind.message_key),
        },
    );
    if kind == PageKind::UNAVAILABLE {
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    }
    res
}

/// An OAuth 2.0 error (RFC 6749 §5.2): `{"error", "error_description"}` with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    status: StatusCode,
    error: String,
    description: String,
    basic_challenge: bool,
}

impl OAuthError {
    /// An error with this status, code and description.
    pub fn new(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
        Self {
            status,
            error: error.to_owned(),
            description: description.into(),
            basic_challenge: false,
        }
    }

    /// With `WWW-Authenticate: Basic realm="sesame"` (a failed HTTP Basic client
    /// authentication, RFC 6749 §5.2 `invalid_client`).
    #[must_use]
    pub fn with_basic_challenge(mut self) -> Self {
        self.basic_challenge = true;
        self
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error, self.description)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status)
            .json(json!({ "error": self.error, "error_description": self.description }));
        if self.basic_challenge {
            res.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"sesame\""),
            );
        }
        // `temporarily_unavailable` says when to come back, as every other 503 does (the
        // fault suite found the token endpoint's without it during a Redis failover, F20).
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }
}

/// How a CAS endpoint writes its failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasFormat {
    /// `<cas:serviceResponse><cas:authenticationFailure>` (`/serviceValidate`, `/proxyValidate`,
    /// `/p3/*`).
    ValidationXml,
    /// The same in JSON (`format=JSON`, CAS 3.0 §2.5.4).
    ValidationJson,
    /// `<cas:serviceResponse><cas:proxyFailure>` (`/proxy`).
    ProxyXml,
    /// A SAML 1.1 response with a failure status (`/samlValidate`), issued at this time.
    Saml11(OffsetDateTime),
}

/// A CAS failure: its code and message, in its endpoint's format, with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasFailure {
    format: CasFormat,
    status: StatusCode,
    code: CasErrorCode,
    message: String,
}

impl CasFailure {
    /// A failure answered with 200, as CAS clients expect of a refused ticket.
    pub fn new(format: CasFormat, code: CasErrorCode, message: impl Into<String>) -> Self {
        Self {
            format,
            status: StatusCode::OK,
            code,
            message: message.into(),
        }
    }

    /// With another status (400 for a malformed request, 413 for a body too large).
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl fmt::Display for CasFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ResponseError for CasFailure {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let (content_type, body) = match self.format {
            CasFormat::ValidationXml => (
                CAS_XML,
                cas_xml::service_response_failure(self.code, &self.message),
            ),
            CasFormat::ValidationJson => (
                "application/json",
                cas_xml::service_response_failure_json(self.code, &self.message),
            ),
            CasFormat::ProxyXml => (CAS_XML, cas_xml::proxy_failure(self.code, &self.message)),
            CasFormat::Saml11(now) => (
                SAML_XML,
                cas_xml::saml11_response_failure(self.code, &self.message, now),
            ),
        };
        HttpResponse::build(self.status)
            .content_type(content_type)
            .body(body)
    }
}

/// The content type of CAS's XML answers.
pub const CAS_XML: &str = "application/xml; charset=utf-8";

/// The content type of `/samlValidate`'s SOAP answers.
pub const SAML_XML: &str = "text/xml; charset=utf-8";

/// The error pages every route shows, on the state they are rendered with (here rather than in
/// `web/mod.rs`, so that the state does not import this file back).
impl AppState {
    /// The "temporarily unavailable" page: 503 with `Retry-After`, for when the store or
    /// the database fails. Nothing is claimed to have happened.
    pub fn unavailable(&self, req: &HttpRequest, lang: Lang) -> HttpResponse {
        render_error_page(self, req, lang, PageKind::UNAVAILABLE)
    }

    /// The "form expired" page (403): a forged, replayed or cross-site form.
    pub fn form_expired(&self, req: &HttpRequest, lang: Lang) -> HttpResponse {
        render_error_page(self, req, lang, PageKind::FORM_EXPIRED)
    }

    /// An error page with a title and message key.
    pub fn error_page(
        &self,
        status: StatusCode,
        lang: Lang,
        req: &HttpRequest,
        title_key: &'static str,
        message_key: &'static str,
    ) -> HttpResponse {
        render_error_page(
            self,
            req,
            lang,
            PageKind::new(status, title_key, message_key),
        )
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use actix_web::http::header::CONTENT_TYPE;

    use super::*;

    fn body_of(res: HttpResponse) -> String {
        let bytes = res.into_body().try_into_bytes().unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn an_oauth_error_is_the_rfc_6749_json_with_its_status() {
        let res = OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", "code reused")
            .error_response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.headers().get(WWW_AUTHENTICATE).is_none());
        let body: serde_json::Value = serde_json::from_str(&body_of(res)).unwrap();
        assert_eq!(
            body,
            json!({ "error": "invalid_grant", "error_description": "code reused" })
        );
        let res = OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_client", "no")
            .with_basic_challenge()
            .error_response();
        assert_eq!(
            res.headers().get(WWW_AUTHENTICATE).unwrap(),
            "Basic realm=\"sesame\""
        );
    }

    #[test]
    fn a_cas_failure_has_its_format_and_status() {
        let res = CasFailure::new(
            CasFormat::ValidationXml,
            CasErrorCode::InvalidTicket,
            "unknown",
        )
        .error_response();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers().get(CONTENT_TYPE).unwrap(), CAS_XML);
        let body = body_of(res);
        assert!(body.contains("authenticationFailure"), "{body}");
        assert!(body.contains("INVALID_TICKET"), "{body}");

        let res = CasFailure::new(
            CasFormat::ValidationJson,
            CasErrorCode::InvalidRequest,
            "repeated",
        )
        .with_status(StatusCode::BAD_REQUEST)
        .error_response();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert_eq!(res.headers().get(CONTENT_TYPE).unwrap(), "application/json");

        let res = CasFailure::new(
            CasFormat::Saml11(time::macros::datetime!(2026-01-01 0:00 UTC)),
            CasErrorCode::InvalidTicket,
            "unknown",
        )
        .error_response();
        assert_eq!(res.headers().get(CONTENT_TYPE).unwrap(), SAML_XML);
    }

    #[test]
    fn an_oauth_error_of_503_says_when_to_retry() {
        let res = OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again later",
        )
        .error_response();
        assert_eq!(res.headers().get(RETRY_AFTER).unwrap(), "5");
        let res = OAuthError::new(StatusCode::BAD_REQUEST, "invalid_grant", "no").error_response();
        assert!(res.headers().get(RETRY_AFTER).is_none());
    }

    #[test]
    fn only_the_unavailable_page_is_retried() {
        assert_eq!(
            PageKind::UNAVAILABLE.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_ne!(
            PageKind::new(StatusCode::SERVICE_UNAVAILABLE, "error_title", "error_busy"),
            PageKind::UNAVAILABLE
        );
    }
}
