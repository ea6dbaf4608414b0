//! A login transaction in the browser: the `__Host-sesame_login` cookie that names it, reading
//! it back for a step's page (and refusing a page visited out of turn), sending the browser
//! to its current step, dropping it. The transaction itself is `sesame_core::login::
//! transaction`; what steps are due is [`super::steps`].
//!
//! The id travels in an HttpOnly, SameSite=Strict cookie (`__Host-sesame_login`, Secure, over
//! HTTPS); the transaction lives 30 minutes, and each step puts it back under a new id.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sesame_core::i18n::Lang;
use sesame_core::login::steps::StepId;
use sesame_core::login::transaction::{LoginTransaction, LoginTransactions, TransactionError};

use crate::web::AppState;

/// The page that takes a step after the password.
pub(crate) fn step_path(step: StepId) -> &'static str {
    match step {
        // The password is the login form itself.
        StepId::Password => "/cas/login",
        StepId::SecondFactor => "/login/second-factor",
        StepId::SecondFactorReminder => "/login/second-factor-reminder",
        StepId::AcceptCharter => "/charter",
        StepId::Consent => "/authorize/consent",
    }
}

pub(crate) fn transactions(state: &AppState) -> LoginTransactions {
    LoginTransactions::new(state.services.store.clone())
}

/// A login transaction of this browser, as a step's page reads it.
#[derive(Debug)]
pub struct Parked {
    /// The id of the cookie: the transaction's key and the seed of the pages' form tokens.
    pub(crate) id: String,
    /// The login so far.
    pub tx: LoginTransaction,
}

impl Parked {
    /// The cookie's id (per transaction and step, unknown to other sites).
    pub fn token(&self) -> &str {
        &self.id
    }
}

pub(crate) fn cookie_name(state: &AppState) -> &'static str {
    // `__Host-`: over HTTPS the browser refuses the cookie unless it is Secure, host-only and
    // for `/`, so a sibling domain cannot plant a login transaction of its own.
    if state.settings.is_https() {
        "__Host-sesame_login"
    } else {
        "sesame_login"
    }
}

pub(crate) fn transaction_cookie(state: &AppState, value: String) -> Cookie<'static> {
    // Strict: the cookie is set by our own login POST and only read by our own pages, so no
    // cross-site request ever needs it, and a cross-site form cannot act on a transaction.
    Cookie::build(cookie_name(state), value)
        .path("/")
        .http_only(true)
        .secure(state.settings.is_https())
        .same_site(SameSite::Strict)
        .finish()
}

pub(crate) fn remove_cookie(state: &AppState, response: &mut HttpResponse) {
    let mut removal = transaction_cookie(state, String::new());
    removal.make_removal();
    if let Err(e) = response.add_cookie(&removal) {
        tracing::warn!(error = %e, "could not remove the login transaction cookie");
    }
}

/// The response sending the browser to the page of `tx`'s current step, with the cookie
/// naming the transaction `id`.
pub(crate) fn to_current_step(
    state: &AppState,
    tx: &LoginTransaction,
    id: String,
) -> Result<HttpResponse, actix_web::error::HttpError> {
    let next = tx.current_step().map_or("/cas/login", step_path);
    let mut response = HttpResponse::SeeOther()
        .insert_header(("Location", format!("{}{next}", state.base())))
        .finish();
    response.add_cookie(&transaction_cookie(state, id))?;
    Ok(response)
}

/// The login transaction of this browser, if any (not consumed).
///
/// # Errors
/// Store errors, or a record that cannot be read back.
pub async fn parked(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<Parked>, TransactionError> {
    let Some(cookie) = req.cookie(cookie_name(state)) else {
        return Ok(None);
    };
    let id = cookie.value().to_owned();
    Ok(transactions(state)
        .get(&id)
        .await?
        .map(|tx| Parked { id, tx }))
}

/// The login transaction of this browser when `step` is the one it is at; otherwise the
/// response to send: the page of the step it is at (a page visited out of turn, say with the
/// back button, neither acts nor drops the transaction), the expired page when there is no
/// transaction, or unavailable when the store fails.
pub async fn parked_at(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    step: StepId,
) -> Result<Parked, HttpResponse> {
    match parked(state, req).await {
        Ok(Some(p)) => match p.tx.current_step() {
            Some(current) if current == step => Ok(p),
            Some(current) => Err(HttpResponse::SeeOther()
                .insert_header((
                    "Location",
                    format!("{}{}", state.base(), step_path(current)),
                ))
                .finish()),
            None => Err(expired(state, req, lang)),
        },
        Ok(None) => Err(expired(state, req, lang)),
        Err(e) => {
            tracing::error!(error = %e, "could not read a login transaction");
            Err(state.unavailable(req, lang))
        }
    }
}

/// Drops a login transaction (too many wrong answers): logging in again goes through the
/// login page's lockout rules.
pub async fn discard(state: &AppState, parked: &Parked) {
    if let Err(e) = transactions(state).discard(&parked.id).await {
        tracing::warn!(error = %e, "could not drop a login transaction");
    }
}

/// The page for a login transaction that is gone (expired, used up or dropped); the cookie
/// that named it goes too.
pub fn expired(state: &AppState, req: &HttpRequest, lang: Lang) -> HttpResponse {
    let mut response = state.error_page(
        StatusCode::FORBIDDEN,
        lang,
        req,
        "error_title",
        "required_action_expired",
    );
    remove_cookie(state, &mut response);
    response
}

/// `response` with the transaction cookie removed.
pub(crate) fn without_cookie(state: &AppState, mut response: HttpResponse) -> HttpResponse {
    remove_cookie(state, &mut response);
    response
}
