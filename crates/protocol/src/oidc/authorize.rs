//! `/authorize` (OpenID Connect Core 1.0 §3.1.2.1–3.1.2.6, RFC 6749 §4.1.1–4.1.2.1, RFC 7636
//! §4.3, RFC 9207; security rows A20–A23, A34, A38): parses the request, decides whether an
//! error may be sent to the client, and builds the redirects.
//!
//! Errors come in two kinds (RFC 6749 §4.1.2.1):
//!
//! * [`NoRedirectError`]: the client or the redirect URI cannot be trusted (missing, unknown
//!   or repeated `client_id`; missing, repeated or unregistered `redirect_uri`, compared byte
//!   for byte, decision 8). The caller shows an error page and redirects nowhere (A20, A21).
//! * [`ErrorRedirect`]: everything else, sent to the *registered* `redirect_uri` with
//!   `error`, `error_description`, `state` and `iss` (RFC 9207), see
//!   [`ErrorRedirect::redirect_url`].
//!
//! Choices where the specifications leave room:
//!
//! * Only `response_type=code` (and `response_mode` absent or `query`): implicit and hybrid
//!   flows are never served (RFC 9700 §2.1.2; A22), `unsupported_response_type`.
//! * `scope` must contain `openid` (`invalid_scope` otherwise: Sesame is an OpenID Provider,
//!   not a plain OAuth server). Scopes the client is not registered for are **dropped**, not
//!   refused (RFC 6749 §3.3 lets the server ignore part of the request, OpenID Connect Core
//!   §3.1.2.1 says unknown scopes SHOULD be ignored); the granted list is
//!   [`AuthorizationRequest::scopes`], which the token response must echo, and claims follow
//!   it only (A34). A scope value that is not a valid `scope-token` is `invalid_scope`.
//! * PKCE is required for public clients and optional for confidential ones; only `S256`
//!   (a challenge without `code_challenge_method` means `plain` and is refused). A23.
//! * `request` and `request_uri` are refused (`request_not_supported`,
//!   `request_uri_not_supported`, OpenID Connect Core §6): Sesame never fetches or evaluates
//!   anything a request points to (A38). `registration` gets `registration_not_supported`.
//! * Any recognised parameter given twice is `invalid_request` (RFC 6749 §3.1); a parameter
//!   with an empty value counts as absent (same section); unrecognised parameters are ignored
//!   (same section), `claims` included.
//! * Unknown `prompt` values are `invalid_request`, as is `none` with another value.
//!
//! What the server decides, not this module: `login_required`, `consent_required`,
//! `interaction_required` and `account_selection_required` for `prompt=none` (use
//! [`AuthorizationRequest::error_redirect`]), honouring `prompt=login` and `max_age`.

use std::collections::HashMap;
use std::fmt;

use url::Url;

use super::clients::{ClientRegistry, OidcClient};
use super::{is_scope_token, pkce, MAX_PARAMETER_BYTES, OPENID_SCOPE};

/// The `error` codes an authorization error response carries (RFC 6749 §4.1.2.1, OpenID
/// Connect Core 1.0 §3.1.2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthorizeErrorCode {
    /// Missing, invalid or repeated parameter.
    InvalidRequest,
    /// The client may not use this method.
    UnauthorizedClient,
    /// The user or the server refused.
    AccessDenied,
    /// Not `response_type=code`.
    UnsupportedResponseType,
    /// No `openid`, or a malformed scope.
    InvalidScope,
    /// Unexpected server condition.
    ServerError,
    /// Overloaded or in maintenance.
    TemporarilyUnavailable,
    /// `prompt=none` but interaction is needed.
    InteractionRequired,
    /// `prompt=none` but nobody is logged in (or must log in again).
    LoginRequired,
    /// `prompt=none` but several sessions are possible.
    AccountSelectionRequired,
    /// `prompt=none` but consent is needed.
    ConsentRequired,
    /// The `request` parameter (request objects are not supported).
    RequestNotSupported,
    /// The `request_uri` parameter (never fetched).
    RequestUriNotSupported,
    /// The `registration` parameter.
    RegistrationNotSupported,
}

impl AuthorizeErrorCode {
    /// The code as the specifications spell it, e.g. `invalid_request`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::InvalidScope => "invalid_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::InteractionRequired => "interaction_required",
            Self::LoginRequired => "login_required",
            Self::AccountSelectionRequired => "account_selection_required",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::RegistrationNotSupported => "registration_not_supported",
        }
    }
}

impl fmt::Display for AuthorizeErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors that must not be redirected anywhere: show an error page (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoRedirectError {
    /// No `client_id`.
    #[error("the request has no client_id")]
    MissingClientId,
    /// `client_id` given more than once.
    #[error("client_id is repeated")]
    DuplicateClientId,
    /// No client has this `client_id`.
    #[error("unknown client")]
    UnknownClient,
    /// No `redirect_uri` (required by OpenID Connect Core §3.1.2.1).
    #[error("the request has no redirect_uri")]
    MissingRedirectUri,
    /// `redirect_uri` given more than once.
    #[error("redirect_uri is repeated")]
    DuplicateRedirectUri,
    /// `redirect_uri` is not one of the client's, byte for byte.
    #[error("redirect_uri is not registered for this client")]
    UnregisteredRedirectUri,
}

/// An error to send to the client's registered redirect URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct ErrorRedirect {
    /// The registered redirect URI, as registered.
    pub redirect_uri: String,
    /// The `error` code.
    pub error: AuthorizeErrorCode,
    /// The `error_description`: plain ASCII without `"` or `\` (RFC 6749 §4.1.2.1), never
    /// echoing request values.
    pub description: String,
    /// The request's `state`, when it had exactly one.
    pub state: Option<String>,
    target: Url,
}

impl ErrorRedirect {
    /// The URL to redirect the browser to: the registered URI (its own query kept, RFC 6749
    /// §3.1.2) plus `error`, `error_description`, `state` when present and `iss` = `issuer`
    /// (RFC 9207), all form-encoded by the `url` crate.
    pub fn redirect_url(&self, issuer: &str) -> String {
        let mut url = self.target.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("error", self.error.as_str());
            query.append_pair("error_description", &self.description);
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", issuer);
        }
        url.into()
    }
}

/// Why `/authorize` refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizeError {
    /// Show an error page; redirect nowhere.
    #[error(transparent)]
    NoRedirect(#[from] NoRedirectError),
    /// Redirect to the registered URI with the error.
    #[error(transparent)]
    Redirect(Box<ErrorRedirect>),
}

impl AuthorizeError {
    /// The error may be sent to the client's redirect URI.
    pub fn redirects(&self) -> bool {
        matches!(self, Self::Redirect(_))
    }
}

/// The `prompt` values (OpenID Connect Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: no user interface at all (alone).
    pub none: bool,
    /// `login`: ask for credentials even with a session.
    pub login: bool,
    /// `consent`: ask for consent even if given before.
    pub consent: bool,
    /// `select_account`: let the user choose an account.
    pub select_account: bool,
}

/// A valid authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: String,
    /// The registered redirect URI it named (byte-for-byte one of the client's).
    pub redirect_uri: String,
    /// The scopes granted: `openid` first, then the requested ones the client may have, in
    /// request order, without repeats.
    pub scopes: Vec<String>,
    /// `state`, echoed in the response.
    pub state: Option<String>,
    /// `nonce`, copied into the ID token.
    pub nonce: Option<String>,
    /// `prompt`.
    pub prompt: Prompt,
    /// `max_age` in seconds.
    pub max_age: Option<u64>,
    /// `login_hint`.
    pub login_hint: Option<String>,
    /// `id_token_hint`, not verified here.
    pub id_token_hint: Option<String>,
    /// `ui_locales`, in preference order.
    pub ui_locales: Vec<String>,
    /// `acr_values`, in preference order.
    pub acr_values: Vec<String>,
    /// The `S256` `code_challenge`, if any.
    pub code_challenge: Option<String>,
    target: Url,
}

/// Parameters the parser knows; any of them given twice is refused.
const KNOWN: [&str; 18] = [
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "login_hint",
    "id_token_hint",
    "ui_locales",
    "acr_values",
    "code_challenge",
    "code_challenge_method",
    "request",
    "request_uri",
    "registration",
];

struct Params<'a>(HashMap<&'a str, Vec<&'a str>>);

impl<'a> Params<'a> {
    fn new(raw: &'a [(String, String)]) -> Self {
        let mut map: HashMap<&str, Vec<&str>> = HashMap::new();
        for (name, value) in raw {
            if !value.is_empty() {
                map.entry(name.as_str()).or_default().push(value.as_str());
            }
        }
        Self(map)
    }

    fn count(&self, name: &str) -> usize {
        self.0.get(name).map_or(0, Vec::len)
    }

    /// The single value of `name` (`None` if absent or repeated; repeats are refused first).
    fn one(&self, name: &str) -> Option<&'a str> {
        match self.0.get(name).map(Vec::as_slice) {
            Some([value]) => Some(value),
            _ => None,
        }
    }
}

struct Refusal {
    error: AuthorizeErrorCode,
    description: String,
}

fn refuse(error: AuthorizeErrorCode, description: impl Into<String>) -> Refusal {
    Refusal {
        error,
        description: description.into(),
    }
}

fn invalid_request(description: impl Into<String>) -> Refusal {
    refuse(AuthorizeErrorCode::InvalidRequest, description)
}

fn words(value: Option<&str>) -> Vec<String> {
    value
        .map(|v| {
            v.split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn owned(value: Option<&str>) -> Option<String> {
    value.map(str::to_owned)
}

impl AuthorizationRequest {
    /// The assurance this request asks of the session for `client`: the REFEDS MFA profile
    /// when the client requires a second factor; otherwise the lowest level `acr_values`
    /// names among those Sesame knows (any of them is acceptable), or none.
    pub fn assurance_asked(
        &self,
        client: &OidcClient,
    ) -> Option<sesame_core::login::methods::Assurance> {
        use sesame_core::login::methods::Assurance;
        if client.require_mfa {
            return Some(Assurance::MultiFactor);
        }
        self.acr_values
            .iter()
            .filter_map(|v| Assurance::parse(v))
            .min()
    }

    /// Parses and checks the parameters of `/authorize` (query string for GET, form body for
    /// POST), in this order: `client_id` and `redirect_uri` (errors not redirected), then
    /// repeats and lengths, `request`/`request_uri`/`registration`, `response_type`,
    /// `response_mode`, `scope`, PKCE, `prompt`, `max_age` (errors redirected).
    ///
    /// # Errors
    /// [`AuthorizeError::NoRedirect`] or [`AuthorizeError::Redirect`], see the module
    /// documentation.
    pub fn parse(
        params: &[(String, String)],
        registry: &ClientRegistry,
    ) -> Result<Self, AuthorizeError> {
        let params = Params::new(params);
        let client = match params.count("client_id") {
            0 => return Err(NoRedirectError::MissingClientId.into()),
            1 => params
                .one("client_id")
                .and_then(|id| registry.get(id))
                .ok_or(NoRedirectError::UnknownClient)?,
            _ => return Err(NoRedirectError::DuplicateClientId.into()),
        };
        let redirect_uri = match params.count("redirect_uri") {
            0 => return Err(NoRedirectError::MissingRedirectUri.into()),
            1 => params
                .one("redirect_uri")
                .filter(|uri| client.has_redirect_uri(uri))
                .ok_or(NoRedirectError::UnregisteredRedirectUri)?,
            _ => return Err(NoRedirectError::DuplicateRedirectUri.into()),
        };
        let target =
            Url::parse(redirect_uri).map_err(|_| NoRedirectError::UnregisteredRedirectUri)?;
        let state = params
            .one("state")
            .filter(|s| s.len() <= MAX_PARAMETER_BYTES);
        Self::check(&params, client, redirect_uri, &target, state).map_err(|refusal| {
            AuthorizeError::Redirect(Box::new(ErrorRedirect {
                redirect_uri: redirect_uri.to_owned(),
                error: refusal.error,
                description: refusal.description,
                state: owned(state),
                target: target.clone(),
            }))
        })
    }

    fn check(
        params: &Params<'_>,
        client: &OidcClient,
        redirect_uri: &str,
        target: &Url,
        state: Option<&str>,
    ) -> Result<Self, Refusal> {
        for name in KNOWN {
            if params.count(name) > 1 {
                return Err(invalid_request(format!("parameter {name} is repeated")));
            }
            if params
                .one(name)
                .is_some_and(|v| v.len() > MAX_PARAMETER_BYTES)
            {
                return Err(invalid_request(format!("parameter {name} is too long")));
            }
        }
        if params.count("request") > 0 {
            return Err(refuse(
                AuthorizeErrorCode::RequestNotSupported,
                "request objects are not supported",
            ));
        }
        if params.count("request_uri") > 0 {
            return Err(refuse(
                AuthorizeErrorCode::RequestUriNotSupported,
                "request_uri is not supported",
            ));
        }
        if params.count("registration") > 0 {
            return Err(refuse(
                AuthorizeErrorCode::RegistrationNotSupported,
                "the registration parameter is not supported",
            ));
        }
        let Some(response_type) = params.one("response_type") else {
            return Err(invalid_request("response_type is required"));
        };
        if words(Some(response_type)) != ["code"] {
            return Err(refuse(
                AuthorizeErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
        if params.one("response_mode").is_some_and(|m| m != "query") {
            return Err(invalid_request("only response_mode=query is supported"));
        }
        let scopes = granted_scopes(client, params.one("scope"))?;
        let code_challenge = check_pkce(
            client,
            params.one("code_challenge"),
            params.one("code_challenge_method"),
        )?;
        let prompt = parse_prompt(params.one("prompt"))?;
        let max_age = match params.one("max_age") {
            None => None,
            Some(v) if !v.is_empty() && v.len() <= 19 && v.bytes().all(|b| b.is_ascii_digit()) => {
                v.parse().ok()
            }
            Some(_) => return Err(invalid_request("max_age must be a number of seconds")),
        };
        Ok(Self {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            state: owned(state),
            nonce: owned(params.one("nonce")),
            prompt,
            max_age,
            login_hint: owned(params.one("login_hint")),
            id_token_hint: owned(params.one("id_token_hint")),
            ui_locales: words(params.one("ui_locales")),
            acr_values: words(params.one("acr_values")),
            code_challenge,
            target: target.clone(),
        })
    }

    /// An error for this request, to send to its redirect URI (e.g. `login_required` for
    /// `prompt=none` without a session, `access_denied` when consent is refused).
    /// `description` must be plain ASCII without `"` or `\`, and must not echo request values.
    pub fn error_redirect(
        &self,
        error: AuthorizeErrorCode,
        description: impl Into<String>,
    ) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            error,
            description: description.into(),
            state: self.state.clone(),
            target: self.target.clone(),
        }
    }

    /// The success redirect (RFC 6749 §4.1.2, RFC 9207): the redirect URI with `code`,
    /// `state` when present, and `iss` = `issuer`.
    pub fn code_redirect(&self, code: &str, issuer: &str) -> String {
        let mut url = self.target.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("code", code);
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", issuer);
        }
        url.into()
    }
}

/// `openid` required; malformed values refused; values the client may not have dropped.
fn granted_scopes(client: &OidcClient, scope: Option<&str>) -> Result<Vec<String>, Refusal> {
    let requested = words(scope);
    // `words` splits on spaces only, so a tab or a quote lands here.
    if requested.iter().any(|s| !is_scope_token(s)) {
        return Err(refuse(
            AuthorizeErrorCode::InvalidScope,
            "scope contains an invalid value",
        ));
    }
    if !requested.iter().any(|s| s == OPENID_SCOPE) {
        return Err(refuse(
            AuthorizeErrorCode::InvalidScope,
            "the openid scope is required",
        ));
    }
    let mut granted = vec![OPENID_SCOPE.to_owned()];
    for scope in requested {
        if client.allows_scope(&scope) && !granted.contains(&scope) {
            granted.push(scope);
        }
    }
    Ok(granted)
}

fn check_pkce(
    client: &OidcClient,
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<String>, Refusal> {
    match challenge {
        Some(challenge) => {
            pkce::check_method(method)
                .map_err(|_| invalid_request("code_challenge_method must be S256"))?;
            pkce::check_challenge(challenge)
                .map_err(|_| invalid_request("code_challenge is not a valid S256 challenge"))?;
            Ok(Some(challenge.to_owned()))
        }
        None if method.is_some() => Err(invalid_request(
            "code_challenge_method was sent without code_challenge",
        )),
        None if client.public => Err(invalid_request(
            "public clients must send a code_challenge (PKCE, S256)",
        )),
        None => Ok(None),
    }
}

fn parse_prompt(value: Option<&str>) -> Result<Prompt, Refusal> {
    let mut prompt = Prompt::default();
    for word in words(value) {
        match word.as_str() {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.select_account = true,
            _ => return Err(invalid_request("unsupported prompt value")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
        return Err(invalid_request(
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::clients::tests::{confidential, public, CB};

    const ISSUER: &str = "https://sso.example.org";
    const SPA_CB: &str = "http://127.0.0.1:8765/cb";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn registry() -> ClientRegistry {
        let tenant = OidcClient {
            redirect_uris: vec!["https://t.example.org/cb?tenant=a&x=%20y".to_owned()],
            ..confidential("tenant")
        };
        ClientRegistry::new(vec![confidential("moodle"), public("spa"), tenant]).unwrap()
    }

    fn base() -> Vec<(String, String)> {
        [
            ("client_id", "moodle"),
            ("redirect_uri", CB),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("state", "st-123"),
            ("nonce", "n-456"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
    }

    fn with(
        mut params: Vec<(String, String)>,
        changes: &[(&str, Option<&str>)],
    ) -> Vec<(String, String)> {
        for (name, value) in changes {
            params.retain(|(k, _)| k != name);
            if let Some(value) = value {
                params.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        params
    }

    fn added(mut params: Vec<(String, String)>, name: &str, value: &str) -> Vec<(String, String)> {
        params.push((name.to_owned(), value.to_owned()));
        params
    }

    fn parse(params: &[(String, String)]) -> Result<AuthorizationRequest, AuthorizeError> {
        AuthorizationRequest::parse(params, &registry())
    }

    fn no_redirect(params: &[(String, String)]) -> NoRedirectError {
        match parse(params) {
            Err(AuthorizeError::NoRedirect(e)) => e,
            other => panic!("expected an error page, got {other:?}"),
        }
    }

    /// The redirected error, after checking its URL: the registered URI with `error`,
    /// `error_description`, `iss`, and `state` when expected; nothing else.
    fn redirected(params: &[(String, String)], state: Option<&str>) -> AuthorizeErrorCode {
        let err = match parse(params) {
            Err(AuthorizeError::Redirect(e)) => e,
            other => panic!("expected a redirected error, got {other:?}"),
        };
        assert_eq!(err.redirect_uri, CB);
        assert_eq!(err.state.as_deref(), state);
        let url = Url::parse(&err.redirect_url(ISSUER)).unwrap();
        assert_eq!(&url[..url::Position::AfterPath], CB);
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let mut expected = vec![
            ("error".to_owned(), err.error.as_str().to_owned()),
            ("error_description".to_owned(), err.description.clone()),
        ];
        if let Some(state) = state {
            expected.push(("state".to_owned(), state.to_owned()));
        }
        expected.push(("iss".to_owned(), ISSUER.to_owned()));
        assert_eq!(pairs, expected);
        assert!(err.description.bytes().all(|b| b == 0x20
            || b == 0x21
            || (0x23..=0x5B).contains(&b)
            || (0x5D..=0x7E).contains(&b)));
        err.error
    }

    #[test]
    fn valid_request_parses() {
        let params = with(
            base(),
            &[
                ("scope", Some("email  openid phone profile email")),
                ("prompt", Some("login consent")),
                ("max_age", Some("300")),
                ("login_hint", Some("alice.martin")),
                ("ui_locales", Some("fr-FR en")),
                ("acr_values", Some("urn:a urn:b")),
                ("claims", Some("{\"x\":1}")),
                ("unknown", Some("x")),
                ("unknown", Some("y")),
                ("response_mode", Some("query")),
                ("code_challenge", Some(CHALLENGE)),
                ("code_challenge_method", Some("S256")),
                ("id_token_hint", Some("")),
            ],
        );
        let req = parse(&params).unwrap();
        assert_eq!(req.client_id, "moodle");
        assert_eq!(req.redirect_uri, CB);
        // `phone` is not allowed for this client: dropped (A34), repeats removed.
        assert_eq!(req.scopes, ["openid", "email", "profile"]);
        assert_eq!(req.state.as_deref(), Some("st-123"));
        assert_eq!(req.nonce.as_deref(), Some("n-456"));
        assert_eq!(
            req.prompt,
            Prompt {
                login: true,
                consent: true,
                ..Prompt::default()
            }
        );
        assert_eq!(req.max_age, Some(300));
        assert_eq!(req.login_hint.as_deref(), Some("alice.martin"));
        assert_eq!(req.ui_locales, ["fr-FR", "en"]);
        assert_eq!(req.acr_values, ["urn:a", "urn:b"]);
        assert_eq!(req.code_challenge.as_deref(), Some(CHALLENGE));
        // An empty value counts as absent (RFC 6749 §3.1).
        assert_eq!(req.id_token_hint, None);

        let minimal = parse(&with(base(), &[("state", None), ("nonce", None)])).unwrap();
        assert_eq!(minimal.state, None);
        assert_eq!(minimal.prompt, Prompt::default());
        assert_eq!(minimal.code_challenge, None);
    }

    #[test]
    fn a21_unknown_missing_or_repeated_client_is_not_redirected() {
        assert_eq!(
            no_redirect(&with(base(), &[("client_id", Some("evil"))])),
            NoRedirectError::UnknownClient
        );
        assert_eq!(
            no_redirect(&with(base(), &[("client_id", Some("MOODLE"))])),
            NoRedirectError::UnknownClient
        );
        assert_eq!(
            no_redirect(&with(base(), &[("client_id", None)])),
            NoRedirectError::MissingClientId
        );
        assert_eq!(
            no_redirect(&with(base(), &[("client_id", Some(""))])),
            NoRedirectError::MissingClientId
        );
        assert_eq!(
            no_redirect(&added(base(), "client_id", "spa")),
            NoRedirectError::DuplicateClientId
        );
        assert_eq!(
            no_redirect(&added(base(), "client_id", "moodle")),
            NoRedirectError::DuplicateClientId
        );
    }

    #[test]
    fn a20_redirect_uri_must_be_exactly_registered() {
        for variant in [
            "https://app.example.org/oidc/callback/",
            "https://app.example.org:443/oidc/callback",
            "https://app.example.org:8443/oidc/callback",
            "http://app.example.org/oidc/callback",
            "https://APP.example.org/oidc/callback",
            "https://app.example.org/oidc/callback?x=1",
            "https://app.example.org/oidc/callback#x",
            "https://app.example.org/oidc/Callback",
            "https://app.example.org/oidc/callback/../callback",
            "https://app.example.org.evil.com/oidc/callback",
            "https://evil.com/oidc/callback",
            SPA_CB,
            " https://app.example.org/oidc/callback",
        ] {
            assert_eq!(
                no_redirect(&with(base(), &[("redirect_uri", Some(variant))])),
                NoRedirectError::UnregisteredRedirectUri,
                "{variant:?}"
            );
        }
        assert_eq!(
            no_redirect(&with(base(), &[("redirect_uri", None)])),
            NoRedirectError::MissingRedirectUri
        );
        assert_eq!(
            no_redirect(&added(base(), "redirect_uri", CB)),
            NoRedirectError::DuplicateRedirectUri
        );
        assert_eq!(
            no_redirect(&added(base(), "redirect_uri", "https://evil.com/")),
            NoRedirectError::DuplicateRedirectUri
        );
        // Client and redirect URI are checked before anything that would redirect.
        let bad_everything = with(
            base(),
            &[
                ("redirect_uri", Some("https://evil.com/cb")),
                ("response_type", Some("token")),
                ("request_uri", Some("http://169.254.169.254/")),
            ],
        );
        assert_eq!(
            no_redirect(&bad_everything),
            NoRedirectError::UnregisteredRedirectUri
        );
        assert!(!parse(&bad_everything).unwrap_err().redirects());
    }

    #[test]
    fn a22_implicit_and_hybrid_are_refused_at_the_registered_uri() {
        for response_type in [
            "token",
            "id_token token",
            "id_token",
            "code id_token",
            "code token",
            "code id_token token",
            "none",
            "CODE",
            "code code",
        ] {
            assert_eq!(
                redirected(
                    &with(base(), &[("response_type", Some(response_type))]),
                    Some("st-123")
                ),
                AuthorizeErrorCode::UnsupportedResponseType,
                "{response_type:?}"
            );
        }
        assert_eq!(
            redirected(&with(base(), &[("response_type", None)]), Some("st-123")),
            AuthorizeErrorCode::InvalidRequest
        );
        for mode in ["fragment", "form_post"] {
            assert_eq!(
                redirected(
                    &with(base(), &[("response_mode", Some(mode))]),
                    Some("st-123")
                ),
                AuthorizeErrorCode::InvalidRequest
            );
        }
    }

    #[test]
    fn a22_scope_without_openid_or_malformed_is_invalid_scope() {
        for scope in [
            Some("profile email"),
            Some("OPENID"),
            None,
            Some("openid\tprofile"),
            Some("openid pro\"file"),
        ] {
            assert_eq!(
                redirected(&with(base(), &[("scope", scope)]), Some("st-123")),
                AuthorizeErrorCode::InvalidScope,
                "{scope:?}"
            );
        }
        // Unknown and unregistered scopes are dropped, not refused (A34).
        let req = parse(&with(
            base(),
            &[("scope", Some("openid admin offline_access"))],
        ))
        .unwrap();
        assert_eq!(req.scopes, ["openid"]);
    }

    #[test]
    fn a23_public_clients_need_s256_pkce() {
        let spa = with(
            base(),
            &[("client_id", Some("spa")), ("redirect_uri", Some(SPA_CB))],
        );
        let spa_redirected = |params: &[(String, String)]| match parse(params) {
            Err(AuthorizeError::Redirect(e)) => {
                assert_eq!(e.redirect_uri, SPA_CB);
                assert_eq!(e.state.as_deref(), Some("st-123"));
                e.error
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(spa_redirected(&spa), AuthorizeErrorCode::InvalidRequest);
        let s256 = with(
            spa.clone(),
            &[
                ("code_challenge", Some(CHALLENGE)),
                ("code_challenge_method", Some("S256")),
            ],
        );
        assert_eq!(
            parse(&s256).unwrap().code_challenge.as_deref(),
            Some(CHALLENGE)
        );
        for (challenge, method) in [
            (Some(CHALLENGE), Some("plain")),
            (Some(CHALLENGE), None),
            (Some(CHALLENGE), Some("s256")),
            (Some("short"), Some("S256")),
            (None, Some("S256")),
        ] {
            let params = with(
                spa.clone(),
                &[
                    ("code_challenge", challenge),
                    ("code_challenge_method", method),
                ],
            );
            assert_eq!(
                spa_redirected(&params),
                AuthorizeErrorCode::InvalidRequest,
                "{challenge:?} {method:?}"
            );
        }
        // Confidential clients too: `plain` is never accepted.
        let plain = with(
            base(),
            &[
                ("code_challenge", Some(CHALLENGE)),
                ("code_challenge_method", Some("plain")),
            ],
        );
        assert_eq!(
            redirected(&plain, Some("st-123")),
            AuthorizeErrorCode::InvalidRequest
        );
    }

    #[test]
    fn a38_request_objects_and_uris_are_never_fetched() {
        for uri in [
            "http://169.254.169.254/latest/meta-data/",
            "http://127.0.0.1:6379/",
            "${jndi:ldap://evil.com/x}",
            "urn:ietf:params:oauth:request_uri:abc",
        ] {
            assert_eq!(
                redirected(&added(base(), "request_uri", uri), Some("st-123")),
                AuthorizeErrorCode::RequestUriNotSupported
            );
        }
        assert_eq!(
            redirected(
                &added(base(), "request", "eyJhbGciOiJub25lIn0.e30."),
                Some("st-123")
            ),
            AuthorizeErrorCode::RequestNotSupported
        );
        assert_eq!(
            redirected(&added(base(), "registration", "{}"), Some("st-123")),
            AuthorizeErrorCode::RegistrationNotSupported
        );
        assert_eq!(
            AuthorizeErrorCode::RequestUriNotSupported.as_str(),
            "request_uri_not_supported"
        );
    }

    #[test]
    fn repeated_or_oversized_parameters_are_invalid_requests() {
        // A repeated state is not echoed: which one would be the client's?
        assert_eq!(
            redirected(&added(base(), "state", "other"), None),
            AuthorizeErrorCode::InvalidRequest
        );
        for name in [
            "scope",
            "response_type",
            "nonce",
            "prompt",
            "code_challenge",
        ] {
            assert_eq!(
                redirected(&added(base(), name, "openid"), Some("st-123")),
                AuthorizeErrorCode::InvalidRequest,
                "{name}"
            );
        }
        let long = "n".repeat(MAX_PARAMETER_BYTES + 1);
        assert_eq!(
            redirected(&with(base(), &[("nonce", Some(&long))]), Some("st-123")),
            AuthorizeErrorCode::InvalidRequest
        );
        assert_eq!(
            redirected(&with(base(), &[("state", Some(&long))]), None),
            AuthorizeErrorCode::InvalidRequest
        );
    }

    #[test]
    fn prompt_and_max_age_syntax() {
        let none = parse(&with(base(), &[("prompt", Some("none"))])).unwrap();
        assert!(none.prompt.none);
        let select = parse(&with(base(), &[("prompt", Some("select_account"))])).unwrap();
        assert!(select.prompt.select_account);
        for prompt in ["none login", "consent none", "create", "NONE"] {
            assert_eq!(
                redirected(&with(base(), &[("prompt", Some(prompt))]), Some("st-123")),
                AuthorizeErrorCode::InvalidRequest,
                "{prompt:?}"
            );
        }
        assert_eq!(
            parse(&with(base(), &[("max_age", Some("0"))]))
                .unwrap()
                .max_age,
            Some(0)
        );
        for max_age in ["-1", "1.5", "abc", " 1", "+1", "99999999999999999999"] {
            assert_eq!(
                redirected(&with(base(), &[("max_age", Some(max_age))]), Some("st-123")),
                AuthorizeErrorCode::InvalidRequest,
                "{max_age:?}"
            );
        }
    }

    #[test]
    fn redirects_keep_the_registered_query_and_encode_values() {
        let tricky_state = "a&error=x#frag é";
        let params = with(
            base(),
            &[
                ("client_id", Some("tenant")),
                (
                    "redirect_uri",
                    Some("https://t.example.org/cb?tenant=a&x=%20y"),
                ),
                ("state", Some(tricky_state)),
            ],
        );
        let req = parse(&params).unwrap();
        let url = Url::parse(&req.code_redirect("CODE123", ISSUER)).unwrap();
        assert_eq!(url.host_str(), Some("t.example.org"));
        assert_eq!(url.path(), "/cb");
        assert_eq!(url.fragment(), None);
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let expect = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            pairs,
            expect(&[
                ("tenant", "a"),
                ("x", " y"),
                ("code", "CODE123"),
                ("state", tricky_state),
                ("iss", ISSUER),
            ])
        );
        let err = req.error_redirect(AuthorizeErrorCode::LoginRequired, "no session");
        let url = Url::parse(&err.redirect_url(ISSUER)).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            expect(&[
                ("tenant", "a"),
                ("x", " y"),
                ("error", "login_required"),
                ("error_description", "no session"),
                ("state", tricky_state),
                ("iss", ISSUER),
            ])
        );
        assert_eq!(err.to_string(), "login_required: no session");
    }
}
